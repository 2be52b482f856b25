"""Investing benchmark: the allocation engine (`allocations.invest`) and the holdings read.

Default mode, allocating N mapped transactions (--rows, over --users users and --merchants merchants
with approved mappings, ~18 months of txn_date, generated in-database):
1. a bare INSERT ... SELECT of the allocation rows (same columns and values: the same mapped
   transactions joined to their merchant's approved mapping and the ticker's newest fresh price) into
   `bench.allocations_bare`, created `(like public.allocations including defaults including identity
   including indexes)`: identically indexed, no triggers, no foreign keys, no status update;
2. the real job from the same starting data: `allocations.invest` queued with jobs.queue.enqueue and
   run in this process by jobs.inline.InlineRun (the worker's code path, sample prices), asked to stop
   after --job-seconds (it finishes its chunk and hands the job back, as on SIGTERM);
3. every further --runs chunk size the same way, after the data is put back (allocations and holdings
   deleted, transactions mapped again, vacuum), each job run paired with its own bare run;
4. one chunk per --explain entry under auto_explain (analyze, buffers,
   nested statements, triggers), rolled back: where a chunk's time goes.
Exactly-once is checked after every job run (allocations = invested transactions with a round-up,
no transaction twice, holdings = the sum of allocations, and for a finished run no mapped row left
and the same count and totals as the bare rows).

--sweep mode (issue 21: round-ups to broker orders): for each of --sweep-sizes (ascending; the bench
transactions are topped up between sizes), all of them mapped and every user over the default $5
threshold, paired in one run:
1. a bare INSERT ... SELECT of one row per swept round-up (transaction, date, user, ticker, notional)
   into an unindexed-beyond-its-pk bench table, from the same mapped rows joined to the approved mapping;
2. the sweep job's code path (jobs.sweep.SweepRun in this process, the worker's) against the broker
   stand-in on a thread: the sweep statement, one notional order per ticker placed through alpaca-py,
   the trade events consumed and every fill split into allocations; timed to the last order filled
   and allocated. This process's RSS is sampled every 50 ms during the run (it is the worker).
Checked after each: every bench round-up invested, every order filled, users + house = each fill.
Sweep tables are emptied first: run it on a throwaway stack only.

--holdings mode (after the default mode, whose allocations give every user their holdings):
db_bench's transaction generator (bench/db_bench.py) topped up to --transactions, then db_bench's
pgbench harness as `authenticator` with the PostgREST preamble: a user's holdings read (RLS only, and
with the user filter PostgREST adds for `.eq('user_id', uid)`) vs db_bench's list_my_transactions
page 1, at -c 1 and -c --clients.

The data goes into the real tables of the stack it points at: use a throwaway stack, with its worker
stopped (`kamioi paused -- ...`), e.g.

    S="KAMIOI_STATE_DIR=/tmp/kamioi-bench KAMIOI_ENV_FILE=/tmp/kamioi-bench/.env KAMIOI_DB_PORT=56322"
    env $S .venv/bin/kamioi paused -- .venv/bin/python -m bench.invest_bench --rows 2000000
    env $S .venv/bin/kamioi paused -- .venv/bin/python -m bench.invest_bench --rows 2000000 --holdings
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import logging
import os
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import AsyncConnection

from bench import db_bench
from bench.db_bench import USER_ID_SQL, Timing, ensure_users, log
from jobs import queue
from jobs.inline import InlineRun
from jobs.invest import INVEST_CHUNK, INVEST_KIND
from jobs.sweep import SweepRun
from kamioi.broker import Broker
from kamioi.db import connect
from kamioi.prices.sample import SampleProvider, sample_prices
from kamioi.prices.store import HoldPolicy, record_answers
from kamioi.settings import Settings, get_settings
from local_stack.standins.broker_server import serve_in_thread

CHUNK_ROWS = 1_000_000  # rows per generating statement
MERCHANT_PREFIX = "invbench "
BENCH_USERS_LIKE = "00000000-0000-4000-b000-%"
DAYS = 540  # ~18 months of txn_date

BENCH_MAPPINGS = f"select id from public.llm_mappings where merchant_key like '{MERCHANT_PREFIX}%'"


# Set-up -----------------------------------------------------------------------------------------
@contextmanager
def niced(conn: psycopg.Connection[Any], niceness: int = 10) -> Iterator[None]:
    """Generation runs in the server backend, not in this client: renice that backend (the stack is local)."""
    row = conn.execute("select pg_backend_pid()").fetchone()
    assert row is not None
    conn.commit()
    try:
        os.setpriority(os.PRIO_PROCESS, int(row[0]), niceness)
    except OSError as error:
        log(f"could not renice backend {row[0]}: {error}")
    yield


def ensure_merchants(conn: psycopg.Connection[Any], keys: list[str], tickers: list[str | None]) -> None:
    """Approved mappings and the merchants pointing at them (skipped for keys that exist)."""
    conn.execute(
        """
        with wanted as (
          select k, t from unnest(%s::text[], %s::text[]) as u (k, t)
          where not exists (select 1 from public.merchants as mr where mr.merchant_key = u.k)
        ), m as (
          insert into public.llm_mappings (merchant_name, merchant_key, company_name, ticker, category,
                                           confidence, status, admin_approved, source, tier)
          select upper(k), k, initcap(k), t, 'GENERAL_MERCHANDISE', 0.99, 'approved', true, 'catalog', 'catalog'
          from wanted
          returning id, created_at, merchant_key
        )
        insert into public.merchants (merchant_key, display_name, mapping_id, mapping_created_at)
        select m.merchant_key, initcap(m.merchant_key), m.id, m.created_at from m
        """,
        (keys, tickers),
    )
    conn.commit()


def catalog(merchants: int) -> tuple[list[str], list[str | None]]:
    """merchants keys; every 10th is a private company (no ticker: the fallback fund)."""
    pool = sorted(t for t in sample_prices() if t != "VTI")
    keys = [f"{MERCHANT_PREFIX}{i:04d}" for i in range(1, merchants + 1)]
    return keys, [None if i % 10 == 0 else pool[i % len(pool)] for i in range(1, merchants + 1)]


def seed_prices(settings: Settings, tickers: list[str]) -> None:
    """Fresh sample quotes through the real store, so the bare insert and the job price alike."""

    async def run() -> None:
        policy = HoldPolicy(
            dt.timedelta(seconds=settings.price_max_age_s), settings.price_retry_base_s, settings.price_retry_max_s
        )
        async with await AsyncConnection.connect(settings.db_url, prepare_threshold=None, autocommit=True) as conn:
            await record_answers(conn, await SampleProvider().quotes(tickers), policy)

    asyncio.run(run())


def mapped_rows_sql(first: int, count: int, users: int) -> str:
    """count mapped purchases of the bench merchants, mapping set, users 1..users, over DAYS days."""
    return f"""
    with m as (
      select array_agg(merchant_key order by merchant_key) as keys,
             array_agg(mapping_id order by merchant_key) as ids, count(*)::int as n
      from public.merchants where merchant_key like '{MERCHANT_PREFIX}%'
    )
    insert into public.transactions (user_id, txn_date, descriptor, merchant_key, amount, round_up, status,
                                     mapping_id)
    select {USER_ID_SQL.format(n=f"1 + g % {users}")}, current_date - (((g / {users}) * 3 + g) % {DAYS})::int,
           'POS ' || upper(m.keys[x.i]), m.keys[x.i], a.amount, ceil(a.amount) - a.amount, 'mapped', m.ids[x.i]
    from m, generate_series({first}::bigint, {first + count - 1}) as g,
         lateral (select 1 + ((g / {users}) * 37 + (g % {users}) * 11) % m.n as i) as x,
         lateral (select ((g * 131) % 20000) / 100.0 + 1 as amount) as a
    """


def bench_transactions(conn: psycopg.Connection[Any]) -> tuple[int, int]:
    row = conn.execute(
        f"select count(*), count(*) filter (where status <> 'mapped') from public.transactions"
        f" where merchant_key like '{MERCHANT_PREFIX}%'"
    ).fetchone()
    assert row is not None
    conn.commit()
    return int(row[0]), int(row[1])


def vacuum(conn: psycopg.Connection[Any], *tables: str) -> None:
    conn.commit()
    conn.autocommit = True
    conn.execute(f"vacuum (analyze) {', '.join(tables)}")
    conn.autocommit = False


def put_back(conn: psycopg.Connection[Any]) -> None:
    """Undo an invest run of the bench merchants: their allocations and holdings go, transactions mapped again."""
    conn.execute("set statement_timeout = 0")
    conn.execute(f"delete from public.allocations where mapping_id in ({BENCH_MAPPINGS}) and kind = 'buy'")
    conn.execute("delete from public.holdings where user_id::text like %s", (BENCH_USERS_LIKE,))
    conn.execute(
        f"update public.transactions set status = 'mapped', allocation_lot = 0"
        f" where merchant_key like '{MERCHANT_PREFIX}%' and status <> 'mapped'"
    )
    conn.execute("delete from private.job_queue where kind = %s and state = 'queued'", (INVEST_KIND,))
    conn.execute("select private.compact_stats()")
    conn.commit()


def setup(settings: Settings, rows: int, users: int, merchants: int) -> None:
    with connect(settings.db_url) as conn:
        ensure_users(conn, users)
        keys, tickers = catalog(merchants)
        ensure_merchants(conn, keys, tickers)
        seed_prices(settings, sorted({t for t in tickers if t} | {settings.invest_fallback_ticker}))
        have, not_mapped = bench_transactions(conn)
        if not_mapped or have > rows:
            log(f"{not_mapped:,} of {have:,} bench transactions are not mapped: putting them back")
            put_back(conn)
        with niced(conn):
            db_bench.top_up(
                conn, "mapped transactions", have, rows, lambda first, count: mapped_rows_sql(first, count, users)
            )
        conn.execute("select private.compact_stats()")
        conn.commit()
        log("vacuum analyze")
        vacuum(conn, "public.transactions", "public.allocations", "public.holdings", "public.prices")


# 1. Bare INSERT ... SELECT ----------------------------------------------------------------------
BARE_TABLE = "bench.allocations_bare"
BARE_INSERT = f"""
insert into {BARE_TABLE} (transaction_id, txn_date, user_id, ticker, amount, shares, kind, lot, price_id, price,
                          mapping_id, mapping_created_at)
