from __future__ import annotations

import datetime as dt
from typing import Any

from psycopg.types.json import Jsonb

from api.auth import Principal
from api.db import Pool, as_caller

BULK_REVIEW_KIND = "mappings.bulk_review"


async def list_pending(
    pool: Pool, caller: Principal, after: tuple[dt.datetime, int] | None, limit: int, *, timeout_s: float
) -> list[dict[str, Any]]:
    after_at, after_id = after if after is not None else (None, None)
    async with as_caller(pool, caller, read_only=True, timeout_s=timeout_s, path="/rpc/list_pending_mappings") as cur:
        await cur.execute("select * from public.list_pending_mappings(%s, %s, %s)", (after_at, after_id, limit))
        return await cur.fetchall()


async def review(
    pool: Pool, caller: Principal, mapping_id: int, created_at: dt.datetime, decision: str, *, timeout_s: float
) -> dict[str, Any]:
    """public.review_mapping as the caller; raises NoDataFound (404) when there is no such mapping."""
    async with as_caller(pool, caller, read_only=False, timeout_s=timeout_s, path="/rpc/review_mapping") as cur:
        await cur.execute("select * from public.review_mapping(%s, %s, %s)", (mapping_id, created_at, decision))
        row = await cur.fetchone()
    assert row is not None
    return row


async def enqueue_bulk_review(
    pool: Pool, caller: Principal, decision: str, selection: dict[str, Any], *, timeout_s: float
) -> int:
    """Queue a `mappings.bulk_review` job; its handler calls private.bulk_review_mappings_chunk."""
    payload = {"decision": decision, "reviewer": caller.user_id, "selection": selection}
    async with pool.connection() as conn, conn.transaction():
        await conn.execute("select set_config('statement_timeout', %s, true)", (str(int(timeout_s * 1000)),))
        cur = await conn.execute("select private.enqueue_job(%s, %s) as id", (BULK_REVIEW_KIND, Jsonb(payload)))
        row = await cur.fetchone()
    assert row is not None
    return int(row["id"])
