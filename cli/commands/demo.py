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
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg

from cli.generate import SEEDED_USER_IDS
from cli.invocation import kamioi_command
from cli.local_run import run_here_unless_served
from cli.sample_files import write_transactions_csv
from jobs import export_service, queue, reports
from jobs.exports import EXPORT_KIND
from jobs.imports.service import DuplicateImport, ImportJob, create_import, get_import
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

WAITING_REASONS = {
    "queued": "queued for the next invest run",
    "no_quote": "no price from the provider yet",
    "stale_quote": "only a stale price",
    "unknown_ticker": "ticker unknown to the price provider",
    "provider_error": "price provider failing, retried later",
    "no_ticker": "no ticker and no fallback fund",
    "no_approved_mapping": "mapping no longer approved",
}


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


def run_job(db_url: str, queue_job_id: int, kind: str, describe: Callable[[psycopg.Connection[Any]], str]) -> str:
    """Wait for a live worker to finish the queued job, or run it here when none serves its kind."""
    settings = get_settings()
    with connect(db_url, autocommit=True) as conn:
        run_here_unless_served(conn, db_url, queue_job_id, kind, settings)
        last = ""
        while True:
            state = queue.state(conn, queue_job_id) or "missing"
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
    outcome = reports.import_outcome(conn, import_job_id)
    return f"{outcome.mapped:,} of {outcome.transactions:,} transactions mapped"


def invested_line(conn: psycopg.Connection[Any], import_job_id: int) -> str:
    outcome = reports.import_outcome(conn, import_job_id)
    return f"{outcome.invested:,} transactions invested, {outcome.swept:,.2f} of round-ups swept into orders"


def print_investing(conn: psycopg.Connection[Any], settings: Settings) -> None:
    """The dashboard's investing section: broker orders and fills, the house position, what waits for a
    threshold or a mapping, ticker fallbacks, and the holdings of the seeded user."""
    overview = reports.investing_overview(conn)
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
    for reason, count, round_up in reports.investing_backlog(conn, settings.invest_fallback_ticker):
        if reason != "queued":
            print(f"    {WAITING_REASONS.get(reason, reason) + f' ({count:,})':<40}{round_up:>11,.2f}")
    print(f"\n  holdings of {SEEDED_USER_IDS[1]} (public.holdings from fills, top {TOP_HOLDINGS})")
    print(f"  {'ticker':<8}{'shares':>18}{'invested':>12}{'lots':>7}")
    for h in reports.holdings(conn, SEEDED_USER_IDS[1], TOP_HOLDINGS):
        print(f"  {h.ticker:<8}{h.shares:>18,.9f}{h.invested:>12,.2f}{h.lots:>7,}")


def print_dashboard(conn: psycopg.Connection[Any], import_job_id: int, settings: Settings) -> None:
    o = reports.import_outcome(conn, import_job_id)
    share = f"{100 * o.mapped / o.transactions:.1f}%" if o.transactions else "-"
    provider = "LLM " + settings.llm_model if llm_configured(settings) else "offline provider (no LLM key set)"
    print(f"\nDashboard: demo import {import_job_id}, mapped with the {provider}")
    print(f"  transactions   {o.transactions:>8,}   mapped {o.mapped:,} ({share})   pending {o.pending:,}")
    print(
        f"  merchants      {o.merchants:>8,}   mapped {o.merchants_mapped:,}"
        f"   pending review {o.merchants - o.merchants_mapped:,}"
    )
    print(f"  round-ups      {o.round_up:>11,.2f}   swept into orders {o.swept:,.2f} ({o.invested:,} transactions)")
    print(f"  LLM calls      {reports.llm_calls(conn):>8,}   (public.llm_calls, all time)")
    print(f"\n  {'top merchants':<34}{'txns':>7}  {'ticker':<7} status")
    for m in reports.top_merchants(conn, import_job_id, TOP_MERCHANTS):
        label = f"{m.status} ({m.tier})" if m.tier else m.status
        print(f"  {m.name[:33]:<34}{m.transactions:>7,}  {m.ticker or '-':<7} {label}")


def print_links(settings: Settings) -> None:
    api = f"http://{settings.api_host}:{settings.api_port}"
    kamioi = kamioi_command()
    admin_curl = f'curl -H "Authorization: Bearer $({kamioi} token --as admin)"'
    print("\nLook further")
    print(f"  API docs (OpenAPI)   {api}/docs")
    print(f"  dashboard            {admin_curl} {api}/v1/stats/dashboard")
    print(f"  invested per ticker  {admin_curl} {api}/v1/analytics/investing")
    print(f"  review queue         {admin_curl} {api}/v1/mappings/pending")
    print(f"  admin lists          {admin_curl} '{api}/v1/transactions?status=invested&limit=20'")
    print(f"                       {admin_curl} '{api}/v1/mappings?sort=confidence_asc&status=pending'")
    print(f"                       {admin_curl} '{api}/v1/users?email_prefix=user'")
    print(f"  failed jobs          {kamioi} jobs --state failed")
    print(f"  map descriptors      printf 'descriptor\\nSQ *BLUE BOTTLE COFFEE SF CA\\n' | {kamioi} map")
    print(f"  evaluate mapping     {kamioi} eval")
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
        imported = get_import(conn, job.id)
        if imported is None or imported.state != "succeeded":
            print(f"kamioi demo: import {job.id} ended {imported.state if imported else 'missing'}", file=sys.stderr)
            return 1
        # The import's success enqueued its map_merchants job (a trigger); a first run stopped between
        # import and mapping may have left merchants unmapped, so map them with a new job then.
        if reports.unmapped_merchants(conn, job.id):
            mapping_job = queue.active_job(conn, MAP_MERCHANTS, "import_job_id", str(job.id)) or queue.enqueue(
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
    export = export_service.create_export(conn, "transactions", {"import_job_id": import_job_id, "status": "invested"})
    print(f"\nexporting its invested transactions (export {export['id']}, job {export['queue_job_id']})", flush=True)
    state = run_job(settings.db_url, export["queue_job_id"], EXPORT_KIND, lambda c: export_line(c, export["id"]))
    if state != "succeeded":
        print(f"kamioi demo: the export ended {state}", file=sys.stderr)
    else:
        print(f"  {settings.exports_dir / export['file_name']}", flush=True)
    return state


def export_line(conn: psycopg.Connection[Any], export_id: int) -> str:
    row = export_service.run(conn, export_service.get_call(export_id))
    return (
        f"export {export_id}: {row['state']}, {row['rows_written']:,} rows written"
        if row
        else f"export {export_id}: missing"
    )


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "demo", help="generate, import, map and invest a demo file, then print the dashboard"
    )
    parser.add_argument("--rows", type=int, default=DEMO_ROWS, help=f"rows in a new demo file (default {DEMO_ROWS})")
    parser.set_defaults(func=_demo)
