"""`python -m bench.load`: the real mix at once on the stack the settings point at (use a private one).

For `--seconds` (60), at the same time:
- users read their first transactions page the way PostgREST runs it (pgbench as `authenticator`,
  the set_config preamble, list_my_transactions under RLS), `--user-rate` a second, each request by
  one of `--users` bench users;
- admins hit the API at fixed rates (open loop, so a slow server shows as latency): dashboard stats,
  the three analytics aggregates, the review queue, round-robin over `--admins` admins' tokens; and
  one admin decides a pending mapping every `--review-every-s`;
- a worker imports a `--import-rows` (2M) file, and maps the merchants of an earlier import with a
  (fake, `--llm-latency-s` slow) OpenAI-compatible LLM.
Then: p50/p95/p99, throughput and errors per class, the cache hit rate (/metrics), Postgres client
connections (pg_stat_activity, sampled each second), and how far the import and the mapping got.
Setup (bench users and history, the files) is untimed and reused by later runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import threading
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg

from bench.drills.processes import ApiProcess, WorkerProcess
from bench.load.data import admin_tokens, import_now, preload, write_import_file
from bench.load.drivers import (
    ClassResult,
    ConnectionSampler,
    OpenLoop,
    Reviewer,
    api_side_latency,
    as_instrument,
    cache_hit_rate,
    pgbench_result,
    scrape,
    start_pgbench,
)
from jobs.imports.service import create_import, get_import
from jobs.map_merchants import MAP_MERCHANTS
from kamioi.settings import Settings, get_settings
from local_stack.keys import KeyMaterial, ensure_keys
from local_stack.manager import Stack
from local_stack.standins.llm_server import serve_in_thread

ANALYTICS = [
    "/v1/analytics/categories?months=12",
    "/v1/analytics/top-merchants?days=30&limit=10",
    "/v1/analytics/mapping-throughput?days=30",
]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--users", type=int, default=10_000, help="distinct users reading")
    parser.add_argument("--history", type=int, default=1_000_000, help="transactions preloaded for them")
    parser.add_argument("--pending", type=int, default=200_000, help="mappings preloaded (72%% pending)")
    parser.add_argument("--pgbench-clients", type=int, default=20, help="a PostgREST-sized pool")
    parser.add_argument("--user-rate", type=int, default=300, help="users' page reads/s (0: as fast as it can)")
    parser.add_argument("--admins", type=int, default=20)
    parser.add_argument("--stats-rate", type=float, default=50, help="dashboard reads/s")
    parser.add_argument("--analytics-rate", type=float, default=10, help="analytics reads/s")
    parser.add_argument("--queue-rate", type=float, default=10, help="review queue pages/s")
    parser.add_argument("--review-every-s", type=float, default=0.5)
    parser.add_argument("--import-rows", type=int, default=2_000_000)
    parser.add_argument("--mapping-rows", type=int, default=100_000, help="the earlier import whose merchants map")
    parser.add_argument("--llm-latency-s", type=float, default=0.5)
    parser.add_argument("--worker-nice", type=int, default=10, help="the worker's CPU priority (batch work)")
    parser.add_argument("--seed", type=int, default=7)
    return parser.parse_args()


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')} load {os.getloadavg()[0]:.1f}] {message}", flush=True)


def main() -> int:
    args = parse_args()
    settings = get_settings()
    work = settings.state_dir / "load"
    work.mkdir(parents=True, exist_ok=True)
    keys = ensure_keys(settings.keys_dir)

    with Stack(settings).worker_paused():
        return run(args, settings, work, keys)


def run(args: argparse.Namespace, settings: Settings, work: Path, keys: KeyMaterial) -> int:
    log(f"setup: {args.users:,} users, {args.history:,} transactions, {args.pending:,} mappings")
    with psycopg.connect(settings.db_url) as conn:
        preload(conn, users=args.users, transactions=args.history, mappings=args.pending)
        tokens = admin_tokens(conn, keys, settings.jwt_issuer, args.admins)
        big_file = work / f"import-{args.import_rows}.csv"
        if not big_file.exists():
            log(f"setup: writing {big_file}")
            write_import_file(big_file, args.import_rows, args.users, args.seed)
        log("setup: importing a file of new merchants (its mapping job, queued on success, runs in the window)")
        fresh_seed = int(time.time())  # new local shops every run, so the LLM has work every run
        to_map = import_now(
            conn, settings.db_url, write_import_file(work / "to-map.csv", args.mapping_rows, args.users, fresh_seed)
        )
        map_job = mapping_job_of(conn, to_map.id)

    api_env = {
        # The per-admin read limit (600/min) stands for people; here a few connections stand for many.
        "API_RATE_READS_PER_MINUTE": str(10**9),
        "API_RATE_WRITES_PER_MINUTE": str(10**9),
    }
    with (
        serve_in_thread("slow", slow_s=args.llm_latency_s) as llm_url,
        ApiProcess(api_env, work / "api.log", settings.api_workers) as api,
    ):
        worker_env = {
            "LLM_API_KEY": "load",
            "LLM_BASE_URL": llm_url,
            "LLM_MODEL": "fake-model",
            "KAMIOI_JOBS_LEASE_SECONDS": "30",
            "KAMIOI_IMPORT_CHUNK_ROWS": "50000",
        }
        worker = WorkerProcess(
            work / "worker",
            ["import", MAP_MERCHANTS],
            db_url=settings.db_url,
            env=worker_env,
            concurrency=2,
            nice=args.worker_nice,
        )
        with psycopg.connect(settings.db_url, autocommit=True) as conn:
            for path in [*ANALYTICS, "/v1/stats/dashboard"]:  # warm the cache, as a running system has it
                httpx.get(f"{api.url}{path}", headers={"Authorization": f"Bearer {tokens[0]}"}, timeout=60)
            before = scrape(api.url)
            results, extra = run_window(args, settings.db_url, settings.superuser_db_url, api.url, tokens, work, worker,
                                        conn, map_job, big_file)  # fmt: skip
            hit_rate, outcomes = cache_hit_rate(before, scrape(api.url))
    report(args, results, {**extra, "cache_hit_rate": hit_rate, "cache_outcomes": outcomes}, work)
    return 0


def run_window(
    args: argparse.Namespace,
    db_url: str,
    superuser_url: str,
    api_url: str,
    tokens: list[str],
    work: Path,
    worker: WorkerProcess,
    conn: psycopg.Connection[Any],
    map_job: int,
    big_file: Path,
) -> tuple[list[ClassResult], dict[str, Any]]:
    seconds = args.seconds
    pgbench_dir = work / "pgbench"
    pgbench_dir.mkdir(exist_ok=True)
    for old in pgbench_dir.glob("pgbench*"):
        old.unlink()
    calls_before = conn.execute("select count(*) from public.llm_calls").fetchone()
    job = create_import(conn, kind="transactions", file=big_file, force=True)
    worker.start()
    stop = threading.Event()
    sampler = ConnectionSampler(superuser_url)
    reviewer = Reviewer(api_url, tokens[-1], args.review_every_s)
    watchers = [
        threading.Thread(target=sampler.run, args=(stop,)),
        threading.Thread(target=as_instrument(reviewer.run), args=(stop,)),
    ]
    log(f"window: {seconds}s of the whole mix")
    started, window_from = time.monotonic(), datetime.now(UTC)
    pgbench = start_pgbench(
        db_url, pgbench_dir, users=args.users, clients=args.pgbench_clients, seconds=seconds, rate=args.user_rate
    )
    admins = [
        OpenLoop("admins: dashboard stats", api_url, ["/v1/stats/dashboard"], tokens, args.stats_rate),
        OpenLoop("admins: analytics", api_url, ANALYTICS, tokens, args.analytics_rate),
        OpenLoop("admins: review queue (GET pending)", api_url, ["/v1/mappings/pending?limit=50"], tokens,
                 args.queue_rate),
    ]  # fmt: skip

    async def admin_traffic() -> None:
        await asyncio.gather(*(driver.run(seconds) for driver in admins))

    watchers.append(threading.Thread(target=as_instrument(asyncio.run), args=(admin_traffic(),)))
    for thread in watchers:
        thread.start()
    results = [pgbench_result(pgbench, pgbench_dir, seconds)]
    window_to = datetime.now(UTC)
    stop.set()
    for thread in watchers:
        thread.join()
    results += [driver.result(seconds) for driver in admins]
    results.append(reviewer.result(seconds))
    elapsed = time.monotonic() - started
    in_window = get_import(conn, job.id)
    map_state = conn.execute("select state from private.job_queue where id = %s", (map_job,)).fetchone()
    calls_after = conn.execute("select count(*) from public.llm_calls").fetchone()
    log("window over; letting the import and the mapping finish (up to 15 minutes)")
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        done = get_import(conn, job.id)
        mapped = conn.execute("select state from private.job_queue where id = %s", (map_job,)).fetchone()
        if done is not None and done.finished and mapped is not None and mapped[0] in ("succeeded", "failed"):
            break
        time.sleep(1)
    worker.stop()
    final = get_import(conn, job.id)
    assert in_window is not None and final is not None
    extra = {
        "window_s": round(elapsed, 1),
        "connections": sampler.summary(),
        "import": {
            "rows_in_window": in_window.processed_rows,
            "rows_per_s_in_window": round(in_window.processed_rows / elapsed),
            "state": final.state,
            "rows": final.processed_rows,
            "inserted": final.inserted_rows,
            "rejected": final.rejected_rows,
            "seconds": round((final.finished_at - final.started_at).total_seconds(), 1)
            if final.finished_at and final.started_at
            else None,
        },
        "mapping": {
            "state_at_window_end": map_state[0] if map_state else None,
            "state": mapped[0] if mapped else None,
            "llm_calls_in_window": (calls_after[0] if calls_after else 0) - (calls_before[0] if calls_before else 0),
        },
        "review_statuses": dict(reviewer.statuses),
        "api_side": api_side_latency(work / "api.log", window_from, window_to),
    }
    return results, extra


def mapping_job_of(conn: psycopg.Connection[Any], import_job_id: int) -> int:
    """The map_merchants job the import's success queued (migration 20261122140000)."""
    row = conn.execute(
        "select id from private.job_queue where kind = %s and payload ->> 'import_job_id' = %s order by id desc",
        (MAP_MERCHANTS, str(import_job_id)),
    ).fetchone()
    assert row is not None, f"no mapping job was queued for import {import_job_id}"
    return int(row[0])


