"""`kamioi import`: the operator's command, as a real process against the local stack."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest

from jobs.queue import live_workers
from tests.jobs.conftest import JOBS_ENV, LEASE_SECONDS, PROJECT_ROOT, USER_ID, Workers, wait_until
from tests.jobs.support import mappings_csv, transactions_csv

pytestmark = pytest.mark.usefixtures("stack_worker_paused")


def kamioi_import(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kamioi", "import", *args],
        cwd=PROJECT_ROOT,
        env={**os.environ, **JOBS_ENV},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_inline_import_reports_progress_and_writes_the_rejections_report(tmp_path: Path) -> None:
    path = transactions_csv(tmp_path / "cli.csv", 40, extra_lines=[f"{USER_ID},2026-13-01,BAD MONTH,1.00,x"])
    report = tmp_path / "rejected.csv"
    done = kamioi_import(str(path), "--kind", "transactions", "--inline", "--rejections", str(report))
    assert done.returncode == 0, done.stderr
    assert "registered (transactions" in done.stderr
    assert "41/41 rows" in done.stderr  # the progress line at the end (stderr is not a terminal here)
    assert "succeeded: 41 rows, 40 inserted, 0 updated, 1 rejected" in done.stderr
    assert report.read_text().splitlines()[1].startswith("42,txn_date,not a date")

    again = kamioi_import(str(path), "--kind", "transactions", "--inline")
    assert again.returncode == 2
    assert "already imported" in again.stderr and "--force" in again.stderr


def test_waits_for_a_worker_and_fails_with_the_jobs_error(
    conn: psycopg.Connection[Any], workers: Workers, tmp_path: Path
) -> None:
    wait_until(lambda: live_workers(conn, "import", 3 * LEASE_SECONDS) == 0, what="no live import worker")
    path = transactions_csv(tmp_path / "queued.csv", 30)
    refused = kamioi_import(str(path), "--kind", "transactions")
    assert refused.returncode == 2 and "no worker is running" in refused.stderr

    workers.start("import")
    wait_until(lambda: live_workers(conn, "import", 10), what="worker registration")
    done = kamioi_import(str(path), "--kind", "transactions")
    assert done.returncode == 0, done.stderr
    assert "succeeded: 30 rows, 30 inserted" in done.stderr

    wrong = kamioi_import(str(mappings_csv(tmp_path / "m.csv", 5)), "--kind", "transactions")
    assert wrong.returncode == 1
    assert "failed" in wrong.stderr and "looks like a mappings file" in wrong.stderr
