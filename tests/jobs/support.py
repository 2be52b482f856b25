"""CSV files and database read-backs for the import tests."""

from __future__ import annotations

import csv
import io
import threading
from pathlib import Path
from typing import Any

import psycopg

from jobs.imports.service import ImportJob, create_import, get_import
from jobs.inline import InlineRun
from kamioi.settings import Settings
from tests.jobs.conftest import JOBS_ENV, USER_ID, unique_tag, wait_until

DESCRIPTORS = (
    "SQ *BLUE BOTTLE COFFEE San Francisco CA",
    "TST* SHAKE SHACK 1234 NEW YORK NY",
    "AMZN Mktp US*2K1AB0C9Z",
    "STARBUCKS STORE 00123 SEATTLE WA",
    "PAYPAL *NETFLIX 4029357733 CA",
    "POS DEBIT 0314 WALMART #4521 BENTONVILLE AR",
)


def jobs_settings(**overrides: str) -> Settings:
    return Settings(**{**JOBS_ENV, **overrides})  # type: ignore[arg-type]


def transactions_csv(path: Path, rows: int, *, extra_lines: list[str] | None = None) -> Path:
    """`rows` good purchases (a unique tag in the ignored `note` column makes every file new), then
    `extra_lines` verbatim."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["user_id", "date", "descriptor", "amount", "note"])
    tag = unique_tag()
    for n in range(rows):
        day = 1 + n % 28
        writer.writerow(
            [USER_ID, f"2026-03-{day:02d}", f"{DESCRIPTORS[n % 6]} {n}", f"{1 + n % 50}.{n % 100:02d}", tag]
        )
    text = out.getvalue() + "".join(line + "\n" for line in extra_lines or [])
    path.write_text(text, encoding="utf-8")
    return path


def mappings_csv(path: Path, rows: int) -> Path:
    """Rows for 7 merchants (a per-file word keeps the keys new); every third row approved."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["merchant_name", "company_name", "ticker", "category", "confidence", "status", "note"])
    word = unique_tag().translate(str.maketrans("0123456789", "ghijklmnop")).upper()
    for n in range(rows):
        writer.writerow(
            [f"{word} {'ABCDEFG'[n % 7]}SHOP STORE #{n} SEATTLE WA", f"Company {n % 7}", "SBUX", "FOOD_AND_DRINK",
             "0.9", "approved" if n % 3 == 0 else "pending", word]
        )  # fmt: skip
    path.write_text(out.getvalue(), encoding="utf-8")
    return path


def register(conn: psycopg.Connection[Any], path: Path, kind: str = "transactions", force: bool = False) -> ImportJob:
    return create_import(conn, kind=kind, file=path, force=force)


def run_inline(db_url: str, job: ImportJob, chunk_rows: int | None = None) -> str | None:
    assert job.queue_job_id is not None
    overrides = {"KAMIOI_IMPORT_CHUNK_ROWS": str(chunk_rows)} if chunk_rows else {}
    return InlineRun(db_url, job.queue_job_id, jobs_settings(**overrides)).run()


def wait_finished(conn: psycopg.Connection[Any], job_id: int, timeout: float = 30) -> ImportJob:
    def finished() -> ImportJob | None:
        job = get_import(conn, job_id)
        return job if job is not None and job.finished else None

    return wait_until(finished, timeout, f"import {job_id} to finish")  # type: ignore[no-any-return]


def imported_transactions(conn: psycopg.Connection[Any], job_id: int) -> list[tuple[Any, ...]]:
    return conn.execute(
        "select import_line, user_id, txn_date, descriptor, merchant_key, amount, round_up, status"
        " from public.transactions where import_job_id = %s order by import_line",
        (job_id,),
    ).fetchall()


def rejections(conn: psycopg.Connection[Any], job_id: int) -> list[tuple[Any, ...]]:
    return conn.execute(
        "select line_number, column_name, reason, raw_line from public.import_rejections"
        " where import_job_id = %s order by line_number, column_name nulls first",
        (job_id,),
    ).fetchall()


