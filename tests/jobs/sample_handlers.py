"""Job kinds for the worker tests, loaded with `python -m jobs worker --module tests.jobs.sample_handlers`.

Each appends "<job id> <attempt> <worker pid>" to payload["log"] when it runs, so tests see who ran what.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from jobs.context import JobContext
from jobs.errors import PermanentJobError
from jobs.registry import Outcome, job_handler


def _log(ctx: JobContext) -> None:
    with Path(ctx.job.payload["log"]).open("a") as log:
        log.write(f"{ctx.job.id} {ctx.job.attempts} {os.getpid()}\n")


@job_handler("test.record")
def record(ctx: JobContext) -> Outcome:
    _log(ctx)
    return Outcome.SUCCEEDED


@job_handler("test.flaky")
def flaky(ctx: JobContext) -> Outcome:
    """Fails its first payload["failures"] attempts."""
    _log(ctx)
    if ctx.job.attempts <= ctx.job.payload["failures"]:
        raise RuntimeError(f"flaky failure on attempt {ctx.job.attempts}")
    return Outcome.SUCCEEDED


@job_handler("test.permanent")
def permanent(ctx: JobContext) -> Outcome:
    _log(ctx)
    raise PermanentJobError("bad input, retrying cannot help")


@job_handler("test.slow")
def slow(ctx: JobContext) -> Outcome:
    """Works in 50 ms units for payload["seconds"], honouring stop and cancel between units."""
    _log(ctx)
    deadline = time.monotonic() + ctx.job.payload["seconds"]
    while time.monotonic() < deadline:
        if ctx.cancel_requested:
            return Outcome.CANCELLED
        if ctx.stop_requested:
            return Outcome.HANDED_BACK
        time.sleep(0.05)
    return Outcome.SUCCEEDED