select t.id, t.txn_date, t.user_id, r.ticker, t.round_up, round(t.round_up / q.price, 8), 'buy',
       t.allocation_lot + 1, q.id, q.price, m.id, m.created_at
from public.transactions as t
join public.merchants as mr on mr.merchant_key = t.merchant_key
join public.llm_mappings as m on m.id = mr.mapping_id and m.created_at = mr.mapping_created_at and m.status = 'approved'
cross join lateral (select coalesce(m.ticker, nullif(%(fallback)s, '')) as ticker) as r
join (
  select distinct on (p.ticker) p.ticker, p.id, p.price from public.prices as p
  where p.as_of >= now() - make_interval(secs => %(max_age)s)
  order by p.ticker, p.as_of desc, p.id desc
) as q on q.ticker = r.ticker
where t.status = 'mapped' and t.round_up > 0 and t.merchant_key like '{MERCHANT_PREFIX}%%'
"""
TOTALS = "select count(*), coalesce(sum(amount), 0), coalesce(sum(shares), 0) from {table} {where}"


@dataclass
class Run:
    what: str
    rows: int
    seconds: float
    totals: list[str]

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds


def bare_insert(conn: psycopg.Connection[Any], settings: Settings) -> Run:
    conn.execute("create schema if not exists bench")
    conn.execute(f"drop table if exists {BARE_TABLE}")
    conn.execute(
        f"create table {BARE_TABLE} (like public.allocations including defaults including identity including indexes)"
    )
    conn.commit()
    started = time.perf_counter()
    cur = conn.execute(BARE_INSERT, {"fallback": settings.invest_fallback_ticker, "max_age": settings.price_max_age_s})
    conn.commit()
    seconds = time.perf_counter() - started
    row = conn.execute(TOTALS.format(table=BARE_TABLE, where="")).fetchone()
    assert row is not None and row[0] == cur.rowcount
    conn.execute(f"truncate {BARE_TABLE}")
    conn.commit()
    return Run("bare INSERT ... SELECT", cur.rowcount, seconds, [str(v) for v in row])


# 2. The job -------------------------------------------------------------------------------------
def run_job(
    conn: psycopg.Connection[Any], settings: Settings, chunk_rows: int, max_seconds: float | None = None
) -> tuple[float, str | None]:
    """Queue allocations.invest and run it here (InlineRun: the worker's code path). After max_seconds
    the run is asked to stop, which it does after its current chunk (handed back, as on SIGTERM)."""
    conn.execute("delete from private.job_queue where kind = %s and state = 'queued'", (INVEST_KIND,))
    job_id = queue.enqueue(conn, INVEST_KIND, {"chunk_rows": chunk_rows})
    conn.commit()
    inline = InlineRun(settings.db_url, job_id, get_settings())
    timer = threading.Timer(max_seconds, inline.request_stop) if max_seconds else None
    started = time.perf_counter()
    if timer:
        timer.start()
    try:
        state = inline.run()
    finally:
        if timer:
            timer.cancel()
    seconds = time.perf_counter() - started
    return seconds, state


def check_exactly_once(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    row = conn.execute(f"""
    select (select count(*) from public.allocations where mapping_id in ({BENCH_MAPPINGS}) and kind = 'buy'),
           (select count(*) from public.transactions where merchant_key like '{MERCHANT_PREFIX}%'
              and status = 'invested' and round_up > 0),
           (select count(*) from public.transactions where merchant_key like '{MERCHANT_PREFIX}%'
              and status = 'mapped'),
           (select count(*) from (select 1 from public.allocations where mapping_id in ({BENCH_MAPPINGS})
              group by transaction_id, txn_date having count(*) > 1) as d),
           (select sum(lots) from public.holdings)
             = (select count(*) filter (where kind = 'buy') - count(*) filter (where kind = 'reversal')
                from public.allocations),
           (select sum(shares) from public.holdings) = (select sum(shares) from public.allocations)
    """).fetchone()
    assert row is not None
    totals = conn.execute(
        TOTALS.format(table="public.allocations", where=f"where mapping_id in ({BENCH_MAPPINGS})")
    ).fetchone()
    assert totals is not None
    conn.commit()
    result = {
        "allocations": row[0],
        "invested_with_round_up": row[1],
        "mapped_left": row[2],
        "transactions_twice": row[3],
        "holdings_lots_match": row[4],
        "holdings_shares_match": row[5],
        "totals": [str(v) for v in totals],
    }
    result["ok"] = row[0] == row[1] and row[3] == 0 and bool(row[4]) and bool(row[5])
    return result


def job_run(
    conn: psycopg.Connection[Any], settings: Settings, chunk_rows: int, max_seconds: float
) -> tuple[Run, dict[str, Any]]:
    seconds, state = run_job(conn, settings, chunk_rows, max_seconds)
    assert state in ("succeeded", "queued"), state
    check = check_exactly_once(conn)
    check["state"] = state
    what = f"allocations.invest job, chunks of {chunk_rows:,}"
    if check["mapped_left"]:
        what += f" (stopped after {max_seconds:.0f} s)"
    return Run(what, int(check["allocations"]), seconds, check["totals"]), check


# 3. auto_explain of one chunk -------------------------------------------------------------------
AUTO_EXPLAIN = (
    "load 'auto_explain'",
    "set auto_explain.log_min_duration = 1",  # ms: skips the per-user realtime.send() calls
    "set auto_explain.log_analyze = on",
    "set auto_explain.log_buffers = on",
    "set auto_explain.log_timing = on",
    "set auto_explain.log_triggers = on",
    "set auto_explain.log_nested_statements = on",
    "set auto_explain.log_level = notice",
    "set client_min_messages = notice",
)
TRIGGER_LINE = re.compile(r"Trigger (?P<name>.+?): time=(?P<ms>[\d.]+) calls=(?P<calls>\d+)")


def explain_chunk(settings: Settings, rows: int) -> dict[str, Any]:
    """One invest_chunk of `rows` rows as the worker's role, plans of every statement >= 1 ms, rolled back."""
    notices: list[str] = []
    with psycopg.connect(settings.superuser_db_url, autocommit=True, prepare_threshold=None) as conn:
        conn.add_notice_handler(lambda diag: notices.append(diag.message_primary or ""))
        for statement in AUTO_EXPLAIN:
            conn.execute(statement)
        conn.execute("set role postgres")
        conn.execute("set statement_timeout = 0")
        with conn.transaction(force_rollback=True):
            started = time.perf_counter()
            params = (0, rows, settings.invest_fallback_ticker, settings.price_max_age_s)
            row = conn.execute(INVEST_CHUNK, params).fetchone()
            seconds = time.perf_counter() - started
    plans = [n for n in notices if n.startswith("duration:")]
    triggers = [
        {"trigger": m["name"], "ms": float(m["ms"]), "calls": int(m["calls"])}
        for plan in plans
        if "CTE bought" in plan  # the inner statement's plan carries the trigger lines
        for m in TRIGGER_LINE.finditer(plan)
    ]
    return {"rows": rows, "seconds": seconds, "result": list(row or ()), "plans": plans, "triggers": triggers}


# 4. Holdings read -------------------------------------------------------------------------------
PREAMBLE = """\\set n random(1, {users})
BEGIN ISOLATION LEVEL READ COMMITTED READ ONLY;
SELECT set_config('search_path', 'public, extensions', true), set_config('role', 'authenticated', true), \
set_config('request.jwt.claims', json_build_object('sub', '00000000-0000-4000-b000-' || lpad(to_hex(:n), 12, '0'), \
'role', 'authenticated', 'user_role', 'user')::text, true), set_config('request.method', 'GET', true), \
set_config('request.path', '/holdings', true);
"""
HOLDINGS_SCRIPTS = {
    # supabase.from('holdings').select(): no filter, RLS keeps the caller's rows
    "holdings, RLS only": PREAMBLE + "SELECT * FROM public.holdings;\nCOMMIT;\n",
    # the same filter written with auth.uid(): RLS keeps it behind the policy (not leakproof), no index
    "holdings, user_id = auth.uid()": PREAMBLE + "SELECT * FROM public.holdings WHERE user_id = auth.uid();\nCOMMIT;\n",
    # .select().eq('user_id', session.user.id): PostgREST sends the id as a value, the primary key is used
    "holdings, .eq('user_id', uid)": PREAMBLE + "SELECT * FROM public.holdings WHERE user_id = "
    "('00000000-0000-4000-b000-' || lpad(to_hex(:n), 12, '0'))::uuid;\nCOMMIT;\n",
    # supabase.rpc('list_my_holdings'): filters on (select auth.uid()) itself
    "list_my_holdings()": PREAMBLE + "SELECT * FROM public.list_my_holdings();\nCOMMIT;\n",
}


def pgbench(db_url: str, script: str | None, users: int, clients: int, seconds: int) -> dict[str, Any]:
    """db_bench's harness (authenticator, per-transaction log); script None: its list_my_transactions page 1."""
    return db_bench.bench_pgbench(db_url, users, clients, seconds, script or db_bench.PGBENCH_SCRIPT)


def holdings_data(settings: Settings, transactions: int, users: int) -> dict[str, Any]:
    """db_bench's transactions topped up to `transactions`; holdings are the default mode's (run it first)."""
    with connect(settings.db_url) as conn:
        ensure_users(conn, users)
        _, have = db_bench.current_totals(conn)
        started = time.perf_counter()
        with niced(conn):
            db_bench.top_up(
                conn,
                "transactions",
                have,
                transactions,
                lambda first, count: db_bench.transaction_rows_sql(first, count, users),
            )
        generated_s = time.perf_counter() - started
        conn.execute("select private.compact_stats()")
        conn.commit()
        log("vacuum analyze")
        vacuum(conn, "public.transactions", "public.allocations", "public.holdings")
        row = conn.execute("""
        select (select count(*) from public.transactions), (select count(*) from public.allocations),
               sum(n), count(*), min(n), percentile_disc(0.5) within group (order by n), max(n)
        from (select user_id, count(*) as n from public.holdings group by user_id) as per_user
        """).fetchone()
        assert row is not None
        conn.commit()
    if row[3] < users:
        log(f"only {row[3]:,} of {users:,} users have holdings: run the default mode (it invests) first")
    return {
        "generated_rows": max(0, transactions - have),
        "generated_s": generated_s,
        "transactions": row[0],
        "allocations": row[1],
        "holdings": row[2],
        "users_with_holdings": row[3],
        "holdings_per_user": [row[4], row[5], row[6]],
    }


def bench_holdings(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    data = holdings_data(settings, args.transactions, args.users)
    log(f"data: {data}")
    runs = []
    for clients in (1, args.clients):
        for name, script in [*HOLDINGS_SCRIPTS.items(), ("list_my_transactions page 1", None)]:
            log(f"pgbench -c {clients}: {name}")
            runs.append({"script": name, **pgbench(settings.db_url, script, args.users, clients, args.seconds)})
    return {"data": data, "pgbench": runs}


# Report -----------------------------------------------------------------------------------------
def exactly_once(bare: Run, job: Run, check: dict[str, Any]) -> str:
    if not check["ok"]:
        return "NO: " + json.dumps(check)
    if check["mapped_left"]:
        return f"yes ({check['mapped_left']:,} still mapped)"
    return "yes, same rows as bare" if job.totals == bare.totals else "yes, but totals differ from bare"


def invest_report(
    sizes: dict[str, int], pairs: list[tuple[Run, Run, dict[str, Any]]], explains: list[dict[str, Any]]
) -> str:
    lines = [
        f"Load average when the report was written (the machine is shared): {os.getloadavg()[0]:.2f}.",
        f"Sizes: {sizes['rows']:,} mapped transactions, {sizes['users']:,} users, {sizes['merchants']} merchants.",
        "",
        "| measurement | rows | seconds | rows/s | job / bare | exactly once |",
        "|---|---|---|---|---|---|",
    ]
    for bare, job, check in pairs:
        lines += [
            f"| {bare.what} | {bare.rows:,} | {bare.seconds:,.1f} | {bare.rows_per_s:,.0f} | | |",
            f"| {job.what} | {job.rows:,} | {job.seconds:,.1f} | {job.rows_per_s:,.0f} | "
            f"**{job.rows_per_s / bare.rows_per_s:.2f}x** | "
            f"{exactly_once(bare, job, check)} |",
        ]
    for explain in explains:
        lines += [
            "",
            f"One chunk of {explain['rows']:,} rows under auto_explain: "
            f"{explain['seconds'] * 1000:,.0f} ms (rolled back).",
            "",
            "| trigger | ms | calls |",
            "|---|---|---|",
        ]
        summed: dict[str, list[float]] = {}
        for t in explain["triggers"]:  # row triggers are reported per partition: one line per trigger
            name = re.sub(r" on transactions_\w+$", " on transactions (all partitions)", t["trigger"])
            acc = summed.setdefault(name, [0.0, 0])
            acc[0] += t["ms"]
            acc[1] += t["calls"]
        lines += [f"| {name} | {ms:,.1f} | {calls:,.0f} |" for name, (ms, calls) in summed.items()]
    return "\n".join(lines)


def holdings_report(result: dict[str, Any]) -> str:
    d = result["data"]
    lines = [
        f"Load average when the report was written (the machine is shared): {os.getloadavg()[0]:.2f}.",
        f"Data: {d['transactions']:,} transactions, {d['allocations']:,} allocations, {d['holdings']:,} holdings"
        f" of {d['users_with_holdings']:,} users (per user min/median/max {d['holdings_per_user']}).",
        f"Generated {d['generated_rows']:,} transactions in {d['generated_s']:,.0f} s.",
        "",
        "| read | clients | txns | tps | median ms | p95 ms | p95 / list_my_transactions p95 |",
        "|---|---|---|---|---|---|---|",
    ]
    by_clients: dict[int, float] = {
        r["clients"]: r["timing"].p95 for r in result["pgbench"] if r["script"] == "list_my_transactions page 1"
    }
    for r in result["pgbench"]:
        t: Timing = r["timing"]
        lines.append(
            f"| {r['script']} | {r['clients']} | {r['transactions']:,} | {r['tps']:,.0f} | "
            f"{t.median:.2f} | {t.p95:.2f} | {t.p95 / by_clients[r['clients']]:.2f}x |"
        )
    return "\n".join(lines)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=2_000_000, help="mapped transactions to allocate")
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--merchants", type=int, default=300)
    parser.add_argument("--chunk-rows", type=int, default=20_000, help="the job's chunk size (its default)")
    parser.add_argument("--second-chunk-rows", type=int, default=100_000, help="a second job run; 0: none")
    parser.add_argument(
        "--runs", type=parse_sizes, help="job runs as CHUNK_ROWS,...; default: --chunk-rows and --second-chunk-rows"
    )
    parser.add_argument(
        "--job-seconds",
        type=float,
        default=300.0,
        help="ask a job run to stop after this long (it ends its chunk first); 0: no limit",
    )
    parser.add_argument("--explain", type=parse_sizes, default=[20_000], help="auto_explain chunks of ROWS,...")
    parser.add_argument("--holdings", action="store_true", help="the holdings read instead (see above)")
    parser.add_argument("--sweep", action="store_true", help="the sweep to broker orders instead (see above)")
    parser.add_argument(
        "--sweep-sizes", type=parse_sizes, default=[250_000, 1_000_000], help="--sweep: round-ups per run, ROWS,..."
    )
    parser.add_argument("--transactions", type=int, default=20_000_000, help="--holdings: table size")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=int, default=20, help="pgbench duration")
    parser.add_argument("--json", type=Path, help="also write the raw numbers here")
    args = parser.parse_args()
    if args.runs is None:
        args.runs = [c for c in (args.chunk_rows, args.second_chunk_rows) if c]
    return args


