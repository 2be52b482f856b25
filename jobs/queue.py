"""Typed calls of the queue protocol in private.job_queue (see its migration for the state machine).

Every call is one short statement on an autocommit connection; the fencing token (lease_token) from
the claim is what proves a caller still owns a job.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

NOTIFY_CHANNEL = "kamioi_jobs"
# A job's lane comes from its kind (private.job_lanes): workers keep separate slots per lane, so
# background work never holds the slot a user-facing job needs.
USER_LANE = "user"
BACKGROUND_LANE = "background"
LANES = (USER_LANE, BACKGROUND_LANE)


@dataclass(frozen=True)
class Job:
    id: int
    kind: str
    payload: dict[str, Any]
    attempts: int
    max_attempts: int
    lease_token: UUID
    lane: str = BACKGROUND_LANE


def enqueue(
    conn: psycopg.Connection[Any],
    kind: str,
    payload: dict[str, Any] | None = None,
    *,
    priority: int = 0,
    max_attempts: int = 5,
) -> int:
    row = conn.execute(
        "select private.enqueue_job(%s, %s, %s, now(), %s)",
        (kind, Jsonb(payload or {}), priority, max_attempts),
    ).fetchone()
    assert row is not None
    return int(row[0])


def state(conn: psycopg.Connection[Any], job_id: int) -> str | None:
    """The job's state (None: no such job)."""
    row = conn.execute("select state from private.job_queue where id = %s", (job_id,)).fetchone()
    return str(row[0]) if row else None


def active_job(conn: psycopg.Connection[Any], kind: str, payload_key: str, value: str) -> int | None:
    """The newest queued or running job of `kind` whose payload has `payload_key` = `value`."""
    row = conn.execute(
        "select id from private.job_queue where kind = %s and payload ->> %s = %s"
        " and state in ('queued', 'running') order by id desc limit 1",
        (kind, payload_key, value),
    ).fetchone()
    return int(row[0]) if row else None


def claim(
    conn: psycopg.Connection[Any],
    worker_id: str,
    kinds: list[str],
    lease_seconds: float,
    limit: int,
    only_ids: list[int] | None = None,
    lanes: list[str] | None = None,
) -> list[Job]:
    """Claim up to `limit` due jobs of these kinds (and lanes; None: any), user-facing ones first."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            "select id, kind, payload, attempts, max_attempts, lease_token, lane"
            " from private.claim_jobs(%s, %s, %s, %s, %s, %s)",
            (worker_id, kinds, lease_seconds, limit, only_ids, lanes),
        ).fetchall()
    return [Job(**row) for row in rows]


def seconds_until_next(conn: psycopg.Connection[Any], kinds: list[str], lanes: list[str] | None = None) -> float | None:
    """Seconds until the next queued job of these kinds (and lanes) is due, on the database clock (None: none)."""
    row = conn.execute("select private.seconds_until_next_job(%s, %s)", (kinds, lanes)).fetchone()
    return None if row is None or row[0] is None else float(row[0])


def heartbeat(conn: psycopg.Connection[Any], tokens: list[UUID], lease_seconds: float) -> dict[UUID, bool]:
    """Extend the leases still held; returns {token: cancel_requested}. Missing tokens were lost."""
    rows = conn.execute(
        "select lease_token, cancel_requested from private.heartbeat_jobs(%s, %s)", (tokens, lease_seconds)
    ).fetchall()
    return {token: cancel for token, cancel in rows}


def finish(conn: psycopg.Connection[Any], job: Job, state: str = "succeeded") -> bool:
    row = conn.execute("select private.finish_job(%s, %s, %s)", (job.id, job.lease_token, state)).fetchone()
    return bool(row and row[0])


def fail(
    conn: psycopg.Connection[Any],
    job: Job,
    error: str,
    retry_in_seconds: float,
    *,
    permanent: bool,
    bad_input: bool = False,
) -> str | None:
    """Returns the job's new state: queued (retry at now + retry_in) or failed; None if the lease was lost.
    bad_input marks a permanent failure as the user's (job_queue.bad_input), in the same transaction."""
    with conn.transaction():
        row = conn.execute(
            "select private.fail_job(%s, %s, %s, %s, %s)",
            (job.id, job.lease_token, error, retry_in_seconds, permanent),
        ).fetchone()
        if bad_input and row and row[0] == "failed":
            conn.execute("update private.job_queue set bad_input = true where id = %s", (job.id,))
    return row[0] if row else None


def release(conn: psycopg.Connection[Any], job: Job) -> bool:
    row = conn.execute("select private.release_job(%s, %s)", (job.id, job.lease_token)).fetchone()
    return bool(row and row[0])


def made_progress(conn: psycopg.Connection[Any], job: Job, budget: int) -> None:
    """The job moved forward (e.g. an import committed a chunk): it gets a fresh budget of `budget`
    attempts from this one on (max_attempts grows; attempts still counts every run). A long import
    then survives any number of worker deaths that each let it progress, while a job that dies again
    and again without progressing (a poison file) still fails after `budget` attempts."""
    conn.execute(
        "update private.job_queue set max_attempts = greatest(max_attempts, attempts - 1 + %s)"
        " where id = %s and lease_token = %s",
        (budget, job.id, job.lease_token),
    )


def requeue_expired(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("select private.requeue_expired_jobs()").fetchone()
    return int(row[0]) if row else 0


def cancel(conn: psycopg.Connection[Any], job_id: int) -> str | None:
    row = conn.execute("select private.cancel_job(%s)", (job_id,)).fetchone()
    return row[0] if row else None


def backoff_seconds(attempt: int, base: float, cap: float) -> float:
    """Exponential backoff with up to 25% jitter, so failed jobs of one outage do not retry in lockstep."""
    delay: float = min(cap, base * 2 ** max(attempt - 1, 0))
    return delay * (1 + random.uniform(0, 0.25))


def worker_seen(conn: psycopg.Connection[Any], worker_id: str, kinds: list[str], concurrency: int) -> None:
    conn.execute("select private.worker_seen(%s, %s, %s)", (worker_id, kinds, concurrency))


def worker_stopped(conn: psycopg.Connection[Any], worker_id: str) -> None:
    conn.execute("select private.worker_stopped(%s)", (worker_id,))


def live_workers(conn: psycopg.Connection[Any], kind: str, seen_within_seconds: float) -> int:
    row = conn.execute("select private.live_workers(%s, %s)", (kind, seen_within_seconds)).fetchone()
    return int(row[0]) if row else 0
