"""`kamioi demo`: the end of `make dev`. Generate a demo transactions file, import it through the import
job, map its merchants through the map_merchants job (offline provider unless an LLM key is set),
sweep the mapped round-ups into broker orders through the invest.sweep job (the broker stand-in unless
broker keys are set), then print the dashboard (orders and fills, the house position, holdings, what
still waits and why) and where to look further.

Jobs run on a worker when one is alive for their kind (`kamioi up` starts one), else in this process.
The file is generated once into <state dir>/demo/ and kept, so a second run finds the same sha256
already imported: the database refuses the import, and the demo prints the dashboard (after mapping
any merchants an interrupted first run left without a mapping).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from cli.generate import SEEDED_USER_IDS
from cli.sample_files import write_transactions_csv
from jobs import queue
from jobs.exports import EXPORT_KIND
from jobs.imports.service import DuplicateImport, ImportJob, create_import, get_import
from jobs.inline import InlineRun
from jobs.map_merchants import MAP_MERCHANTS
from jobs.sweep import SWEEP_KIND
from kamioi.broker import broker_url
from kamioi.db import connect
from kamioi.mapping.providers.configured import llm_configured
from kamioi.settings import Settings, get_settings

DEMO_ROWS = 30_000
POLL_SECONDS = 0.5
TOP_MERCHANTS = 12
TOP_HOLDINGS = 8

DASHBOARD = """
select count(*) as transactions,
       count(*) filter (where t.status in ('mapped', 'invested')) as mapped,
       count(*) filter (where t.status = 'pending') as pending,
       count(distinct t.merchant_key) as merchants,
       count(distinct t.merchant_key) filter (where t.status in ('mapped', 'invested')) as merchants_mapped,
       coalesce(sum(t.round_up), 0) as round_up
from public.transactions as t
where t.import_job_id = %s
"""

INVESTED = """
select count(*) filter (where t.status = 'invested'), coalesce(sum(t.round_up) filter (where t.sweep_id is not null), 0)
from public.transactions as t
where t.import_job_id = %s
"""

HOLDINGS = """
select h.ticker, h.shares, h.invested, h.lots from public.holdings as h
where h.user_id = %s and h.lots > 0
order by h.invested desc, h.ticker
limit %s
"""

WAITING_REASONS = {
    "queued": "queued for the next invest run",
    "no_quote": "no price from the provider yet",
    "stale_quote": "only a stale price",
    "unknown_ticker": "ticker unknown to the price provider",
    "provider_error": "price provider failing, retried later",
    "no_ticker": "no ticker and no fallback fund",
    "no_approved_mapping": "mapping no longer approved",
}

UNMAPPED = """
select count(distinct t.merchant_key) from public.transactions as t
where t.import_job_id = %s and t.status = 'pending'
  and not exists (select 1 from public.llm_mappings as m where m.merchant_key = t.merchant_key)
"""

TOP = """
with top as (
  select t.merchant_key, count(*) as transactions
  from public.transactions as t
  where t.import_job_id = %s
  group by t.merchant_key
  order by 2 desc, 1
  limit %s
)
select coalesce(m.company_name, mr.display_name, top.merchant_key), top.transactions, m.ticker,
       coalesce(m.status, 'unmapped'), m.tier