# Sweep mode ----------------------------------------------------------------------------------------
SWEEP_BARE_TABLE = "bench.sweep_bare"
SWEEP_BARE_INSERT = f"""
insert into {SWEEP_BARE_TABLE} (transaction_id, txn_date, user_id, ticker, notional)
select t.id, t.txn_date, t.user_id, coalesce(a.ticker, nullif(%(fallback)s, '')), t.round_up
from public.transactions as t
join private.approved_mappings_in_force as a on a.merchant_key = t.merchant_key
where t.status = 'mapped' and t.round_up > 0 and t.merchant_key like '{MERCHANT_PREFIX}%%'
"""
SWEEP_TABLES = (
    # The event cursor stays: the stand-in keeps earlier runs' events, which the next run must not replay.
    "public.fill_allocations", "private.broker_events", "public.broker_orders",
    "private.sweep_positions", "private.sweep_carry", "private.sweep_members", "private.sweeps",
    "private.house_positions",
)  # fmt: skip


class RssSampler:
    """Peak resident set of this process while a block runs (from /proc/self/status, every 50 ms)."""

    def __init__(self) -> None:
        self.peak_mb = 0.0
        self._stop = threading.Event()

    @staticmethod
    def now_mb() -> float:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak_mb = max(self.peak_mb, self.now_mb())

    @contextmanager
    def sampling(self) -> Iterator[None]:
        self.peak_mb = self.now_mb()
        thread = threading.Thread(target=self._run, daemon=True)
        thread.start()
        try:
            yield
        finally:
            self._stop.set()
            thread.join()


