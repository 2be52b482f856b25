"""Fixtures for the jobs suite: worker subprocesses with short leases and small chunks, CSV files,
and helpers to wait for job states. Runs against the local stack (`kamioi up`)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from kamioi.db import connect
from kamioi.settings import Settings
from local_stack.standins.broker_server import serve_in_thread

PROJECT_ROOT = Path(__file__).resolve().parents[2]

# Short enough to keep the suite fast, long enough for a loaded 2-core machine.
LEASE_SECONDS = 1.5
CHUNK_ROWS = 20
JOBS_ENV = {
    "KAMIOI_JOBS_LEASE_SECONDS": str(LEASE_SECONDS),
    "KAMIOI_JOBS_POLL_SECONDS": "30",
    "KAMIOI_JOBS_BACKOFF_BASE_SECONDS": "0.2",
    "KAMIOI_JOBS_BACKOFF_CAP_SECONDS": "1",
    "KAMIOI_IMPORT_CHUNK_ROWS": str(CHUNK_ROWS),
}

USER_ID = "00000000-0000-4000-a000-000000000002"
ADMIN_ID = "00000000-0000-4000-a000-000000000001"


class Workers:
    """Worker subprocesses started by one test; all are killed at its end."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, *kinds: str, concurrency: int = 2, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        args = [sys.executable, "-m", "jobs", "worker", "--concurrency", str(concurrency), "--log-level", "DEBUG"]
        for kind in kinds:
            args += ["--kind", kind]
        if any(k.startswith("test.") for k in kinds):
            args += ["--module", "tests.jobs.sample_handlers"]
        log = (self.tmp_path / f"worker-{len(self.procs)}.log").open("wb")
        proc = subprocess.Popen(
            args, cwd=PROJECT_ROOT, env={**os.environ, **JOBS_ENV, **(env or {})}, stdout=log, stderr=log
        )
        self.procs.append(proc)
        return proc

    def kill_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=10)

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.tmp_path.glob("worker-*.log")))


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Workers]:
    started = Workers(tmp_path)
    try:
        yield started
    finally:
        started.kill_all()


@pytest.fixture
def broker_url() -> Iterator[str]:
    """The broker stand-in on a free port, fresh for the test: the SDK's url_override."""
    with serve_in_thread() as root:
        yield root


@pytest.fixture
def conn(settings: Settings) -> Iterator[psycopg.Connection[Any]]:
    """Autocommit connection as `postgres` (what the worker, API and CLI use)."""
    with connect(settings.db_url, autocommit=True) as c:
        yield c


@pytest.fixture(autouse=True, scope="session")
def _no_stale_test_jobs(settings: Settings) -> None:
    """Jobs of the test kinds left by an interrupted run would be claimed by this run's workers."""
    with connect(settings.db_url, autocommit=True) as c:
        c.execute(
            "update private.job_queue set state = 'cancelled', lease_token = null, locked_by = null"
            " where kind like 'test.%' and state in ('queued', 'running')"
        )


def wait_until(check: Callable[[], Any], timeout: float = 15.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def queue_state(conn: psycopg.Connection[Any], job_id: int) -> dict[str, Any]:
    row = conn.execute(
        "select state, attempts, last_error, run_at, locked_by from private.job_queue where id = %s", (job_id,)
    ).fetchone()
    assert row is not None
    return dict(zip(("state", "attempts", "last_error", "run_at", "locked_by"), row, strict=True))


def unique_tag() -> str:
    return uuid.uuid4().hex[:12]
