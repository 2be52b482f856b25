"""`kamioi import FILE --kind mappings|transactions`: register a bulk import and follow it to the end.
`kamioi import retry ID`: queue a failed or cancelled import again (it resumes at its checkpoint) and follow it.
`kamioi import cancel ID`: cancel an import (a queued one at once, a running one after its chunk in flight).

The import runs as a background job (a worker picks it up; see `python -m jobs worker`), or with
`--inline` in this process. While waiting, a progress bar on stderr shows rows, rows/s and ETA, moved
by the job's progress messages (kamioi.progress: Realtime where SUPABASE_REALTIME_URL is set,
LISTEN/NOTIFY otherwise), not by polling the job row.
Ctrl-C while waiting offers to cancel the import (on a terminal; else it names `kamioi import cancel ID`),
and `--rejections PATH` is written either way: the whole report when the import ended, the rows
rejected so far when it did not.
Exit status: 0 succeeded (for `cancel`: cancelled), 1 failed or cancelled, 2 not started (refused
duplicate, not retryable, nothing to cancel, no worker, bad arguments), 130 interrupted.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import psycopg

from cli.local_run import worker_serves
from jobs.imports.handler import IMPORT_JOB_KIND
from jobs.imports.report import iter_rejections_csv
from jobs.imports.service import (
    PROGRESS_EVENT,
    PROGRESS_TOPIC,
    DuplicateImport,
    ImportJob,
    NotRetryable,
    StoredFile,
    cancel_import,
    create_import,
    get_import,
    local_file,
    retry_import,
    state_phrase,
)
from jobs.inline import InlineRun
from kamioi.db import connect
from kamioi.progress import JobProgressFeed, Payload, open_job_progress
from kamioi.settings import Settings, get_settings
from kamioi.storage import StorageUnavailable, upload_new_file

# How long one wait for a progress message lasts before the loop looks at its other exit (an
# inline run's thread ending); no query is made.
WAKE_SECONDS = 1.0
# No message for this long: read the row once, in case one was lost (a dropped LISTEN connection).
STALL_RECHECK_SECONDS = 30.0
# The fields of a progress message (private.broadcast_import_progress) the bar and summary show.
PROGRESS_FIELDS = (
    "state", "processed_rows", "total_rows", "total_rows_exact", "inserted_rows", "updated_rows",
    "rejected_rows", "rows_per_second", "eta_seconds", "cancel_requested", "error",
)  # fmt: skip
NON_TTY_EVERY_SECONDS = 5.0
BAR_WIDTH = 28
RETRY = "retry"  # `kamioi import retry ID`; a file of that name is imported as ./retry
CANCEL = "cancel"  # `kamioi import cancel ID`; likewise


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def progress_line(job: ImportJob) -> str:
    total = job.total_rows or 0
    share = min(job.processed_rows / total, 1.0) if total else 0.0
    filled = int(share * BAR_WIDTH)
    bar = "#" * filled + "." * (BAR_WIDTH - filled)
    # The total is estimated from the bytes read once the first chunk is in, exact at the end.
    of = f"{total:,}" if job.total_rows_exact else f"~{total:,}" if job.total_rows is not None else "?"
    rate = f"{float(job.rows_per_second):,.0f} rows/s" if job.rows_per_second else "- rows/s"
    eta = f"ETA {_duration(float(job.eta_seconds))}" if job.eta_seconds is not None else "ETA -"
    return (
        f"[{bar}] {share:4.0%} {job.processed_rows:,}/{of} rows  {rate}  {eta}"
        f"  {job.state}  (rejected {job.rejected_rows:,})"
    )


class ProgressPrinter:
    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.tty = out.isatty()
        self._last_print = 0.0

    def show(self, job: ImportJob) -> None:
        if self.tty:
            self.out.write("\r\x1b[2K" + progress_line(job))
            self.out.flush()
        elif time.monotonic() - self._last_print >= NON_TTY_EVERY_SECONDS or job.finished:
            self._last_print = time.monotonic()
            print(progress_line(job), file=self.out, flush=True)

    def done(self) -> None:
        if self.tty:
            self.out.write("\n")


def with_progress(job: ImportJob, payload: Payload) -> ImportJob:
    return job.model_copy(update={name: payload[name] for name in PROGRESS_FIELDS if name in payload})


def follow(
    conn: psycopg.Connection[Any],
    feed: JobProgressFeed,
    job_id: int,
    printer: ProgressPrinter,
    *,
    stop_when: Callable[[ImportJob], bool] = lambda job: job.finished,
) -> ImportJob:
    """Show the job's progress as its messages arrive until `stop_when`. The feed is open before the
    row is read, so no message after that read is missed."""

    def read() -> ImportJob:
        job = get_import(conn, job_id)
        assert job is not None
        return job

    job, quiet_since = read(), time.monotonic()
    printer.show(job)
    while not stop_when(job):
        payload = feed.next(timeout=WAKE_SECONDS)
        if payload is not None:
            job = with_progress(job, payload)
        elif time.monotonic() - quiet_since >= STALL_RECHECK_SECONDS:
            job = read()
        else:
            continue
        quiet_since = time.monotonic()
        printer.show(job)
    return job


def _summary(job: ImportJob) -> str:
    return (
        f"import {job.id} {job.state}: {job.processed_rows:,} rows, {job.inserted_rows:,} inserted,"
        f" {job.updated_rows:,} updated, {job.rejected_rows:,} rejected"
        + (f"\n  error: {job.error}" if job.error and job.state != "succeeded" else "")
    )


def _write_report(conn: psycopg.Connection[Any], job: ImportJob, path: Path) -> None:
    """The rejections committed so far (all of them once the job ended); a header only when none."""
    with path.open("wb") as out:
        for data in iter_rejections_csv(conn, job.id):
            out.write(data)
    so_far = "" if job.finished else ", so far"
    print(f"rejected rows report ({job.rejected_rows:,} rows{so_far}): {path}", file=sys.stderr)


def _confirm(question: str) -> bool:
    """A yes from the operator at a terminal; no terminal (a script, CI) is a no."""
    if not sys.stdin.isatty():
        return False
    print(question, end="", file=sys.stderr, flush=True)
    try:
        return sys.stdin.readline().strip().lower() in ("y", "yes")
    except KeyboardInterrupt:
        return False


def _run_inline(db_url: str, job: ImportJob, feed: JobProgressFeed, printer: ProgressPrinter) -> bool:
    """Run the job here; False if Ctrl-C handed it back to the queue (a worker resumes it later)."""
    assert job.queue_job_id is not None
    run = InlineRun(db_url, job.queue_job_id, get_settings())
    interrupted = threading.Event()

    def on_interrupt(*_: object) -> None:
        interrupted.set()
        run.request_stop()

    previous = signal.signal(signal.SIGINT, on_interrupt)
    failure: list[BaseException] = []

    def target() -> None:
        try:
            run.run()
        except BaseException as err:
            failure.append(err)

    thread = threading.Thread(target=target, name="inline-import")
    thread.start()
    try:
        with connect(db_url, autocommit=True) as watcher:
            follow(watcher, feed, job.id, printer, stop_when=lambda current: current.finished or not thread.is_alive())
        thread.join()
    finally:
        signal.signal(signal.SIGINT, previous)
    if failure:
        raise failure[0]
    return not interrupted.is_set()


def _import(args: argparse.Namespace) -> int:
    if args.file == RETRY:
        return _retry(args)
    if args.file == CANCEL:
        return _cancel(args)
    if args.import_id is not None:
        print(
            f"kamioi import: unexpected argument {args.import_id} (`import retry ID`, `import cancel ID`)",
            file=sys.stderr,
        )
        return 2
    if args.kind is None:
        print("kamioi import: --kind mappings|transactions is required", file=sys.stderr)
        return 2
    path = Path(args.file).resolve()
    if not path.is_file():
        print(f"kamioi import: no such file: {path}", file=sys.stderr)
        return 2
    settings = get_settings()
    db_url = args.db_url or settings.db_url
    print(f"hashing {path} ...", file=sys.stderr)
    local = local_file(path)
    with connect(db_url, autocommit=True) as conn:
        if not _worker_ready(conn, args):
            return 2
        # A worker (on any host) reads the file from Storage, never from this disk; --inline reads it here.
        file = local if args.inline else _to_storage(local, path, settings)
        if file is None:
            return 2
        try:
            job = create_import(conn, kind=args.kind, file=file, force=args.force)
        except DuplicateImport as err:
            print(f"kamioi import: {err} (use --force to import it again)", file=sys.stderr)
            return 2
        print(f"import job {job.id} registered ({args.kind}, {file.size:,} bytes)", file=sys.stderr)
        return _follow(conn, db_url, job, args)


def _to_storage(file: StoredFile, path: Path, settings: Settings) -> StoredFile | None:
    """Upload the file to the import bucket; the job will name that object."""
    object_path = f"cli/{uuid.uuid4().hex}/{re.sub(r'[^A-Za-z0-9._-]+', '_', path.name)[:100]}"
    print(f"uploading to Storage bucket {settings.import_bucket} ...", file=sys.stderr)
    try:
        etag = upload_new_file(settings, bucket=settings.import_bucket, object_path=object_path, file=path)
    except StorageUnavailable as err:
        print(f"kamioi import: {err} (SUPABASE_STORAGE_URL, SUPABASE_SECRET_KEY; or --inline)", file=sys.stderr)
        return None
    return dataclasses.replace(file, path=object_path, bucket=settings.import_bucket, etag=etag)


def _retry(args: argparse.Namespace) -> int:
    """`kamioi import retry ID`: a failed or cancelled import queued again, resuming at its checkpoint."""
    if args.import_id is None:
        print(
            "kamioi import retry: which import? `kamioi import retry ID` (a file named retry: ./retry)", file=sys.stderr
        )
        return 2
    db_url = args.db_url or get_settings().db_url
    with connect(db_url, autocommit=True) as conn:
        if not _worker_ready(conn, args):
            return 2
        try:
            job = retry_import(conn, args.import_id, force=args.force)
        except psycopg.errors.NoDataFound:
            print(f"kamioi import retry: no import job {args.import_id}", file=sys.stderr)
            return 2
        except NotRetryable as err:
            print(f"kamioi import retry: {err}", file=sys.stderr)
            return 2
        except DuplicateImport as err:
            print(f"kamioi import retry: {err} (use --force to retry anyway)", file=sys.stderr)
            return 2
        where = f"line {job.checkpoint_line + 1}" if job.checkpoint_line else "the start"
        print(
            f"import job {job.id} queued again: resumes at {where} ({job.processed_rows:,} rows done)", file=sys.stderr
        )
        return _follow(conn, db_url, job, args)


def _cancel(args: argparse.Namespace) -> int:
    """`kamioi import cancel ID`: committed chunks stay (`import retry ID` resumes it); waits for the end."""
    if args.import_id is None:
        print("kamioi import cancel: which import? `kamioi import cancel ID`", file=sys.stderr)
        return 2
    db_url = args.db_url or get_settings().db_url
    with connect(db_url, autocommit=True) as conn:
        job = get_import(conn, args.import_id)
        if job is None:
            print(f"kamioi import cancel: no import job {args.import_id}", file=sys.stderr)
            return 2
        if job.finished:
            print(
                f"kamioi import cancel: import job {job.id} {state_phrase(job.state)}: nothing to cancel",
                file=sys.stderr,
            )
            if args.rejections:
                _write_report(conn, job, Path(args.rejections))
            return 2
        job = cancel_import(conn, job.id)
        when = "now" if job.finished else "after the chunk in flight"
        print(f"import job {job.id}: cancel requested, it stops {when}", file=sys.stderr)
        return _follow(conn, db_url, job, args, wanted="cancelled")


def _worker_ready(conn: psycopg.Connection[Any], args: argparse.Namespace) -> bool:
    """Someone will run the job: a live import worker, or this process (--inline), or nobody waits."""
    if args.inline or args.no_wait or worker_serves(conn, IMPORT_JOB_KIND, get_settings()):
        return True
    print(
        "kamioi import: no worker is running for imports; start one (`python -m jobs worker`)"
        " or run this import in-process with --inline",
        file=sys.stderr,
    )
    return False


def _follow(
    conn: psycopg.Connection[Any],
    db_url: str,
    job: ImportJob,
    args: argparse.Namespace,
    *,
    wanted: str = "succeeded",
    offer_cancel: bool = True,
) -> int:
    """Wait for the queued job (or run it, --inline), show progress, then the summary and the report.
    Ctrl-C offers to cancel the job (once); the report is written however the wait ends."""
    if args.no_wait:
        print(job.id)
        return 0
    printer = ProgressPrinter(sys.stderr)
    try:
        with open_job_progress(
            get_settings(), db_url, topic=PROGRESS_TOPIC, event=PROGRESS_EVENT, job_id=job.id
        ) as feed:
            if args.inline and not _run_inline(db_url, job, feed, printer):
                printer.done()
                print(f"interrupted: import job {job.id} is back in the queue", file=sys.stderr)
                return _interrupted(conn, db_url, job.id, args, offer_cancel=offer_cancel)
            follow(conn, feed, job.id, printer)
        printer.done()
    except KeyboardInterrupt:
        printer.done()
        return _interrupted(conn, db_url, job.id, args, offer_cancel=offer_cancel)
    finished = get_import(conn, job.id)  # the row's final word, for the summary
    assert finished is not None
    print(_summary(finished), file=sys.stderr)
    if args.rejections:
        _write_report(conn, finished, Path(args.rejections))
    return 0 if finished.state == wanted else 1


def _interrupted(
    conn: psycopg.Connection[Any], db_url: str, job_id: int, args: argparse.Namespace, *, offer_cancel: bool
) -> int:
    """Ctrl-C: cancel the job if the operator says so (then wait for it to stop), else leave it to the
    workers; either way the rejections committed so far are written."""
    job = get_import(conn, job_id)
    assert job is not None
    if (
        not job.finished
        and offer_cancel
        and _confirm(
            f"cancel import job {job_id}? committed rows stay; `kamioi import retry {job_id}` resumes it [y/N] "
        )
    ):
        cancel_import(conn, job_id)
        print(f"cancelling import job {job_id} (Ctrl-C again stops waiting)", file=sys.stderr)
        quiet = argparse.Namespace(**{**vars(args), "inline": False})
        return _follow(conn, db_url, job, quiet, offer_cancel=False)
    if not job.finished:
        print(
            f"stopped waiting; import job {job_id} goes on in the background"
            f" (`kamioi import cancel {job_id}` stops it)",
            file=sys.stderr,
        )
    if args.rejections:
        _write_report(conn, job, Path(args.rejections))
    return 130


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "import",
        help="bulk-import a CSV of mappings or transactions as a background job; retry a failed one",
        usage="%(prog)s FILE --kind {mappings,transactions} [options]\n"
        "       %(prog)s retry ID [--force] [--inline] [--no-wait] [--rejections PATH] [--db-url URL]\n"
        "       %(prog)s cancel ID [--no-wait] [--rejections PATH] [--db-url URL]",
    )
    parser.add_argument("file", metavar="FILE", help="CSV file with a header row (see jobs/imports/README.md)")
    parser.add_argument(
        "import_id",
        nargs="?",
        type=int,
        metavar="ID",
        help="after `retry`: a failed or cancelled import, queued again to resume at its checkpoint;"
        " after `cancel`: a queued or running import, cancelled (committed rows stay)",
    )
    parser.add_argument("--kind", choices=["mappings", "transactions"], help="required to import a file")
    parser.add_argument("--db-url", default=None, help="default: DATABASE_URL (env or .env)")
    parser.add_argument(
        "--force",
        action="store_true",
        help="import even if this file was imported before; retry even if it was imported again since",
    )
    parser.add_argument("--no-wait", action="store_true", help="register the job, print its id and exit")
    parser.add_argument("--inline", action="store_true", help="run the import in this process, not a worker")
    parser.add_argument(
        "--rejections",
        metavar="PATH",
        help="write the rejected rows report (CSV) here, however the wait ends (so far, if interrupted)",
    )
    parser.set_defaults(func=_import)