def sweep_put_back(conn: psycopg.Connection[Any]) -> None:
    """Empty the sweep tables and map the bench transactions again (a throwaway stack only)."""
    conn.execute("set statement_timeout = 0")
    for table in SWEEP_TABLES:
        conn.execute(f"delete from {table}")
    conn.execute("delete from public.holdings where user_id::text like %s", (BENCH_USERS_LIKE,))
    conn.execute(
        f"update public.transactions set status = 'mapped', sweep_id = null"
        f" where merchant_key like '{MERCHANT_PREFIX}%' and status <> 'mapped'"
    )
    conn.execute("delete from private.job_queue where kind in ('invest.sweep', %s) and state = 'queued'",
                 (INVEST_KIND,))  # fmt: skip
    conn.commit()


def sweep_bare(conn: psycopg.Connection[Any], settings: Settings) -> Run:
    conn.execute("create schema if not exists bench")
    conn.execute(f"drop table if exists {SWEEP_BARE_TABLE}")
    conn.execute(
        f"create table {SWEEP_BARE_TABLE} (id bigint generated always as identity primary key,"
        " transaction_id bigint, txn_date date, user_id uuid, ticker text, notional numeric(14, 2))"
    )
    conn.commit()
    started = time.perf_counter()
    cur = conn.execute(SWEEP_BARE_INSERT, {"fallback": settings.invest_fallback_ticker})
    conn.commit()
    seconds = time.perf_counter() - started
    row = conn.execute(f"select count(*), coalesce(sum(notional), 0) from {SWEEP_BARE_TABLE}").fetchone()
    assert row is not None
    conn.execute(f"drop table {SWEEP_BARE_TABLE}")
    conn.commit()
    return Run("bare INSERT ... SELECT (one row per swept round-up)", cur.rowcount, seconds, [str(v) for v in row])


