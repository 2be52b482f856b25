"""Chart rollups benchmark (issue 14), every number a ratio taken in the same run.

1. Each admin chart read from its rollups vs the same aggregate computed from the base tables (the
   `private.analytics_*_scan` references), at each size in --sizes (the cost must not grow with it).
2. One INSERT ... SELECT of 1M transactions with the rollup triggers on vs off (rolled back).

Data is generated in-database (generate_series) into the real tables of the configured stack and
topped up to each size: 600 merchants with approved mappings, purchases over the last 730 days, one
in four invested (a buy lot each), and mappings created over the last 90 days (a quarter as many as
transactions). It adds tens of millions of rows: point it at a throwaway stack, e.g.

    export KAMIOI_STATE_DIR=/tmp/kamioi-rollbench KAMIOI_ENV_FILE=/tmp/kamioi-rollbench/.env \\
      KAMIOI_DB_PORT=58322 KAMIOI_REDIS_PORT=58379 KAMIOI_UPSTASH_PORT=58380 KAMIOI_API_PORT=8400 \\
      KAMIOI_REPLICA_PORT=58332
    .venv/bin/kamioi up --quiet && .venv/bin/kamioi paused -- .venv/bin/python -m bench.rollup_bench
    .venv/bin/python -m bench.rollup_bench --sizes 200000,1000000 --bulk-rows 200000   # quick check
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import psycopg

from bench.db_bench import (
    CATEGORIES,
    USER_ID_SQL,
    Timing,
    bench_bulk,
    ensure_users,
    log,
    server_ms,
    sql_text_array,
    timed,
)
from kamioi.db import connect
from kamioi.settings import get_settings

MERCHANTS = 600
USERS = 1000
CHUNK_ROWS = 1_000_000
TICKERS = ("SBUX", "AMZN", "WMT", "MCD", "NFLX", "TGT", "COST", "HD", "NKE", "AAPL")
KEY_SQL = "'rollbench ' || lpad(({n} % {merchants})::text, 4, '0')"

# The API's windows: this month and the 11 before it; the last N days, today included.
TWELVE_MONTHS = (
    "(date_trunc('month', current_date) - interval '11 months')::date,"
    " (date_trunc('month', current_date) + interval '1 month')::date"
)
# (chart as the admin API asks for it, rollup read, base-table reference)
CHARTS: tuple[tuple[str, str, str], ...] = tuple(
    (name, f"select * from private.{function}({args})", f"select * from private.{function}_scan({args})")
    for name, function, args in (
        ("categories, 12 months", "analytics_category_months",
         TWELVE_MONTHS),
        ("top merchants, 30 days", "analytics_top_merchants", "current_date - 29, current_date + 1, 10"),
        ("top merchants, 365 days", "analytics_top_merchants", "current_date - 364, current_date + 1, 10"),
        ("activity per day, 30 days", "analytics_activity", "current_date - 29, current_date + 1, 'day'"),
        ("activity per month, 12 months", "analytics_activity",
         TWELVE_MONTHS + ", 'month'"),
        ("tickers per month, 12 months", "analytics_ticker_months",
         TWELVE_MONTHS),
        ("mapping throughput, 30 days", "analytics_mapping_throughput", "current_date - 29, current_date + 1"),
    )
)  # fmt: skip
# The mapping throughput's rollup has one more column (reviewed) than its reference.
COMPARED = {"mapping throughput, 30 days": "day, created, auto_approved, admin_approved, rejected, pending"}


# Data -------------------------------------------------------------------------------------------
def ensure_merchants(conn: psycopg.Connection[Any]) -> None:
    conn.execute(f"""
        with m as (
          insert into public.llm_mappings (merchant_name, merchant_key, company_name, ticker, category, status,
                                           admin_approved, source, model)
          select upper(k), k, initcap(k), ({sql_text_array(TICKERS)})[1 + g % {len(TICKERS)}],
                 ({sql_text_array(CATEGORIES)})[1 + g % {len(CATEGORIES)}], 'approved', true, 'catalog', 'bench'
          from generate_series(0, {MERCHANTS - 1}) as g,
               lateral (select {KEY_SQL.format(n='g', merchants=MERCHANTS)} as k) as key
          where not exists (select 1 from public.merchants where merchant_key = k)
          returning id, created_at, merchant_key)
        insert into public.merchants (merchant_key, display_name, mapping_id, mapping_created_at)
        select merchant_key, initcap(merchant_key), id, created_at from m
    """.encode())  # fmt: skip
    conn.execute(
        "insert into public.prices (ticker, as_of, price, source) select t, now(), 100, 'bench'"
        f" from unnest({sql_text_array(TICKERS)}) as t"
        " where not exists (select 1 from public.prices where ticker = t and source = 'bench')"
    )
    conn.commit()


def transaction_rows_sql(first: int, count: int) -> str:
    """Purchases spread over 730 days and the merchants; one in four invested (its buy lot is added by
    invest_rows_sql), the rest pending or mapped."""
    return f"""
    insert into public.transactions (id, user_id, txn_date, descriptor, merchant_key, amount, round_up, status,
                                     allocation_lot)
    overriding system value
    select g, {USER_ID_SQL.format(n=f"1 + g % {USERS}")}, current_date - ((g * 7919) % 730)::int, 'POS ' || k, k,
           ((g * 131) % 20000) / 100.0 + 1, ((g * 17) % 100) / 100.0,
           (array['invested', 'pending', 'mapped', 'pending'])[1 + g % 4],
           case when g % 4 = 0 and (g * 17) % 100 <> 0 then 1 else 0 end
    from generate_series({first}::bigint, {first + count - 1}) as g,
         lateral (select {KEY_SQL.format(n="(hashint8(g)::bigint + 2147483648)", merchants=MERCHANTS)} as k) as key
    """


def invest_rows_sql(first: int, count: int) -> str:
    """A buy lot for each invested purchase of the range with a round-up, at its ticker's bench price."""
    return f"""
    insert into public.allocations (transaction_id, txn_date, user_id, ticker, amount, shares, kind, lot, price_id,
                                    price, mapping_id, mapping_created_at)
    select t.id, t.txn_date, t.user_id, m.ticker, t.round_up, round(t.round_up / 100, 8), 'buy', 1, p.id, 100,
           m.id, m.created_at
    from public.transactions as t
    join public.merchants as mr on mr.merchant_key = t.merchant_key
    join public.llm_mappings as m on m.id = mr.mapping_id and m.created_at = mr.mapping_created_at
    join lateral (select id from public.prices where ticker = m.ticker and source = 'bench' order by id limit 1) as p
      on true
    where t.id between {first} and {first + count - 1} and t.allocation_lot = 1
    """