from top
left join public.merchants as mr on mr.merchant_key = top.merchant_key
left join lateral (
  select l.company_name, l.ticker, l.status, l.tier
  from public.llm_mappings as l
  where l.merchant_key = top.merchant_key
  order by l.id = mr.mapping_id desc nulls last, l.status = 'pending' desc, l.created_at desc
  limit 1
) as m on true
order by top.transactions desc, 1
"""


def demo_file(settings: Settings, rows: int) -> Path:
    """The demo transactions file, generated on first use and kept (same bytes -> same sha256)."""
    path = settings.state_dir / "demo" / "transactions.csv"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        # The seeded admin and user own every row, so both see their own transactions.
        write_transactions_csv(partial, rows, users=len(SEEDED_USER_IDS))
        partial.rename(path)
    return path


def run_job(db_url: str, queue_job_id: int, kind: str, describe: Any) -> str:
    """Wait for a live worker to finish the queued job, or run it here when none serves its kind."""
    settings = get_settings()
    with connect(db_url, autocommit=True) as conn:
        if not queue.live_workers(conn, kind, 3 * settings.lease_seconds):
            print(f"  (no worker serves {kind} jobs: running it here)", flush=True)
            InlineRun(db_url, queue_job_id, settings).run()
        last = ""
        while True:
            row = conn.execute("select state from private.job_queue where id = %s", (queue_job_id,)).fetchone()
            state = str(row[0]) if row else "missing"
            line = describe(conn)
            if line != last:
                print(f"  {line}", flush=True)
                last = line
            if state in ("succeeded", "failed", "cancelled", "missing"):
                return state
            time.sleep(POLL_SECONDS)


def import_line(conn: psycopg.Connection[Any], import_job_id: int) -> str:
    job = get_import(conn, import_job_id)
    assert job is not None
    return (
        f"import {job.id} {job.state}: {job.processed_rows:,} rows processed, {job.inserted_rows:,} inserted,"
        f" {job.rejected_rows:,} rejected"
    )


def mapped_line(conn: psycopg.Connection[Any], import_job_id: int) -> str:
    row = conn.execute(DASHBOARD, (import_job_id,)).fetchone()
    assert row is not None
    return f"{row[1]:,} of {row[0]:,} transactions mapped"


def invested_line(conn: psycopg.Connection[Any], import_job_id: int) -> str:
    row = conn.execute(INVESTED, (import_job_id,)).fetchone()
    assert row is not None
    return f"{row[0]:,} transactions invested, {row[1]:,.2f} of round-ups swept into orders"


def print_investing(conn: psycopg.Connection[Any], settings: Settings) -> None:
    """The dashboard's investing section: broker orders and fills, the house position, what waits for a
    threshold or a mapping, ticker fallbacks, and the holdings of the seeded user."""
    row = conn.execute("select public.investing_overview()").fetchone()
    assert row is not None
    overview: dict[str, Any] = row[0]
    where = broker_url(settings) or "the broker's sandbox"
    print(f"\nInvesting (broker: {where}; the stand-in fills at SAMPLE prices, not market data)")
    by_status = ", ".join(f"{n:,} {status}" for status, n in sorted(overview["orders_by_status"].items()))
    print(f"  orders         {by_status or 'none'}")
    fills = overview["fills"]
    print(f"  fills          {fills['events']:,} executions, {Decimal(str(fills['shares'])):,.9f} shares")
    print(f"  {'recent orders':<34}{'notional':>10}  {'status':<17}{'filled qty':>16}{'avg price':>11}")
    for order in overview["orders"][:TOP_HOLDINGS]:
        price = order["filled_avg_price"]
        avg = "-" if price is None else f"{price:,.2f}"
        notional, filled = Decimal(str(order["notional"])), Decimal(str(order["filled_qty"]))
        print(f"  {order['client_order_id']:<34}{notional:>10,.2f}  {order['status']:<17}{filled:>16,.9f}{avg:>11}")
    house = overview["house"]
    house_cash = sum(Decimal(str(h["cash"])) for h in house)
    print(f"  house position {len(house):,} tickers, {house_cash:,.2f} in cents left over by rounding down")
    waiting = overview["waiting_for_threshold"]
    print(
        f"  waiting        {Decimal(str(waiting['amount'])):>11,.2f}   {waiting['round_ups']:,} round-ups of"
        f" {waiting['users']:,} users below their threshold or paused"
    )
    carried = overview["carried"]
    print(f"  carried        {Decimal(str(carried['notional'])):>11,.2f}   (under the broker minimum, unfilled orders)")
    for fallback in overview["fallbacks"]:
        print(f"  fallback fund for {fallback['ticker']}: {fallback['reason']} ({fallback['round_ups']:,} round-ups)")
    for reason, count, round_up in conn.execute("select * from public.investing_backlog(%s)",
                                                (settings.invest_fallback_ticker,)):  # fmt: skip
        if reason != "queued":
            print(f"    {WAITING_REASONS.get(reason, reason) + f' ({count:,})':<40}{round_up:>11,.2f}")
    print(f"\n  holdings of {SEEDED_USER_IDS[1]} (public.holdings from fills, top {TOP_HOLDINGS})")
    print(f"  {'ticker':<8}{'shares':>18}{'invested':>12}{'lots':>7}")
    for ticker, shares, amount, lots in conn.execute(HOLDINGS, (SEEDED_USER_IDS[1], TOP_HOLDINGS)):
        print(f"  {ticker:<8}{shares:>18,.9f}{amount:>12,.2f}{lots:>7,}")


def print_dashboard(conn: psycopg.Connection[Any], import_job_id: int, settings: Settings) -> None:
    row = conn.execute(DASHBOARD, (import_job_id,)).fetchone()
    assert row is not None
    transactions, mapped, pending, merchants, merchants_mapped, round_up = row
    invested_row = conn.execute(INVESTED, (import_job_id,)).fetchone()
    assert invested_row is not None
    invested, allocated = invested_row
    share = f"{100 * mapped / transactions:.1f}%" if transactions else "-"
    calls = conn.execute("select count(*) from public.llm_calls").fetchone()
    provider = "LLM " + settings.llm_model if llm_configured(settings) else "offline provider (no LLM key set)"
    print(f"\nDashboard: demo import {import_job_id}, mapped with the {provider}")
    print(f"  transactions   {transactions:>8,}   mapped {mapped:,} ({share})   pending {pending:,}")
    print(
        f"  merchants      {merchants:>8,}   mapped {merchants_mapped:,}"
        f"   pending review {merchants - merchants_mapped:,}"
    )
    print(f"  round-ups      {round_up:>11,.2f}   invested {allocated:,.2f} ({invested:,} transactions)")
    print(f"  LLM calls      {calls[0] if calls else 0:>8,}   (public.llm_calls, all time)")
    print(f"\n  {'top merchants':<34}{'txns':>7}  {'ticker':<7} status")
    for merchant, count, ticker, status, tier in conn.execute(TOP, (import_job_id, TOP_MERCHANTS)):
        label = f"{status} ({tier})" if tier else status
        print(f"  {merchant[:33]:<34}{count:>7,}  {ticker or '-':<7} {label}")


def print_links(settings: Settings) -> None:
    api = f"http://{settings.api_host}:{settings.api_port}"
    print("\nLook further")
    print(f"  API docs (OpenAPI)   {api}/docs")
    print(f'  dashboard            curl -H "Authorization: Bearer $(kamioi token --as admin)" {api}/v1/stats/dashboard')
    admin_curl = 'curl -H "Authorization: Bearer $(kamioi token --as admin)"'
    print(f"  invested per ticker  {admin_curl} {api}/v1/analytics/investing")
    print(
        f'  review queue         curl -H "Authorization: Bearer $(kamioi token --as admin)" {api}/v1/mappings/pending'
    )
    print(f"  admin lists          {admin_curl} '{api}/v1/transactions?status=invested&limit=20'")
    print(f"                       {admin_curl} '{api}/v1/mappings?sort=confidence_asc&status=pending'")
    print(f"                       {admin_curl} '{api}/v1/users?email_prefix=user'")
    print("  map descriptors      printf 'descriptor\\nSQ *BLUE BOTTLE COFFEE SF CA\\n' | kamioi map")
    print("  evaluate mapping     kamioi eval")
    print(f"  database             psql {settings.db_url}")


def demo_import(conn: psycopg.Connection[Any], path: Path) -> ImportJob:
    """Register the demo file's import, or find the one registered by an earlier run (same sha256)."""
    try:
        job = create_import(conn, kind="transactions", file=path)
    except DuplicateImport as err:
        earlier = get_import(conn, err.existing_job_id) if err.existing_job_id is not None else None
        if earlier is None:
            raise
        print(f"  already registered as import {earlier.id} ({earlier.state}): not importing it twice", flush=True)
        return earlier
    print(f"  import {job.id} registered", flush=True)
    return job


