"""Job kind `allocations.correct`: a mapping that chose lots no longer stands (rejected, replaced as its
merchant's mapping in force, or its ticker changed), so its open lots are reversed and reinvested.

Payload {"mapping_id": N}, queued by triggers on merchants and llm_mappings. Each chunk is one call of
private.correct_allocations_chunk in its own transaction: the reversals (negated amount and shares at
the buy's price) and the transactions moving back to `mapped` (under the mapping now in force, which
queues allocations.invest for the next lot) or `pending` (no approved mapping: the next approval links
them) commit together. Idempotent: a reversed lot is no longer open, and a second reversal of a lot is
refused by the unique lot constraint, so a re-run after a crash resumes where it stopped.
"""

from __future__ import annotations

from jobs.chunks import repeat_until_short
from jobs.context import JobContext
from jobs.errors import PermanentJobError
from jobs.registry import Outcome, job_handler

CORRECT_KIND = "allocations.correct"
CHUNK_LOTS = 5000


@job_handler(CORRECT_KIND)
def correct_allocations(ctx: JobContext) -> Outcome:
    mapping_id = ctx.job.payload.get("mapping_id")
    if not isinstance(mapping_id, int) or isinstance(mapping_id, bool):
        raise PermanentJobError(f"not a correction payload: {ctx.job.payload}")
    fallback = ctx.settings.invest_fallback_ticker
    outcome, reversed_lots = repeat_until_short(
        ctx,
        "correct",
        "select private.correct_allocations_chunk(%s, %s, %s)",
        (mapping_id, fallback, CHUNK_LOTS),
        CHUNK_LOTS,
    )
    if outcome is Outcome.SUCCEEDED:
        ctx.log.info("correct job %s: %s lots of mapping %s reversed", ctx.job.id, reversed_lots, mapping_id)
    return outcome
