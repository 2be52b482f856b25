"""Jobs that repeat one set-based SQL chunk function until a chunk comes back short."""

from __future__ import annotations

from typing import Any

import psycopg

from jobs.context import JobContext
from jobs.registry import Outcome


def repeat_until_short(
    ctx: JobContext, what: str, sql: str, params: tuple[Any, ...], chunk: int
) -> tuple[Outcome, int]:
    """Run `sql` (one chunk: returns how many rows it did, at most `chunk`) in its own transaction each
    time, checking for cancel, stop and a lost lease between chunks; returns the outcome and the rows done.
    The chunk functions are idempotent, so a run that died resumes by simply running again."""
    with psycopg.connect(ctx.db_url, autocommit=True, prepare_threshold=None) as conn:
        return repeat_on(conn, ctx, what, sql, params, chunk)


def repeat_on(
    conn: psycopg.Connection[Any], ctx: JobContext, what: str, sql: str, params: tuple[Any, ...], chunk: int
) -> tuple[Outcome, int]:
    """repeat_until_short on a connection the caller holds (autocommit: one transaction per chunk)."""
    done = 0
    while True:
        if (outcome := ctx.interruption(f"{what} {ctx.job.id}")) is not None:
            return outcome, done
        row = conn.execute(sql, params).fetchone()
        rows = int(row[0]) if row else 0
        done += rows
        if rows < chunk:
            return Outcome.SUCCEEDED, done