def sweep_check(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    row = conn.execute(
        f"""
        select (select count(*) from public.transactions
                where merchant_key like '{MERCHANT_PREFIX}%' and status = 'mapped'),
               (select count(*) from public.broker_orders where status <> 'filled'),
               (select count(*) from public.broker_orders as o
                where o.filled_qty <> (select coalesce(sum(a.shares), 0) from public.fill_allocations as a
                                       where a.broker_order_id = o.id)
                   or o.filled_amount <> (select coalesce(sum(a.amount), 0) from public.fill_allocations as a
                                          where a.broker_order_id = o.id)),
               (select count(*) from public.broker_orders),
               (select count(*) from public.fill_allocations)
        """
    ).fetchone()
    assert row is not None
    conn.commit()
    names = ("still_mapped", "orders_not_filled", "orders_split_inexactly", "orders", "allocations")
    return dict(zip(names, (int(v) for v in row), strict=True))


def sweep_run(conn: psycopg.Connection[Any], settings: Settings, broker_root: str) -> tuple[Run, float, dict[str, Any]]:
    bench_settings = settings.model_copy(update={"broker_base_url": broker_root, "broker_events_idle_s": 1.0})
    swept = conn.execute(
        f"select count(*) from public.transactions where status = 'mapped' and round_up > 0"
        f" and merchant_key like '{MERCHANT_PREFIX}%'"
    ).fetchone()
    assert swept is not None
    conn.commit()
    sampler = RssSampler()
    with psycopg.connect(settings.db_url, autocommit=True, prepare_threshold=None) as job_conn:
        job_conn.execute("set statement_timeout = 0")
        run = SweepRun(job_conn, Broker(bench_settings), bench_settings)
        with sampler.sampling():
            started = time.perf_counter()
            run.until_done()
            seconds = time.perf_counter() - started
    # The target is the money path (to the last fill allocated); settling the transactions and checking the
    # broker's positions follow it.
    after_fills = run.report.settle_s + run.report.positions_s
    check = {**sweep_check(conn), "settle_s": round(after_fills, 2), "report": run.report.line()}
    run_to_fills = Run("sweep -> orders -> fills -> allocations", int(swept[0]), seconds - after_fills, [])
    return run_to_fills, sampler.peak_mb, check


def bench_sweep(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    results: list[dict[str, Any]] = []
    with serve_in_thread() as broker_root:
        for rows in sorted(args.sweep_sizes):
            with connect(settings.db_url) as conn:
                sweep_put_back(conn)
            setup(settings, rows, args.users, args.merchants)
            with connect(settings.db_url) as conn:
                log(f"{rows:,}: bare INSERT ... SELECT")
                bare = sweep_bare(conn, settings)
                log(f"{bare.rows:,} rows in {bare.seconds:,.1f} s; the sweep")
                before_mb = RssSampler.now_mb()
                sweep, peak_mb, check = sweep_run(conn, settings, broker_root)
                log(f"{sweep.rows:,} round-ups in {sweep.seconds:,.1f} s; {check}")
            results.append({"rows": rows, "bare": asdict(bare), "sweep": asdict(sweep), "rss_before_mb": before_mb,
                            "rss_peak_mb": peak_mb, "check": check})  # fmt: skip
    return {"users": args.users, "merchants": args.merchants, "runs": results}


def sweep_report(result: dict[str, Any]) -> str:
    lines = [
        f"sweep bench: {result['users']:,} users, {result['merchants']:,} merchants (1 in 10 private: the fund)",
        "sweep s: to the last fill allocated; settle s: after it, the swept transactions marked invested and"
        " the broker's positions checked",
        f"{'round-ups':>10} {'bare s':>8} {'sweep s':>8} {'ratio':>6} {'settle s':>9} {'with settle':>11}"
        f" {'RSS before':>11} {'RSS peak':>9}  check",
    ]
    for r in result["runs"]:
        bare, sweep, settle_s = r["bare"], r["sweep"], r["check"]["settle_s"]
        lines.append(f"{sweep['rows']:>10,} {bare['seconds']:>8.1f} {sweep['seconds']:>8.1f}"
                     f" {bare['seconds'] / sweep['seconds']:>5.2f}x {settle_s:>9.1f}"
                     f" {bare['seconds'] / (sweep['seconds'] + settle_s):>10.2f}x {r['rss_before_mb']:>8.0f} MB"
                     f" {r['rss_peak_mb']:>6.0f} MB"
                     f"  {r['check']}")  # fmt: skip
    return "\n".join(lines)


def parse_sizes(text: str) -> list[int]:
    try:
        return [int(item) for item in text.split(",")]
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"not a list of row counts: {text!r}") from err


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    settings = get_settings()
    if settings.price_api_key:
        raise SystemExit("PRICE_API_KEY is set: this bench invests at the sample prices")
    raw: dict[str, Any]
    if args.sweep:
        raw = bench_sweep(args, settings)
        text = sweep_report(raw)
    elif args.holdings:
        result = bench_holdings(args, settings)
        text = holdings_report(result)
        raw = result
    else:
        setup(settings, args.rows, args.users, args.merchants)
        pairs: list[tuple[Run, Run, dict[str, Any]]] = []
        explains: list[dict[str, Any]] = []
        with connect(settings.db_url) as conn:
            for i, chunk_rows in enumerate(args.runs):
                if i:
                    log("putting the data back (allocations deleted, transactions mapped again)")
                    put_back(conn)
                    vacuum(conn, "public.transactions", "public.allocations", "public.holdings")
                if i == 0:
                    for rows in args.explain:
                        log(f"auto_explain of one chunk of {rows:,} rows (rolled back)")
                        explains.append(explain_chunk(settings, rows))
                    vacuum(conn, "public.transactions", "public.allocations")
                log("bare INSERT ... SELECT")
                bare = bare_insert(conn, settings)
                log(f"{bare.rows:,} rows in {bare.seconds:,.1f} s; the job, chunks of {chunk_rows:,}")
                job, check = job_run(conn, settings, chunk_rows, args.job_seconds)
                log(f"{job.rows:,} rows in {job.seconds:,.1f} s; exactly once: {check}")
                pairs.append((bare, job, check))
            conn.execute(f"drop table if exists {BARE_TABLE}")
            conn.commit()
        sizes = {"rows": args.rows, "users": args.users, "merchants": args.merchants}
        text = invest_report(sizes, pairs, explains)
        for explain in explains:
            print("\n\n".join(explain["plans"]))
        raw = {
            "sizes": sizes,
            "runs": [{"bare": asdict(b), "job": asdict(j), "check": c} for b, j, c in pairs],
            "explain": explains,
        }
    print(text)
    if args.json:
        args.json.write_text(
            json.dumps(raw, default=lambda v: v.samples_ms if isinstance(v, Timing) else str(v), indent=1)
        )


if __name__ == "__main__":
    main()
