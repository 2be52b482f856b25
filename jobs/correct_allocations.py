"""Job kind `allocations.correct`: mappings that chose lots no longer stand (rejected, replaced as their
merchant's mapping in force, or their ticker changed), so their open lots are reversed and reinvested.

One job serves a whole batch: triggers on merchants and llm_mappings record the mappings in
private.correction_requests and queue this job (empty payload) unless one is already queued, so a
mappings import that moves hundreds of mappings in force queues one job, not one per mapping. The job
drains the requests, oldest first. Each chunk is one call of private.correct_allocations_chunk in its
own transaction: the reversals (negated amount and shares at the buy's price) and the transactions
moving back to `mapped` (under the mapping now in force, which queues allocations.invest for the next
lot) or `pending` (no approved mapping: the next approval links them) commit together. Idempotent: a
reversed lot is no longer open, and a second reversal of a lot is refused by the unique lot
constraint, so a re-run after a crash (or a second job draining the same requests) finds nothing twice.
"""

from __future__ import annotations

import psycopg

from jobs.chunks import repeat_on
from jobs.context import JobContext
from jobs.errors import PermanentJobError
from jobs.registry import Outcome, job_handler

CORRECT_KIND = "allocations.correct"
CHUNK_LOTS = 5000
REQUESTS_PER_READ = 500


@job_handler(CORRECT_KIND)
def correct_allocations(ctx: JobContext) -> Outcome:
    if ctx.job.payload:
        raise PermanentJobError(f"not a correction payload (corrections take none): {ctx.job.payload}")
    fallback = ctx.settings.invest_fallback_ticker
    mappings = reversed_lots = 0
    with psycopg.connect(ctx.db_url, autocommit=True, prepare_threshold=None) as conn:
        while requests := conn.execute(
            "select mapping_id, requested_at from private.correction_requests"
            " order by requested_at, mapping_id limit %s",
            (REQUESTS_PER_READ,),
        ).fetchall():
            for mapping_id, seen in requests:
                outcome, lots = repeat_on(
                    conn, ctx, "correct", "select private.correct_allocations_chunk(%s, %s, %s)",
                    (mapping_id, fallback, CHUNK_LOTS), CHUNK_LOTS,
                )  # fmt: skip
                reversed_lots += lots
                if outcome is not Outcome.SUCCEEDED:
                    return outcome
                conn.execute("select private.finish_correction_request(%s, %s)", (mapping_id, seen))
                mappings += 1
    ctx.log.info("correct job %s: %s lots of %s mappings reversed", ctx.job.id, reversed_lots, mappings)
    return Outcome.SUCCEEDED
