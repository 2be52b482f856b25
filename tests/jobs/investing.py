"""Data and checks for the investing tests: tagged merchants and transactions, and the ledger's
invariants recomputed from scratch (exactly once, no gaps, holdings = sum of allocations)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import psycopg

from jobs import queue
from jobs.correct_allocations import CORRECT_KIND
from jobs.inline import InlineRun
from jobs.invest import INVEST_KIND
from tests.jobs.support import jobs_settings

LISTED = ("SBUX", "AMZN", "WMT", "MCD", "NFLX")
# Every lot the dashboard and user totals count: the quote engine's allocations and the users' shares
# of broker fills (the house's leftovers are not a user's).
LOTS = (
    "(select user_id, ticker, kind, amount, shares from public.allocations"
    " union all select user_id, ticker, kind, amount, shares from public.fill_allocations"
    " where user_id is not null)"
)


def make_merchant(conn: psycopg.Connection[Any], key: str, ticker: str | None) -> int:
    """A merchant whose mapping in force is approved; returns the mapping id."""
    row = conn.execute(
        "with m as (insert into public.llm_mappings (merchant_name, merchant_key, company_name, ticker, status,"
        " admin_approved, category) values (upper(%s), %s, %s, %s, 'approved', true, 'FOOD_AND_DRINK')"
        " returning id, created_at)"
        " insert into public.merchants (merchant_key, display_name, mapping_id, mapping_created_at)"
        " select %s, %s, id, created_at from m returning mapping_id",
        (key, key, key, ticker, key, key),
    ).fetchone()
    assert row is not None
    return int(row[0])


def insert_transactions(
    conn: psycopg.Connection[Any],
    users: Sequence[str],
    keys: Sequence[str],
    rows: int,
    rng: random.Random,
    status: str = "mapped",
) -> None:
    """`rows` purchases over the users and merchant keys; one in ten is a whole-dollar amount (round-up 0).
    Mapped rows carry their merchant's mapping, as linking leaves them."""
    values = []
    for _ in range(rows):
        cents = 0 if rng.random() < 0.1 else rng.randint(1, 99)
        amount = rng.randint(1, 80) + (100 - cents) % 100 / 100
        values.append((rng.choice(users), rng.randint(0, 500), rng.choice(keys), amount, cents / 100))
    with conn.cursor() as cur:
        cur.executemany(
            "insert into public.transactions (user_id, txn_date, descriptor, merchant_key, amount, round_up, status,"
            " mapping_id) select %s, current_date - %s, upper(%s), %s, %s, %s, %s,"
            " case when %s = 'mapped' then (select mapping_id from public.merchants where merchant_key = %s) end",
            [(u, d, k, k, a, r, status, status, k) for u, d, k, a, r in values],
        )


def run_invest(db_url: str, conn: psycopg.Connection[Any], chunk_rows: int = 500) -> str | None:
    job = queue.enqueue(conn, INVEST_KIND, {"chunk_rows": chunk_rows})
    return InlineRun(db_url, job, jobs_settings()).run()


def run_queued_corrections(db_url: str, conn: psycopg.Connection[Any]) -> int:
    """Run the queued correction job here (one serves every requested mapping); returns how many ran."""
    rows = conn.execute(
        "select id from private.job_queue where kind = %s and state = 'queued' order by id", (CORRECT_KIND,)
    ).fetchall()
    for (job_id,) in rows:
        assert InlineRun(db_url, job_id, jobs_settings()).run() == "succeeded"
    return len(rows)


def ledger_problems(conn: psycopg.Connection[Any], key_prefix: str) -> list[tuple[Any, ...]]:
    """Transactions of these merchants whose allocations break the rules: an invested round-up has
    exactly one open lot of its amount (lots numbered 1..n, at most one buy and one reversal each); any
    other transaction has none open."""
    return conn.execute(
        """
        select t.id, t.status, t.round_up, t.allocation_lot, coalesce(a.open_lots, 0), coalesce(a.open_amount, 0),
               coalesce(a.buys, 0), coalesce(a.max_lot, 0)
        from public.transactions as t
        left join lateral (
          select sum(case kind when 'buy' then 1 else -1 end) as open_lots, sum(amount) as open_amount,
                 count(*) filter (where kind = 'buy') as buys, max(lot) as max_lot
          from public.allocations as al where al.transaction_id = t.id and al.txn_date = t.txn_date
        ) as a on true
        where t.merchant_key like %s || '%%'
          and not (
            case when t.status = 'invested' and t.round_up > 0
                 then a.open_lots = 1 and a.open_amount = t.round_up
                 else coalesce(a.open_lots, 0) = 0 end
            and coalesce(a.buys, 0) = t.allocation_lot and coalesce(a.max_lot, 0) = t.allocation_lot)
        """,
        (key_prefix,),
    ).fetchall()


def holdings_drift(conn: psycopg.Connection[Any], users: Sequence[str]) -> list[tuple[Any, ...]]:
    """(user, ticker) rows where public.holdings differs from the sum of the user's allocations."""
    return conn.execute(
        """
        with recomputed as (
          select user_id, ticker, sum(shares) as shares, sum(amount) as invested,
                 sum(case kind when 'buy' then 1 else -1 end)::int as lots
          from public.allocations where user_id = any(%s::uuid[]) group by user_id, ticker
        )
        select coalesce(h.user_id, r.user_id), coalesce(h.ticker, r.ticker), h.shares, r.shares, h.lots, r.lots
        from (select * from public.holdings where user_id = any(%s::uuid[])) as h
        full join recomputed as r on r.user_id = h.user_id and r.ticker = h.ticker
        where h.shares is distinct from r.shares or h.invested is distinct from r.invested
           or h.lots is distinct from r.lots
        """,
        (list(users), list(users)),
    ).fetchall()


def dashboard_vs_recount(conn: psycopg.Connection[Any]) -> tuple[tuple[Decimal, int], tuple[Decimal, int]]:
    """(invested, open lots) from dashboard_stats() and from a full recount of allocations and fills."""
    row = conn.execute(
        "select (s ->> 'invested')::numeric, (s ->> 'open_lots')::int from"
        " (select public.dashboard_stats() -> 'investing' as s) as d"
    ).fetchone()
    recount = conn.execute(
        "select coalesce(sum(amount), 0), coalesce(sum(lots), 0)::int from ("
        " select ticker, sum(amount) as amount, sum(case kind when 'buy' then 1 else -1 end) as lots"
        f" from {LOTS} as l group by ticker) as t where lots > 0"
    ).fetchone()
    assert row is not None and recount is not None
    return (row[0], row[1]), (recount[0], recount[1])
