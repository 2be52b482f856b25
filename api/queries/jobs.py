from __future__ import annotations

from typing import Any

from api.db import Pool, as_owner
from kamioi.job_list import job_list_query


async def get_job(pool: Pool, job_id: int, *, timeout_s: float) -> dict[str, Any] | None:
    async with as_owner(pool, timeout_s=timeout_s) as cur:
        await cur.execute(
            "select id, kind, state, attempts, max_attempts, cancel_requested, last_error, created_at,"
            " started_at, finished_at from private.job_queue where id = %s",
            (job_id,),
        )
        return await cur.fetchone()


async def list_jobs(
    pool: Pool, state: str, kind: str | None, before_id: int | None, limit: int, *, timeout_s: float
) -> list[dict[str, Any]]:
    sql, params = job_list_query(state, kind, before_id, limit)
    async with as_owner(pool, timeout_s=timeout_s) as cur:
        await cur.execute(sql, params)
        return await cur.fetchall()
