"""What the ledger invariant costs the allocation engine: one engine chunk (private.invest_chunk over
--rows mapped transactions) with the invariant's check (trigger `transactions_ledger_keys`, checked at
commit) run to its end (`set constraints all immediate`, what COMMIT does) vs the same chunk with that
trigger disabled, and the check's own time.

Each sample is one rolled-back transaction on identical data: --users users' purchases of one merchant
with an approved mapping and a fresh quote, generated in the transaction, then the chunk. Samples
alternate with / without (--pairs pairs), so drifting load hits both; prints each median and the ratio.
Nothing is left behind (every transaction rolls back, the trigger's disabling with it), but
ALTER TABLE ... DISABLE TRIGGER locks transactions while a sample runs: use a stack whose worker is
stopped, e.g.

    .venv/bin/kamioi paused -- .venv/bin/python -m bench.ledger_invariant_bench --rows 20000
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import psycopg

from bench.db_bench import USER_ID_SQL, ensure_users, log
from kamioi.db import connect
from kamioi.settings import get_settings

SETUP_SQL = """
with m as (
  insert into public.llm_mappings (merchant_name, merchant_key, ticker, status, admin_approved, category)
  values ('BENCH LEDGER', 'bench ledger', 'SBUX', 'approved', true, 'FOOD_AND_DRINK')
  returning id, created_at)
insert into public.merchants (merchant_key, display_name, mapping_id, mapping_created_at)
select 'bench ledger', 'bench ledger', id, created_at from m
on conflict (merchant_key) do update set mapping_id = excluded.mapping_id,
  mapping_created_at = excluded.mapping_created_at;
insert into public.prices (ticker, as_of, price, source) values ('SBUX', clock_timestamp(), 50, 'test');
"""


def rows_sql(rows: int, users: int) -> str:
    return f"""
    insert into public.transactions (user_id, txn_date, descriptor, merchant_key, amount, round_up, status)
    select {USER_ID_SQL.format(n=f"1 + g % {users}")}, current_date - (g % 500)::int, 'BENCH LEDGER',
           'bench ledger', 5 - (1 + g % 99) / 100.0, (1 + g % 99) / 100.0, 'mapped'
    from generate_series(1, {rows}) as g
    """


def sample(conn: psycopg.Connection[Any], rows: int, users: int, checked: bool) -> tuple[float, float]:
    """Seconds for one chunk of `rows` and for the checks at its end (COMMIT's work), in a rolled-back
    transaction; the dead rows it leaves are vacuumed away before the next sample."""
    with conn.transaction(force_rollback=True):
        if not checked:
            conn.execute("alter table public.transactions disable trigger transactions_ledger_keys")
        conn.execute(SETUP_SQL)
        after = conn.execute("select coalesce(max(id), 0) from public.transactions").fetchone()
        assert after is not None
        conn.execute(rows_sql(rows, users).encode())
        started = time.perf_counter()
        result = conn.execute(
            "select invested from private.invest_chunk(%s, %s, 'VTI', interval '1 day')", (after[0], rows)
        ).fetchone()
        chunked = time.perf_counter()
        conn.execute("set constraints all immediate")
        checked_at = time.perf_counter()
        assert result is not None and result[0] == rows, f"invested {result} of {rows}"
    conn.autocommit = True
    conn.execute("vacuum public.transactions, public.allocations, public.holdings")
    conn.autocommit = False
    return chunked - started, checked_at - chunked


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000, help="rows in the chunk (INVEST_CHUNK_ROWS default)")
    parser.add_argument("--users", type=int, default=1_000)
    parser.add_argument("--pairs", type=int, default=5)
    args = parser.parse_args()
    with connect(get_settings().db_url) as conn:
        ensure_users(conn, args.users)
        conn.commit()
        sample(conn, args.rows, args.users, True)  # warm-up: caches, plans
        checked: list[float] = []
        unchecked: list[float] = []
        checks: list[float] = []
        for n in range(args.pairs):
            for flag in (True, False) if n % 2 == 0 else (False, True):
                chunk_s, check_s = sample(conn, args.rows, args.users, flag)
                (checked if flag else unchecked).append(chunk_s + check_s)
                if flag:
                    checks.append(check_s)
            log(f"pair {n + 1}: checked {checked[-1]:.3f}s (check {checks[-1]:.3f}s), unchecked {unchecked[-1]:.3f}s")
    with_check, without, check = (statistics.median(x) for x in (checked, unchecked, checks))
    print(f"chunk of {args.rows:,} rows, median of {args.pairs}: with the invariant {with_check:.3f}s "
          f"(of which the check at commit {check:.3f}s, {check / with_check:.0%}), without {without:.3f}s, "
          f"ratio {with_check / without:.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
