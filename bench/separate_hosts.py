"""Deploy drill: the API and two workers as separate hosts sharing no disk, only the database and Storage.

Each process runs in a state directory of its own (its cwd and KAMIOI_STATE_DIR). A browser uploads a
CSV straight to Storage (a signed upload URL, resumable over TUS, with tuspy as tus-js-client would),
the API registers the object (hashing it as it streams by, writing nothing), worker 1 starts the
import and is killed with SIGKILL mid-way, worker 2 takes the job over when its lease runs out and
finishes it from the checkpoint with range reads. Checked: every row imported exactly once, the three
state directories still empty, and worker 2 asked Storage for nothing before the checkpoint but the
header's window.

    python -m bench.separate_hosts --rows 1000000     # the BENCHMARKS.md run (stack up, worker paused)

tests/reliability/test_separate_hosts.py runs a small version in `make test` (and this size with -m slow).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
from tusclient import client as tus

from bench.drills.processes import ApiProcess
from kamioi.settings import Settings, get_settings
from kamioi.storage import READ_WINDOW
from local_stack.keys import ensure_keys
from local_stack.manager import Stack
from local_stack.standins.storage_server import serve_in_thread
from local_stack.tokens import token_for

USER_ID = "00000000-0000-4000-a000-000000000002"  # a seeded user
MERCHANTS = ("STARBUCKS", "TARGET", "WALMART", "CHIPOTLE", "AMAZON MKTP", "SHELL OIL", "COSTCO WHSE", "UBER TRIP")
TUS_CHUNK = 6 << 20  # Supabase's chunk size for resumable uploads
RANGE = re.compile(r"GET (?P<object>\S+) range=bytes=(?P<start>\d+)-(?P<end>\d*)")


@dataclass
class HostsResult:
    rows: int
    file_bytes: int
    upload_s: float
    register_s: float
    killed_after_rows: int
    checkpoint_at_kill: int
    resume_s: float
    resumed_rows_per_s: float
    imported_rows: int
    distinct_lines: int
    state_dir_files: dict[str, list[str]]
    ranges_after_kill: list[tuple[int, int]]
    bytes_asked_after_kill: int
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems


class RangeLog(logging.Handler):
    """The Storage stand-in's reads (it runs in this process), kept to see what a worker asked for."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.reads: list[tuple[str, int, int]] = []

    def emit(self, record: logging.LogRecord) -> None:
        if (match := RANGE.match(record.getMessage())) is not None:
            self.reads.append((match["object"], int(match["start"]), int(match["end"] or -1)))


@contextmanager
def range_log() -> Iterator[RangeLog]:
    logger, handler = logging.getLogger("local_stack.storage"), RangeLog()
    previous = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)


def write_csv(path: Path, rows: int, marker: str) -> None:
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("user_id,txn_date,descriptor,amount\n")
        for n in range(rows):
            merchant = MERCHANTS[n % len(MERCHANTS)]
            out.write(f"{USER_ID},2026-11-{n % 28 + 1:02d},{merchant} {marker} #{n},{n % 9000 / 100 + 1:.2f}\n")


def start_worker(name: str, state_dir: Path, logs: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with (logs / f"{name}.log").open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "jobs", "worker", "--kind", "import", "--concurrency", "1"],
            cwd=state_dir,
            env={**os.environ, **env, "KAMIOI_STATE_DIR": str(state_dir)},
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def wait_for(
    conn: psycopg.Connection[Any], job_id: int, done: Callable[[dict[str, Any]], bool], timeout_s: float
) -> dict[str, Any]:
    """The import's row once `done` holds for it."""
    deadline = time.monotonic() + timeout_s
    while True:
        row = conn.execute(
            "select state, processed_rows, checkpoint_offset, error from public.import_jobs where id = %s", (job_id,)
        ).fetchone()
        assert row is not None
        current = dict(zip(("state", "processed_rows", "checkpoint_offset", "error"), row, strict=True))
        if done(current):
            return current
        if time.monotonic() > deadline:
            raise TimeoutError(f"import {job_id}: not there in {timeout_s}s: {current}")
        time.sleep(0.1)


def ended(job: dict[str, Any]) -> bool:
    return job["state"] in ("succeeded", "failed", "cancelled")


