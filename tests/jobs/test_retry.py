"""A real import failing part-way (a database fault outlasts its retries), then `kamioi import retry`:
it resumes at its checkpoint and ends with exactly the rows and rejections of a clean run, duplicates
of lines before the failure included."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from jobs.imports.service import get_import
from kamioi.settings import Settings
from tests.jobs.conftest import CHUNK_ROWS, USER_ID, Workers, unique_tag
from tests.jobs.support import imported_transactions, register, rejections, run_inline, wait_finished
from tests.jobs.test_cli import kamioi_import

pytestmark = pytest.mark.usefixtures("stack_worker_paused")

POISON_LINE = 3 * CHUNK_ROWS + 12  # in the fourth chunk: three chunks commit before the fault


class DiskFullOn:
    """A fault in the database: inserting a transaction whose descriptor holds `tag` fails as a
    full disk would (SQLSTATE 53100), until `clear()`."""

    def __init__(self, conn: psycopg.Connection[Any], tag: str) -> None:
        self.conn = conn
        self.name = f"private.test_disk_full_{tag.lower()}"
        conn.execute(
            f"create function {self.name}() returns trigger language plpgsql as $$"
            " begin raise exception 'could not extend file: No space left on device' using errcode = '53100'; end $$"
        )
        conn.execute(
            f"create trigger test_disk_full_{tag.lower()} before insert on public.transactions for each row"
            f" when (new.descriptor like '%%POISON {tag}%%') execute function {self.name}()"
        )

    def clear(self) -> None:
        self.conn.execute(f"drop function if exists {self.name}() cascade")


@pytest.fixture
def tag() -> str:
    return unique_tag().upper()


@pytest.fixture
def disk_full(conn: psycopg.Connection[Any], tag: str) -> Iterator[DiskFullOn]:
    fault = DiskFullOn(conn, tag)
    try:
        yield fault
    finally:
        fault.clear()


def faulty_file(path: Path, tag: str) -> Path:
    """Good rows, the poisoned one mid-file, then a duplicate of line 5 and a bad date at the end."""
    rows = [f"{USER_ID},2026-03-{1 + n % 28:02d},SHOP {tag} {n},{n + 1}.25" for n in range(6 * CHUNK_ROWS)]
    rows[POISON_LINE - 2] = f"{USER_ID},2026-03-05,POISON {tag},3.00"
    rows += [rows[3], f"{USER_ID},2026-02-30,BAD DATE {tag},1.00"]
    path.write_text("user_id,txn_date,descriptor,amount\n" + "".join(f"{r}\n" for r in rows), encoding="utf-8")
    return path


def test_a_failed_import_retried_ends_like_a_clean_run(
    conn: psycopg.Connection[Any],
    settings: Settings,
    workers: Workers,
    tmp_path: Path,
    tag: str,
    disk_full: DiskFullOn,
) -> None:
    path = faulty_file(tmp_path / "faulty.csv", tag)
    total = 6 * CHUNK_ROWS + 2
    job = register(conn, path)
    workers.start("import")
    failed = wait_finished(conn, job.id)
    assert (failed.state, failed.attempts) == ("failed", 5)
    assert failed.error is not None and "No space left on device" in failed.error
    assert failed.processed_rows == 3 * CHUNK_ROWS  # the chunks before the fault stay committed
    assert len(imported_transactions(conn, job.id)) == 3 * CHUNK_ROWS

    disk_full.clear()  # the operator frees space, then retries
    retried = kamioi_import("retry", str(job.id), "--rejections", str(tmp_path / "rejected.csv"))
    assert retried.returncode == 0, retried.stderr
    assert f"import job {job.id} queued again: resumes at line {3 * CHUNK_ROWS + 2}" in retried.stderr
    assert f"succeeded: {total} rows, {total - 2} inserted, 0 updated, 2 rejected" in retried.stderr
    assert "seen table rebuilt" in workers.logs()
    done = get_import(conn, job.id)
    assert done is not None and (done.state, done.attempts, done.error) == ("succeeded", 6, None)

    workers.kill_all()  # so that no worker takes the clean run
    clean = register(conn, path, force=True)
    assert run_inline(settings.db_url, clean) == "succeeded"
    clean_done = get_import(conn, clean.id)
    assert clean_done is not None
    assert imported_transactions(conn, job.id) == imported_transactions(conn, clean.id)
    assert rejections(conn, job.id) == rejections(conn, clean.id)
    assert [r[:3] for r in rejections(conn, job.id)] == [
        (total, None, "duplicate of line 5"),
        (total + 1, "txn_date", "not a date (YYYY-MM-DD or M/D/YYYY)"),
    ]
    counts = ("processed_rows", "inserted_rows", "rejected_rows", "total_rows", "checkpoint_offset")
    assert [getattr(done, c) for c in counts] == [getattr(clean_done, c) for c in counts]
