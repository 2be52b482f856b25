"""`kamioi import` and `kamioi import retry`: the operator's commands, as real processes against the
local stack (a real failed import retried: tests/jobs/test_retry.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest

from jobs.imports.service import cancel_import
from jobs.queue import live_workers
from kamioi.settings import Settings
from tests.jobs.conftest import JOBS_ENV, LEASE_SECONDS, PROJECT_ROOT, USER_ID, Workers, wait_until
from tests.jobs.support import mappings_csv, register, run_inline, transactions_csv

pytestmark = pytest.mark.usefixtures("stack_worker_paused")


def kamioi_import(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", "import", *args],
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


def test_retry_runs_a_cancelled_import_to_the_end(conn: psycopg.Connection[Any], tmp_path: Path) -> None:
    job = register(conn, transactions_csv(tmp_path / "cancelled.csv", 30))
    cancel_import(conn, job.id)
    retried = kamioi_import("retry", str(job.id), "--inline")
    assert retried.returncode == 0, retried.stderr
    assert f"import job {job.id} queued again: resumes at the start (0 rows done)" in retried.stderr
    assert "succeeded: 30 rows, 30 inserted" in retried.stderr


def test_retry_refuses_what_it_cannot_retry(conn: psycopg.Connection[Any], settings: Settings, tmp_path: Path) -> None:
    path = transactions_csv(tmp_path / "done.csv", 3)
    job = register(conn, path)
    assert run_inline(settings.db_url, job) == "succeeded"
    done = kamioi_import("retry", str(job.id), "--inline")
    assert done.returncode == 2
    assert f"import job {job.id} has succeeded: only a failed or cancelled import can be retried" in done.stderr
    unknown = kamioi_import("retry", "999999999", "--inline")
    assert (unknown.returncode, unknown.stderr.strip()) == (2, "kamioi import retry: no import job 999999999")
    no_id = kamioi_import("retry", "--inline")
    assert no_id.returncode == 2 and "which import?" in no_id.stderr
    no_kind = kamioi_import(str(path), "--inline")
    assert no_kind.returncode == 2 and "--kind mappings|transactions is required" in no_kind.stderr


def test_export_follows_the_job_and_prints_its_link(settings: Settings) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "cli", "export", "users", "--filter", "role=admin"],
        cwd=PROJECT_ROOT, env={**os.environ, **JOBS_ENV}, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "no worker serves exports.csv jobs: running it here" in done.stderr  # the stack's worker is paused
    rows = [line for line in done.stderr.splitlines() if line.rstrip().endswith(".csv")]
    assert rows and "rows:" in rows[-1]
    assert done.stdout.strip().startswith("http")  # the signed link of the Storage copy
    Path(rows[-1].split("rows: ", 1)[1].strip()).unlink()
    refused = subprocess.run(
        [sys.executable, "-m", "cli", "export", "transactions", "--filter", "colour=red"],
        cwd=PROJECT_ROOT, env={**os.environ, **JOBS_ENV}, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert refused.returncode == 2 and "unknown filter: colour" in refused.stderr
