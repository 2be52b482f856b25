"""Database benchmark (issue 3): the four measurements, each as a ratio taken in the same run.

1. dashboard_stats() (totals + pending deltas) vs the seeds' COUNT(*) recomputation.
2. A keyset page of list_pending_mappings at depth D vs page 1, and vs the same page by OFFSET.
3. A user's first list_my_transactions page as a PostgREST-shaped transaction under RLS, pgbench -c 16.
4. A bulk INSERT ... SELECT of 1M mappings with the statement-level triggers (stats deltas and the
   review-queue broadcast) on vs off.

Data is generated in-database into the real tables of the configured stack, topped up to the requested
sizes (a re-run with the same sizes reuses it). It adds tens of millions of rows: point it at a
throwaway stack (KAMIOI_STATE_DIR / KAMIOI_ENV_FILE / KAMIOI_DB_PORT ...).

    python -m bench.db_bench --mappings 1000000 --transactions 1000000      # quick check
    python -m bench.db_bench                                                # 15M / 20M, the issue's sizes
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg

from kamioi.db import connect, postgrest_preamble
from kamioi.settings import get_settings

PGBENCH = "/usr/lib/postgresql/15/bin/pgbench"
CHUNK_ROWS = 1_000_000
BENCH_ADMIN_ID = "00000000-0000-4000-b000-000000000000"
# Bench users are 00000000-0000-4000-b000-<n as 12 hex digits>, n = 1..users.
USER_ID_SQL = "('00000000-0000-4000-b000-' || lpad(to_hex({n}), 12, '0'))::uuid"
BRANDS = (
    "STARBUCKS", "AMAZON MKTPL", "TARGET", "WALMART", "SHELL OIL", "CHIPOTLE", "NETFLIX", "UBER TRIP",
    "DELTA AIR", "HOME DEPOT", "COSTCO WHSE", "MCDONALDS", "SPOTIFY", "APPLE.COM BILL", "LYFT RIDE",
    "WHOLE FOODS", "CVS PHARMACY", "EXXONMOBIL", "BEST BUY", "DOORDASH",
)
CATEGORIES = (
    "FOOD_AND_DRINK", "GENERAL_MERCHANDISE", "TRANSPORTATION", "TRAVEL", "ENTERTAINMENT",
    "HOME_IMPROVEMENT", "MEDICAL", "PERSONAL_CARE", "GENERAL_SERVICES", "RENT_AND_UTILITIES",
)


@dataclass
class Timing:
    samples_ms: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.samples_ms)

    @property
    def p95(self) -> float:
        ordered = sorted(self.samples_ms)
        return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def timed(run: Callable[[], object], repeat: int) -> Timing:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        samples.append((time.perf_counter() - started) * 1000)
    return Timing(samples)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')} load {os.getloadavg()[0]:.1f}] {message}", flush=True)


# Data generation --------------------------------------------------------------------------------
def sql_text_array(values: tuple[str, ...]) -> str:
    return "array[" + ", ".join(f"'{v}'" for v in values) + "]"


def ensure_users(conn: psycopg.Connection[Any], users: int) -> None:
    conn.execute(
        "insert into auth.users (id, email) values (%s, 'bench-admin@bench.local') on conflict (id) do nothing",
        (BENCH_ADMIN_ID,),
    )
    conn.execute("update public.profiles set role = 'admin' where id = %s and role <> 'admin'", (BENCH_ADMIN_ID,))
    conn.execute(
        f"insert into auth.users (id, email) select {USER_ID_SQL.format(n='g')}, 'bench' || g || '@bench.local'"
        " from generate_series(1, %s) as g on conflict (id) do nothing",
        (users,),
    )
    conn.commit()


def current_totals(conn: psycopg.Connection[Any]) -> tuple[int, int]:
    row = conn.execute(
        "select (s -> 'mappings' ->> 'total')::bigint, (s -> 'transactions' ->> 'total')::bigint"
        " from public.dashboard_stats() as s"
    ).fetchone()
    assert row is not None
    conn.commit()
    return int(row[0]), int(row[1])


def mapping_rows_sql(first: int, count: int) -> str:
    """count synthetic mappings: 72% pending, 20% approved, 8% rejected; created over the last 90 days."""
    return f"""
    insert into public.llm_mappings (created_at, merchant_name, merchant_key, company_name, ticker, category,
                                     confidence, status, admin_approved, source, model)
    select now() - make_interval(secs => (g * 7919) % (90 * 86400)),
           b || ' #' || lpad((g % 99991)::text, 5, '0'), lower(b) || ' ' || (g % 99991), initcap(b),
           left(replace(b, ' ', ''), 4),
           ({sql_text_array(CATEGORIES)})[1 + g % {len(CATEGORIES)}],
           ((g * 37) % 10000) / 10000.0,
           case when g % 25 < 18 then 'pending' when g % 25 < 23 then 'approved' else 'rejected' end,
           g % 25 between 18 and 22, 'llm', 'bench'
    from generate_series({first}::bigint, {first + count - 1}) as g,
         lateral (select ({sql_text_array(BRANDS)})[1 + g % {len(BRANDS)}] as b) as brand
    """


def transaction_rows_sql(first: int, count: int, users: int) -> str:
    """count synthetic purchases for users 1..users, each user's spread evenly over the last 700 days."""
    return f"""
    insert into public.transactions (user_id, txn_date, descriptor, merchant_key, amount, round_up, status)
    select {USER_ID_SQL.format(n=f'1 + g % {users}')}, current_date - (((g / {users}) * 7 + g) % 700)::int,
           'POS ' || ({sql_text_array(BRANDS)})[1 + g % {len(BRANDS)}], 'bench',
           ((g * 131) % 20000) / 100.0 + 1, ((g * 17) % 100) / 100.0,
           (array['pending', 'mapped', 'invested', 'failed'])[1 + g % 4]
    from generate_series({first}::bigint, {first + count - 1}) as g
    """