def report(args: argparse.Namespace, results: list[ClassResult], extra: dict[str, Any], work: Path) -> None:
    total = sum(r.requests for r in results)
    errors = sum(r.errors for r in results)
    (work / "results.json").write_text(
        json.dumps({"args": vars(args), "classes": [asdict(r) for r in results], **extra}, indent=2, default=str)
    )
    print(f"\n{args.seconds}s window; {total:,} requests, {errors:,} errors ({errors / max(total, 1):.3%})\n")
    print("| class | requests | req/s | p50 ms | p95 ms | p99 ms | errors |\n|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r.name} | {r.requests:,} | {r.per_second:,.0f} | {r.p50_ms:.1f} | {r.p95_ms:.1f} | {r.p99_ms:.1f}"
              f" | {r.errors} ({r.error_rate:.2%}) |")  # fmt: skip
    print("\nThe API's own time per request (its access log), same window:\n")
    print("| route | requests | p50 ms | p95 ms | p99 ms |\n|---|---|---|---|---|")
    for route, row in extra["api_side"].items():
        print(f"| {route} | {row['requests']:,} | {row['p50_ms']:.1f} | {row['p95_ms']:.1f} | {row['p99_ms']:.1f} |")
    print(f"\ncache hit rate {extra['cache_hit_rate']:.1%} {extra['cache_outcomes']}")
    print(f"connections {extra['connections']}")
    print(f"import {extra['import']}")
    print(f"mapping {extra['mapping']}")
    print(f"results in {work / 'results.json'}")


if __name__ == "__main__":
    sys.exit(main())