def backend_waiting_on_lock(conn: psycopg.Connection[Any], query_part: str, blocker: int | None = None) -> bool:
    """Whether a backend running a query containing `query_part` waits on a lock (held by the backend
    `blocker`, when given)."""
    row = conn.execute(
        "select count(*) from pg_stat_activity where wait_event_type = 'Lock' and query ilike %s"
        " and (%s::int is null or %s::int = any (pg_blocking_pids(pid)))",
        (f"%{query_part}%", blocker, blocker),
    ).fetchone()
    return bool(row and row[0])


class ChunkGate:
    """Holds a worker's import at chunk boundaries with locks, so a test knows where it stands.

    The gate is the job row's lock, which each chunk's checkpoint update (its last statement before
    COMMIT) needs. The worker's claim and start also update the job row, so the gate only closes
    once the first chunk is under way: until then that chunk waits at its first shared write, the
    claim of its rows' identities in the job's seen table (created here so it can be locked).
    While one chunk waits at the gate, the worker has usually prepared the next one already.
    """

    def __init__(
        self, db_url: str, watcher: psycopg.Connection[Any], import_job_id: int, table: str = "public.transactions"
    ) -> None:
        self.merge_lock = f"lock table {table} in share mode"
        self.merge_statement = f"insert into {table}"
        self.db_url = db_url
        self.watcher = watcher
        self.import_job_id = import_job_id
        self.seen = f"private.import_seen_{import_job_id}"
        self._gate = psycopg.connect(db_url)
        self._early = psycopg.connect(db_url)
        self._early.execute(f"create table {self.seen} (row_key bigint primary key, line_number bigint not null)")
        self._early.commit()
        self._early.execute(f"lock table {self.seen} in share mode")

    def wait_closed_on(self) -> None:
        """Wait until the first chunk waits at the gate."""
        self._wait_blocked(f"insert into {self.seen}", self._early)
        self._gate.execute("select 1 from public.import_jobs where id = %s for update", (self.import_job_id,))
        self._early.close()
        self._wait_blocked("update public.import_jobs", self._gate)

    def let_through(self, chunks: int) -> None:
        """Let `chunks` chunks commit, one at a time: the next one is held in its merge (a lock on
        the target table) while the gate closes again, then waits at the gate."""
        for _ in range(chunks):
            holder = self.block_next_chunk_at(self.merge_lock, self.merge_statement)
            self._gate.execute("select 1 from public.import_jobs where id = %s for update", (self.import_job_id,))
            holder.close()
            self._wait_blocked("update public.import_jobs", self._gate)

    def block_next_chunk_at(self, lock_sql: str, statement: str) -> psycopg.Connection[Any]:
        """Open the gate for good, and stop a later chunk where `lock_sql` blocks `statement`.
        Returns the connection holding that lock (close it to release)."""
        holder = psycopg.connect(self.db_url)
        # The lock waits for the chunks in flight, which finish once the gate opens; it is queued
        # first, so the chunk after them waits for it.
        locker = threading.Thread(target=holder.execute, args=(lock_sql,))
        locker.start()
        wait_until(lambda: self._is_waiting(holder), what="the lock request to queue")
        self._gate.commit()
        locker.join(timeout=15)
        self._wait_blocked(statement, holder)
        return holder

    def open(self) -> None:
        self._gate.close()
        self._early.close()

    def processed(self) -> int:
        row = self.watcher.execute(
            "select processed_rows from public.import_jobs where id = %s", (self.import_job_id,)
        ).fetchone()
        return int(row[0]) if row else 0

    def _is_waiting(self, conn: psycopg.Connection[Any]) -> bool:
        row = self.watcher.execute(
            "select wait_event_type = 'Lock' from pg_stat_activity where pid = %s", (conn.info.backend_pid,)
        ).fetchone()
        return bool(row and row[0])

    def _wait_blocked(self, statement: str, by: psycopg.Connection[Any]) -> None:
        wait_until(
            lambda: backend_waiting_on_lock(self.watcher, statement, by.info.backend_pid),
            what=f"a worker blocked in {statement}",
        )