def _demo(args: argparse.Namespace) -> int:
    settings = get_settings()
    logging.basicConfig(level=logging.INFO, format="  %(message)s", stream=sys.stdout)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    path = demo_file(settings, args.rows)
    print(f"Kamioi demo: {path}", flush=True)
    with connect(settings.db_url, autocommit=True) as conn:
        job = demo_import(conn, path)
        if not job.finished:
            assert job.queue_job_id is not None
            run_job(settings.db_url, job.queue_job_id, "import", lambda c: import_line(c, job.id))
        state = conn.execute("select state from public.import_jobs where id = %s", (job.id,)).fetchone()
        if state is None or state[0] != "succeeded":
            print(f"kamioi demo: import {job.id} ended {state[0] if state else 'missing'}", file=sys.stderr)
            return 1
        # The import's success enqueued its map_merchants job (a trigger); a first run stopped between
        # import and mapping may have left merchants unmapped, so map them with a new job then.
        if unmapped_merchants(conn, job.id):
            mapping_job = pending_mapping_job(conn, job.id) or queue.enqueue(
                conn, MAP_MERCHANTS, {"import_job_id": job.id}
            )
            print(f"mapping merchants (job {mapping_job})", flush=True)
            state = run_job(settings.db_url, mapping_job, MAP_MERCHANTS, lambda c: mapped_line(c, job.id))
            if state != "succeeded":
                print(f"kamioi demo: mapping ended {state}", file=sys.stderr)
                return 1
        # pg_cron sweeps every minute; the demo sweeps now, so it ends with the orders filled.
        invest_job = queue.enqueue(conn, SWEEP_KIND)
        print(f"sweeping round-ups into broker orders (job {invest_job})", flush=True)
        state = run_job(settings.db_url, invest_job, SWEEP_KIND, lambda c: invested_line(c, job.id))
        if state != "succeeded":
            print(f"kamioi demo: investing ended {state}", file=sys.stderr)
            return 1
        print_dashboard(conn, job.id, settings)
        print_investing(conn, settings)
        if demo_export(conn, settings, job.id) != "succeeded":
            return 1
    print_links(settings)
    return 0


