"""Aggregates for the admin dashboard's charts: read from the replica when there is one, cached."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from api.cache import Cached
from api.deps import ADMIN_ERRORS, CACHE_HEADER, CurrentAdmin, Res
from api.models.analytics import CategoryMonths, InvestingByTicker, MappingThroughput, TopMerchants, Window
from api.queries import analytics as queries

# Like the stats, only reads that reach the database count against the read limit (in compute).
# Charts over months of history live by TTL (5 minutes, then served stale while one request
# refreshes): they do not follow invalidation, which an import sends every second.
router = APIRouter(prefix="/v1/analytics", tags=["analytics"])
RESPONSES: dict[int | str, dict[str, Any]] = {**ADMIN_ERRORS, 200: {"headers": CACHE_HEADER}}

Days = Annotated[int, Query(ge=1, le=366, description="Days back from today (UTC), today included.")]


def _day_window(days: int) -> Window:
    end = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1)
    return Window(start=end - dt.timedelta(days=days), end=end)


def _month_window(months: int) -> Window:
    today = dt.datetime.now(dt.UTC).date()
    first_of_month = today.replace(day=1)
    end = (first_of_month + dt.timedelta(days=32)).replace(day=1)
    start_index = first_of_month.year * 12 + first_of_month.month - 1 - (months - 1)
    return Window(start=dt.date(start_index // 12, start_index % 12 + 1, 1), end=end)


def _body(cached: Cached, window: Window) -> dict[str, Any]:
    return {
        "computed_at": dt.datetime.fromtimestamp(cached.computed_at, dt.UTC),
        "window": window,
        "rows": cached.value,
    }


@router.get("/categories", summary="Transactions, amount and round-ups per month and category", responses=RESPONSES)
async def categories(
    res: Res,
    admin: CurrentAdmin,
    response: Response,
    months: Annotated[int, Query(ge=1, le=36, description="Calendar months back, this one included.")] = 12,
) -> CategoryMonths:
    window = _month_window(months)

    async def compute() -> object:
        await res.limits.check("reads", admin)
        rows = await queries.category_months(
            res.analytics_pool, window.start, window.end, timeout_s=res.settings.api_request_timeout_s
        )
        return [{**row, "month": row["month"].isoformat()} for row in rows]

    cached = await res.cache.get("analytics_categories", f"{window.start}:{window.end}", compute, follows_changes=False)
    response.headers["X-Cache"] = cached.status
    return CategoryMonths.model_validate(_body(cached, window))


@router.get("/top-merchants", summary="Merchants with the most transactions", responses=RESPONSES)
async def top_merchants(
    res: Res,
    admin: CurrentAdmin,
    response: Response,
    days: Days = 30,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
) -> TopMerchants:
    window = _day_window(days)

    async def compute() -> object:
        await res.limits.check("reads", admin)
        return await queries.top_merchants(
            res.analytics_pool, window.start, window.end, limit, timeout_s=res.settings.api_request_timeout_s
        )

    cached = await res.cache.get(
        "analytics_top_merchants", f"{window.start}:{window.end}:{limit}", compute, follows_changes=False
    )
    response.headers["X-Cache"] = cached.status
    return TopMerchants.model_validate(_body(cached, window))


@router.get(
    "/mapping-throughput",
    summary="Mappings created per day and where they stand (auto/admin approved, rejected, pending)",
    responses=RESPONSES,
)
async def mapping_throughput(res: Res, admin: CurrentAdmin, response: Response, days: Days = 30) -> MappingThroughput:
    window = _day_window(days)

    async def compute() -> object:
        await res.limits.check("reads", admin)
        rows = await queries.mapping_throughput(
            res.analytics_pool, window.start, window.end, timeout_s=res.settings.api_request_timeout_s
        )
        return [{**row, "day": row["day"].isoformat()} for row in rows]

    cached = await res.cache.get(
        "analytics_mapping_throughput", f"{window.start}:{window.end}", compute, follows_changes=False
    )
    response.headers["X-Cache"] = cached.status
    return MappingThroughput.model_validate(_body(cached, window))


@router.get("/investing", summary="Amount invested, shares and open lots per ticker held", responses=RESPONSES)
async def investing(res: Res, admin: CurrentAdmin, response: Response) -> InvestingByTicker:
    async def compute() -> object:
        await res.limits.check("reads", admin)
        return await queries.investing_by_ticker(res.analytics_pool, timeout_s=res.settings.api_request_timeout_s)

    # Exact stats like the dashboard's (O(tickers)): they follow invalidation.
    cached = await res.cache.get("analytics_investing", "", compute)
    response.headers["X-Cache"] = cached.status
    return InvestingByTicker.model_validate(
        {"computed_at": dt.datetime.fromtimestamp(cached.computed_at, dt.UTC), "rows": cached.value}
    )
