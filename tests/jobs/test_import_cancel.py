"""Ctrl-C during `kamioi import` offers to cancel, `kamioi import cancel ID`, and `--rejections` written
however the wait ends: real processes against the local stack, the stack's worker paused and a live
worker pretended, so the job waits in the queue for as long as the test needs."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from jobs.imports.service import get_import
from kamioi.db import connect
from kamioi.settings import Settings
from tests.jobs.conftest import JOBS_ENV, PROJECT_ROOT, USER_ID
from tests.jobs.support import transactions_csv

pytestmark = pytest.mark.usefixtures("stack_worker_paused")

REPORT_HEADER = "line_number,column,reason,raw"


@pytest.fixture
def pretended_worker(settings: Settings) -> Iterator[None]:
    """Heartbeats of an import worker that never claims: `kamioi import` waits instead of refusing."""
    worker_id = f"test-pretended-{uuid.uuid4().hex[:8]}"
    stop = threading.Event()

    def beat() -> None:
        with connect(settings.db_url, autocommit=True) as beats:
            while True:
                beats.execute(
                    "insert into private.job_workers (worker_id, kinds, concurrency) values (%s, '{import}', 1)"
                    " on conflict (worker_id) do update set seen_at = clock_timestamp()",
                    (worker_id,),
                )
                if stop.wait(0.5):
                    beats.execute("delete from private.job_workers where worker_id = %s", (worker_id,))
                    return

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join(timeout=10)


class Cli:
    """`kamioi import ...` as a process whose stderr lines are read as they come."""

    def __init__(self, *args: str, stdin: int | None = subprocess.DEVNULL) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "cli", "import", *args],
            cwd=PROJECT_ROOT,
            env={**os.environ, **JOBS_ENV},
            stdin=stdin,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        buffer = ""
        while chunk := self.process.stderr.read(1):
            buffer += chunk
            # A prompt ends without a newline: hand it over as soon as it is complete.
            if chunk == "\n" or buffer.endswith("[y/N] "):
                self.lines.put(buffer)
                buffer = ""
        if buffer:
            self.lines.put(buffer)

    def wait_for(self, text: str, timeout: float = 30) -> str:
        while True:
            line = self.lines.get(timeout=timeout)
            self.seen.append(line)
            if text in line:
                return line

    def finish(self, timeout: float = 30) -> tuple[int, str]:
        code = self.process.wait(timeout=timeout)
        while True:
            try:
                self.seen.append(self.lines.get(timeout=1))
            except queue.Empty:
                return code, "".join(self.seen)


def _registered_id(cli: Cli) -> int:
    match = re.search(r"import job (\d+) registered", cli.wait_for("registered"))
    assert match
    return int(match.group(1))


@pytest.mark.usefixtures("pretended_worker")
def test_ctrl_c_without_a_terminal_leaves_the_job_names_cancel_and_writes_the_report(
    conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    path = transactions_csv(tmp_path / "waiting.csv", 20)
    report = tmp_path / "rejected.csv"
    cli = Cli(str(path), "--kind", "transactions", "--rejections", str(report))
    job_id = _registered_id(cli)
    cli.wait_for("rows")  # the first progress line: it is waiting
    cli.process.send_signal(signal.SIGINT)
    code, stderr = cli.finish()
    assert code == 130, stderr
    assert f"goes on in the background (`kamioi import cancel {job_id}` stops it)" in stderr
    assert report.read_text().splitlines() == [REPORT_HEADER]
    assert "rejected rows report (0 rows, so far)" in stderr
    job = get_import(conn, job_id)
    assert job is not None and job.state == "queued"

    second_report = tmp_path / "after-cancel.csv"
    cancel = Cli("cancel", str(job_id), "--rejections", str(second_report))
    code, stderr = cancel.finish()
    assert code == 0, stderr
    assert f"import job {job_id}: cancel requested, it stops now" in stderr
    assert f"import {job_id} cancelled" in stderr
    assert second_report.read_text().splitlines() == [REPORT_HEADER]
    job = get_import(conn, job_id)
    assert job is not None and job.state == "cancelled"

    again = Cli("cancel", str(job_id))
    code, stderr = again.finish()
    assert (code, stderr.strip()) == (2, f"kamioi import cancel: import job {job_id} was cancelled: nothing to cancel")


@pytest.mark.usefixtures("pretended_worker")
def test_ctrl_c_at_a_terminal_offers_cancel(conn: psycopg.Connection[Any], tmp_path: Path) -> None:
    path = transactions_csv(tmp_path / "offered.csv", 20, extra_lines=[f"{USER_ID},2026-13-01,BAD MONTH,1.00,x"])
    report = tmp_path / "rejected.csv"
    controller, terminal = os.openpty()
    try:
        cli = Cli(str(path), "--kind", "transactions", "--rejections", str(report), stdin=terminal)
        job_id = _registered_id(cli)
        cli.wait_for("rows")
        cli.process.send_signal(signal.SIGINT)
        cli.wait_for(f"cancel import job {job_id}?")
        os.write(controller, b"y\n")
        code, stderr = cli.finish()
    finally:
        os.close(controller)
        os.close(terminal)
    assert code == 1, stderr
    assert f"import {job_id} cancelled" in stderr
    assert report.read_text().splitlines() == [REPORT_HEADER]  # nothing ran: nothing rejected yet
    job = get_import(conn, job_id)
    assert job is not None and job.state == "cancelled"


def test_cancel_refuses_what_it_cannot_cancel(conn: psycopg.Connection[Any], tmp_path: Path) -> None:
    unknown = Cli("cancel", "999999999")
    assert unknown.finish()[0] == 2 and "no import job 999999999" in "".join(unknown.seen)
    no_id = Cli("cancel")
    code, stderr = no_id.finish()
    assert code == 2 and "which import?" in stderr
