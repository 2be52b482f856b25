"""Job kind `exports.csv`: write an admin list (transactions, mappings, users) with its filters to a CSV
file, streamed in keyset chunks (the export jobs migration has the contract).

Each chunk is one call of the list's private page function after the committed key. Its rows are
appended to `<export dir>/<file_name>.part` and flushed to disk, then the chunk's checkpoint (last key,
rows, bytes) is committed as a compare-and-set. A run that finds a checkpoint cuts the file back to
its bytes and goes on after its key, so a crash at any point neither repeats nor skips a row. Memory
is one chunk, whatever the export's size. The finished file is renamed to its final name and uploaded
to the Storage bucket EXPORT_BUCKET; its download link is the admin API's (which signs a short-lived
Storage link for the admin who asked, or serves the worker's file); a cancelled export's partial file
is deleted. Text cells that a spreadsheet would run as a formula are quoted (jobs.spreadsheet).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, BinaryIO

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from jobs.context import JobContext
from jobs.errors import PermanentJobError
from jobs.imports.service import file_fingerprint
from jobs.registry import Outcome, job_handler
from jobs.spreadsheet import inert
from kamioi.storage import StorageUnavailable, upload_file

EXPORT_KIND = "exports.csv"

Row = dict[str, Any]
Key = list[Any]


@dataclass(frozen=True)
class ListExport:
    """How one list is walked: its page call, the key of a row, and the CSV columns."""

    page_sql: str
    columns: tuple[str, ...]
    page_args: Callable[[dict[str, Any], Key | None, int], tuple[Any, ...]]
    key_of: Callable[[Row, dict[str, Any]], Key]


def _transactions_args(job: dict[str, Any], after: Key | None, limit: int) -> tuple[Any, ...]:
    before_date, before_id = after if after else (None, None)
    return (Jsonb(job["filters"]), before_date, before_id, limit)


def _mappings_args(job: dict[str, Any], after: Key | None, limit: int) -> tuple[Any, ...]:
    sort = job["sort"] or "newest"
    key, after_id = after if after else (None, None)
    created_at, confidence = (key, None) if sort == "newest" else (None, key)
    return (Jsonb(job["filters"]), sort, created_at, confidence, after_id, limit)


def _mappings_key(row: Row, job: dict[str, Any]) -> Key:
    if (job["sort"] or "newest") == "newest":
        return [row["created_at"].isoformat(), row["id"]]
    return [str(row["confidence"] if row["confidence"] is not None else -1), row["id"]]


def _users_args(job: dict[str, Any], after: Key | None, limit: int) -> tuple[Any, ...]:
    key, after_id = after if after else (None, None)
    by_email = "email_prefix" in job["filters"]
    return (Jsonb(job["filters"]), None if by_email else key, key if by_email else None, after_id, limit)


def _users_key(row: Row, job: dict[str, Any]) -> Key:
    if "email_prefix" in job["filters"]:
        return [row["email"].lower(), str(row["id"])]
    return [row["created_at"].isoformat(), str(row["id"])]


LISTS: dict[str, ListExport] = {
    "transactions": ListExport(
        page_sql="select * from private.admin_transactions_page(%s, %s, %s, %s)",
        columns=(
            "id",
            "txn_date",
            "user_id",
            "descriptor",
            "merchant_key",
            "merchant_name",
            "ticker",
            "amount",
            "round_up",
            "status",
            "mapping_id",
            "import_job_id",
            "import_line",
            "allocation_lot",
            "allocations",
            "created_at",
            "updated_at",
        ),
        page_args=_transactions_args,
        key_of=lambda row, _job: [row["txn_date"].isoformat(), row["id"]],
    ),
    "mappings": ListExport(
        page_sql="select * from private.admin_mappings_page(%s, %s, %s, %s, %s, %s)",
        columns=(
            "id",
            "created_at",
            "merchant_name",
            "merchant_key",
            "company_name",
            "ticker",
            "category",
            "confidence",
            "status",
            "admin_approved",
            "source",
            "tier",
            "model",
            "prompt_version",
            "reason",
            "reviewer",
            "reviewed_at",
            "import_job_id",
            "submitted_by",
            "updated_at",
        ),
        page_args=_mappings_args,
        key_of=_mappings_key,
    ),
    "users": ListExport(
        page_sql="select * from private.admin_users_page(%s, %s, %s, %s, %s)",
        columns=(
            "id",
            "email",
            "display_name",
            "role",
            "transactions",
            "round_ups",
            "invested",
            "created_at",
            "updated_at",
        ),
        page_args=_users_args,
        key_of=_users_key,
    ),
}


def csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, list | dict):
        return json.dumps(value, separators=(",", ":"), default=str)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, str):
        # Descriptors, merchant and display names are typed by users or come from their files.
        return inert(value)
    return str(value)


def csv_lines(rows: Sequence[Row] | None, columns: Sequence[str]) -> bytes:
    """The rows (or, for None, the header) as CSV bytes."""
    text = io.StringIO()
    # CRLF (RFC 4180): the csv module quotes a field holding any line-terminator character, so a lone
    # CR inside a descriptor stays in its cell instead of ending the row for every reader.
    writer = csv.writer(text, lineterminator="\r\n")
    if rows is None:
        writer.writerow(columns)
    else:
        writer.writerows([csv_value(row[c]) for c in columns] for row in rows)
    return text.getvalue().encode()


def _write_durably(file: BinaryIO, data: bytes) -> int:
    file.write(data)
    file.flush()
    os.fsync(file.fileno())
    return file.tell()


@job_handler(EXPORT_KIND)
def export_csv(ctx: JobContext) -> Outcome:
    export_id = ctx.job.payload.get("export_job_id")
    if not isinstance(export_id, int):
        raise PermanentJobError(f"not an export payload: {ctx.job.payload}")
    with psycopg.connect(ctx.db_url, autocommit=True, prepare_threshold=None, row_factory=dict_row) as conn:
        job = conn.execute("select * from public.export_jobs where id = %s", (export_id,)).fetchone()
        if job is None:
            raise PermanentJobError(f"no export job {export_id}")
        spec = LISTS[job["list"]]
        directory = ctx.settings.exports_dir
        directory.mkdir(parents=True, exist_ok=True)
        final = directory / job["file_name"]
        partial = final.with_name(final.name + ".part")
        if _finished_before(job, final, partial):
            ctx.log.info("export %s: its file was complete, publishing it", export_id)
        else:
            outcome = _walk(ctx, conn, job, spec, partial)
            if outcome is Outcome.CANCELLED:
                partial.unlink(missing_ok=True)
                return outcome
            if outcome is not Outcome.SUCCEEDED:
                return outcome
            partial.replace(final)
        conn.execute(
            "update public.export_jobs set file_sha256 = %s, storage_bucket = %s, storage_path = %s,"
            " download_url = %s where id = %s",
            (
                file_fingerprint(final)[0],
                *_publish(ctx, export_id, final),
                f"/v1/exports/{export_id}/download",
                export_id,
            ),
        )
        ctx.log.info("export %s: %s rows of %s to %s", export_id, job["rows_written"], job["list"], final)
        return Outcome.SUCCEEDED


def _finished_before(job: dict[str, Any], final: Path, partial: Path) -> bool:
    """A run that died after naming the finished file (while publishing it) left it complete."""
    return (
        not partial.exists()
        and final.is_file()
        and job["bytes_written"] > 0
        and (final.stat().st_size == job["bytes_written"])
    )


def _publish(ctx: JobContext, export_id: int, file: Path) -> tuple[str | None, str | None]:
    """Upload the file to the Storage bucket EXPORT_BUCKET: its (bucket, path), or (None, None) with no
    bucket set or Storage unavailable (the admin API then serves the worker's file). No link is made
    here: the admin API signs a short-lived one for the admin who asked, each time they ask."""
    settings = ctx.settings
    if not settings.export_bucket:
        return None, None
    try:
        upload_file(settings, bucket=settings.export_bucket, object_path=file.name, file=file)
    except StorageUnavailable as error:
        ctx.log.warning("export %s: %s; the admin API serves the worker's file", export_id, error)
        return None, None
    return settings.export_bucket, file.name


def _checkpoint(conn: psycopg.Connection[Row], job: dict[str, Any], key: Key | None, rows: int, size: int) -> None:
    """Commit where the file stands (compare-and-set on the rows `job` last saw); `job` follows it."""
    committed = conn.execute(
        "select rows_written, bytes_written, after_key, cancel_requested"
        " from private.record_export_chunk(%s, %s, %s, %s, %s)",
        (job["id"], None if key is None else Jsonb(key), rows, size, job["rows_written"]),
    ).fetchone()
    assert committed is not None
    job.update(committed)


def _walk(
    ctx: JobContext, conn: psycopg.Connection[Row], job: dict[str, Any], spec: ListExport, partial: Path
) -> Outcome:
    """Append chunks after the committed checkpoint until the list runs out; `job` follows the checkpoint."""
    chunk_rows = ctx.settings.export_chunk_rows
    with partial.open("a+b") as file:
        if file.seek(0, os.SEEK_END) < job["bytes_written"]:
            # The file lost committed rows (a new disk, a cleaned directory): start over, never pad.
            _checkpoint(conn, job, None, 0, 0)
        file.truncate(job["bytes_written"])  # drop what a crashed run wrote after its last checkpoint
        file.seek(job["bytes_written"])
        if job["bytes_written"] == 0:
            job["bytes_written"] = _write_durably(file, csv_lines(None, spec.columns))
        while True:
            # A cancel shows in the checkpoint's row: it stops here, after the chunk, not only once the
            # worker's heartbeat has seen it (a fast export could finish first).
            cancelled = bool(job.get("cancel_requested"))
            if (outcome := ctx.interruption(f"export {job['id']}", cancelled=cancelled)) is not None:
                return outcome
            rows = conn.execute(spec.page_sql, spec.page_args(job, job["after_key"], chunk_rows)).fetchall()
            if rows:
                size = _write_durably(file, csv_lines(rows, spec.columns))
                _checkpoint(conn, job, spec.key_of(rows[-1], job), job["rows_written"] + len(rows), size)
            if len(rows) < chunk_rows:
                return Outcome.SUCCEEDED
