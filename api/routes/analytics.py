"""Aggregates for the admin dashboard's charts: rollups (O(buckets)) read from the replica when it keeps up, cached."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response

from api.cache import Cached
from api.deps import ADMIN_ERRORS, CACHE_HEADER, READ_SOURCE, CurrentAdmin, ReadDb, Res
from api.models.analytics import (
    Activity,
    CategoryMonths,
    InvestingByTicker,
    MappingThroughput,
    TickerMonths,
    TopMerchants,
    Window,
)
from api.queries import analytics as queries

# Like the stats, only reads that reach the database count against the read limit (in compute).
# Charts over months of history live by TTL (5 minutes, then served stale while one request
# refreshes): they do not follow invalidation, which an import sends every second.
router = APIRouter(prefix="/v1/analytics", tags=["analytics"])
RESPONSES: dict[int | str, dict[str, Any]] = {**ADMIN_ERRORS, 200: {"headers": {**CACHE_HEADER, **READ_SOURCE}}}

Days = Annotated[int, Query(ge=1, le=366, description="Days back from today (UTC), today included.")]
Months = Annotated[int, Query(ge=1, le=36, description="Calendar months back, this one included.")]


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
    read: ReadDb,
    response: Response,
    months: Months = 12,
) -> CategoryMonths:
    window = _month_window(months)

    async def compute() -> object:
        await res.limits.check("reads", admin)
        rows = await read.run(
            lambda pool: queries.category_months(
                pool, window.start, window.end, timeout_s=res.settings.api_request_timeout_s
            )
        )
        return [{**row, "month": row["month"].isoformat()} for row in rows]

    cached = await res.cache.get("analytics_categories", f"{window.start}:{window.end}", compute, follows_changes=False)
    response.headers["X-Cache"] = cached.status
    return CategoryMonths.model_validate(_body(cached, window))


@router.get("/top-merchants", summary="Merchants with the most transactions", responses=RESPONSES)
async def top_merchants(
    res: Res,
    admin: CurrentAdmin,
    read: ReadDb,
    response: Response,
    days: Days = 30,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
) -> TopMerchants:
    window = _day_window(days)

    async def compute() -> object:
        await res.limits.check("reads", admin)
        return await read.run(
            lambda pool: queries.top_merchants(
                pool, window.start, window.end, limit, timeout_s=res.settings.api_request_timeout_s
            )
        )

    cached = await res.cache.get(
        "analytics_top_merchants", f"{window.start}:{window.end}:{limit}", compute, follows_changes=False
    )
    response.headers["X-Cache"] = cached.status
    return TopMerchants.model_validate(_body(cached, window))


@router.get(
    "/mapping-throughput",
    summary="Mappings created per day and where they stand (auto/admin approved, rejected, pending), reviews per day",
    responses=RESPONSES,
)
async def mapping_throughput(
    res: Res, admin: CurrentAdmin, read: ReadDb, response: Response, days: Days = 30
) -> MappingThroughput:
    window = _day_window(days)

    async def compute() -> object:
        await res.limits.check("reads", admin)
        rows = await read.run(
            lambda pool: queries.mapping_throughput(
                pool, window.start, window.end, timeout_s=res.settings.api_request_timeout_s
            )
        )
        return [{**row, "day": row["day"].isoformat()} for row in rows]

    cached = await res.cache.get(
        "analytics_mapping_throughput", f"{window.start}:{window.end}", compute, follows_changes=False
    )
    response.headers["X-Cache"] = cached.status
    return MappingThroughput.model_validate(_body(cached, window))


@router.get("/investing", summary="Amount invested, shares and open lots per ticker held", responses=RESPONSES)
async def investing(res: Res, admin: CurrentAdmin, read: ReadDb, response: Response) -> InvestingByTicker:
    async def compute() -> object:
        await res.limits.check("reads", admin)
        return await read.run(
            lambda pool: queries.investing_by_ticker(pool, timeout_s=res.settings.api_request_timeout_s)
        )

    # Exact stats like the dashboard's (O(tickers)): they follow invalidation.
    cached = await res.cache.get("analytics_investing", "", compute)
    response.headers["X-Cache"] = cached.status
    return InvestingByTicker.model_validate(
        {"computed_at": dt.datetime.fromtimestamp(cached.computed_at, dt.UTC), "rows": cached.value}
    )


@router.get(
    "/activity",
    summary="Per day or month: transactions, amount, round-ups and amount invested (by transaction date)",
    responses=RESPONSES,
)
async def activity(
    res: Res,
    admin: CurrentAdmin,
    read: ReadDb,
    response: Response,
    grain: Annotated[
        Literal["day", "month"], Query(description="day: the last `days`; month: the last `months`.")
    ] = "day",
    days: Days = 30,
    months: Months = 12,
) -> Activity:
    window = _day_window(days) if grain == "day" else _month_window(months)

    async def compute() -> object:
        await res.limits.check("reads", admin)
        rows = await read.run(
            lambda pool: queries.activity(
                pool, window.start, window.end, grain, timeout_s=res.settings.api_request_timeout_s
            )
        )
        return [{**row, "bucket": row["bucket"].isoformat()} for row in rows]

    cached = await res.cache.get(
        "analytics_activity", f"{grain}:{window.start}:{window.end}", compute, follows_changes=False
    )
    response.headers["X-Cache"] = cached.status
    return Activity.model_validate({**_body(cached, window), "grain": grain})


@router.get("/tickers", summary="Per month and ticker: open lots, amount and shares invested", responses=RESPONSES)
async def ticker_months(
    res: Res, admin: CurrentAdmin, read: ReadDb, response: Response, months: Months = 12
) -> TickerMonths:
    window = _month_window(months)

    async def compute() -> object:
        await res.limits.check("reads", admin)
        rows = await read.run(
            lambda pool: queries.ticker_months(
                pool, window.start, window.end, timeout_s=res.settings.api_request_timeout_s
            )
        )
        return [{**row, "month": row["month"].isoformat()} for row in rows]

    cached = await res.cache.get("analytics_tickers", f"{window.start}:{window.end}", compute, follows_changes=False)
    response.headers["X-Cache"] = cached.status
    return TickerMonths.model_validate(_body(cached, window))