def mapping_rows_sql(first: int, count: int) -> str:
    """Resolver output over the last 90 days: 70% pending, 20% approved (half by an admin), 10% rejected."""
    return f"""
    insert into public.llm_mappings (created_at, merchant_name, merchant_key, company_name, category, confidence,
                                     status, admin_approved, reviewer, reviewed_at, source, model)
    select now() - make_interval(secs => (g * 7919) % (90 * 86400)), 'LONG TAIL ' || g, 'long tail ' || g,
           'Long Tail ' || g, ({sql_text_array(CATEGORIES)})[1 + g % {len(CATEGORIES)}], 0.5,
           case when g % 10 < 7 then 'pending' when g % 10 < 9 then 'approved' else 'rejected' end,
           g % 10 = 7, case when g % 10 in (7, 9) then (select id from public.profiles order by id limit 1) end,
           case when g % 10 in (7, 9) then now() - make_interval(secs => (g * 31) % (30 * 86400)) end, 'llm', 'bench'
    from generate_series({first}::bigint, {first + count - 1}) as g
    """


def count_of(conn: psycopg.Connection[Any], sql: str) -> int:
    row = conn.execute(sql).fetchone()
    conn.commit()
    return int(row[0]) if row and row[0] is not None else 0


def top_up(
    conn: psycopg.Connection[Any], what: str, have: int, want: int, steps: list[Callable[[int, int], str]]
) -> None:
    while have < want:
        count = min(CHUNK_ROWS, want - have)
        started = time.perf_counter()
        for step in steps:
            conn.execute(step(have + 1, count).encode())
        conn.commit()
        elapsed_s = time.perf_counter() - started
        have += count
        log(f"{what}: {have:,}/{want:,} ({count / elapsed_s:,.0f} rows/s)")


