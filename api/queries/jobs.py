from __future__ import annotations

from typing import Any

from api.db import Pool, as_owner


async def get_job(pool: Pool, job_id: int, *, timeout_s: float) -> dict[str, Any] | None:
    async with as_owner(pool, timeout_s=timeout_s) as cur:
        await cur.execute(
            "select id, kind, state, attempts, max_attempts, cancel_requested, last_error, created_at,"
            " started_at, finished_at from private.job_queue where id = %s",
            (job_id,),
        )
        return await cur.fetchone()
