"""Run one claimed job's handler and record its outcome in the queue (shared by worker and inline runs)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import psycopg

from jobs import queue
from jobs.context import JobContext
from jobs.errors import BadInputError, LeaseLost, PermanentJobError
from jobs.registry import Outcome, handler_for

# Hands out an autocommit connection for the short queue statements.
QueueConnections = Callable[[], AbstractContextManager[psycopg.Connection[Any]]]

log = logging.getLogger("jobs.runner")


def run_claimed_job(ctx: JobContext, connections: QueueConnections) -> str | None:
    """Returns the job's state afterwards (queued = retry or handed back), None if the lease was lost."""
    job, settings = ctx.job, ctx.settings
    log.info("job %s (%s) attempt %s/%s started", job.id, job.kind, job.attempts, job.max_attempts)
    try:
        outcome = handler_for(job.kind)(ctx)
    except LeaseLost:
        log.warning("job %s: stopped, another worker owns it now", job.id)
        return None
    except PermanentJobError as err:
        log.error("job %s failed permanently: %s", job.id, err)
        with connections() as conn:
            return queue.fail(conn, job, str(err), 0, permanent=True, bad_input=isinstance(err, BadInputError))
    except Exception as err:
        log.exception("job %s attempt %s failed", job.id, job.attempts)
        retry_in = queue.backoff_seconds(job.attempts, settings.backoff_base_seconds, settings.backoff_cap_seconds)
        with connections() as conn:
            return queue.fail(conn, job, f"{type(err).__name__}: {err}", retry_in, permanent=False)
    with connections() as conn:
        if outcome is Outcome.HANDED_BACK:
            state = "queued" if queue.release(conn, job) else None
        else:
            state = outcome.value if queue.finish(conn, job, outcome.value) else None
    log.info("job %s: %s", job.id, state or "lease lost before it could be recorded")
    return state
