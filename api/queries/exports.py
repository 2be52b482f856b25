from __future__ import annotations

from typing import Any
from uuid import UUID

from api.auth import Principal
from api.db import Pool, as_caller, as_owner
from jobs import export_service
from jobs.export_service import ExportCall


async def _owner_row(pool: Pool, call: ExportCall, timeout_s: float) -> dict[str, Any]:
    async with as_owner(pool, timeout_s=timeout_s, read_only=False) as cur:
        await cur.execute(call.sql, call.params)
        row = await cur.fetchone()
    assert row is not None  # the SQL functions return the row or raise
    return row


async def create(
    pool: Pool, caller: Principal, *, list_name: str, filters: dict[str, Any], sort: str | None, timeout_s: float
) -> dict[str, Any]:
    """Validate the filters the way the list does and queue the export (the API has checked admin)."""
    requested_by = UUID(caller.user_id) if caller.user_id else None
    return await _owner_row(
        pool, export_service.create_call(list_name, filters, sort=sort, requested_by=requested_by), timeout_s
    )


async def get(pool: Pool, caller: Principal, export_id: int, *, timeout_s: float) -> dict[str, Any] | None:
    """The export as the caller may read it: an admin reads only their own (RLS), the secret key all."""
    call = export_service.get_call(export_id)
    async with as_caller(pool, caller, read_only=True, timeout_s=timeout_s, path="/export_jobs") as cur:
        await cur.execute(call.sql, call.params)
        return await cur.fetchone()


async def cancel(pool: Pool, export_id: int, *, timeout_s: float) -> dict[str, Any]:
    """Queued: cancelled now; running: stops after its chunk. Unknown ids raise NoDataFound (404)."""
    return await _owner_row(pool, export_service.cancel_call(export_id), timeout_s)
