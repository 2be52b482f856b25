"""Run one import job: verify the file, map its header, then commit it chunk by chunk from its checkpoint.

Three things overlap (psycopg releases the GIL while it waits on the server): a reader thread parses
and normalizes the chunk after next in Python, a second connection stages and checks the next chunk,
and the current chunk commits. Between chunks the job honours cancel (committed chunks stay: the
state becomes cancelled), worker shutdown (hand the job back; the next worker resumes at the
checkpoint) and a lost lease (stop at once).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from jobs import queue
from jobs.context import JobContext
from jobs.errors import LeaseLost, PermanentJobError
from jobs.imports.chunk import CheckpointMoved, ChunkPosition, ChunkWriter
from jobs.imports.columns import KINDS, map_header
from jobs.imports.kind_sql import MAPPINGS_SQL, TRANSACTIONS_SQL, KindSql
from jobs.imports.prefetch import Prefetch
from jobs.imports.reader import Chunk, ChunkReader, read_header
from jobs.imports.service import ImportJob, get_import
from jobs.imports.source import verified_opener
from jobs.registry import Outcome
from kamioi.mapping.normalizer import normalize

KIND_SQL: dict[str, KindSql] = {"mappings": MAPPINGS_SQL, "transactions": TRANSACTIONS_SQL}
SEEN_COLUMNS = "row_key bigint primary key, line_number bigint not null"
# A deadlock with a concurrent writer of the same merchants rolls the chunk back; it is retried.
CHUNK_ATTEMPTS = 3
# Session settings: memory for big set-based statements on temp tables (temp_buffers must precede the
# first temp table); and a chunk transaction never waits on its client between statements, so one
# left idle belongs to a stalled or vanished worker: the server ends it and releases its locks.
SESSION_SETUP = (
    "set timezone = 'UTC'; set temp_buffers = '256MB'; set work_mem = '128MB';"
    " set idle_in_transaction_session_timeout = '60s'"
)


@lru_cache(maxsize=100_000)
def merchant_key_of(descriptor: str) -> str:
    return normalize(descriptor).merchant_key


def seen_table(import_job_id: int) -> str:
    return f"private.import_seen_{int(import_job_id)}"


def run_import(ctx: JobContext, import_job_id: int) -> Outcome:
    with psycopg.connect(ctx.db_url, prepare_threshold=None, autocommit=True) as control:
        job = get_import(control, import_job_id)
        if job is None:
            raise PermanentJobError(f"import job {import_job_id} does not exist")
        if job.cancel_requested or ctx.cancel_requested:
            return Outcome.CANCELLED
        settings = ctx.settings
        opener = verified_opener(job, settings)
        kind = KINDS[job.kind]
        header, header_end, header_lines = read_header(
            opener, settings.import_max_field_chars, settings.import_max_row_bytes
        )
        header_map = map_header(kind, header)
        if job.checkpoint_offset == 0:
            job = _start(control, job, ctx, header_end, header_lines, header_map.describe())
        # The seen table went with the job's end (failed, cancelled); a retry past committed chunks rebuilds it.
        rebuild = job.checkpoint_offset > header_end and not _exists(control, seen_table(job.id))
        if not rebuild:
            control.execute(f"create table if not exists {seen_table(job.id)} ({SEEN_COLUMNS})")
    writer = ChunkWriter(kind, KIND_SQL[job.kind], list(header_map.positions), seen_table(job.id))
    reader = ChunkReader(
        opener,
        kind,
        header_map,
        chunk_lines=settings.import_chunk_rows,
        max_field_chars=settings.import_max_field_chars,
        max_row_bytes=settings.import_max_row_bytes,
        merchant_key=merchant_key_of,
    )
    if rebuild and (stopped := _rebuild_seen(ctx, job, reader, writer, header_end, header_lines)) is not None:
        return stopped
    with _chunk_connection(ctx.db_url) as first, _chunk_connection(ctx.db_url) as second:
        return _run_chunks((first, second), ctx, job, reader, writer)


def _exists(conn: psycopg.Connection[Any], table: str) -> bool:
    row = conn.execute("select to_regclass(%s) is not null", (table,)).fetchone()
    return bool(row and row[0])


def _rebuild_seen(
    ctx: JobContext, job: ImportJob, reader: ChunkReader, writer: ChunkWriter, header_end: int, header_lines: int
) -> Outcome | None:
    """Claim the identities of the committed lines again, in one transaction with the table's
    creation (a crash leaves no half-built table). None when done; an outcome when the job has to
    stop first."""
    started = time.monotonic()
    with _chunk_connection(ctx.db_url) as conn:
        conn.execute(f"create table {seen_table(job.id)} ({SEEN_COLUMNS})")
        for chunk in reader.chunks(header_end, header_lines, end=job.checkpoint_offset):
            writer.replay_claims(conn, chunk)
            if (outcome := ctx.interruption(f"import {job.id}")) is not None:
                return outcome
        conn.commit()
    ctx.log.info(
        "import %s: seen table rebuilt from %s committed lines in %.1fs",
        job.id, job.checkpoint_line, time.monotonic() - started,
    )  # fmt: skip
    return None


@contextmanager
def _chunk_connection(db_url: str) -> Iterator[psycopg.Connection[Any]]:
    """A connection for chunk transactions. Whatever is left uncommitted when the run stops (a chunk
    prepared ahead, a failed chunk) is rolled back, never committed by the connection's exit."""
    with psycopg.connect(db_url, prepare_threshold=None) as conn:
        conn.execute(SESSION_SETUP)
        conn.commit()
        try:
            yield conn
        finally:
            with contextlib.suppress(psycopg.Error):  # a broken connection was rolled back by the server
                conn.rollback()


