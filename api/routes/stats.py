"""Dashboard totals, cached in Upstash for API_STATS_TTL_S (5 minutes)."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Response

from api.deps import ADMIN_ERRORS, CACHE_HEADER, CurrentAdmin, Res
from api.models.stats import DashboardStats, InvestingOverview
from api.queries import stats as queries

router = APIRouter(prefix="/v1/stats", tags=["stats"])


@router.get(
    "/dashboard",
    summary="Dashboard totals (mappings by status/category, transactions, round-ups, investing)",
    responses={**ADMIN_ERRORS, 200: {"headers": CACHE_HEADER}},
)
async def dashboard(res: Res, admin: CurrentAdmin, response: Response) -> DashboardStats:
    timeout_s = res.settings.api_request_timeout_s

    async def compute() -> object:
        # Only reads that reach the database count against the read limit; hits are cheaper than the check.
        await res.limits.check("reads", admin)
        return await queries.dashboard_stats(res.pool, admin, timeout_s=timeout_s)

    cached = await res.cache.get("dashboard_stats", "", compute)
    response.headers["X-Cache"] = cached.status
    return DashboardStats.model_validate(
        {**cached.value, "computed_at": dt.datetime.fromtimestamp(cached.computed_at, dt.UTC)}
    )


@router.get(
    "/investing",
    summary="Broker orders and fills, the house, what waits for a threshold, ticker fallbacks, position reconciliation",
    responses=ADMIN_ERRORS,
)
async def investing(res: Res, admin: CurrentAdmin) -> InvestingOverview:
    # Live, not cached: an admin watching a sweep wants its orders as they fill.
    await res.limits.check("reads", admin)
    overview = await queries.investing_overview(res.pool, admin, timeout_s=res.settings.api_request_timeout_s)
    return InvestingOverview.model_validate(overview)