def top_up(conn: psycopg.Connection[Any], what: str, have: int, want: int, rows_sql: Callable[[int, int], str]) -> None:
    while have < want:
        count = min(CHUNK_ROWS, want - have)
        started = time.perf_counter()
        conn.execute(rows_sql(have + 1, count).encode())
        conn.commit()
        have += count
        log(f"{what}: {have:,}/{want:,} ({count / (time.perf_counter() - started):,.0f} rows/s)")


def generate(conn: psycopg.Connection[Any], mappings: int, transactions: int, users: int) -> None:
    ensure_users(conn, users)
    have_mappings, have_transactions = current_totals(conn)
    top_up(conn, "mappings", have_mappings, mappings, mapping_rows_sql)
    top_up(conn, "transactions", have_transactions, transactions,
           lambda first, count: transaction_rows_sql(first, count, users))
    conn.execute("select private.compact_stats()")
    conn.commit()
    conn.autocommit = True
    log("vacuum analyze (sets hint bits and the visibility map, as autovacuum would have)")
    conn.execute("vacuum (analyze) public.llm_mappings, public.transactions, public.profiles")
    conn.autocommit = False


# 1. Stats ---------------------------------------------------------------------------------------
SEED_STATS_SQL = """
select (select count(*) from public.llm_mappings),
       (select count(*) from public.llm_mappings where admin_approved),
       (select count(*) from public.llm_mappings where status = 'pending')
"""


def as_admin(conn: psycopg.Connection[Any]) -> None:
    """Open a PostgREST-shaped transaction for the bench admin (the caller commits)."""
    postgrest_preamble(conn, "authenticated", {"sub": BENCH_ADMIN_ID, "user_role": "admin"})


def server_ms(conn: psycopg.Connection[Any], sql: str) -> float:
    """Execution time inside the server (EXPLAIN ANALYZE), without the client round trip."""
    plan = conn.execute(f"explain (analyze, timing off, summary on, format json) {sql}").fetchone()
    assert plan is not None
    return float(plan[0][0]["Execution Time"])


def bench_stats(conn: psycopg.Connection[Any], repeat: int) -> dict[str, Any]:
    as_admin(conn)
    rpc = timed(lambda: conn.execute("select public.dashboard_stats()").fetchone(), repeat)
    rpc_server = Timing([server_ms(conn, "select public.dashboard_stats()") for _ in range(repeat)])
    stats_row = conn.execute("select public.dashboard_stats()").fetchone()
    assert stats_row is not None
    stats = stats_row[0]
    conn.commit()
    seed = timed(lambda: conn.execute(SEED_STATS_SQL).fetchone(), 3)
    counted = conn.execute(SEED_STATS_SQL).fetchone()
    conn.commit()
    m = stats["mappings"]
    assert counted == (m["total"], m["admin_approved"], m["pending"]), (counted, m)
    return {"rpc": rpc, "rpc_server": rpc_server, "seed": seed, "ratio": seed.median / rpc.median}


# 2. Keyset vs OFFSET ----------------------------------------------------------------------------
PENDING_BY_OFFSET_SQL = """
select id, created_at from public.llm_mappings where status = 'pending'
order by created_at desc, id desc offset %s limit 51
"""