def run(settings: Settings, storage_url: str, work_dir: Path, *, rows: int, chunk_rows: int) -> HostsResult:
    """The drill; the stack's own worker must be paused (it would take the job)."""
    dirs = {name: work_dir / name for name in ("api", "worker-1", "worker-2")}
    browser, logs = work_dir / "browser", work_dir / "logs"
    for directory in (*dirs.values(), browser, logs):
        directory.mkdir(parents=True)
    marker = f"HOSTS{time.time_ns()}"
    csv_path = browser / "transactions.csv"
    write_csv(csv_path, rows, marker)
    size = csv_path.stat().st_size
    token = token_for("admin", ensure_keys(settings.keys_dir), settings.jwt_issuer)
    headers = {"Authorization": f"Bearer {token}"}
    common = {"SUPABASE_STORAGE_URL": storage_url}
    api_env = {
        **common,
        "KAMIOI_STATE_DIR": str(dirs["api"]),
        "API_UPLOAD_MAX_BYTES": str(max(size * 2, 1 << 20)),
        "API_RATE_UPLOADS_PER_HOUR": "1000000",
        "API_RATE_WRITES_PER_MINUTE": "1000000",
        "API_LOG_LEVEL": "WARNING",
    }
    worker_env = {
        **common,
        "KAMIOI_JOBS_LEASE_SECONDS": "3",
        "KAMIOI_JOBS_POLL_SECONDS": "1",
        "KAMIOI_IMPORT_CHUNK_ROWS": str(chunk_rows),
    }
    problems: list[str] = []
    workers: list[subprocess.Popen[bytes]] = []
    with (
        range_log() as reads,
        ApiProcess(api_env, logs / "api.log", cwd=dirs["api"]) as api,
        httpx.Client(base_url=api.url, headers=headers, timeout=600) as http,
        psycopg.connect(settings.db_url, autocommit=True) as conn,
    ):
        started = time.monotonic()
        grant = http.post("/v1/imports/uploads", json={"filename": csv_path.name})
        grant.raise_for_status()
        signed = grant.json()
        target = signed["storage_object"]
        metadata = {"bucketName": target["bucket"], "objectName": target["path"], "contentType": "text/csv"}
        with csv_path.open("rb") as file:  # the browser: no key, only the upload's token
            uploader = tus.TusClient(signed["resumable_url"], headers={"x-signature": signed["token"]}).uploader(
                file_stream=file, chunk_size=TUS_CHUNK, metadata=metadata
            )
            uploader.upload()
        upload_s = time.monotonic() - started
        started = time.monotonic()
        created = http.post("/v1/imports", json={"kind": "transactions", "storage_object": target})
        created.raise_for_status()
        job_id = created.json()["id"]
        register_s = time.monotonic() - started
        try:
            workers.append(start_worker("worker-1", dirs["worker-1"], logs, worker_env))
            kill_after = rows // 3
            wait_for(conn, job_id, lambda job: job["processed_rows"] >= kill_after or ended(job), 600)
            workers[0].send_signal(signal.SIGKILL)
            workers[0].wait(timeout=10)
            at_kill = wait_for(conn, job_id, lambda _: True, 1)
            reads_before = len(reads.reads)
            started = time.monotonic()
            workers.append(start_worker("worker-2", dirs["worker-2"], logs, worker_env))
            finished = wait_for(conn, job_id, ended, 3600)
            resume_s = time.monotonic() - started
        finally:
            for worker in workers:
                if worker.poll() is None:
                    worker.send_signal(signal.SIGKILL)
                    worker.wait(timeout=10)
        if finished["state"] != "succeeded":
            problems.append(f"the import ended {finished['state']}: {finished['error']}")
        counted = conn.execute(
            "select count(*), count(distinct import_line) from public.transactions where import_job_id = %s", (job_id,)
        ).fetchone()
        assert counted is not None
        imported, distinct = counted
        # Arrangement, not product data: the drill's rows go (the stack's worker is paused, nothing invested them).
        conn.execute("delete from public.transactions where import_job_id = %s", (job_id,))
    obj = f"{target['bucket']}/{target['path']}"
    after_kill = [(start, end) for name, start, end in reads.reads[reads_before:] if name == obj]
    asked = sum((end if end >= 0 else size - 1) - start + 1 for start, end in after_kill)
    checkpoint = int(at_kill["checkpoint_offset"])
    files = {name: sorted(str(p.relative_to(d)) for p in d.rglob("*") if p.is_file()) for name, d in dirs.items()}
    if imported != rows or distinct != rows:
        problems.append(f"{imported} rows imported ({distinct} distinct lines), expected {rows} exactly once")
    if any(files.values()):
        problems.append(f"a host wrote files of its own: {files}")
    if not 0 < checkpoint < size or int(at_kill["processed_rows"]) >= rows:
        problems.append(f"the kill did not land mid-import (checkpoint {checkpoint} of {size} bytes)")
    early = [(s, e) for s, e in after_kill if s < checkpoint and not (s == 0 and e < READ_WINDOW)]
    if early or not any(s == checkpoint for s, _ in after_kill):
        problems.append(f"worker 2 did not resume at byte {checkpoint}: ranges {after_kill}")
    return HostsResult(
        rows=rows,
        file_bytes=size,
        upload_s=round(upload_s, 2),
        register_s=round(register_s, 2),
        killed_after_rows=int(at_kill["processed_rows"]),
        checkpoint_at_kill=checkpoint,
        resume_s=round(resume_s, 2),
        resumed_rows_per_s=round((rows - int(at_kill["processed_rows"])) / max(resume_s, 1e-6)),
        imported_rows=imported,
        distinct_lines=distinct,
        state_dir_files=files,
        ranges_after_kill=after_kill,
        bytes_asked_after_kill=asked,
        problems=problems,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--chunk-rows", type=int, default=50_000)
    args = parser.parse_args()
    settings = get_settings()
    keys = {"secret_key": settings.supabase_secret_key, "jwt_secret": settings.supabase_jwt_secret}
    with (
        Stack(settings).worker_paused(),
        tempfile.TemporaryDirectory(prefix="kamioi-hosts-") as work,
        serve_in_thread(Path(work) / "storage", **keys) as storage_url,
    ):
        result = run(settings, storage_url, Path(work) / "hosts", rows=args.rows, chunk_rows=args.chunk_rows)
    print(json.dumps(asdict(result) | {"passed": result.passed}, indent=2))
    return 0 if result.passed else 1


if __name__ == "__main__":
    sys.exit(main())