def generate(conn: psycopg.Connection[Any], transactions: int) -> None:
    ensure_users(conn, USERS)
    ensure_merchants(conn)
    have = count_of(conn, "select max(id) from public.transactions")
    top_up(conn, "transactions", have, transactions, [transaction_rows_sql, invest_rows_sql])
    # The rows carry explicit ids (so each chunk's buys find their purchases): later inserts must not reuse them.
    conn.execute(
        "select setval(pg_get_serial_sequence('public.transactions', 'id'), (select max(id) from public.transactions))"
    )
    mappings = count_of(conn, "select count(*) from public.llm_mappings where model = 'bench' and source = 'llm'")
    top_up(conn, "mappings", mappings, transactions // 4, [mapping_rows_sql])
    conn.execute("select private.compact_rollups()")
    conn.commit()
    conn.autocommit = True
    log("vacuum analyze")
    conn.execute("vacuum (analyze) public.transactions, public.allocations, public.llm_mappings")
    # Autovacuum empties the delta tables' pages after each compaction (threshold 1000 rows); here at once.
    conn.execute(
        "vacuum (analyze) private.transaction_rollups, private.transaction_rollup_deltas, private.allocation_rollups,"
        " private.allocation_rollup_deltas, private.mapping_rollups, private.mapping_rollup_deltas,"
        " private.category_rollups"
    )
    conn.autocommit = False


# 1. Charts --------------------------------------------------------------------------------------
def fetch_all(conn: psycopg.Connection[Any], sql: str) -> list[tuple[Any, ...]]:
    return conn.execute(sql.encode()).fetchall()


def bench_charts(conn: psycopg.Connection[Any], repeat: int, scan_repeat: int) -> list[dict[str, Any]]:
    results = []
    for name, rollup, scan in CHARTS:
        columns = COMPARED.get(name, "*")
        rollup_rows = conn.execute(f"select {columns} from ({rollup}) as r").fetchall()
        rollup_timing = timed(partial(fetch_all, conn, rollup), repeat)
        rollup_server = Timing([server_ms(conn, rollup) for _ in range(repeat)])
        scan_timing = timed(partial(fetch_all, conn, scan), scan_repeat)
        scan_rows = conn.execute(scan).fetchall()
        conn.commit()
        assert sorted(map(str, rollup_rows)) == sorted(map(str, scan_rows)), f"{name}: rollup != scan"
        results.append({
            "chart": name, "rows": len(rollup_rows), "rollup": rollup_timing, "rollup_server": rollup_server,
            "scan": scan_timing, "ratio": scan_timing.median / rollup_timing.median,
        })  # fmt: skip
        log(f"{name}: rollup {rollup_timing.median:.2f} ms (server {rollup_server.median:.2f} ms),"
            f" scan {scan_timing.median:,.0f} ms: {results[-1]['ratio']:,.0f}x")  # fmt: skip
    return results


# 2. Bulk insert ---------------------------------------------------------------------------------
ROLLUP_TRIGGERS = ("transactions_rollups_insert",)


def bulk_insert(conn: psycopg.Connection[Any], rows: int, rollups_on: bool) -> tuple[float, float]:
    """One INSERT ... SELECT of `rows` transactions (every other trigger on), rolled back.
    Returns (total ms, ms in the rollup trigger) from EXPLAIN ANALYZE."""
    first = count_of(conn, "select max(id) from public.transactions") + 1  # commits: before the trigger is off
    try:
        if not rollups_on:
            for trigger in ROLLUP_TRIGGERS:
                conn.execute(f"alter table public.transactions disable trigger {trigger}")
        row = conn.execute(
            f"explain (analyze, summary on, format json) {transaction_rows_sql(first, rows)}".encode()
        ).fetchone()
        assert row is not None
        plan = row[0][0]
        in_rollups = sum(t["Time"] for t in plan.get("Triggers", []) if t["Trigger Name"] in ROLLUP_TRIGGERS)
        return float(plan["Execution Time"]), float(in_rollups)
    finally:
        conn.rollback()


# Report -----------------------------------------------------------------------------------------
def report(by_size: dict[int, list[dict[str, Any]]], bulk: dict[str, Any]) -> str:
    sizes = sorted(by_size)
    head = " | ".join(f"{size:,}: rollup ms (server) / scan ms / ratio" for size in sizes)
    lines = [
        f"Load average when the report was written (the machine is shared): {os.getloadavg()[0]:.2f}.",
        "",
        f"| chart | {head} |",
        "|---|" + "---|" * len(sizes),
    ]
    for index, (name, _, _) in enumerate(CHARTS):
        cells = []
        for size in sizes:
            r = by_size[size][index]
            cells.append(f"{r['rollup'].median:.2f} ({r['rollup_server'].median:.2f}) / {r['scan'].median:,.0f}"
                         f" / **{r['ratio']:,.0f}x**")  # fmt: skip
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"Bulk INSERT ... SELECT of {bulk['rows']:,} transactions (every other trigger on): rollup trigger off"
        f" {bulk['off'].median:,.0f} ms, on {bulk['on'].median:,.0f} ms: throughput ratio"
        f" **{bulk['throughput_ratio']:.3f}x**; inside the same statements the trigger took"
        f" {bulk['trigger_ms'].median:,.0f} ms (**{bulk['in_run_ratio']:.3f}x** of the statement without it).",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.rollup_bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="2000000,20000000", help="transaction counts to measure at, ascending")
    parser.add_argument("--bulk-rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=30, help="rollup reads per chart")
    parser.add_argument("--scan-repeat", type=int, default=3, help="base-table aggregates per chart")
    args = parser.parse_args()
    settings = get_settings()
    by_size: dict[int, list[dict[str, Any]]] = {}
    with connect(settings.db_url) as conn:
        conn.execute("set statement_timeout = 0")
        conn.execute("set work_mem = '256MB'")  # the scans' hash aggregates; the rollup reads need none
        for size in (int(s) for s in args.sizes.split(",")):
            generate(conn, size)
            by_size[size] = bench_charts(conn, args.repeat, args.scan_repeat)
        bulk = bench_bulk(conn, args.bulk_rows, bulk_insert)
    text = report(by_size, bulk)
    print(text)
    out = settings.state_dir / "rollup_bench.json"
    out.write_text(json.dumps({"charts": by_size, "bulk": bulk}, default=lambda o: o.__dict__, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