def demo_export(conn: psycopg.Connection[Any], settings: Settings, import_job_id: int) -> str:
    """Export the demo import's invested transactions as CSV, the way an admin's report job runs."""
    row = conn.execute(
        "select id, queue_job_id, file_name from private.create_export_job('transactions', %s, null, null)",
        (Jsonb({"import_job_id": import_job_id, "status": "invested"}),),
    ).fetchone()
    assert row is not None
    export_id, queue_job_id, file_name = row
    print(f"\nexporting its invested transactions (export {export_id}, job {queue_job_id})", flush=True)
    state = run_job(settings.db_url, queue_job_id, EXPORT_KIND, lambda c: export_line(c, export_id))
    if state != "succeeded":
        print(f"kamioi demo: the export ended {state}", file=sys.stderr)
    else:
        print(f"  {settings.exports_dir / file_name}", flush=True)
    return state


def export_line(conn: psycopg.Connection[Any], export_id: int) -> str:
    row = conn.execute("select state, rows_written from public.export_jobs where id = %s", (export_id,)).fetchone()
    return f"export {export_id}: {row[0]}, {row[1]:,} rows written" if row else f"export {export_id}: missing"


def pending_mapping_job(conn: psycopg.Connection[Any], import_job_id: int) -> int | None:
    row = conn.execute(
        "select id from private.job_queue where kind = %s and payload ->> 'import_job_id' = %s"
        " and state in ('queued', 'running') order by id desc limit 1",
        (MAP_MERCHANTS, str(import_job_id)),
    ).fetchone()
    return int(row[0]) if row else None


def unmapped_merchants(conn: psycopg.Connection[Any], import_job_id: int) -> int:
    row = conn.execute(UNMAPPED, (import_job_id,)).fetchone()
    return int(row[0]) if row else 0


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "demo", help="generate, import, map and invest a demo file, then print the dashboard"
    )
    parser.add_argument("--rows", type=int, default=DEMO_ROWS, help=f"rows in a new demo file (default {DEMO_ROWS})")
    parser.set_defaults(func=_demo)
