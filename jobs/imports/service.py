"""The import API shared by the admin API and `kamioi import`: register, cancel, retry, read (sync and async).

They wrap the SQL functions private.create_import_job / cancel_import_job / retry_import_job, so the
API and the CLI take one code path. The file must be readable by the workers at `file_path` (same machine
or a shared volume); `kamioi import --inline` runs the job in the CLI's own process instead.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import dict_row

HASH_BLOCK = 1 << 20
DUPLICATE_IMPORT_SQLSTATE = "PT409"
NOT_RETRYABLE_SQLSTATE = "55000"  # object_not_in_prerequisite_state

_COLUMNS = (
    "id, kind, state, queue_job_id, file_path, file_sha256, file_size, total_rows, total_rows_exact,"
    " processed_rows, inserted_rows, updated_rows, rejected_rows, rows_per_second, eta_seconds,"
    " checkpoint_offset, checkpoint_line, columns, attempts, error, created_by, force, cancel_requested,"
    " created_at, started_at, finished_at, updated_at"
)
_CREATE = f"select {_COLUMNS} from private.create_import_job(%s, %s, %s, %s, %s, %s)"
_CANCEL = f"select {_COLUMNS} from private.cancel_import_job(%s)"
_RETRY = f"select {_COLUMNS} from private.retry_import_job(%s, %s)"
_GET = f"select {_COLUMNS} from public.import_jobs where id = %s"

TERMINAL_STATES = frozenset({"succeeded", "failed", "cancelled"})
# Where every change of an import's state or counters is broadcast (and NOTIFYed).
PROGRESS_TOPIC, PROGRESS_EVENT = "admin:imports", "import_progress"


@dataclass(frozen=True)
class ImportJob:
    id: int
    kind: str
    state: str
    queue_job_id: int | None
    file_path: str
    file_sha256: str
    file_size: int
    total_rows: int | None
    total_rows_exact: bool
    processed_rows: int
    inserted_rows: int
    updated_rows: int
    rejected_rows: int
    rows_per_second: Any  # Decimal | None
    eta_seconds: Any  # Decimal | None
    checkpoint_offset: int
    checkpoint_line: int
    columns: dict[str, list[str]] | None
    attempts: int
    error: str | None
    created_by: UUID | None
    force: bool
    cancel_requested: bool
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime

    @property
    def finished(self) -> bool:
        return self.state in TERMINAL_STATES


class DuplicateImport(Exception):
    """The same file (sha256) of the same kind was imported, or is being imported; pass force=True."""

    def __init__(self, message: str, existing_job_id: int | None) -> None:
        super().__init__(message)
        self.existing_job_id = existing_job_id


class NotRetryable(Exception):
    """Only a failed or cancelled import can be retried; this one is queued, running or succeeded."""


def file_fingerprint(path: Path) -> tuple[str, int]:
    """(sha256 hex, size in bytes), streamed."""
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as handle:
        while block := handle.read(HASH_BLOCK):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def _duplicate(err: psycopg.Error) -> DuplicateImport:
    try:
        existing = json.loads(err.diag.message_detail or "{}").get("import_job_id")
    except ValueError:
        existing = None
    return DuplicateImport(err.diag.message_primary or str(err), existing)


def create_import(
    conn: psycopg.Connection[Any],
    *,
    kind: str,
    file_path: Path,
    created_by: UUID | None = None,
    force: bool = False,
    sha256: str | None = None,
    size: int | None = None,
) -> ImportJob:
    """Register an import of `file_path` (hashed here unless sha256 and size are given) and queue it."""
    if sha256 is None or size is None:
        sha256, size = file_fingerprint(file_path)
    try:
        with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(_CREATE, (kind, str(file_path), sha256, size, created_by, force)).fetchone()
    except psycopg.Error as err:
        if err.sqlstate == DUPLICATE_IMPORT_SQLSTATE:
            raise _duplicate(err) from err
        raise
    assert row is not None
    return ImportJob(**row)


async def acreate_import(
    conn: psycopg.AsyncConnection[Any],
    *,
    kind: str,
    file_path: Path,
    created_by: UUID | None = None,
    force: bool = False,
    sha256: str | None = None,
    size: int | None = None,
) -> ImportJob:
    if sha256 is None or size is None:
        sha256, size = await asyncio.to_thread(file_fingerprint, file_path)
    try:
        async with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(_CREATE, (kind, str(file_path), sha256, size, created_by, force))
            row = await cur.fetchone()
    except psycopg.Error as err:
        if err.sqlstate == DUPLICATE_IMPORT_SQLSTATE:
            raise _duplicate(err) from err
        raise
    assert row is not None
    return ImportJob(**row)


def cancel_import(conn: psycopg.Connection[Any], import_job_id: int) -> ImportJob:
    """Queued: cancelled now. Running: stops after the chunk in flight; committed chunks stay."""
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(_CANCEL, (import_job_id,)).fetchone()
    assert row is not None
    return ImportJob(**row)


async def acancel_import(conn: psycopg.AsyncConnection[Any], import_job_id: int) -> ImportJob:
    async with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_CANCEL, (import_job_id,))
        row = await cur.fetchone()
    assert row is not None
    return ImportJob(**row)


def _refusal(err: psycopg.Error) -> Exception | None:
    """Why retry_import_job refused, as this module's exceptions (unknown ids stay NoDataFound)."""
    if err.sqlstate == DUPLICATE_IMPORT_SQLSTATE:
        return _duplicate(err)
    if err.sqlstate == NOT_RETRYABLE_SQLSTATE:
        return NotRetryable(err.diag.message_primary or str(err))
    return None


def retry_import(conn: psycopg.Connection[Any], import_job_id: int, *, force: bool = False) -> ImportJob:
    """Queue a failed or cancelled import again; it resumes at its checkpoint (committed rows and
    rejections stay). Raises NotRetryable, DuplicateImport (the file was imported again since,
    unless force) or psycopg.errors.NoDataFound."""
    try:
        with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(_RETRY, (import_job_id, force)).fetchone()
    except psycopg.Error as err:
        if (refused := _refusal(err)) is None:
            raise
        raise refused from err
    assert row is not None
    return ImportJob(**row)


async def aretry_import(conn: psycopg.AsyncConnection[Any], import_job_id: int, *, force: bool = False) -> ImportJob:
    try:
        async with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(_RETRY, (import_job_id, force))
            row = await cur.fetchone()
    except psycopg.Error as err:
        if (refused := _refusal(err)) is None:
            raise
        raise refused from err
    assert row is not None
    return ImportJob(**row)


def get_import(conn: psycopg.Connection[Any], import_job_id: int) -> ImportJob | None:
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(_GET, (import_job_id,)).fetchone()
    return ImportJob(**row) if row else None


async def aget_import(conn: psycopg.AsyncConnection[Any], import_job_id: int) -> ImportJob | None:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_GET, (import_job_id,))
        row = await cur.fetchone()
    return ImportJob(**row) if row else None
