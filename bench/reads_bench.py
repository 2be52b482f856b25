"""Users' natural Data API reads vs their RPCs (issue 20, item 6), in one pgbench run.

Four PostgREST-shaped read transactions (`authenticator`, role `authenticated`, a random bench
user's claims, db_bench's preamble), mixed with equal weights in the same pgbench run so every read
sees the same load, latencies per script from pgbench's log:
- `supabase.from('transactions').select().order('txn_date', desc).order('id', desc).limit(50)`
  vs `supabase.rpc('list_my_transactions', {p_limit: 50})` (the same page);
- `supabase.from('holdings').select()` vs `supabase.rpc('list_my_holdings')`.
Each natural read's p95 is reported as a ratio to its RPC's p95 in that run (target <= 1.5x).

Before timing it checks that each natural read returns exactly its RPC's rows for a few users, and
prints EXPLAIN (ANALYZE, BUFFERS) of all four for one median user: the plan shape and the buffers a
read touches (docs/capacity.md uses them).

Data: admin_lists_bench's generator (`python -m bench.admin_lists_bench generate --users ...`), whose
users are 00000000-0000-4000-c000-<n>: transactions skewed over users and 720 days, a buy lot per
invested purchase, holdings recomputed from the lots. Point it at a throwaway stack:

    python -m bench.reads_bench --users 10000 --clients 16 --seconds 60
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg

from bench.admin_lists_bench import USER_ID_SQL
from bench.db_bench import PGBENCH, Timing, log
from kamioi.db import connect, postgrest_preamble
from kamioi.settings import get_settings

PAGE = 50
PREAMBLE = """\\set n random(1, {users})
BEGIN ISOLATION LEVEL READ COMMITTED READ ONLY;
SELECT set_config('search_path', 'public, extensions', true), set_config('role', 'authenticated', true), \
set_config('request.jwt.claims', json_build_object('sub', {user_sql}, \
'role', 'authenticated', 'user_role', 'user')::text, true), set_config('request.method', '{method}', true), \
set_config('request.path', '{path}', true);
"""
# name -> (PostgREST method, path, the read)
READS: dict[str, tuple[str, str, str]] = {
    "transactions, natural": (
        "GET", "/transactions", f"SELECT * FROM public.transactions ORDER BY txn_date DESC, id DESC LIMIT {PAGE}"),
    "list_my_transactions": (
        "POST", "/rpc/list_my_transactions", f"SELECT * FROM public.list_my_transactions(p_limit => {PAGE})"),
    "holdings, natural": ("GET", "/holdings", "SELECT * FROM public.holdings"),
    "list_my_holdings": ("POST", "/rpc/list_my_holdings", "SELECT * FROM public.list_my_holdings()"),
}
PAIRS = (("transactions, natural", "list_my_transactions"), ("holdings, natural", "list_my_holdings"))
# What each natural read must equal: the RPC's rows (holdings: the RPC keeps open positions only).
SAME_ROWS = {
    "transactions, natural": ("select id from ({natural}) as n", "select id from ({rpc}) as r"),
    "holdings, natural": ("select ticker from ({natural}) as n where lots > 0 order by 1",
                          "select ticker from ({rpc}) as r order by 1"),
}


def script(name: str, users: int) -> str:
    method, path, sql = READS[name]
    user_sql = USER_ID_SQL.format(n=":n").replace("::uuid", "")
    return PREAMBLE.format(users=users, user_sql=user_sql, method=method, path=path) + sql + ";\nCOMMIT;\n"


def user_id(conn: psycopg.Connection[Any], n: int) -> str:
    row = conn.execute(f"select {USER_ID_SQL.format(n=n)}::text").fetchone()
    assert row is not None
    return str(row[0])


def as_user(conn: psycopg.Connection[Any], uid: str, path: str) -> None:
    postgrest_preamble(conn, "authenticated", {"sub": uid, "user_role": "user"}, method="GET", path=path)


def check_same_rows(url: str, users: int, samples: int) -> None:
    """The natural reads answer exactly what the RPCs answer, for users spread over the range."""
    with connect(url) as conn:
        for n in sorted({1, users, *range(1, users + 1, max(1, users // samples))}):
            uid = user_id(conn, n)
            for natural, rpc in PAIRS:
                with conn.transaction(force_rollback=True):
                    as_user(conn, uid, "/check")
                    got_sql, want_sql = SAME_ROWS[natural]
                    got = conn.execute(got_sql.format(natural=READS[natural][2])).fetchall()
                    want = conn.execute(want_sql.format(rpc=READS[rpc][2])).fetchall()
                assert got == want, f"user {n}: {natural} returned {len(got)} rows, {rpc} {len(want)}"
    log(f"natural reads = their RPCs' rows for {samples}+ users")


def explain(url: str, users: int) -> dict[str, Any]:
    """EXPLAIN (ANALYZE, BUFFERS) of each read for the median-sized user (by transactions)."""
    with connect(url) as conn:
        per_user = conn.execute("""
            select user_id::text, count(*) from public.transactions
            where user_id::text like '00000000-0000-4000-c000-%' group by user_id order by 2, 1""").fetchall()
        row = per_user[len(per_user) // 2]
        uid, user_transactions = str(row[0]), int(row[1])
        conn.commit()
        plans: dict[str, Any] = {"user": uid, "user_transactions": user_transactions, "users": users}
        for name, (_, path, sql) in READS.items():
            with conn.transaction(force_rollback=True):
                as_user(conn, uid, path)
                conn.execute(sql).fetchall()  # warm, as a repeated read is
                plan = conn.execute(f"explain (analyze, buffers, format json) {sql}").fetchone()
            assert plan is not None
            plans[name] = plan[0][0]
    return plans


def walk(node: dict[str, Any]) -> list[dict[str, Any]]:
    return [node, *(n for child in node.get("Plans", []) for n in walk(child))]


def plan_summary(plan: dict[str, Any]) -> dict[str, Any]:
    nodes = walk(plan["Plan"])
    scans = [n for n in nodes if "Relation Name" in n]
    return {
        "ms": plan["Execution Time"],
        "planning_ms": plan["Planning Time"],
        "shared_hit": plan["Plan"].get("Shared Hit Blocks", 0),
        "shared_read": plan["Plan"].get("Shared Read Blocks", 0),
        "rows_scanned": sum(n.get("Actual Rows", 0) * n.get("Actual Loops", 1) for n in scans),
        "rows_removed": sum(n.get("Rows Removed by Filter", 0) for n in scans),
        "scans": sorted({f"{n['Node Type']} ({n.get('Index Name', n['Relation Name'])})" for n in scans}),
        "scan_count": len(scans),
        "root": nodes[1]["Node Type"] if len(nodes) > 1 else nodes[0]["Node Type"],
        "seq_scans": sum(1 for n in nodes if n["Node Type"] == "Seq Scan"),
        "sorts": sum(1 for n in nodes if n["Node Type"] == "Sort"),
        "index_conds": sorted({n["Index Cond"] for n in nodes if "Index Cond" in n}),
    }


def pgbench(url: str, users: int, clients: int, seconds: int) -> dict[str, Any]:
    """One pgbench run of all four reads, equal weights; per-script latencies from its log. Simple
    protocol: every request is planned (pgbench -M prepared would prepare the reads before the
    preamble has set the role, which the authenticator may not)."""
    parsed = urlsplit(url)
    names = list(READS)
    with tempfile.TemporaryDirectory() as tmp:
        args = []
        for i, name in enumerate(names):
            path = Path(tmp) / f"read{i}.sql"
            path.write_text(script(name, users))
            args += ["-f", f"{path}@1"]
        result = subprocess.run(
            [PGBENCH, "-h", parsed.hostname or "127.0.0.1", "-p", str(parsed.port or 5432), "-U", "authenticator",
             "-n", "-c", str(clients), "-j", "2", "-T", str(seconds), *args,
             "--log", "--log-prefix", str(Path(tmp) / "log"), parsed.path.lstrip("/") or "postgres"],
            env={"PGPASSWORD": parsed.password or "postgres", "PATH": "/usr/bin:/bin"},
            capture_output=True, text=True, check=True,
        )
        latencies: dict[str, list[float]] = {name: [] for name in names}
        for log_file in Path(tmp).glob("log*"):
            for line in log_file.read_text().splitlines():
                fields = line.split()  # client, transaction no, latency us, script no, epoch s, us
                latencies[names[int(fields[3])]].append(int(fields[2]) / 1000)
    tps = next(line for line in result.stdout.splitlines() if line.startswith("tps"))
    return {"clients": clients, "seconds": seconds, "tps_total": float(tps.split()[2]),
            "reads": {name: Timing(samples) for name, samples in latencies.items()}}


def data_sizes(url: str) -> dict[str, Any]:
    with connect(url) as conn:
        row = conn.execute("""
            select (select count(*) from public.transactions), (select count(*) from public.holdings),
                   (select count(distinct user_id) from public.transactions),
                   pg_size_pretty(pg_total_relation_size('public.holdings')),
                   (select pg_size_pretty(sum(pg_total_relation_size(inhrelid)))
                    from pg_inherits where inhparent = 'public.transactions'::regclass)""").fetchone()
    assert row is not None
    return {"transactions": row[0], "holdings": row[1], "users_with_transactions": row[2],
            "holdings_size": row[3], "transactions_size": row[4]}


def report(sizes: dict[str, Any], plans: dict[str, Any], runs: list[dict[str, Any]]) -> str:
    lines = [
        f"Load average when the report was written (the machine is shared): {os.getloadavg()[0]:.2f}.",
        f"Data: {sizes['transactions']:,} transactions ({sizes['transactions_size']}), {sizes['holdings']:,} holdings"
        f" ({sizes['holdings_size']}), {sizes['users_with_transactions']:,} users with purchases.",
        "",
        "| read | clients | txns | median ms | p95 ms | p95 / its RPC's p95 |",
        "|---|---|---|---|---|---|",
    ]
    for run in runs:
        reads: dict[str, Timing] = run["reads"]
        for natural, rpc in PAIRS:
            for name in (natural, rpc):
                t = reads[name]
                ratio = f"**{t.p95 / reads[rpc].p95:.2f}x**" if name == natural else "1.00x"
                lines.append(f"| {name} | {run['clients']} | {len(t.samples_ms):,} | {t.median:.2f}"
                             f" | {t.p95:.2f} | {ratio} |")
    lines += ["", f"EXPLAIN (ANALYZE, BUFFERS), user {plans['user']} ({plans['user_transactions']:,} purchases, the"
              " median user by purchases), warm:", "",
              "| read | planning ms | execution ms | shared hit / read | rows from scans | removed by filter | scans"
              " | plan |",
              "|---|---|---|---|---|---|---|---|"]
    for name in READS:
        s = plan_summary(plans[name])
        lines.append(f"| {name} | {s['planning_ms']:.2f} | {s['ms']:.2f} | {s['shared_hit']} / {s['shared_read']}"
                     f" | {s['rows_scanned']:,} | "
                     f"{s['rows_removed']:,} | {s['scan_count']} | {s['root']}; {', '.join(s['scans'][:2])}"
                     f"{' ...' if len(s['scans']) > 2 else ''}; seq scans {s['seq_scans']}, sorts {s['sorts']}; "
                     f"index cond {', '.join(s['index_conds'][:1])} |")
    return "\n".join(lines)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=10_000, help="the generator's --users")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--single", action="store_true", help="also a run with one client, first")
    parser.add_argument("--seconds", type=int, default=60, help="pgbench duration per run")
    parser.add_argument("--check-users", type=int, default=20, help="users whose rows are compared")
    parser.add_argument("--json", type=Path, help="also write the raw numbers and plans here")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    url = get_settings().superuser_db_url
    sizes = data_sizes(url)
    log(f"data: {sizes}")
    check_same_rows(url, args.users, args.check_users)
    plans = explain(url, args.users)
    runs = []
    for clients in ((1, args.clients) if args.single else (args.clients,)):
        log(f"pgbench -c {clients} -T {args.seconds}, four reads mixed")
        runs.append(pgbench(get_settings().db_url, args.users, clients, args.seconds))
    print(report(sizes, plans, runs))
    if args.json:
        args.json.write_text(json.dumps(
            {"sizes": sizes, "plans": plans,
             "runs": [{**r, "reads": {k: t.samples_ms for k, t in r["reads"].items()}} for r in runs]},
            default=str))


if __name__ == "__main__":
    main()
