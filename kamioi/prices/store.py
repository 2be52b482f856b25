"""What the allocation engine writes of a provider's answers: quotes into public.prices, and holds
(private.price_holds) for tickers it could not price, with exponential backoff before the next ask."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection

from kamioi.prices.base import PriceAnswer, PriceProblem, Quote

INSERT_QUOTES = """
insert into public.prices (ticker, as_of, price, source)
select * from unnest(%s::text[], %s::timestamptz[], %s::numeric[], %s::text[])
on conflict on constraint prices_one_quote_per_source do nothing
"""

HOLD = """
insert into private.price_holds as h (ticker, reason, detail, retry_at)
select u.ticker, u.reason, u.detail, now() + make_interval(secs => least(%(base_s)s, %(max_s)s))
from unnest(%(tickers)s::text[], %(reasons)s::text[], %(details)s::text[]) as u (ticker, reason, detail)
on conflict (ticker) do update
  set reason = excluded.reason, detail = excluded.detail, attempts = h.attempts + 1, last_tried_at = now(),
      retry_at = now() + make_interval(secs => least(%(base_s)s * 2 ^ least(h.attempts, 60), %(max_s)s))
"""

RELEASE = "delete from private.price_holds where ticker = any(%s::text[])"

NOT_DUE = "select ticker from private.price_holds where ticker = any(%s::text[]) and retry_at > now()"


@dataclass(frozen=True)
class HoldPolicy:
    max_age: dt.timedelta
    retry_base_s: float
    retry_max_s: float


async def tickers_due(conn: AsyncConnection[Any], tickers: Iterable[str]) -> list[str]:
    """The tickers not held back by a retry time still in the future."""
    asked = sorted(set(tickers))
    cur = await conn.execute(NOT_DUE, (asked,))
    waiting = {row[0] for row in await cur.fetchall()}
    return [ticker for ticker in asked if ticker not in waiting]


async def record_answers(
    conn: AsyncConnection[Any], answers: Mapping[str, PriceAnswer], policy: HoldPolicy
) -> set[str]:
    """Store quotes and holds in one transaction; returns the tickers that now have a fresh price."""
    now = dt.datetime.now(dt.UTC)
    quotes = [a for a in answers.values() if isinstance(a, Quote)]
    fresh = {q.ticker for q in quotes if now - q.as_of <= policy.max_age}
    problems = [a for a in answers.values() if isinstance(a, PriceProblem)] + [
        PriceProblem(q.ticker, "stale_quote", f"latest quote is from {q.as_of.isoformat()}")
        for q in quotes
        if q.ticker not in fresh
    ]
    async with conn.transaction():
        if quotes:
            await conn.execute(
                INSERT_QUOTES,
                ([q.ticker for q in quotes], [q.as_of for q in quotes], [q.price for q in quotes],
                 [q.source for q in quotes]),
            )  # fmt: skip
        if fresh:
            await conn.execute(RELEASE, (sorted(fresh),))
        if problems:
            await conn.execute(
                HOLD,
                {"tickers": [p.ticker for p in problems], "reasons": [p.reason for p in problems],
                 "details": [p.detail[:500] for p in problems], "base_s": policy.retry_base_s,
                 "max_s": policy.retry_max_s},
            )  # fmt: skip
    return fresh
