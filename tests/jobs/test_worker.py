"""The worker process (`python -m jobs worker`): wake-up, retries, failure, leases, shutdown, sharing."""

from __future__ import annotations

import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import psycopg

from jobs import queue
from tests.jobs.conftest import LEASE_SECONDS, Workers, queue_state, wait_until


def _runs(log: Path) -> list[tuple[int, int, int]]:
    """(job id, attempt, worker pid) per run."""
    if not log.exists():
        return []
    return [tuple(map(int, line.split())) for line in log.read_text().splitlines()]  # type: ignore[misc]


def _wait_state(conn: psycopg.Connection[Any], job_id: int, state: str, timeout: float = 15) -> dict[str, Any]:
    return wait_until(  # type: ignore[no-any-return]
        lambda: (s := queue_state(conn, job_id))["state"] == state and s, timeout, f"job {job_id} {state}"
    )


def _wait_worker_ready(conn: psycopg.Connection[Any], kind: str, count: int = 1) -> None:
    wait_until(lambda: queue.live_workers(conn, kind, 10) >= count, 15, "worker registration")


def test_idle_worker_wakes_on_notify_not_on_poll(
    conn: psycopg.Connection[Any], workers: Workers, tmp_path: Path
) -> None:
    workers.start("test.record")  # poll interval 30 s: only NOTIFY can make this quick
    _wait_worker_ready(conn, "test.record")
    time.sleep(0.5)  # idle, listening
    started = time.monotonic()
    job_id = queue.enqueue(conn, "test.record", {"log": str(tmp_path / "runs")})
    _wait_state(conn, job_id, "succeeded", timeout=5)
    assert time.monotonic() - started < 2.0


def test_failures_retry_with_backoff_until_success(
    conn: psycopg.Connection[Any], workers: Workers, tmp_path: Path
) -> None:
    log = tmp_path / "runs"
    job_id = queue.enqueue(conn, "test.flaky", {"log": str(log), "failures": 2}, max_attempts=5)
    workers.start("test.flaky")
    state = _wait_state(conn, job_id, "succeeded")
    assert state["attempts"] == 3
    assert [attempt for _, attempt, _ in _runs(log)] == [1, 2, 3]


def test_job_fails_after_max_attempts_and_permanent_errors_at_once(
    conn: psycopg.Connection[Any], workers: Workers, tmp_path: Path
) -> None:
    log = tmp_path / "runs"
    flaky = queue.enqueue(conn, "test.flaky", {"log": str(log), "failures": 99}, max_attempts=3)
    permanent = queue.enqueue(conn, "test.permanent", {"log": str(log)}, max_attempts=3)
    workers.start("test.flaky", "test.permanent")
    failed = _wait_state(conn, flaky, "failed")
    assert failed["attempts"] == 3 and "flaky failure on attempt 3" in failed["last_error"]
    gave_up = _wait_state(conn, permanent, "failed")
    assert gave_up["attempts"] == 1 and "retrying cannot help" in gave_up["last_error"]


def test_sigterm_hands_the_running_job_back_and_exits_zero(
    conn: psycopg.Connection[Any], workers: Workers, tmp_path: Path
) -> None:
    job_id = queue.enqueue(conn, "test.slow", {"log": str(tmp_path / "runs"), "seconds": 30})
    worker = workers.start("test.slow")
    _wait_state(conn, job_id, "running")
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=10) == 0
    state = queue_state(conn, job_id)
    assert (state["state"], state["attempts"], state["locked_by"]) == ("queued", 0, None)
    queue.cancel(conn, job_id)


def test_cancel_reaches_a_running_job_through_the_heartbeat(
    conn: psycopg.Connection[Any], workers: Workers, tmp_path: Path
) -> None:
    job_id = queue.enqueue(conn, "test.slow", {"log": str(tmp_path / "runs"), "seconds": 30})
    workers.start("test.slow")
    _wait_state(conn, job_id, "running")
    queue.cancel(conn, job_id)
    _wait_state(conn, job_id, "cancelled", timeout=LEASE_SECONDS * 3)


def test_dead_workers_job_is_picked_up_after_its_lease_expires(
    conn: psycopg.Connection[Any], workers: Workers, tmp_path: Path
) -> None:
    log = tmp_path / "runs"
    job_id = queue.enqueue(conn, "test.slow", {"log": str(log), "seconds": 0.5})
    doomed = workers.start("test.slow")
    wait_until(lambda: _runs(log), what="the handler to start")
    doomed.send_signal(signal.SIGKILL)
    doomed.wait()
    killed_at = time.monotonic()
    workers.start("test.slow")
    state = _wait_state(conn, job_id, "succeeded")
    assert time.monotonic() - killed_at >= LEASE_SECONDS * 0.5  # waited for the lease, not before
    assert state["attempts"] == 2
    assert next((attempt, pid) for _, attempt, pid in _runs(log)) == (1, doomed.pid)


def test_two_workers_share_one_queue_and_never_run_a_job_twice(
    conn: psycopg.Connection[Any], workers: Workers, tmp_path: Path
) -> None:
    log = tmp_path / "runs"
    first = workers.start("test.slow", concurrency=3)
    second = workers.start("test.slow", concurrency=3)
    _wait_worker_ready(conn, "test.slow", 2)
    ids = [queue.enqueue(conn, "test.slow", {"log": str(log), "seconds": 0.1}) for _ in range(24)]
    for job_id in ids:
        _wait_state(conn, job_id, "succeeded")
    runs = _runs(log)
    assert sorted(job for job, _, _ in runs) == sorted(ids)  # each exactly once
    per_worker = Counter(pid for _, _, pid in runs)
    assert set(per_worker) == {first.pid, second.pid}
