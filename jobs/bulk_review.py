"""Registers the `mappings.bulk_review` job kind that the admin API enqueues (POST /v1/mappings/bulk-review).

Payload: {"decision": "approved" | "rejected", "reviewer": <uuid>, "selection": {"ids": ...} | {"filter": ...}}.
Each chunk is one call of private.bulk_review_mappings_chunk_keys in its own short transaction; it only
changes pending mappings, so a chunk re-run after a crash is harmless and the job resumes by
simply running again. Once a chunk has committed, its merchant keys are dropped from the resolver's
Upstash cache in one round trip, so the next resolve reads the review from the database; with
Upstash away the review goes on and those entries live out their (pending, short) TTL.
"""

from __future__ import annotations

import asyncio
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import tuple_row
from psycopg.types.json import Jsonb

from jobs.context import JobContext
from jobs.errors import PermanentJobError
from jobs.registry import Outcome, job_handler
from kamioi.mapping.cache import UpstashMappingCache

BULK_REVIEW_KIND = "mappings.bulk_review"
CHUNK_ROWS = 1000

REVIEW_CHUNK = "select reviewed_count, merchant_keys from private.bulk_review_mappings_chunk_keys(%s, %s, %s, %s)"


@job_handler(BULK_REVIEW_KIND)
def bulk_review(ctx: JobContext) -> Outcome:
    payload = ctx.job.payload
    decision, reviewer, selection = payload.get("decision"), payload.get("reviewer"), payload.get("selection")
    if decision not in ("approved", "rejected") or not isinstance(selection, dict):
        raise PermanentJobError(f"not a bulk review payload: {payload}")
    return asyncio.run(run_bulk_review(ctx, decision, reviewer, selection))


async def run_bulk_review(ctx: JobContext, decision: str, reviewer: Any, selection: dict[str, Any]) -> Outcome:
    cache = UpstashMappingCache.from_settings(ctx.settings)
    reviewed = 0
    try:
        async with await AsyncConnection.connect(ctx.db_url, prepare_threshold=None, autocommit=True) as conn:
            while True:
                if (outcome := ctx.interruption(f"bulk review {ctx.job.id}")) is not None:
                    return outcome
                async with conn.cursor(row_factory=tuple_row) as cur:
                    await cur.execute(REVIEW_CHUNK, (decision, reviewer, Jsonb(selection), CHUNK_ROWS))
                    row = await cur.fetchone()
                changed, keys = (int(row[0]), list(row[1])) if row else (0, [])
                if cache is not None and keys:
                    await cache.invalidate(keys)  # autocommit: the chunk is committed by now
                if changed == 0:
                    ctx.log.info("bulk review %s: %s mappings %s", ctx.job.id, reviewed, decision)
                    return Outcome.SUCCEEDED
                reviewed += changed
    finally:
        if cache is not None:
            await cache.aclose()
