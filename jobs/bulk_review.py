"""Registers the `mappings.bulk_review` job kind that the admin API enqueues (POST /v1/mappings/bulk-review).

Payload: {"decision": "approved" | "rejected", "reviewer": <uuid>, "selection": {"ids": ...} | {"filter": ...}}.
Each chunk is one call of private.bulk_review_mappings_chunk in its own short transaction; it only
changes pending mappings, so a chunk re-run after a crash is harmless and the job resumes by
simply running again.
"""

from __future__ import annotations

import psycopg
from psycopg.types.json import Jsonb

from jobs.context import JobContext
from jobs.errors import LeaseLost, PermanentJobError
from jobs.registry import Outcome, job_handler

BULK_REVIEW_KIND = "mappings.bulk_review"
CHUNK_ROWS = 1000


@job_handler(BULK_REVIEW_KIND)
def bulk_review(ctx: JobContext) -> Outcome:
    payload = ctx.job.payload
    decision, reviewer, selection = payload.get("decision"), payload.get("reviewer"), payload.get("selection")
    if decision not in ("approved", "rejected") or not isinstance(selection, dict):
        raise PermanentJobError(f"not a bulk review payload: {payload}")
    reviewed = 0
    with psycopg.connect(ctx.db_url, prepare_threshold=None, autocommit=True) as conn:
        while True:
            if ctx.lease_lost:
                raise LeaseLost(f"bulk review {ctx.job.id}: lease lost")
            if ctx.cancel_requested:
                return Outcome.CANCELLED
            if ctx.stop_requested:
                return Outcome.HANDED_BACK
            row = conn.execute(
                "select private.bulk_review_mappings_chunk(%s, %s, %s, %s)",
                (decision, reviewer, Jsonb(selection), CHUNK_ROWS),
            ).fetchone()
            changed = int(row[0]) if row else 0
            if changed == 0:
                ctx.log.info("bulk review %s: %s mappings %s", ctx.job.id, reviewed, decision)
                return Outcome.SUCCEEDED
            reviewed += changed
