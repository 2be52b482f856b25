"""Job kind `rollups.backfill`: count the rows older than the chart rollups' triggers into the rollups.

Rows written since the rollup migration are counted by its triggers; older ones (and every row again
after `private.restart_rollup_backfill(source)`) by this job. Each chunk is one call of
private.backfill_rollups_chunk(source, ids) in its own transaction: the next `ids` ids of the source
are counted and its coverage moves, exactly, also while imports, reviews and the allocation engine
write (the migration explains the fence). A run that died resumes at the coverage it committed.
Payload: {"chunk_ids": N} optionally overrides CHUNK_IDS.
"""

from __future__ import annotations

from jobs.chunks import repeat_until_short
from jobs.context import JobContext
from jobs.errors import PermanentJobError
from jobs.registry import Outcome, job_handler

BACKFILL_KIND = "rollups.backfill"
SOURCES = ("llm_mappings", "transactions", "allocations")
# ~0.5 s of a 2-core machine per chunk: short transactions, so writers wait on the fence only briefly.
CHUNK_IDS = 50_000


@job_handler(BACKFILL_KIND)
def backfill_rollups(ctx: JobContext) -> Outcome:
    chunk_ids = ctx.job.payload.get("chunk_ids", CHUNK_IDS)
    if not isinstance(chunk_ids, int) or chunk_ids < 1:
        raise PermanentJobError(f"not a backfill payload: {ctx.job.payload}")
    for source in SOURCES:
        outcome, covered = repeat_until_short(
            ctx, f"backfill {source}", "select private.backfill_rollups_chunk(%s, %s)", (source, chunk_ids), chunk_ids
        )
        if outcome is not Outcome.SUCCEEDED:
            return outcome
        ctx.log.info("rollup backfill job %s: %s ids of %s covered", ctx.job.id, covered, source)
    return Outcome.SUCCEEDED
