"""The import API shared by the admin API, `kamioi import` and the worker: register, cancel, retry, read.

Each operation is one call of a SQL function (private.create_import_job / cancel_import_job /
retry_import_job, or a row read), built once by the functions below and run by `run` (psycopg
connections: the CLI, the worker) or `arun` (async connections: the admin API), which share the row
type and the translation of the functions' errors.

A job names a Storage object (storage_bucket + file_path), which a worker on any host streams; or,
without a bucket, a file on the worker's own disk (`kamioi import --inline` runs the job in the CLI).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from contextlib import AsyncExitStack, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from uuid import UUID

import psycopg
from psycopg.rows import dict_row
from pydantic import AwareDatetime, BaseModel, ConfigDict

HASH_BLOCK = 1 << 20
DUPLICATE_IMPORT_SQLSTATE = "PT409"
NOT_RETRYABLE_SQLSTATE = "55000"  # object_not_in_prerequisite_state

ImportKind = Literal["mappings", "transactions"]
ImportState = Literal["queued", "running", "succeeded", "failed", "cancelled"]
TERMINAL_STATES = frozenset({"succeeded", "failed", "cancelled"})
# Where every change of an import's state or counters is broadcast (and NOTIFYed).
PROGRESS_TOPIC, PROGRESS_EVENT = "admin:imports", "import_progress"


class ImportJob(BaseModel):
    """A row of public.import_jobs: one imported file, its state, progress and checkpoint."""

    model_config = ConfigDict(frozen=True)

    id: int
    kind: ImportKind
    state: ImportState
    queue_job_id: int | None
    file_path: str  # the object's path in storage_bucket, or (no bucket) a path on the worker's disk
    storage_bucket: str | None
    storage_etag: str | None
    file_sha256: str
    file_size: int
    total_rows: int | None
    total_rows_exact: bool
    processed_rows: int
    inserted_rows: int
    updated_rows: int
    rejected_rows: int
    rows_per_second: float | None
    eta_seconds: float | None
    checkpoint_offset: int
    checkpoint_line: int
    columns: dict[str, list[str]] | None
    attempts: int
    error: str | None
    created_by: UUID | None
    force: bool
    cancel_requested: bool
    created_at: AwareDatetime
    started_at: AwareDatetime | None
    finished_at: AwareDatetime | None
    updated_at: AwareDatetime

    @property
    def finished(self) -> bool:
        return self.state in TERMINAL_STATES


_COLUMNS = ", ".join(ImportJob.model_fields)


class DuplicateImport(Exception):
    """The same file (sha256) of the same kind was imported, or is being imported; pass force=True."""

    def __init__(self, message: str, existing_job_id: int | None) -> None:
        super().__init__(message)
        self.existing_job_id = existing_job_id


class NotRetryable(Exception):
    """Only a failed or cancelled import can be retried; this one is queued, running or succeeded."""


@dataclass(frozen=True)
class StoredFile:
    """Where an import's file is, and what it was when registered."""

    path: str  # the object's path in the bucket, or a local path
    sha256: str
    size: int
    bucket: str | None = None
    etag: str | None = None


def file_fingerprint(path: Path) -> tuple[str, int]:
    """(sha256 hex, size in bytes), streamed."""
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as handle:
        while block := handle.read(HASH_BLOCK):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def local_file(path: Path) -> StoredFile:
    """A file on this machine, hashed here (for a job this process or this machine's worker runs)."""
    sha256, size = file_fingerprint(path)
    return StoredFile(path=str(path), sha256=sha256, size=size)


# How a job in each state is named in a sentence ("import job 2 has succeeded", never "is succeeded").
STATE_PHRASES = {
    "queued": "is queued",
    "running": "is running",
    "succeeded": "has succeeded",
    "failed": "has failed",
    "cancelled": "was cancelled",
}
_IS_STATE = re.compile(r"\bis (queued|running|succeeded|failed|cancelled)\b")


def state_phrase(state: str) -> str:
    return STATE_PHRASES.get(state, f"is {state}")


def plain_english(message: str) -> str:
    """The database's refusals say `is <state>`; read as a sentence, an ended job `has succeeded`."""
    return _IS_STATE.sub(lambda match: state_phrase(match.group(1)), message)


