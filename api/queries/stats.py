from __future__ import annotations

from typing import Any

from api.auth import Principal
from api.db import Pool, as_caller


async def dashboard_stats(pool: Pool, caller: Principal, *, timeout_s: float) -> dict[str, Any]:
    """public.dashboard_stats() as the caller, so its admin check and RLS decide, not the API alone."""
    async with as_caller(pool, caller, read_only=True, timeout_s=timeout_s, path="/rpc/dashboard_stats") as cur:
        await cur.execute("select public.dashboard_stats() as stats")
        row = await cur.fetchone()
    assert row is not None
    stats: dict[str, Any] = row["stats"]
    return stats


async def investing_overview(pool: Pool, caller: Principal, *, timeout_s: float) -> dict[str, Any]:
    """public.investing_overview() as the caller (its admin check decides)."""
    async with as_caller(pool, caller, read_only=True, timeout_s=timeout_s, path="/rpc/investing_overview") as cur:
        await cur.execute("select public.investing_overview() as overview")
        row = await cur.fetchone()
    assert row is not None
    overview: dict[str, Any] = row["overview"]
    return overview
