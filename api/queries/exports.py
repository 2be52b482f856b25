from __future__ import annotations

from typing import Any
from uuid import UUID

from psycopg.types.json import Jsonb

from api.auth import Principal
from api.db import Pool, as_caller, as_owner

COLUMNS = (
    "id, list, filters, sort, state, rows_written, bytes_written, file_name, file_sha256, download_url,"
    " attempts, error, cancel_requested, created_at, started_at, finished_at, storage_bucket, storage_path"
)


async def create(
    pool: Pool, caller: Principal, *, list_name: str, filters: dict[str, Any], sort: str | None, timeout_s: float
) -> dict[str, Any]:
    """Validate the filters the way the list does and queue the export (the API has checked admin)."""
    requested_by = UUID(caller.user_id) if caller.user_id else None
    async with as_owner(pool, timeout_s=timeout_s, read_only=False) as cur:
        await cur.execute(
            f"select {COLUMNS} from private.create_export_job(%s, %s, %s, %s)",
            (list_name, Jsonb(filters), sort, requested_by),
        )
        row = await cur.fetchone()
    assert row is not None
    return row


async def get(pool: Pool, caller: Principal, export_id: int, *, timeout_s: float) -> dict[str, Any] | None:
    """The export as the caller may read it: an admin reads only their own (RLS), the secret key all."""
    async with as_caller(pool, caller, read_only=True, timeout_s=timeout_s, path="/export_jobs") as cur:
        await cur.execute(f"select {COLUMNS} from public.export_jobs where id = %s", (export_id,))
        return await cur.fetchone()


async def cancel(pool: Pool, export_id: int, *, timeout_s: float) -> dict[str, Any]:
    """Queued: cancelled now; running: stops after its chunk. Unknown ids raise NoDataFound (404)."""
    async with as_owner(pool, timeout_s=timeout_s, read_only=False) as cur:
        await cur.execute(f"select {COLUMNS} from private.cancel_export_job(%s)", (export_id,))
        row = await cur.fetchone()
    assert row is not None
    return row
