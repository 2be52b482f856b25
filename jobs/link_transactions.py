"""Job kind `transactions.link`: link the rest of a merchant's pending transactions after a review.

An admin's review links at most `kamioi.link_inline_rows` of the approved merchant's pending
transactions inline and queues this job for the rest (migration 20261122170000); payload
{"merchant_key": ...}. Each chunk is one call of private.link_pending_transactions in its own short
transaction, so users see their purchases mapped (and broadcast) chunk by chunk, and a run that
died resumes by simply running again: linked rows are no longer pending.
"""

from __future__ import annotations

from jobs.chunks import repeat_until_short
from jobs.context import JobContext
from jobs.errors import PermanentJobError
from jobs.registry import Outcome, job_handler

LINK_KIND = "transactions.link"
CHUNK_ROWS = 5000


@job_handler(LINK_KIND)
def link_transactions(ctx: JobContext) -> Outcome:
    merchant_key = ctx.job.payload.get("merchant_key")
    if not isinstance(merchant_key, str) or not merchant_key:
        raise PermanentJobError(f"not a link payload: {ctx.job.payload}")
    outcome, linked = repeat_until_short(
        ctx, "link", "select private.link_pending_transactions(%s, %s)", (merchant_key, CHUNK_ROWS), CHUNK_ROWS
    )
    if outcome is Outcome.SUCCEEDED:
        ctx.log.info("link job %s: %s transactions of %s mapped", ctx.job.id, linked, merchant_key)
    return outcome
