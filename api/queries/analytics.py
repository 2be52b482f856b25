"""Admin-wide aggregates (private.analytics_* functions over the chart rollups), run as the pool's role on the
pool the read routing chose (api.read_routing)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from api.db import Pool, as_owner


async def _rows(pool: Pool, sql: str, params: tuple[Any, ...], *, timeout_s: float) -> list[dict[str, Any]]:
    async with as_owner(pool, timeout_s=timeout_s) as cur:
        await cur.execute(sql, params)
        return await cur.fetchall()


async def category_months(pool: Pool, start: dt.date, end: dt.date, *, timeout_s: float) -> list[dict[str, Any]]:
    return await _rows(
        pool,
        "select month, category, transactions, amount::float8 as amount, round_up::float8 as round_up"
        " from private.analytics_category_months(%s, %s)",
        (start, end),
        timeout_s=timeout_s,
    )


async def top_merchants(
    pool: Pool, start: dt.date, end: dt.date, limit: int, *, timeout_s: float
) -> list[dict[str, Any]]:
    return await _rows(
        pool,
        "select merchant_key, display_name, company_name, ticker, category, transactions,"
        " amount::float8 as amount, round_up::float8 as round_up"
        " from private.analytics_top_merchants(%s, %s, %s)",
        (start, end, limit),
        timeout_s=timeout_s,
    )


async def mapping_throughput(pool: Pool, start: dt.date, end: dt.date, *, timeout_s: float) -> list[dict[str, Any]]:
    return await _rows(
        pool,
        "select day, created, auto_approved, admin_approved, rejected, pending, reviewed"
        " from private.analytics_mapping_throughput(%s, %s)",
        (start, end),
        timeout_s=timeout_s,
    )


async def investing_by_ticker(pool: Pool, *, timeout_s: float) -> list[dict[str, Any]]:
    return await _rows(
        pool,
        "select ticker, amount::float8 as amount, shares::float8 as shares, lots"
        " from private.analytics_investing_by_ticker()",
        (),
        timeout_s=timeout_s,
    )


async def activity(pool: Pool, start: dt.date, end: dt.date, grain: str, *, timeout_s: float) -> list[dict[str, Any]]:
    return await _rows(
        pool,
        "select bucket, transactions, amount::float8 as amount, round_up::float8 as round_up,"
        " invested::float8 as invested from private.analytics_activity(%s, %s, %s)",
        (start, end, grain),
        timeout_s=timeout_s,
    )


async def ticker_months(pool: Pool, start: dt.date, end: dt.date, *, timeout_s: float) -> list[dict[str, Any]]:
    return await _rows(
        pool,
        "select month, ticker, lots, amount::float8 as amount, shares::float8 as shares"
        " from private.analytics_ticker_months(%s, %s)",
        (start, end),
        timeout_s=timeout_s,
    )
