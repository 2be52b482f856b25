"""What the jobs did, read back for an operator: an import's outcome (mapped, invested, its top
merchants), a user's holdings and the investing overview. `kamioi demo`
prints these; each is one query, so a command holds no SQL of its own."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import psycopg


@dataclass(frozen=True)
class ImportOutcome:
    transactions: int
    mapped: int  # mapped or invested
    pending: int
    merchants: int
    merchants_mapped: int
    round_up: Decimal
    invested: int  # transactions
    allocated: Decimal  # by the quote engine (allocations.invest), one lot per transaction
    swept: Decimal  # round-ups swept into broker orders (invest.sweep)


@dataclass(frozen=True)
class TopMerchant:
    name: str
    transactions: int
    ticker: str | None
    status: str  # its mapping's status, or unmapped
    tier: str | None


@dataclass(frozen=True)
class Holding:
    ticker: str
    shares: Decimal
    invested: Decimal
    lots: int


OUTCOME = """
with t as (
  select t.id, t.txn_date, t.status, t.merchant_key, t.round_up, t.sweep_id
  from public.transactions as t
  where t.import_job_id = %s
)
select (select count(*) from t),
       (select count(*) from t where t.status in ('mapped', 'invested')),
       (select count(*) from t where t.status = 'pending'),
       (select count(distinct t.merchant_key) from t),
       (select count(distinct t.merchant_key) from t where t.status in ('mapped', 'invested')),
       (select coalesce(sum(t.round_up), 0) from t),
       (select count(*) from t where t.status = 'invested'),
       (select coalesce(sum(a.amount), 0) from t join public.allocations as a
          on a.transaction_id = t.id and a.txn_date = t.txn_date),
       (select coalesce(sum(t.round_up), 0) from t where t.sweep_id is not null)
"""

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

HOLDINGS = """
select h.ticker, h.shares, h.invested, h.lots from public.holdings as h
where h.user_id = %s and h.lots > 0
order by h.invested desc, h.ticker
limit %s
"""


def import_outcome(conn: psycopg.Connection[Any], import_job_id: int) -> ImportOutcome:
    row = conn.execute(OUTCOME, (import_job_id,)).fetchone()
    assert row is not None
    return ImportOutcome(*row)


def unmapped_merchants(conn: psycopg.Connection[Any], import_job_id: int) -> int:
    """Merchants of the import's pending rows that have no mapping at all (mapping never ran for them)."""
    row = conn.execute(UNMAPPED, (import_job_id,)).fetchone()
    return int(row[0]) if row else 0


def top_merchants(conn: psycopg.Connection[Any], import_job_id: int, limit: int) -> list[TopMerchant]:
    """The import's most frequent merchants with the mapping in force (else the newest pending one)."""
    return [TopMerchant(*row) for row in conn.execute(TOP, (import_job_id, limit))]


def holdings(conn: psycopg.Connection[Any], user_id: str, limit: int) -> list[Holding]:
    """The user's open positions, largest first."""
    return [Holding(*row) for row in conn.execute(HOLDINGS, (user_id, limit))]


def investing_overview(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    """Broker orders and fills, the house position, what waits (public.investing_overview)."""
    row = conn.execute("select public.investing_overview()").fetchone()
    assert row is not None
    result: dict[str, Any] = row[0]
    return result


def investing_backlog(conn: psycopg.Connection[Any], fallback_ticker: str) -> list[tuple[str, int, Decimal]]:
    """Mapped round-ups not invested yet: (reason, transactions, round-up)."""
    return [(r, int(n), Decimal(a)) for r, n, a in conn.execute(
        "select * from public.investing_backlog(%s)", (fallback_ticker,)
    )]  # fmt: skip


def llm_calls(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("select count(*) from public.llm_calls").fetchone()
    return int(row[0]) if row else 0
