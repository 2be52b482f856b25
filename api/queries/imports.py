"""Import jobs: created and cancelled through jobs.imports.service (shared with `kamioi import`), read under RLS."""

from __future__ import annotations

import datetime as dt
from typing import Any
from uuid import UUID

from api.auth import Principal
from api.db import Pool, as_caller
from api.problems import ProblemError
from jobs.imports import service
from jobs.imports.service import ImportJob


async def create(pool: Pool, caller: Principal, *, kind: str, file: service.StoredFile, force: bool) -> ImportJob:
    """Create the job and its queue entry (the jobs side's code path); a file imported before is a 409."""
    created_by = UUID(caller.user_id) if caller.user_id else None
    try:
        async with pool.connection() as conn:
            job = await service.arun(conn, service.create_call(kind, file, created_by=created_by, force=force))
    except service.DuplicateImport as error:
        see = f" (see /v1/imports/{error.existing_job_id})" if error.existing_job_id is not None else ""
        raise ProblemError(409, f"{error}{see}; send force=true to import it again") from error
    assert job is not None
    return job


async def get(pool: Pool, caller: Principal, import_id: int, *, timeout_s: float) -> dict[str, Any] | None:
    async with as_caller(pool, caller, read_only=True, timeout_s=timeout_s, path="/import_jobs") as cur:
        await cur.execute("select * from public.import_jobs where id = %s", (import_id,))
        return await cur.fetchone()


async def page(
    pool: Pool, caller: Principal, after: tuple[dt.datetime, int] | None, limit: int, *, timeout_s: float
) -> list[dict[str, Any]]:
    """Newest first, keyset on (created_at desc, id desc): the import_jobs_created_at_idx order."""
    async with as_caller(pool, caller, read_only=True, timeout_s=timeout_s, path="/import_jobs") as cur:
        if after is None:
            await cur.execute("select * from public.import_jobs order by created_at desc, id desc limit %s", (limit,))
        else:
            await cur.execute(
                "select * from public.import_jobs where (created_at, id) < (%s, %s)"
                " order by created_at desc, id desc limit %s",
                (*after, limit),
            )
        return await cur.fetchall()


async def cancel(pool: Pool, import_id: int) -> ImportJob:
    """Queued: cancelled now; running: stops after its chunk. Unknown ids raise NoDataFound (404)."""
    async with pool.connection() as conn:
        job = await service.arun(conn, service.cancel_call(import_id))
    assert job is not None
    return job


async def retry(pool: Pool, import_id: int, *, force: bool) -> ImportJob:
    """Failed or cancelled: queued again from its checkpoint. Unknown ids raise NoDataFound (404);
    any other state, or the same file imported again since (unless force), is a 409."""
    try:
        async with pool.connection() as conn:
            job = await service.arun(conn, service.retry_call(import_id, force=force))
    except service.NotRetryable as error:
        raise ProblemError(409, str(error)) from error
    except service.DuplicateImport as error:
        see = f" (see /v1/imports/{error.existing_job_id})" if error.existing_job_id is not None else ""
        raise ProblemError(409, f"{error}{see}; send force=true to retry anyway") from error
    assert job is not None
    return job


async def rejections(
    pool: Pool, caller: Principal, import_id: int, after: tuple[int, int] | None, limit: int, *, timeout_s: float
) -> list[dict[str, Any]]:
    """In file order, keyset on (line_number, id): a range scan of import_rejections_job_line_idx."""
    after_line, after_id = after if after is not None else (-1, 0)
    async with as_caller(pool, caller, read_only=True, timeout_s=timeout_s, path="/import_rejections") as cur:
        await cur.execute(
            "select id, line_number, column_name, reason, raw_line, created_at from public.import_rejections"
            " where import_job_id = %s and (line_number, id) > (%s, %s) order by line_number, id limit %s",
            (import_id, after_line, after_id, limit),
        )
        return await cur.fetchall()
