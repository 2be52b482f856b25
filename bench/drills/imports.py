"""Drill imports: realistic files, registered under the drill's job kind, and compared row by row
with a clean run of the same file."""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from bench.drills.handlers import DRILL_IMPORT
from cli.generate import TRANSACTION_COLUMNS, generate_transactions
from jobs.imports.handler import IMPORT_JOB_KIND
from jobs.imports.service import TERMINAL_STATES, ImportJob, create_import, get_import
from jobs.inline import InlineRun
from kamioi.settings import Settings

# Both seeded users own every drill row (a file's users must exist).
DRILL_USERS = 2


def write_transactions_file(path: Path, rows: int, seed: int, bad_fraction: float = 0.02) -> Path:
    """Streamed: realistic purchases with a share of broken and duplicate rows (Zipf repeats)."""
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(TRANSACTION_COLUMNS)
        writer.writerows(generate_transactions(rows, seed=seed, bad_fraction=bad_fraction, users=DRILL_USERS))
    return path


def register(conn: psycopg.Connection[Any], path: Path, kind: str = DRILL_IMPORT) -> ImportJob:
    """Register an import of `path` (again, if it was imported before) whose queue job has `kind`.

    A drill's job gets the drill kind in the creating transaction, so only the drill's worker (the
    one it kills) can claim it, never a stack's regular worker. The import's state mirror follows
    kind 'import' only: `settle` records the outcome once the queue job has one."""
    with conn.transaction():
        job = create_import(conn, kind="transactions", file=path, force=True)
        conn.execute("update private.job_queue set kind = %s where id = %s", (kind, job.queue_job_id))
    return job


def settle(conn: psycopg.Connection[Any], job: ImportJob, timeout_s: float) -> ImportJob:
    """Wait for a drill import's queue job to end, then replay its final transition under kind
    'import', so private.mirror_import_queue_state records it as it does for every import."""
    assert job.queue_job_id is not None
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        row = conn.execute("select state from private.job_queue where id = %s", (job.queue_job_id,)).fetchone()
        if row is not None and row[0] in TERMINAL_STATES:
            with conn.transaction():
                conn.execute(
                    "update private.job_queue set kind = 'import', state = 'running', lease_token = gen_random_uuid()"
                    " where id = %s",
                    (job.queue_job_id,),
                )
                conn.execute(
                    "update private.job_queue set state = %s, lease_token = null where id = %s",
                    (row[0], job.queue_job_id),
                )
            break
        time.sleep(0.1)
    return current(conn, job.id)


def run_inline(conn: psycopg.Connection[Any], db_url: str, path: Path, chunk_rows: int) -> ImportJob:
    """The clean run: the same file imported in this process, no faults (a stack worker that claims
    it first runs it just as well)."""
    job = register(conn, path, kind=IMPORT_JOB_KIND)
    assert job.queue_job_id is not None
    settings = Settings(KAMIOI_IMPORT_CHUNK_ROWS=chunk_rows, KAMIOI_JOBS_LEASE_SECONDS=30.0)
    InlineRun(db_url, job.queue_job_id, settings).run()
    return wait_finished(conn, job.id, 600)


def current(conn: psycopg.Connection[Any], job_id: int) -> ImportJob:
    job = get_import(conn, job_id)
    assert job is not None
    return job


def wait_finished(conn: psycopg.Connection[Any], job_id: int, timeout_s: float) -> ImportJob:
    deadline = time.monotonic() + timeout_s
    while True:
        job = current(conn, job_id)
        if job.finished or time.monotonic() > deadline:
            return job
        time.sleep(0.1)


def wait_processed(conn: psycopg.Connection[Any], job_id: int, at_least: int, timeout_s: float) -> ImportJob:
    """Wait until `at_least` rows are committed (or the job ended)."""
    deadline = time.monotonic() + timeout_s
    while True:
        job = current(conn, job_id)
        if job.finished or job.processed_rows >= at_least or time.monotonic() > deadline:
            return job
        time.sleep(0.01)


def lease_holder_pid(conn: psycopg.Connection[Any], queue_job_id: int) -> int | None:
    """The pid in locked_by (host:pid:suffix) of a running job, or None."""
    row = conn.execute(
        "select locked_by from private.job_queue where id = %s and state = 'running'", (queue_job_id,)
    ).fetchone()
    if row is None or row[0] is None:
        return None
    parts = str(row[0]).split(":")
    return int(parts[1]) if len(parts) > 2 and parts[1].isdigit() else None


@dataclass(frozen=True)
class ImportSnapshot:
    """What an import wrote, without the ids and timestamps that differ between runs."""

    counters: tuple[int, int, int, int]  # processed, inserted, rejected, total
    rows: list[tuple[Any, ...]]
    rejections: list[tuple[Any, ...]]

    @classmethod
    def of(cls, conn: psycopg.Connection[Any], job: ImportJob) -> ImportSnapshot:
        rows = conn.execute(
            "select import_line, user_id, txn_date, descriptor, merchant_key, amount, round_up"
            " from public.transactions where import_job_id = %s order by import_line",
            (job.id,),
        ).fetchall()
        rejections = conn.execute(
            "select line_number, column_name, reason from public.import_rejections"
            " where import_job_id = %s order by line_number, column_name nulls first, reason",
            (job.id,),
        ).fetchall()
        return cls((job.processed_rows, job.inserted_rows, job.rejected_rows, job.total_rows or 0), rows, rejections)

    def differences(self, clean: ImportSnapshot) -> list[str]:
        """Empty when this run wrote exactly what the clean run wrote."""
        found: list[str] = []
        if self.counters != clean.counters:
            found.append(f"counters {self.counters} != clean {clean.counters}")
        lines = [row[0] for row in self.rows]
        if len(lines) != len(set(lines)):
            found.append(f"{len(lines) - len(set(lines))} file lines imported twice")
        if self.rows != clean.rows:
            missing = len(set(clean.rows) - set(self.rows))
            extra = len(set(self.rows) - set(clean.rows))
            found.append(f"rows differ: {missing} missing, {extra} extra (of {len(clean.rows)})")
        if self.rejections != clean.rejections:
            found.append(f"rejections differ: {len(self.rejections)} vs clean {len(clean.rejections)}")
        return found
