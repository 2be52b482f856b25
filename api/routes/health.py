"""Liveness (the process answers) and readiness (it can do useful work: database and cache)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter

from api.db import Pool
from api.deps import Res
from api.models.health import Liveness, Readiness, ReplicaStatus
from api.problems import ProblemError, problem_responses
from api.upstash import CacheUnavailable, Upstash

router = APIRouter(tags=["health"])

CHECK_TIMEOUT_S = 2.0


@router.get("/healthz", summary="Liveness: no dependencies checked")
async def healthz() -> Liveness:
    return Liveness()


@router.get(
    "/readyz",
    summary="Readiness: 200 when the database answers (cache or read replica away = degraded), 503 otherwise",
    responses=problem_responses(503),
)
async def readyz(res: Res) -> Readiness:
    database_ok, cache_ok, replica = await asyncio.gather(
        _database_ok(res.pool), _cache_ok(res.upstash), res.reads.check()
    )
    if not database_ok:
        raise ProblemError(503, f"database unavailable (cache {'ok' if cache_ok else 'unavailable'})")
    # A replica that is away or behind only moves reads to the primary: degraded, still serving.
    replica_status: ReplicaStatus = (
        "none" if replica is None
        else "unavailable" if not replica.up
        else "ok" if res.reads.choice() == "replica"
        else "lagging"
    )  # fmt: skip
    return Readiness(
        status="ready" if cache_ok and replica_status in ("ok", "none") else "degraded",
        database="ok",
        cache="ok" if cache_ok else "unavailable",
        replica=replica_status,
        replica_lag_s=replica.lag_s if replica is not None else None,
    )


async def _database_ok(pool: Pool) -> bool:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S), pool.connection(timeout=CHECK_TIMEOUT_S) as conn:
            await conn.execute("select 1")
    except Exception:
        return False
    return True


async def _cache_ok(upstash: Upstash) -> bool:
    try:
        await upstash.run(upstash.redis.ping)
    except CacheUnavailable:
        return False
    return True
