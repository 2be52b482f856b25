"""Bulk imports end to end: real files, real worker processes, the local stack's database."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import psycopg
import pytest

from jobs.imports.report import iter_rejections_csv
from jobs.imports.service import DuplicateImport, cancel_import, get_import
from kamioi.db import postgrest_request
from kamioi.settings import Settings
from tests.jobs.conftest import ADMIN_ID, CHUNK_ROWS, USER_ID, Workers, wait_until
from tests.jobs.support import (
    ChunkGate,
    backend_waiting_on_lock,
    imported_transactions,
    mappings_csv,
    register,
    rejections,
    run_inline,
    transactions_csv,
    wait_finished,
)

pytestmark = pytest.mark.usefixtures("stack_worker_paused")

GOOD = f"{USER_ID},2026-03-02,SQ *BLUE BOTTLE COFFEE San Francisco CA,4.75"


def test_good_transactions_file_lands_through_a_worker(
    conn: psycopg.Connection[Any], workers: Workers, tmp_path: Path
) -> None:
    path = transactions_csv(tmp_path / "good.csv", 95)
    workers.start("import")
    job = wait_finished(conn, register(conn, path).id)
    assert (job.state, job.processed_rows, job.inserted_rows, job.rejected_rows) == ("succeeded", 95, 95, 0)
    assert (job.total_rows, job.total_rows_exact, job.checkpoint_offset) == (95, True, path.stat().st_size)
    assert job.columns == {"used": ["user_id", "txn_date", "descriptor", "amount"], "ignored": ["note"]}
    rows = imported_transactions(conn, job.id)
    assert [r[0] for r in rows] == list(range(2, 97))  # line numbers, header = line 1
    first = rows[0]
    assert first[3:] == ("SQ *BLUE BOTTLE COFFEE San Francisco CA 0", "blue bottle", 1, 0, "pending")


def test_good_mappings_file_fills_llm_mappings_and_the_merchant_registry(
    conn: psycopg.Connection[Any], settings: Settings, tmp_path: Path
) -> None:
    job = register(conn, mappings_csv(tmp_path / "mappings.csv", 42), kind="mappings")
    assert run_inline(settings.db_url, job) == "succeeded"
    job = get_import(conn, job.id)  # type: ignore[assignment]
    assert (job.inserted_rows, job.rejected_rows) == (42, 0)
    keys = conn.execute(
        "select count(distinct merchant_key), count(*) filter (where status = 'approved')"
        " from public.llm_mappings where import_job_id = %s",
        (job.id,),
    ).fetchone()
    assert keys == (7, 14)
    # Every key is registered; approved rows are in force (the newest approved per key).
    in_force = conn.execute(
        "select count(*) from public.merchants as m join public.llm_mappings as l"
        " on l.id = m.mapping_id and l.created_at = m.mapping_created_at"
        " where l.import_job_id = %s and l.status = 'approved'",
        (job.id,),
    ).fetchone()
    assert in_force == (7,)


def test_malformed_rows_are_reported_by_line_and_every_good_row_lands(
    conn: psycopg.Connection[Any], settings: Settings, tmp_path: Path
) -> None:
    bad = {
        12: (f"{USER_ID},2026-02-30,BAD DATE SHOP,3.00", "txn_date", "not a date"),
        13: (f"{USER_ID},yesterday,BAD DATE SHOP,3.00", "txn_date", "not a date"),
        14: (f"{USER_ID},2026-03-01,BAD AMOUNT SHOP,12.345", "amount", "not an amount"),
        15: (f"{USER_ID},2026-03-01,BAD AMOUNT SHOP,twelve", "amount", "not an amount"),
        16: (f"{USER_ID},2026-03-01,ZERO SHOP,0.00", "amount", "zero"),
        17: (f"{USER_ID},2026-03-01,MISSING COLUMN", None, "expected 5 fields, found 3"),
        18: (f'{USER_ID},2026-03-01,"UNTERMINATED QUOTE,3.00', None, "malformed CSV"),
        19: (f'{USER_ID},2026-03-01,"STRAY"QUOTE,3.00', None, "malformed CSV"),
        20: (f"{USER_ID},2026-03-01,{'H' * 150_000},3.00", None, "row longer than 65536 bytes"),
        21: (f"{USER_ID},2026-03-01,{'L' * 600},3.00", "descriptor", "longer than 500"),
        22: ("not-a-user,2026-03-01,NO USER SHOP,3.00", "user_id", "not a UUID"),
        23: ("00000000-0000-4000-a000-0000000000ff,2026-03-01,GHOST SHOP,3.00", "user_id", "unknown user"),
        24: (f"{USER_ID},1999-12-31,OLD SHOP,3.00", "txn_date", "before 2000-01-01"),
        25: (f"{USER_ID},2026-03-01,,3.00", "descriptor", "required"),
        26: (GOOD, None, "duplicate of line 11"),
    }
    lines = [GOOD, *(bad[n][0] for n in sorted(bad)), f'{USER_ID},3/7/2026,"MULTI\nLINE SHOP","$1,234.50"']
    path = transactions_csv(tmp_path / "bad.csv", 9, extra_lines=[line + ",x" for line in lines])
    with path.open("ab") as f:  # after the multi-line record (lines 27-28): bad UTF-8, a NUL byte, a good row
        f.write(f"{USER_ID},2026-03-01,CAF\xe9,3.00,x\n".encode("latin-1"))
        f.write(f"{USER_ID},2026-03-01,NUL\x00SHOP,3.00,x\n".encode())
        f.write(f"{USER_ID},2026-03-03,AFTER THE BAD ONES,7.00,x\n".encode())
    bad[17] = (bad[17][0], None, "expected 5 fields, found 4")  # the ",x" suffix adds a field
    bad[29] = ("", None, "not valid UTF-8")
    bad[30] = ("", None, "contains a NUL byte")

    job = register(conn, path)
    assert run_inline(settings.db_url, job) == "succeeded"
    job = get_import(conn, job.id)  # type: ignore[assignment]
    found = rejections(conn, job.id)
    assert sorted({line for line, *_ in found}) == sorted(bad)
    for line, column, reason, raw in found:
        assert column == bad[line][1], (line, column, reason)
        assert bad[line][2] in reason, (line, reason)
        assert raw and len(raw) <= 1000
    landed = [r[0] for r in imported_transactions(conn, job.id)]
    assert landed == [*range(2, 12), 27, 31]  # 9 generated + GOOD (line 11), the multi-line row, the last
    multi_line = imported_transactions(conn, job.id)[-2]
    assert (str(multi_line[2]), multi_line[3], str(multi_line[5])) == ("2026-03-07", "MULTI\nLINE SHOP", "1234.50")
    assert (job.processed_rows, job.inserted_rows, job.rejected_rows) == (12 + len(bad), 12, len(bad))


def test_empty_file_header_only_and_wrong_kind(
    conn: psycopg.Connection[Any], settings: Settings, tmp_path: Path
) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    job = register(conn, empty, force=True)  # the same bytes in every run: force past earlier runs
    assert run_inline(settings.db_url, job) == "failed"
    failed = get_import(conn, job.id)
    assert failed is not None and failed.attempts == 1 and "file is empty" in (failed.error or "")

    header_only = transactions_csv(tmp_path / "header.csv", 0)
    job = register(conn, header_only, force=True)
    assert run_inline(settings.db_url, job) == "succeeded"
    done = get_import(conn, job.id)
    assert done is not None and (done.processed_rows, done.total_rows, done.total_rows_exact) == (0, 0, True)

    wrong = register(conn, mappings_csv(tmp_path / "m.csv", 3), kind="transactions")
    assert run_inline(settings.db_url, wrong) == "failed"
    error = get_import(conn, wrong.id).error or ""  # type: ignore[union-attr]
    assert "lacks required column(s) for a transactions import: user_id, txn_date, amount" in error
    assert "this looks like a mappings file" in error


def test_same_file_again_is_refused_unless_forced(
    conn: psycopg.Connection[Any], settings: Settings, tmp_path: Path
) -> None:
    path = transactions_csv(tmp_path / "again.csv", 5)
    first = register(conn, path)
    with pytest.raises(DuplicateImport) as refused:  # queued counts too: no double click imports twice
        register(conn, path)
    assert refused.value.existing_job_id == first.id
    run_inline(settings.db_url, first)
    with pytest.raises(DuplicateImport, match=f"already imported as transactions: import job {first.id} has succeeded"):
        register(conn, path)
    other_kind = register(conn, path, kind="mappings")  # another kind is another import
    assert cancel_import(conn, other_kind.id).state == "cancelled"
    again = register(conn, path, force=True)
    assert run_inline(settings.db_url, again) == "succeeded"
    assert len(imported_transactions(conn, again.id)) == 5


def test_cancel_mid_file_keeps_committed_chunks_and_the_tables_consistent(
    conn: psycopg.Connection[Any], settings: Settings, workers: Workers, tmp_path: Path
) -> None:
    path = transactions_csv(tmp_path / "cancel.csv", CHUNK_ROWS * 10)
    job = register(conn, path)
    gate = ChunkGate(settings.db_url, conn, job.id)
    workers.start("import")
    gate.wait_closed_on()
    gate.let_through(1)
    holder = gate.block_next_chunk_at(MERGE_LOCK, "insert into public.transactions")
    in_flight = gate.processed() + CHUNK_ROWS
    assert cancel_import(conn, job.id).cancel_requested  # while a chunk is mid-merge
    holder.close()
    gate.open()
    done = wait_finished(conn, job.id)
    assert (done.state, done.processed_rows) == ("cancelled", in_flight)  # the chunk in flight commits
    assert done.processed_rows < CHUNK_ROWS * 10
    rows = imported_transactions(conn, job.id)
    assert len(rows) == done.inserted_rows == done.processed_rows
    assert [r[0] for r in rows] == list(range(2, 2 + len(rows)))
    assert cancel_import(conn, job.id).state == "cancelled"  # cancelling again changes nothing


def _clean_run(
    conn: psycopg.Connection[Any], settings: Settings, path: Path, chunk_rows: int | None = None
) -> tuple[list[Any], list[Any]]:
    """The same file imported again in one uninterrupted run (in this process)."""
    job = register(conn, path, force=True)
    assert run_inline(settings.db_url, job, chunk_rows) == "succeeded"
    return imported_transactions(conn, job.id), rejections(conn, job.id)


def _file_with_some_bad_rows(path: Path, rows: int = CHUNK_ROWS * 8) -> Path:
    extra = [f"{USER_ID},2026-02-31,BAD,1.00,x", GOOD + ",x", GOOD + ",x"]
    return transactions_csv(path, rows, extra_lines=extra)


MERGE_LOCK = "lock table public.transactions in share mode"


@pytest.mark.parametrize("where", ["before the merge", "in the merge", "at the checkpoint"])
def test_kill_9_mid_chunk_then_restart_gives_exactly_the_rows_of_a_clean_run(
    where: str, conn: psycopg.Connection[Any], settings: Settings, workers: Workers, tmp_path: Path
) -> None:
    path = _file_with_some_bad_rows(tmp_path / "crash.csv")
    job = register(conn, path)
    gate = ChunkGate(settings.db_url, conn, job.id)
    worker = workers.start("import")
    gate.wait_closed_on()
    gate.let_through(2)  # three chunks committed, the fourth waits at its checkpoint update
    holder = None
    if where == "before the merge":  # staged and checked, claiming its identities in the seen table
        seen = f"private.import_seen_{job.id}"
        holder = gate.block_next_chunk_at(f"lock table {seen} in share mode", f"insert into {seen}")
    elif where == "in the merge":
        holder = gate.block_next_chunk_at(MERGE_LOCK, "insert into public.transactions")
    committed = gate.processed()
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    if holder is not None:
        holder.close()
    gate.open()
    crashed = get_import(conn, job.id)
    assert crashed is not None and crashed.state == "running"
    assert crashed.processed_rows == committed and 2 * CHUNK_ROWS <= committed < CHUNK_ROWS * 8
    workers.start("import")
    resumed = wait_finished(conn, job.id)
    assert (resumed.state, resumed.attempts) == ("succeeded", 2)
    workers.kill_all()  # so that no worker takes the clean run
    clean_rows, clean_rejections = _clean_run(conn, settings, path)
    assert imported_transactions(conn, job.id) == clean_rows
    assert rejections(conn, job.id) == clean_rejections
    assert (resumed.processed_rows, resumed.rejected_rows) == (CHUNK_ROWS * 8 + 3, 2)  # bad date, duplicate


def test_kill_9_at_a_random_moment_with_other_chunk_sizes(
    conn: psycopg.Connection[Any], settings: Settings, workers: Workers, tmp_path: Path
) -> None:
    path = _file_with_some_bad_rows(tmp_path / "random.csv", rows=2000)
    job = register(conn, path)
    worker = workers.start("import", env={"KAMIOI_IMPORT_CHUNK_ROWS": "100"})
    wait_until(lambda: get_import(conn, job.id).processed_rows >= 500, what="5 chunks")  # type: ignore[union-attr]
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    workers.start("import", env={"KAMIOI_IMPORT_CHUNK_ROWS": "170"})
    resumed = wait_finished(conn, job.id)
    assert resumed.state == "succeeded"
    workers.kill_all()  # so that no worker takes the clean run
    clean_rows, clean_rejections = _clean_run(conn, settings, path, chunk_rows=333)
    assert imported_transactions(conn, job.id) == clean_rows
    assert rejections(conn, job.id) == clean_rejections


def test_a_stalled_worker_that_lost_its_lease_cannot_commit_a_chunk_twice(
    conn: psycopg.Connection[Any], settings: Settings, workers: Workers, tmp_path: Path
) -> None:
    """Worker A stalls mid-chunk (SIGSTOP: a long pause or a partition) holding uncommitted rows; its
    lease expires and worker B redoes the same chunk; when A wakes up, its commit must not land."""
    path = _file_with_some_bad_rows(tmp_path / "split.csv")
    job = register(conn, path)
    gate = ChunkGate(settings.db_url, conn, job.id)
    stalled = workers.start("import")
    gate.wait_closed_on()
    gate.let_through(2)
    seen = f"private.import_seen_{job.id}"
    holder = gate.block_next_chunk_at(f"lock table {seen} in share mode", f"insert into {seen}")
    stalled.send_signal(signal.SIGSTOP)
    holder.close()  # A's backend writes chunk 4's first rows, then waits for its stopped client
    gate.open()
    workers.start("import")
    wait_until(
        lambda: (
            conn.execute(
                "select locked_by not like %s from private.job_queue where id = %s and state = 'running'",
                (f"%:{stalled.pid}:%", job.queue_job_id),
            ).fetchone()
            == (True,)
        ),
        what="B to claim the job",
    )
    wait_until(lambda: backend_waiting_on_lock(conn, f"insert into {seen}"), what="B to wait on A's rows")
    stalled.send_signal(signal.SIGCONT)  # A's checkpoint update holds a stale lease token: A rolls back
    resumed = wait_finished(conn, job.id)
    assert resumed.state == "succeeded"
    assert stalled.poll() is None  # A carries on as a healthy worker
    workers.kill_all()  # so that no worker takes the clean run
    clean_rows, clean_rejections = _clean_run(conn, settings, path)
    assert imported_transactions(conn, job.id) == clean_rows
    assert rejections(conn, job.id) == clean_rejections


def test_two_workers_import_several_files_each_exactly_once(
    conn: psycopg.Connection[Any], workers: Workers, tmp_path: Path
) -> None:
    paths = [transactions_csv(tmp_path / f"f{n}.csv", CHUNK_ROWS * 3 + n) for n in range(4)]
    workers.start("import", concurrency=2)
    workers.start("import", concurrency=2)
    jobs = [register(conn, p) for p in paths]
    for n, job in enumerate(jobs):
        done = wait_finished(conn, job.id)
        assert done.state == "succeeded"
        assert [r[0] for r in imported_transactions(conn, job.id)] == list(range(2, 2 + CHUNK_ROWS * 3 + n))


def test_progress_is_broadcast_once_per_chunk(
    conn: psycopg.Connection[Any], settings: Settings, tmp_path: Path
) -> None:
    job = register(conn, transactions_csv(tmp_path / "progress.csv", CHUNK_ROWS * 3 + 5))
    run_inline(settings.db_url, job)
    messages = conn.execute(
        "select payload from realtime.messages where topic = 'admin:imports' and event = 'import_progress'"
        " and private and (payload ->> 'id')::bigint = %s order by inserted_at, id",
        (job.id,),
    ).fetchall()
    progress = [m[0]["processed_rows"] for m in messages]
    chunk_messages = sorted(set(progress) - {0})
    assert chunk_messages == [CHUNK_ROWS, 2 * CHUNK_ROWS, 3 * CHUNK_ROWS, 3 * CHUNK_ROWS + 5]
    assert [m[0]["state"] for m in messages][-1] == "succeeded"
    last_chunk = next(m[0] for m in messages if m[0]["processed_rows"] == 3 * CHUNK_ROWS + 5)
    assert last_chunk["total_rows_exact"] and last_chunk["rows_per_second"] > 0


def test_rejections_report_is_csv_safe_against_formula_injection(
    conn: psycopg.Connection[Any], settings: Settings, tmp_path: Path
) -> None:
    path = transactions_csv(tmp_path / "report.csv", 2, extra_lines=['=HYPERLINK("http://x"),2026-03-01,SHOP,1.00,x'])
    job = register(conn, path)
    run_inline(settings.db_url, job)
    report = b"".join(iter_rejections_csv(conn, job.id)).decode()
    assert report.splitlines() == [
        "line_number,column,reason,raw",
        '4,user_id,not a UUID,"\'=HYPERLINK(""http://x""),2026-03-01,SHOP,1.00,x"',
    ]


def test_only_admins_read_imports_through_the_data_api(conn: psycopg.Connection[Any], tmp_path: Path) -> None:
    job = register(conn, transactions_csv(tmp_path / "rls.csv", 1, extra_lines=["bad,row,x,1,x"]))
    cancel_import(conn, job.id)
    conn.execute(
        "insert into public.import_rejections (import_job_id, line_number, reason) values (%s, 3, 'test')", (job.id,)
    )
    seen = {}
    for who, user_id in (("admin", ADMIN_ID), ("user", USER_ID)):
        with postgrest_request(conn, "authenticated", {"sub": user_id}, read_only=True) as cur:
            jobs = cur.execute("select count(*) as n from public.import_jobs where id = %s", (job.id,)).fetchone()
            rejected = cur.execute(
                "select count(*) as n from public.import_rejections where import_job_id = %s", (job.id,)
            ).fetchone()
            seen[who] = (jobs["n"], rejected["n"])  # type: ignore[index]
    assert seen == {"admin": (1, 1), "user": (0, 0)}
    # Writes go through the SQL API only; anon has no access at all.
    with (
        pytest.raises(psycopg.errors.InsufficientPrivilege),
        postgrest_request(conn, "authenticated", {"sub": ADMIN_ID}) as cur,
    ):
        cur.execute("update public.import_jobs set state = 'succeeded' where id = %s", (job.id,))
    with pytest.raises(psycopg.errors.InsufficientPrivilege), postgrest_request(conn, "anon", read_only=True) as cur:
        cur.execute("select 1 from public.import_jobs")
    with (
        pytest.raises(psycopg.errors.InsufficientPrivilege),
        postgrest_request(conn, "authenticated", {"sub": ADMIN_ID}) as cur,
    ):
        cur.execute("select private.cancel_import_job(%s)", (job.id,))
