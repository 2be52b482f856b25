"""Import jobs: created and cancelled through jobs.imports.service (shared with `kamioi import`), read under RLS."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any
from uuid import UUID

from api.auth import Principal
from api.db import Pool, as_caller
from api.problems import ProblemError
from jobs.imports import service


async def create(
    pool: Pool, caller: Principal, *, kind: str, file_path: Path, sha256: str, size: int, force: bool
) -> dict[str, Any]:
    """Create the job and its queue entry (the jobs side's code path); a file imported before is a 409."""
    try:
        async with pool.connection() as conn:
            job = await service.acreate_import(
                conn,
                kind=kind,
                file_path=file_path,
                created_by=UUID(caller.user_id) if caller.user_id else None,
                force=force,
                sha256=sha256,
                size=size,
            )
    except service.DuplicateImport as error:
        see = f" (see /v1/imports/{error.existing_job_id})" if error.existing_job_id is not None else ""
        raise ProblemError(409, f"{error}{see}; send force=true to import it again") from error
    return dataclasses.asdict(job)


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


async def cancel(pool: Pool, import_id: int) -> dict[str, Any]:
    """Queued: cancelled now; running: stops after its chunk. Unknown ids raise NoDataFound (404)."""
    async with pool.connection() as conn:
        return dataclasses.asdict(await service.acancel_import(conn, import_id))


async def retry(pool: Pool, import_id: int, *, force: bool) -> dict[str, Any]:
    """Failed or cancelled: queued again from its checkpoint. Unknown ids raise NoDataFound (404);
    any other state, or the same file imported again since (unless force), is a 409."""
    try:
        async with pool.connection() as conn:
            job = await service.aretry_import(conn, import_id, force=force)
    except service.NotRetryable as error:
        raise ProblemError(409, str(error)) from error
    except service.DuplicateImport as error:
        see = f" (see /v1/imports/{error.existing_job_id})" if error.existing_job_id is not None else ""
        raise ProblemError(409, f"{error}{see}; send force=true to retry anyway") from error
    return dataclasses.asdict(job)


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