def bench_keyset(conn: psycopg.Connection[Any], depth: int, repeat: int) -> dict[str, Any]:
    as_admin(conn)
    pending = conn.execute("select (public.dashboard_stats() -> 'mappings' ->> 'pending')::bigint").fetchone()
    assert pending is not None
    depth = min(depth, int(pending[0]) - 51)
    offset_rows: list[tuple[Any, ...]] = []

    def by_offset() -> None:
        offset_rows[:] = conn.execute(PENDING_BY_OFFSET_SQL, (depth - 1,)).fetchall()

    offset = timed(by_offset, 2)
    cursor_id, cursor_at = offset_rows[0]
    page1 = timed(lambda: conn.execute("select * from public.list_pending_mappings()").fetchall(), repeat)
    deep_sql = "select id, created_at from public.list_pending_mappings(%s, %s)"
    deep = timed(lambda: conn.execute(deep_sql, (cursor_at, cursor_id)).fetchall(), repeat)
    assert conn.execute(deep_sql, (cursor_at, cursor_id)).fetchall() == offset_rows[1:]
    conn.commit()
    return {"depth": depth, "page1": page1, "deep": deep, "offset": offset,
            "deep_vs_page1": deep.median / page1.median, "offset_vs_deep": offset.median / deep.median}


# 3. pgbench -------------------------------------------------------------------------------------
PGBENCH_SCRIPT = """\\set n random(1, {users})
BEGIN ISOLATION LEVEL READ COMMITTED READ ONLY;
SELECT set_config('search_path', 'public, extensions', true), set_config('role', 'authenticated', true), \
set_config('request.jwt.claims', json_build_object('sub', '00000000-0000-4000-b000-' || lpad(to_hex(:n), 12, '0'), \
'role', 'authenticated', 'user_role', 'user')::text, true), set_config('request.method', 'POST', true), \
set_config('request.path', '/rpc/list_my_transactions', true);
SELECT * FROM public.list_my_transactions();
COMMIT;
"""


def bench_pgbench(
    db_url: str, users: int, clients: int, seconds: int, script_text: str = PGBENCH_SCRIPT
) -> dict[str, Any]:
    """Connect as `authenticator` like PostgREST (script_text: a pgbench script with {users});
    per-transaction latencies from pgbench's log."""
    url = urlsplit(db_url)
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "first_page.sql"
        script.write_text(script_text.format(users=users))
        result = subprocess.run(
            [PGBENCH, "-h", url.hostname or "127.0.0.1", "-p", str(url.port or 5432), "-U", "authenticator",
             "-n", "-c", str(clients), "-j", "2", "-T", str(seconds), "-f", str(script),
             "--log", "--log-prefix", str(Path(tmp) / "log"), url.path.lstrip("/") or "postgres"],
            env={"PGPASSWORD": url.password or "postgres", "PATH": "/usr/bin:/bin"},
            capture_output=True, text=True, check=True,
        )
        latencies_ms = [
            int(line.split()[2]) / 1000
            for log_file in Path(tmp).glob("log*")
            for line in log_file.read_text().splitlines()
        ]
    tps = next(line for line in result.stdout.splitlines() if line.startswith("tps"))
    timing = Timing(latencies_ms)
    return {"clients": clients, "seconds": seconds, "transactions": len(latencies_ms), "timing": timing,
            "tps": float(tps.split()[2])}


# 4. Bulk insert with triggers on vs off ---------------------------------------------------------
STATEMENT_TRIGGERS = ("llm_mappings_stats_insert", "llm_mappings_broadcast_insert")


def bulk_insert(conn: psycopg.Connection[Any], rows: int, triggers_on: bool) -> tuple[float, float]:
    """One INSERT ... SELECT of `rows` mappings, rolled back so every run sees the same table.
    Returns (total ms, ms spent in the statement-level triggers) from EXPLAIN ANALYZE."""
    try:
        if not triggers_on:
            for trigger in STATEMENT_TRIGGERS:
                conn.execute(f"alter table public.llm_mappings disable trigger {trigger}")
        row = conn.execute(
            f"explain (analyze, summary on, format json) {mapping_rows_sql(10**12, rows)}".encode()
        ).fetchone()
        assert row is not None
        plan = row[0][0]
        in_triggers = sum(t["Time"] for t in plan.get("Triggers", []) if t["Trigger Name"] in STATEMENT_TRIGGERS)
        return float(plan["Execution Time"]), float(in_triggers)
    finally:
        conn.rollback()


BulkInsert = Callable[[psycopg.Connection[Any], int, bool], tuple[float, float]]