def _run_chunks(
    conns: tuple[psycopg.Connection[Any], psycopg.Connection[Any]],
    ctx: JobContext,
    job: ImportJob,
    reader: ChunkReader,
    writer: ChunkWriter,
) -> Outcome:
    """Chunk k+1 is prepared on one connection while chunk k commits on the other (two backends, two
    cores); commits happen strictly in file order."""
    started, rows_this_run, retries = time.monotonic(), 0, 0
    waited = committing = 0.0  # where the time goes: parsing ahead (Python) vs committing chunks
    offset, slot = job.checkpoint_offset, 0
    with (
        Prefetch(reader.chunks(offset, job.checkpoint_line)) as chunks,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="import-prepare") as background,
    ):

        def parse_next() -> Chunk:
            nonlocal waited
            mark = time.monotonic()
            parsed = next(chunks)
            waited += time.monotonic() - mark
            return parsed

        chunk = parse_next()
        current = background.submit(writer.prepare, conns[slot], chunk)
        upcoming: Chunk | None = None
        following: Future[None] | None = None
        while True:
            current.result()
            if upcoming is None and not chunk.last:
                upcoming = parse_next()
            if upcoming is not None and following is None:
                following = background.submit(writer.prepare, conns[1 - slot], upcoming)
            at = ChunkPosition(job.id, ctx.job.id, ctx.job.lease_token, offset)
            rate = (rows_this_run + chunk.rows) / max(time.monotonic() - started, 1e-6)
            mark = time.monotonic()
            try:
                result = writer.commit(conns[slot], chunk, at, rate)
            except (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure):
                # A deadlock with another import's writes: undo both chunks in flight, redo in order.
                retries += 1
                if retries >= CHUNK_ATTEMPTS:
                    raise
                conns[slot].rollback()
                if following is not None:
                    wait([following])
                    conns[1 - slot].rollback()
                    following = None
                current = background.submit(writer.prepare, conns[slot], chunk)
                continue
            except CheckpointMoved:
                raise LeaseLost(f"import {job.id}: the checkpoint moved under this worker") from None
            committing += time.monotonic() - mark
            if rows_this_run == 0 and ctx.job.attempts > 1:
                with conns[slot].transaction():  # this run progressed: earlier deaths stop counting
                    queue.made_progress(conns[slot], ctx.job, ctx.settings.max_attempts)
            rows_this_run += chunk.rows
            offset = chunk.end_offset
            ctx.log.debug(
                "import %s: %s rows (%.0f rows/s; waited %.1fs for parsing, %.1fs committing)",
                job.id, result.processed_total, rate, waited, committing,
            )  # fmt: skip
            if chunk.last:
                ctx.log.info(
                    "import %s: %s rows this run in %.1fs (waited %.1fs for parsing, %.1fs committing)",
                    job.id, rows_this_run, time.monotonic() - started, waited, committing,
                )  # fmt: skip
                return Outcome.SUCCEEDED
            # Leaving here abandons the prepared next chunk: closing its connection rolls it back.
            if (outcome := ctx.interruption(f"import {job.id}", cancelled=result.cancel_requested)) is not None:
                return outcome
            assert upcoming is not None and following is not None
            chunk, current, slot = upcoming, following, 1 - slot
            upcoming = following = None


def _start(
    conn: psycopg.Connection[Any],
    job: ImportJob,
    ctx: JobContext,
    header_end: int,
    header_lines: int,
    columns: dict[str, list[str]],
) -> ImportJob:
    """First run: the checkpoint moves past the header, and the column mapping is recorded."""
    with conn.transaction():
        moved = conn.execute(
            "update public.import_jobs set checkpoint_offset = %s, checkpoint_line = %s, columns = %s"
            " where id = %s and checkpoint_offset = 0"
            " and exists (select 1 from private.job_queue as q where q.id = %s and q.lease_token = %s)",
            (header_end, header_lines, Jsonb(columns), job.id, ctx.job.id, ctx.job.lease_token),
        ).rowcount
    if moved != 1:
        raise LeaseLost(f"import {job.id}: another worker started it")
    return job.model_copy(update={"checkpoint_offset": header_end, "checkpoint_line": header_lines})
