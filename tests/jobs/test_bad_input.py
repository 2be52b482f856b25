"""A file the user got wrong fails its import as bad input, apart from failures of the system."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import psycopg
import pytest

from jobs import queue
from kamioi.settings import Settings
from tests.jobs.conftest import queue_state
from tests.jobs.support import register, run_inline, transactions_csv

pytestmark = pytest.mark.usefixtures("stack_worker_paused")


def _bad_input(conn: psycopg.Connection[Any], queue_job_id: int) -> bool:
    row = conn.execute("select bad_input from private.job_queue where id = %s", (queue_job_id,)).fetchone()
    assert row is not None
    return bool(row[0])


def test_a_gzip_file_fails_as_bad_input(conn: psycopg.Connection[Any], settings: Settings, tmp_path: Path) -> None:
    plain = transactions_csv(tmp_path / "plain.csv", 5)
    packed = tmp_path / "packed.csv"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    job = register(conn, packed)
    assert run_inline(settings.db_url, job) == "failed"
    assert job.queue_job_id is not None
    state = queue_state(conn, job.queue_job_id)
    assert "gzip-compressed" in state["last_error"] and state["attempts"] == 1
    assert _bad_input(conn, job.queue_job_id)


@pytest.mark.parametrize("bad_input", [False, True])
def test_only_the_users_mistake_is_marked(conn: psycopg.Connection[Any], bad_input: bool) -> None:
    queue_job_id = queue.enqueue(conn, "test.record", {"log": "/dev/null"})
    (job,) = queue.claim(conn, "test-bad-input", ["test.record"], 30, 1, only_ids=[queue_job_id])
    assert queue.fail(conn, job, "refused", 0, permanent=True, bad_input=bad_input) == "failed"
    assert _bad_input(conn, queue_job_id) is bad_input