def bench_bulk(conn: psycopg.Connection[Any], rows: int, insert: BulkInsert = bulk_insert) -> dict[str, Any]:
    """Separate runs with the triggers on and off (exposed to the machine's noise), and the share of
    the triggers inside each "on" run (the same statement, so no noise between the two numbers).
    `insert(conn, rows, triggers_on)` runs one and returns (total ms, ms in the triggers)."""
    order = (False, True, True, False)  # balanced, so warm-up and bloat hit both sides alike
    runs: dict[bool, list[float]] = {True: [], False: []}
    trigger_ms: list[float] = []
    for triggers_on in order:
        total, in_triggers = insert(conn, rows, triggers_on)
        runs[triggers_on].append(total)
        if triggers_on:
            trigger_ms.append(in_triggers)
        log(f"bulk insert {rows:,} rows, triggers {'on' if triggers_on else 'off'}: {total:,.0f} ms"
            f" ({in_triggers:,.0f} ms in the statement triggers)")
    on, off = Timing(runs[True]), Timing(runs[False])
    in_run = statistics.median((t - m) / t for t, m in zip(runs[True], trigger_ms, strict=True))
    return {"rows": rows, "on": on, "off": off, "trigger_ms": Timing(trigger_ms),
            "throughput_ratio": off.median / on.median, "in_run_ratio": in_run}


# Report -----------------------------------------------------------------------------------------
def report(sizes: dict[str, int], stats: dict[str, Any], keyset: dict[str, Any], pgb: list[dict[str, Any]],
           bulk: dict[str, Any]) -> str:
    lines = [
        f"Load average when the report was written (the machine is shared): {os.getloadavg()[0]:.2f}.",
        f"Sizes: {sizes['mappings']:,} mappings, {sizes['transactions']:,} transactions, {sizes['users']:,} users.",
        "",
        "| measurement | result | target |",
        "|---|---|---|",
        f"| dashboard_stats(), round trip | median {stats['rpc'].median:.3f} ms, p95 {stats['rpc'].p95:.3f} ms "
        "| < 1 ms |",
        f"| dashboard_stats(), in the server | median {stats['rpc_server'].median:.3f} ms, "
        f"p95 {stats['rpc_server'].p95:.3f} ms | |",
        f"| seeds' COUNT(*) recomputation | median {stats['seed'].median:,.1f} ms | |",
        f"| stats speed-up (round trip vs round trip) | {stats['ratio']:,.0f}x | >= 1000x |",
        f"| list_pending_mappings page 1 | median {keyset['page1'].median:.3f} ms | |",
        f"| keyset page at depth {keyset['depth']:,} | median {keyset['deep'].median:.3f} ms "
        f"({keyset['deep_vs_page1']:.2f}x page 1) | within 2x |",
        f"| same page by OFFSET | median {keyset['offset'].median:,.1f} ms "
        f"({keyset['offset_vs_deep']:,.0f}x keyset) | |",
        *(
            f"| first transactions page, pgbench -c {run['clients']} ({run['transactions']:,} txns, "
            f"{run['tps']:,.0f} tps) | p95 {run['timing'].p95:.2f} ms, median {run['timing'].median:.2f} ms "
            f"| {'p95 < 5 ms' if run['clients'] > 1 else ''} |"
            for run in pgb
        ),
        f"| INSERT ... SELECT {bulk['rows']:,} mappings, triggers off | median {bulk['off'].median / 1000:,.1f} s | |",
        f"| same, triggers on | median {bulk['on'].median / 1000:,.1f} s "
        f"({bulk['throughput_ratio']:.2f}x throughput, separate runs) | >= 0.9x |",
        f"| time in the statement triggers within the 'on' runs | median {bulk['trigger_ms'].median:,.0f} ms "
        f"({bulk['in_run_ratio']:.3f}x throughput, same statement) | >= 0.9x |",
    ]
    return "\n".join(lines)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mappings", type=int, default=15_000_000)
    parser.add_argument("--transactions", type=int, default=20_000_000)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--depth", type=int, default=10_000_000, help="keyset depth (capped at the pending count)")
    parser.add_argument("--bulk-rows", type=int, default=1_000_000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=int, default=20, help="pgbench duration")
    parser.add_argument("--repeat", type=int, default=200, help="samples per fast measurement")
    parser.add_argument("--json", type=Path, help="also write the raw numbers here")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    settings = get_settings()
    sizes = {"mappings": args.mappings, "transactions": args.transactions, "users": args.users}
    with connect(settings.db_url) as conn:
        generate(conn, args.mappings, args.transactions, args.users)
        log("1/4 stats")
        stats = bench_stats(conn, args.repeat)
        log("2/4 keyset vs OFFSET")
        keyset = bench_keyset(conn, args.depth, args.repeat)
        log("3/4 pgbench")
        pgb = [bench_pgbench(settings.db_url, args.users, clients, args.seconds) for clients in (1, args.clients)]
        log("4/4 bulk insert")
        bulk = bench_bulk(conn, args.bulk_rows)
    text = report(sizes, stats, keyset, pgb, bulk)
    print(text)
    if args.json:
        raw = {"sizes": sizes, "stats": stats, "keyset": keyset, "pgbench": pgb, "bulk": bulk}
        args.json.write_text(json.dumps(raw, default=lambda t: t.samples_ms if isinstance(t, Timing) else str(t)))


if __name__ == "__main__":
    main()
