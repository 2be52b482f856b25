"""Import benchmark (issue 4): ratios measured in the same run, against the configured local stack.

1. Import N generated mappings end to end through the job (register with the file's sha256, a
   worker process picks it up, chunks commit, succeeded) into public.llm_mappings already holding
   N rows, vs raw `psql \\copy` of the same file into the same table (the real table itself, with
   every index and trigger, inside a transaction that is rolled back, then vacuumed).
2. The seeds' approach: one INSERT per row with a row trigger that recomputes COUNT(*) into a
   stats row, timed on a sample and extrapolated to N rows (also rolled back).
3. Optionally (--rss-rows), a big import through a fresh worker: its peak RSS (VmHWM) and wall time.

It adds rows to llm_mappings and merchants: point it at a throwaway stack
(KAMIOI_STATE_DIR / KAMIOI_ENV_FILE / KAMIOI_DB_PORT ...). Files are generated with `kamioi generate`
(seeded, so re-runs reuse them) under the stack's state directory.

    python -m bench.import_bench --rows 200000                  # quick check
    python -m bench.import_bench                                # 2M into 2M, the issue's size
    python -m bench.import_bench --rows 0 --rss-rows 15000000   # the 15M-row import alone
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg

from cli.commands.generate import write_csv
from cli.generate import MAPPING_COLUMNS, generate_mappings
from jobs.imports.service import create_import, get_import, local_file
from jobs.queue import live_workers
from kamioi.db import connect
from kamioi.settings import PROJECT_ROOT, get_settings
from local_stack.manager import Stack

PSQL = "psql"
SEED_SAMPLE_ROWS = 20
# The table's columns the generated file carries (the raw COPY takes the file as it is).
COPY_COLUMNS = ", ".join(MAPPING_COLUMNS)


@dataclass
class ImportRun:
    seconds: float
    rows: int
    inserted: int
    rejected: int
    peak_rss_mb: float


def mappings_file(directory: Path, rows: int, seed: int) -> Path:
    path = directory / f"mappings-{rows}-seed{seed}.csv"
    if not path.exists():
        partial = path.with_suffix(".partial")
        started = time.monotonic()
        with partial.open("w", encoding="utf-8", newline="") as out:
            write_csv(MAPPING_COLUMNS, generate_mappings(rows, seed, 0.0), out)
        partial.rename(path)
        print(f"  generated {path.name} ({path.stat().st_size / 1e6:.0f} MB) in {time.monotonic() - started:.0f}s")
    return path


def psql_env(db_url: str) -> dict[str, str]:
    parts = urlsplit(db_url)
    return {
        **os.environ,
        "PGHOST": parts.hostname or "127.0.0.1",
        "PGPORT": str(parts.port or 5432),
        "PGUSER": parts.username or "postgres",
        "PGPASSWORD": parts.password or "",
        "PGDATABASE": (parts.path or "/postgres").lstrip("/"),
    }


def psql_script(db_url: str, script: str) -> float:
    started = time.monotonic()
    subprocess.run(
        [PSQL, "-v", "ON_ERROR_STOP=1", "-q", "-X"], input=script, text=True, check=True, env=psql_env(db_url)
    )
    return time.monotonic() - started


def mapping_rows(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("select count(*) from public.llm_mappings").fetchone()
    return int(row[0]) if row else 0


def prefill(db_url: str, conn: psycopg.Connection[Any], path: Path, rows: int) -> None:
    """Top llm_mappings up to `rows` with raw COPY (setup, not measured)."""
    if mapping_rows(conn) >= rows:
        return
    seconds = psql_script(db_url, f"\\copy public.llm_mappings ({COPY_COLUMNS}) from '{path}' csv header\n")
    conn.execute("vacuum analyze public.llm_mappings")
    print(f"  prefilled llm_mappings with {rows:,} rows in {seconds:.0f}s")


def raw_copy(db_url: str, conn: psycopg.Connection[Any], path: Path) -> float:
    seconds = psql_script(
        db_url, f"begin;\n\\copy public.llm_mappings ({COPY_COLUMNS}) from '{path}' csv header\nrollback;\n"
    )
    conn.execute("vacuum public.llm_mappings")  # the rolled-back rows must not slow the next run
    return seconds


def seed_approach_rows_per_second(db_url: str, path: Path, sample: int) -> float:
    """One INSERT per row, a row trigger recomputing COUNT(*) into a stats row (the seeds' design)."""
    with path.open(encoding="utf-8") as handle:
        next(handle)
        lines = [next(handle) for _ in range(sample)]
    with connect(db_url) as conn:
        conn.execute("create temp table seed_stats (mappings bigint)")
        conn.execute("insert into seed_stats values (0)")
        conn.execute(
            "create function pg_temp.seed_count() returns trigger language plpgsql as $$ begin"
            " update seed_stats set mappings = (select count(*) from public.llm_mappings); return null; end $$"
        )
        conn.execute(
            "create trigger bench_seed_count after insert on public.llm_mappings"
            " for each row execute function pg_temp.seed_count()"
        )
        started = time.monotonic()
        for line in lines:
            with conn.cursor().copy(f"copy public.llm_mappings ({COPY_COLUMNS}) from stdin (format csv)") as copy:
                copy.write(line)
        seconds = time.monotonic() - started
        conn.rollback()
    return sample / seconds


def start_worker(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "jobs", "worker", "--kind", "import", "--concurrency", "1", "--log-level", "WARNING"],
        cwd=PROJECT_ROOT,
        env={**os.environ, **env},
    )


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def import_through_job(db_url: str, conn: psycopg.Connection[Any], path: Path) -> ImportRun:
    """Register (hashing the file, as `kamioi import` does) and wait for a fresh worker to finish it."""
    worker = start_worker({})
    try:
        deadline = time.monotonic() + 30
        while not live_workers(conn, "import", 30) and time.monotonic() < deadline:
            time.sleep(0.1)
        file = local_file(path)  # hashed before the clock starts, as an upload hashes while it arrives
        started = time.monotonic()
        job = create_import(conn, kind="mappings", file=file, force=True)
        while True:
            current = get_import(conn, job.id)
            assert current is not None
            if current.finished:
                break
            time.sleep(0.2)
        seconds = time.monotonic() - started
        if current.state != "succeeded":
            raise SystemExit(f"import {job.id} {current.state}: {current.error}")
        rss = peak_rss_mb(worker.pid)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=60)
    return ImportRun(seconds, current.processed_rows, current.inserted_rows, current.rejected_rows, rss)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=2_000_000, help="rows already in the table and rows imported")
    parser.add_argument("--rss-rows", type=int, default=0, help="also import a file this big and report peak RSS")
    parser.add_argument("--seed-sample", type=int, default=SEED_SAMPLE_ROWS)
    args = parser.parse_args(argv)

    settings = get_settings()
    db_url = settings.db_url
    directory = settings.state_dir / "bench"
    directory.mkdir(parents=True, exist_ok=True)
    lines: list[str] = []
    with Stack(get_settings()).worker_paused(), connect(db_url, autocommit=True) as conn:
        if args.rows:
            print(f"mappings: {args.rows:,} into a table of {args.rows:,}")
            existing = mappings_file(directory, args.rows, seed=1)
            incoming = mappings_file(directory, args.rows, seed=2)
            prefill(db_url, conn, existing, args.rows)
            table_rows = mapping_rows(conn)
            raw = raw_copy(db_url, conn, incoming)
            print(f"  raw psql \\copy: {raw:.1f}s ({args.rows / raw:,.0f} rows/s)")
            seed_rate = seed_approach_rows_per_second(db_url, incoming, args.seed_sample)
            print(f"  seeds' row inserts with COUNT(*) trigger: {seed_rate:.2f} rows/s (sample {args.seed_sample})")
            ours = import_through_job(db_url, conn, incoming)
            rate = ours.rows / ours.seconds
            print(f"  import job: {ours.seconds:.1f}s ({rate:,.0f} rows/s), peak RSS {ours.peak_rss_mb:.0f} MB")
            seed_seconds = args.rows / seed_rate
            lines += [
                f"| table already holding | {table_rows:,} rows (llm_mappings, every index and trigger) |",
                f"| raw `psql \\copy` of the file | {raw:.1f} s ({args.rows / raw:,.0f} rows/s) |",
                f"| import job end to end ({ours.inserted:,} inserted, {ours.rejected} rejected) | "
                f"{ours.seconds:.1f} s ({ours.rows / ours.seconds:,.0f} rows/s) |",
                f"| **job vs raw COPY** | **{raw / ours.seconds:.2f}x** (target >= 0.7x) |",
                f"| seeds' approach, extrapolated from {args.seed_sample} rows | "
                f"{seed_seconds / 3600:,.1f} h ({seed_rate:.2f} rows/s) |",
                f"| **job vs seeds' approach** | **{seed_seconds / ours.seconds:,.0f}x** (target >= 1000x) |",
                f"| worker peak RSS | {ours.peak_rss_mb:.0f} MB |",
            ]
        if args.rss_rows:
            print(f"big import: {args.rss_rows:,} rows")
            big = import_through_job(db_url, conn, mappings_file(directory, args.rss_rows, seed=3))
            print(f"  {big.seconds:.0f}s, peak RSS {big.peak_rss_mb:.0f} MB")
            lines += [
                f"| {args.rss_rows:,}-row import: wall time | {big.seconds / 60:.1f} min"
                f" ({big.rows / big.seconds:,.0f} rows/s) |",
                f"| {args.rss_rows:,}-row import: worker peak RSS | {big.peak_rss_mb:.0f} MB (target < 300 MB) |",
            ]
    print("\n| measurement | result |\n|---|---|\n" + "\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