def _duplicate(err: psycopg.Error) -> DuplicateImport:
    try:
        existing = json.loads(err.diag.message_detail or "{}").get("import_job_id")
    except ValueError:
        existing = None
    return DuplicateImport(plain_english(err.diag.message_primary or str(err)), existing)


def _refusal(err: psycopg.Error) -> Exception | None:
    if err.sqlstate == DUPLICATE_IMPORT_SQLSTATE:
        return _duplicate(err)
    if err.sqlstate == NOT_RETRYABLE_SQLSTATE:
        return NotRetryable(plain_english(err.diag.message_primary or str(err)))
    return None


@dataclass(frozen=True)
class ImportCall:
    """One statement returning at most one import_jobs row; `writes` runs it in its own transaction."""

    sql: str
    params: tuple[Any, ...]
    writes: bool = True


def create_call(kind: str, file: StoredFile, *, created_by: UUID | None = None, force: bool = False) -> ImportCall:
    """Register an import of `file` and queue it. Raises DuplicateImport (the same file was imported)."""
    return ImportCall(
        f"select {_COLUMNS} from private.create_import_job(%s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (kind, file.path, file.sha256, file.size, created_by, force, 5, file.bucket, file.etag),
    )


def cancel_call(import_job_id: int) -> ImportCall:
    """Queued: cancelled now. Running: stops after the chunk in flight; committed chunks stay."""
    return ImportCall(f"select {_COLUMNS} from private.cancel_import_job(%s)", (import_job_id,))


def retry_call(import_job_id: int, *, force: bool = False) -> ImportCall:
    """Queue a failed or cancelled import again; it resumes at its checkpoint (committed rows and
    rejections stay). Raises NotRetryable, DuplicateImport (the file was imported again since,
    unless force) or psycopg.errors.NoDataFound."""
    return ImportCall(f"select {_COLUMNS} from private.retry_import_job(%s, %s)", (import_job_id, force))


def get_call(import_job_id: int) -> ImportCall:
    return ImportCall(f"select {_COLUMNS} from public.import_jobs where id = %s", (import_job_id,), writes=False)


@contextmanager
def _refusals() -> Iterator[None]:
    """The SQL functions' refusals as this module's exceptions (unknown ids stay NoDataFound)."""
    try:
        yield
    except psycopg.Error as err:
        if (refused := _refusal(err)) is None:
            raise
        raise refused from err


def run(conn: psycopg.Connection[Any], call: ImportCall) -> ImportJob | None:
    with _refusals(), conn.transaction() if call.writes else nullcontext(), conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(call.sql, call.params).fetchone()
    return ImportJob.model_validate(row) if row is not None else None


async def arun(conn: psycopg.AsyncConnection[Any], call: ImportCall) -> ImportJob | None:
    async with AsyncExitStack() as stack:
        stack.enter_context(_refusals())
        if call.writes:
            await stack.enter_async_context(conn.transaction())
        cur = await stack.enter_async_context(conn.cursor(row_factory=dict_row))
        await cur.execute(call.sql, call.params)
        row = await cur.fetchone()
    return ImportJob.model_validate(row) if row is not None else None


def _one(job: ImportJob | None) -> ImportJob:
    assert job is not None  # the SQL functions return the row or raise
    return job


def create_import(
    conn: psycopg.Connection[Any],
    *,
    kind: str,
    file: StoredFile | Path,
    created_by: UUID | None = None,
    force: bool = False,
) -> ImportJob:
    """Register and queue; a Path is a file on this machine, hashed here."""
    stored = local_file(file) if isinstance(file, Path) else file
    return _one(run(conn, create_call(kind, stored, created_by=created_by, force=force)))


def cancel_import(conn: psycopg.Connection[Any], import_job_id: int) -> ImportJob:
    return _one(run(conn, cancel_call(import_job_id)))


def retry_import(conn: psycopg.Connection[Any], import_job_id: int, *, force: bool = False) -> ImportJob:
    return _one(run(conn, retry_call(import_job_id, force=force)))


def get_import(conn: psycopg.Connection[Any], import_job_id: int) -> ImportJob | None:
    return run(conn, get_call(import_job_id))
