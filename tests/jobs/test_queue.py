"""The queue protocol in SQL (private.job_queue functions), without a worker process."""

from __future__ import annotations

import time
from typing import Any

import psycopg

from jobs import queue
from kamioi.db import connect
from kamioi.settings import Settings
from tests.jobs.conftest import queue_state


def _enqueue(conn: psycopg.Connection[Any], kind: str = "test.record", **kwargs: Any) -> int:
    return queue.enqueue(conn, kind, {"log": "/dev/null"}, **kwargs)


def _claim(conn: psycopg.Connection[Any], job_id: int, lease: float = 30.0) -> queue.Job:
    jobs = queue.claim(conn, "tester", ["test.record"], lease, 1, only_ids=[job_id])
    assert len(jobs) == 1
    return jobs[0]


def test_concurrent_claims_skip_locked_rows_and_never_share_a_job(settings: Settings) -> None:
    with connect(settings.db_url, autocommit=True) as setup:
        ids = [_enqueue(setup, priority=-1000) for _ in range(4)]
    with connect(settings.db_url) as a, connect(settings.db_url) as b:
        # A claims inside an open transaction: its rows stay locked until it commits.
        first = queue.claim(a, "worker-a", ["test.record"], 30, 2, only_ids=ids)
        second = queue.claim(b, "worker-b", ["test.record"], 30, 4, only_ids=ids)  # does not block
        b.commit()
        a.commit()
    assert {j.id for j in first} | {j.id for j in second} == set(ids)
    assert not {j.id for j in first} & {j.id for j in second}
    assert len(first) == 2


def test_claim_order_is_priority_then_run_at(conn: psycopg.Connection[Any]) -> None:
    low = _enqueue(conn, priority=-500)
    high = _enqueue(conn, priority=-900)
    jobs = queue.claim(conn, "tester", ["test.record"], 30, 1, only_ids=[low, high])
    assert [j.id for j in jobs] == [high]
    queue.finish(conn, jobs[0])
    queue.cancel(conn, low)


def test_failure_retries_with_backoff_then_fails_after_max_attempts(conn: psycopg.Connection[Any]) -> None:
    job_id = _enqueue(conn, max_attempts=2)
    job = _claim(conn, job_id)
    assert queue.fail(conn, job, "boom 1", 60, permanent=False) == "queued"
    state = queue_state(conn, job_id)
    assert state["last_error"] == "boom 1"
    db_now = conn.execute("select now()").fetchone()[0]  # type: ignore[index]
    assert (state["run_at"] - db_now).total_seconds() > 50  # not due before its backoff
    assert queue.claim(conn, "tester", ["test.record"], 30, 1, only_ids=[job_id]) == []

    conn.execute("update private.job_queue set run_at = now() where id = %s", (job_id,))
    job = _claim(conn, job_id)
    assert job.attempts == 2
    assert queue.fail(conn, job, "boom 2", 60, permanent=False) == "failed"
    assert queue_state(conn, job_id)["state"] == "failed"


def test_permanent_failure_skips_remaining_attempts(conn: psycopg.Connection[Any]) -> None:
    job_id = _enqueue(conn, max_attempts=5)
    assert queue.fail(conn, _claim(conn, job_id), "bad input", 0, permanent=True) == "failed"
    assert queue_state(conn, job_id)["attempts"] == 1


def test_expired_lease_is_requeued_then_failed_on_the_last_attempt(conn: psycopg.Connection[Any]) -> None:
    job_id = _enqueue(conn, max_attempts=2)
    stale = _claim(conn, job_id, lease=0.1)
    time.sleep(0.2)
    assert queue.requeue_expired(conn) >= 1
    state = queue_state(conn, job_id)
    assert state["state"] == "queued" and "lease expired" in state["last_error"]
    # The dead worker's token no longer counts for anything.
    assert queue.heartbeat(conn, [stale.lease_token], 30) == {}
    assert not queue.finish(conn, stale)

    _claim(conn, job_id, lease=0.1)
    time.sleep(0.2)
    queue.requeue_expired(conn)
    assert queue_state(conn, job_id)["state"] == "failed"


def test_heartbeat_extends_the_lease_and_reports_cancel(conn: psycopg.Connection[Any]) -> None:
    job_id = _enqueue(conn)
    job = _claim(conn, job_id, lease=0.5)
    assert queue.heartbeat(conn, [job.lease_token], 30) == {job.lease_token: False}
    time.sleep(0.6)
    queue.requeue_expired(conn)
    assert queue_state(conn, job_id)["state"] == "running"  # the heartbeat kept it
    assert queue.cancel(conn, job_id) == "running"
    assert queue.heartbeat(conn, [job.lease_token], 30) == {job.lease_token: True}
    assert queue.finish(conn, job, "cancelled")
    assert queue_state(conn, job_id)["state"] == "cancelled"


def test_cancel_of_a_queued_job_is_immediate(conn: psycopg.Connection[Any]) -> None:
    job_id = _enqueue(conn)
    assert queue.cancel(conn, job_id) == "cancelled"
    assert queue.claim(conn, "tester", ["test.record"], 30, 1, only_ids=[job_id]) == []


def test_release_hands_back_without_spending_an_attempt(conn: psycopg.Connection[Any]) -> None:
    job_id = _enqueue(conn)
    assert queue.release(conn, _claim(conn, job_id))
    state = queue_state(conn, job_id)
    assert (state["state"], state["attempts"], state["locked_by"]) == ("queued", 0, None)
    queue.cancel(conn, job_id)


def test_enqueue_notifies_listeners_with_the_kind(settings: Settings, conn: psycopg.Connection[Any]) -> None:
    with connect(settings.db_url, autocommit=True) as listener:
        listener.execute(f"listen {queue.NOTIFY_CHANNEL}")
        job_id = _enqueue(conn)
        notes = list(listener.notifies(timeout=2, stop_after=1))
    assert [n.payload for n in notes] == ["test.record"]
    queue.cancel(conn, job_id)


def test_worker_presence(conn: psycopg.Connection[Any]) -> None:
    queue.worker_seen(conn, "presence-test", ["test.presence"], 3)
    assert queue.live_workers(conn, "test.presence", 60) == 1
    assert queue.live_workers(conn, "test.other", 60) == 0
    queue.worker_stopped(conn, "presence-test")
    assert queue.live_workers(conn, "test.presence", 60) == 0


def test_backoff_grows_exponentially_up_to_the_cap() -> None:
    delays = [queue.backoff_seconds(n, base=1.0, cap=10.0) for n in (1, 2, 3, 4, 5)]
    for delay, expected in zip(delays, (1, 2, 4, 8, 10), strict=True):
        assert expected <= delay <= expected * 1.25
