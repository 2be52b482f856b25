"""The drills. Each breaks one thing on purpose, lets the system recover by itself, and compares
what was written with a clean run: nothing lost, nothing written twice, jobs finished, the API
serving again without a restart."""

from __future__ import annotations

import contextlib
import itertools
import random
import select
import shutil
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg

from bench.drills.handlers import DRILL_IMPORT, DRILL_MAP_MERCHANTS, DRILL_REASK
from bench.drills.imports import (
    ImportSnapshot,
    current,
    lease_holder_pid,
    register,
    run_inline,
    settle,
    write_transactions_file,
)
from bench.drills.outages import Outage
from bench.drills.processes import WorkerProcess
from jobs import queue

USER = "00000000-0000-4000-a000-000000000002"
# A worker importing ordinary rows peaks near 190 MB (BENCHMARKS.md); a long line must not add to it.
HUGE_LINE_MAX_RSS_MB = 400


@dataclass
class DrillResult:
    name: str
    passed: bool
    summary: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DrillEnv:
    db_url: str  # direct, as the owner role: arranging and checking
    worker_db_url: str  # what drill workers connect to (the same, or a relay that can be cut)
    work_dir: Path  # files and logs
    rng: random.Random


def wait_for(check: Callable[[], Any], timeout_s: float, every_s: float = 0.01) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(every_s)
    return None


@contextlib.contextmanager
def drill_worker(env: DrillEnv, name: str, kinds: list[str], extra_env: dict[str, str]) -> Iterator[WorkerProcess]:
    worker = WorkerProcess(env.work_dir / name, kinds, db_url=env.worker_db_url, env=extra_env)
    worker.start()
    try:
        yield worker
    finally:
        worker.stop()


def ended(conn: psycopg.Connection[Any], queue_job_id: int) -> bool:
    row = conn.execute("select state from private.job_queue where id = %s", (queue_job_id,)).fetchone()
    return row is not None and row[0] in ("succeeded", "failed", "cancelled")


# 1. kill -9 the worker at random points of an import ------------------------------------------
def kill_worker_during_import(env: DrillEnv, *, rows: int, kills: int, chunk_rows: int) -> DrillResult:
    path = write_transactions_file(env.work_dir / f"kill-{rows}.csv", rows, seed=env.rng.randrange(1 << 30))
    chunk_env = {"KAMIOI_IMPORT_CHUNK_ROWS": str(chunk_rows)}
    with psycopg.connect(env.db_url, autocommit=True) as conn:
        clean = ImportSnapshot.of(conn, run_inline(conn, env.db_url, path, chunk_rows))
        job = register(conn, path)
        assert job.queue_job_id is not None
        queue_id = job.queue_job_id
        targets = sorted(int(env.rng.uniform(0.05, 0.9) * rows) for _ in range(kills))
        kill_points: list[int] = []
        started = time.monotonic()
        with drill_worker(env, "kill", [DRILL_IMPORT], chunk_env) as worker:
            for target in targets:
                # Each kill lands after the new worker committed something: deaths without any
                # progress in between are a crash loop (a poison file), which max_attempts stops.
                at_least = max(target, kill_points[-1] + 1 if kill_points else 0)

                def running_past_target(at_least: int = at_least) -> bool:
                    mine = lease_holder_pid(conn, queue_id) == worker.pid
                    return ended(conn, queue_id) or (mine and current(conn, job.id).processed_rows >= at_least)

                wait_for(running_past_target, 120)
                time.sleep(env.rng.uniform(0, 0.05))  # sometimes between chunks, mostly inside one
                state = current(conn, job.id)
                if ended(conn, queue_id) or lease_holder_pid(conn, queue_id) != worker.pid:
                    break
                worker.kill9()
                kill_points.append(state.processed_rows)
                worker.start()
            final = settle(conn, job, 900)
        elapsed = time.monotonic() - started
        differences = ImportSnapshot.of(conn, final).differences(clean)
        attempts = conn.execute("select attempts from private.job_queue where id = %s", (queue_id,)).fetchone()
    passed = final.state == "succeeded" and not differences and len(kill_points) == kills
    return DrillResult(
        "kill -9 the worker mid-import",
        passed,
        f"{len(kill_points)}/{kills} kills at rows {kill_points}; {final.state} in {elapsed:.1f}s;"
        f" {len(clean.rows):,} rows + {len(clean.rejections):,} rejections compared with a clean run:"
        f" {'identical' if not differences else '; '.join(differences)}",
        {"kills": kill_points, "claims": attempts[0] if attempts else None, "differences": differences,
         "rows": len(clean.rows), "rejections": len(clean.rejections), "seconds": round(elapsed, 1)},
    )  # fmt: skip


# 2. the database goes away mid-import ----------------------------------------------------------
@dataclass
class ApiWatch:
    """Polls the API while a dependency is down: what it answers, and how fast."""

    url: str
    headers: dict[str, str]
    paths: tuple[str, ...]
    seen: Counter[tuple[str, int]] = field(default_factory=Counter)
    slowest_s: float = 0.0

    def poll(self, stop: threading.Event) -> None:
        with httpx.Client(base_url=self.url, headers=self.headers, timeout=60) as http:
            while not stop.is_set():
                for path in self.paths:
                    started = time.monotonic()
                    try:
                        status = http.get(path).status_code
                    except httpx.HTTPError:
                        status = 0
                    self.slowest_s = max(self.slowest_s, time.monotonic() - started)
                    self.seen[(path, status)] += 1
                stop.wait(0.1)

    def statuses(self) -> dict[str, int]:
        return {f"{path} {status}": n for (path, status), n in sorted(self.seen.items())}

    def failures_after(self, rounds: int) -> int:
        """Requests of every path that do not answer 200, once the API says it is ready again."""
        with httpx.Client(base_url=self.url, headers=self.headers, timeout=30) as http:
            return sum(http.get(path).status_code != 200 for _ in range(rounds) for path in self.paths)


def wait_ready(url: str, timeout_s: float) -> float | None:
    """Seconds until /readyz answers 200, or None."""
    started = time.monotonic()

    def ready() -> bool:
        try:
            return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    return time.monotonic() - started if wait_for(ready, timeout_s, 0.1) else None


def database_outage_during_import(
    env: DrillEnv, outage: Outage, *, rows: int, chunk_rows: int, outage_s: float, api: ApiWatch | None
) -> DrillResult:
    path = write_transactions_file(env.work_dir / f"outage-{rows}.csv", rows, seed=env.rng.randrange(1 << 30))
    with psycopg.connect(env.db_url, autocommit=True) as conn:
        clean = ImportSnapshot.of(conn, run_inline(conn, env.db_url, path, chunk_rows))
        job = register(conn, path)
    with drill_worker(env, "outage", [DRILL_IMPORT], {"KAMIOI_IMPORT_CHUNK_ROWS": str(chunk_rows)}):
        with psycopg.connect(env.db_url, autocommit=True) as conn:
            assert job.queue_job_id is not None
            queue_id = job.queue_job_id
            wait_for(lambda: current(conn, job.id).processed_rows >= rows // 4 or ended(conn, queue_id), 120)
            cut_at = current(conn, job.id).processed_rows
        stop = threading.Event()
        watcher = threading.Thread(target=api.poll, args=(stop,), daemon=True) if api else None
        outage.down()
        if watcher is not None:
            watcher.start()
        time.sleep(outage_s)
        outage.up()
        stop.set()
        if watcher is not None:
            watcher.join()
        ready_after = wait_ready(api.url, 60) if api else 0.0
        failed_after = api.failures_after(20) if api and ready_after is not None else 0
        with psycopg.connect(env.db_url, autocommit=True) as conn:
            final = settle(conn, job, 900)
            differences = ImportSnapshot.of(conn, final).differences(clean)
    server_errors = {k: n for k, n in (api.statuses() if api else {}).items() if k.endswith((" 500", " 0"))}
    passed = final.state == "succeeded" and not differences and ready_after is not None and not server_errors
    passed = passed and not failed_after
    api_line = (
        f" API (no restart) ready {ready_after:.1f}s after, then {failed_after} failed requests"
        if ready_after is not None
        else " API never ready again"
    )
    return DrillResult(
        f"{outage.name} mid-import",
        passed,
        f"down {outage_s:g}s at row {cut_at:,}; import {final.state}; {len(clean.rows):,} rows compared with a clean"
        f" run: {'identical' if not differences else '; '.join(differences)};{api_line}",
        {"api_during_outage": api.statuses() if api else {}, "slowest_api_s": round(api.slowest_s, 2) if api else 0,
         "differences": differences, "ready_after_s": ready_after, "failed_after_ready": failed_after},
    )  # fmt: skip


# 3. the cache goes away under load ---------------------------------------------------------------
@dataclass
class LoadTally:
    by_phase: Counter[tuple[str, str, int]] = field(default_factory=Counter)  # (phase, class, status)
    cache: Counter[tuple[str, str]] = field(default_factory=Counter)  # (phase, X-Cache)
    retry_after_missing: int = 0
    last_failed_write_s: float = 0.0  # after the restore, relative to it


CACHE_LOAD: tuple[tuple[str, str, str, dict[str, Any] | None], ...] = (
    ("stats", "GET", "/v1/stats/dashboard", None),
    ("analytics", "GET", "/v1/analytics/top-merchants?days=30", None),
    ("review queue", "GET", "/v1/mappings/pending", None),
    ("write", "POST", "/v1/mappings/resolve", {"descriptors": ["STARBUCKS 123 SEATTLE WA"]}),
)


def cache_outage_under_load(
    api_url: str, headers: dict[str, str], outage: Outage, *, clients: int, phase_s: float, recovery_s: float = 5.0
) -> DrillResult:
    """Reads (cached aggregates, the review queue) and writes (resolve) before, during and after.
    Reads must never fail; writes may be refused (503 + Retry-After: rate limits fail closed) while
    the cache is away and for at most `recovery_s` after it is back."""
    tally, stop, lock = LoadTally(), threading.Event(), threading.Lock()
    phase: list[Any] = ["before", 0.0]  # name, and when the outage ended

    def client(n: int) -> None:
        with httpx.Client(base_url=api_url, headers=headers, timeout=30) as http:
            for i in itertools.count(n):
                if stop.is_set():
                    return
                kind, method, path, body = CACHE_LOAD[i % len(CACHE_LOAD)]
                try:
                    response = http.request(method, path, json=body)
                    status, cache = response.status_code, response.headers.get("x-cache", "")
                    no_retry_hint = status == 503 and "retry-after" not in response.headers
                except httpx.HTTPError:
                    status, cache, no_retry_hint = 0, "", False
                with lock:
                    name, restored_at = str(phase[0]), float(phase[1])
                    tally.by_phase[(name, kind, status)] += 1
                    if cache:
                        tally.cache[(name, cache)] += 1
                    tally.retry_after_missing += no_retry_hint
                    if name == "after" and kind == "write" and status != 200:
                        tally.last_failed_write_s = time.monotonic() - restored_at

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(clients)]
    for thread in threads:
        thread.start()
    time.sleep(phase_s)
    with lock:
        phase[0] = "during"
    outage.down()
    time.sleep(phase_s)
    outage.up()
    with lock:
        phase[:] = ["after", time.monotonic()]
    time.sleep(recovery_s + phase_s)
    stop.set()
    for thread in threads:
        thread.join()
    counts = tally.by_phase
    read_errors = {k: n for k, n in counts.items() if k[1] != "write" and (k[2] >= 500 or k[2] == 0)}
    before_writes_failed = sum(n for k, n in counts.items() if k[:2] == ("before", "write") and k[2] != 200)
    during_writes = {k[2]: n for k, n in counts.items() if k[:2] == ("during", "write")}
    hits_after = sum(n for (p, c), n in tally.cache.items() if p == "after" and c == "hit")
    bypass_during = sum(n for (p, c), n in tally.cache.items() if p == "during" and c == "bypass")
    recovered_in = tally.last_failed_write_s
    passed = not read_errors and not before_writes_failed and hits_after > 0 and recovered_in <= recovery_s
    passed = passed and tally.retry_after_missing == 0 and set(during_writes) <= {200, 503}
    return DrillResult(
        f"{outage.name} under load",
        passed,
        f"{sum(counts.values()):,} requests from {clients} clients; reads: {sum(read_errors.values())} errors"
        f" ({bypass_during:,} answered from the database while the cache was away); writes while away:"
        f" {during_writes} (rate limits fail closed: 503 + Retry-After); writes fine again"
        f" {recovered_in:.1f}s after the cache was back; cache hits after: {hits_after:,}",
        {"by_phase": {" ".join(map(str, k)): n for k, n in sorted(counts.items())},
         "cache": {" ".join(k): n for k, n in sorted(tally.cache.items())}, "read_errors": str(read_errors)},
    )  # fmt: skip


# 4. the LLM provider fails and times out -------------------------------------------------------
def _set_llm_mode(control_url: str, mode: str, **options: float) -> None:
    httpx.post(f"{control_url}/__mode", json={"mode": mode, **options}, timeout=5).raise_for_status()


def letters(n: int, width: int) -> str:
    """`n` spelled in capital letters (the normalizer drops words with digits, as store numbers)."""
    return "".join(chr(65 + n // 26**i % 26) for i in range(width))


def _unknown_merchants_file(path: Path, tag: str, merchants: int) -> Path:
    """Two purchases at each of `merchants` shops no catalog knows (so only the LLM can answer)."""
    with path.open("w", encoding="utf-8") as out:
        out.write("user_id,txn_date,descriptor,amount\n")
        for n in range(merchants):
            name = f"{tag} {letters(n, 3)}VEL VORTAL FIXTURE WORKS"
            for day in (3, 4):
                out.write(f"{USER},2026-03-{day:02d},{name} #{day} SEATTLE WA,1{day}.25\n")
    return path


def _map(conn: psycopg.Connection[Any], import_job_id: int, timeout_s: float) -> str:
    return _run(conn, DRILL_MAP_MERCHANTS, {"import_job_id": import_job_id, "chunk_keys": 100}, timeout_s)


def _run(conn: psycopg.Connection[Any], kind: str, payload: dict[str, Any], timeout_s: float) -> str:
    job_id = queue.enqueue(conn, kind, payload)

    def finished() -> str | None:
        row = conn.execute("select state from private.job_queue where id = %s", (job_id,)).fetchone()
        return row[0] if row and row[0] in ("succeeded", "failed", "cancelled") else None

    return str(wait_for(finished, timeout_s, 0.1) or "timed out")


def _mapping_rows(conn: psycopg.Connection[Any], import_job_id: int) -> dict[str, list[tuple[str, str | None]]]:
    """merchant key of the import -> its mappings (tier, company)."""
    rows = conn.execute(
        "select m.merchant_key, m.tier, m.company_name from public.llm_mappings as m"
        " where m.merchant_key in (select merchant_key from public.transactions where import_job_id = %s)",
        (import_job_id,),
    ).fetchall()
    found: dict[str, list[tuple[str, str | None]]] = {}
    for key, tier, company in rows:
        found.setdefault(key, []).append((tier, company))
    return found


def _provider_states(conn: psycopg.Connection[Any], import_job_ids: list[int]) -> dict[str, int]:
    """provider_state -> how many mappings of these imports' merchant keys are in it ('due' counted apart)."""
    rows = conn.execute(
        "select coalesce(m.provider_state, 'none'), m.next_attempt_at > now() from public.llm_mappings as m"
        " where m.merchant_key in (select merchant_key from public.transactions where import_job_id = any(%s))",
        (import_job_ids,),
    ).fetchall()
    states: dict[str, int] = {}
    for state, waiting in rows:
        states[state] = states.get(state, 0) + 1
        states["waiting"] = states.get("waiting", 0) + bool(waiting)
    return states


def _keys_of(conn: psycopg.Connection[Any], import_job_id: int) -> set[str]:
    rows = conn.execute(
        "select distinct merchant_key from public.transactions where import_job_id = %s", (import_job_id,)
    ).fetchall()
    return {row[0] for row in rows}


def llm_outage_during_mapping(
    env: DrillEnv, llm_url: str, *, merchants: int, outage_s: float, timeout_s: float
) -> DrillResult:
    """Three imports of shops only an LLM could know. The first is mapped while the provider answers
    500s, the second while it hangs past the client's timeout (each for half the outage); then the
    provider recovers, the third (the clean run) is mapped, and the first two again (their keys have
    mappings now: no call). The keys asked during the outage must be marked failed, never approved,
    and answered by the LLM in one re-ask run once their (here short) backoff has passed."""
    control = llm_url.removesuffix("/v1")
    tag = "QX" + letters(env.rng.randrange(26**5), 5)
    llm_env = {
        "LLM_API_KEY": "drill", "LLM_BASE_URL": llm_url, "LLM_MODEL": "fake-model", "LLM_BATCH_SIZE": "25",
        "LLM_TIMEOUT_S": str(timeout_s), "LLM_MAX_ATTEMPTS": "2", "KAMIOI_JOBS_LEASE_SECONDS": "10",
        "MAPPING_RETRY_BASE_S": "1", "MAPPING_RETRY_MAX_S": "2",
    }  # fmt: skip
    with psycopg.connect(env.db_url, autocommit=True) as conn:
        errors, timeouts, clean = (
            run_inline(conn, env.db_url, _unknown_merchants_file(env.work_dir / f"llm-{part}-{tag}.csv",
                       f"{tag}{part}", merchants), 500)
            for part in "ETC"
        )  # fmt: skip
        count_transactions = "select count(*) from public.transactions"
        tx_before = conn.execute(count_transactions).fetchone()
        with drill_worker(env, "llm", [DRILL_MAP_MERCHANTS, DRILL_REASK], llm_env):
            states = []
            for mode, job, options in (("server_error", errors, {}), ("slow", timeouts, {"slow_s": timeout_s * 4})):
                _set_llm_mode(control, mode, **options)
                started = time.monotonic()
                states.append(_map(conn, job.id, 300))
                time.sleep(max(0.0, outage_s / 2 - (time.monotonic() - started)))  # the outage lasts its length
            _set_llm_mode(control, "good")
            states += [_map(conn, job.id, 300) for job in (clean, errors, timeouts)]
            outage_ids = [errors.id, timeouts.id]
            after_outage = _provider_states(conn, outage_ids)
            wait_for(lambda: not _provider_states(conn, outage_ids).get("waiting"), 30, 0.2)
            states.append(_run(conn, DRILL_REASK, {}, 300))
        since = "created_at > now() - interval '1 hour'"
        calls: dict[str, int] = dict(
            conn.execute(f"select outcome, count(*) from public.llm_calls where {since} group by outcome").fetchall()
        )
        maps = {job.id: _mapping_rows(conn, job.id) for job in (errors, timeouts, clean)}
        keys = {job.id: _keys_of(conn, job.id) for job in (errors, timeouts, clean)}
        tx_after = conn.execute(count_transactions).fetchone()
    duplicated = sum(len(v) > 1 for found in maps.values() for v in found.values())
    lost = sum(len(keys[job] - set(maps[job])) for job in maps)
    answered = sum(tier == "llm" and company is not None for v in maps[clean.id].values() for tier, company in v)
    outage_keys = len(keys[errors.id]) + len(keys[timeouts.id])
    failed = after_outage.get("failed", 0)
    reasked = sum(
        tier == "llm" and company is not None for job in outage_ids for v in maps[job].values() for tier, company in v
    )
    passed = states == ["succeeded"] * 6 and not duplicated and not lost and failed == outage_keys
    passed = passed and answered == len(keys[clean.id]) and reasked == outage_keys and tx_before == tx_after
    return DrillResult(
        "LLM provider errors and timeouts",
        passed,
        f"{outage_s:g}s down (500s, then hangs past the {timeout_s:g}s timeout); mapping jobs {'/'.join(states)};"
        f" {outage_keys + len(keys[clean.id])} merchants, each with exactly one mapping ({duplicated} duplicated,"
        f" {lost} lost); after recovery {answered}/{len(keys[clean.id])} answered by the LLM;"
        f" {failed}/{outage_keys} asked during the outage marked failed (none approved), then"
        f" {reasked}/{outage_keys} answered by one re-ask run",
        {"llm_calls_last_hour": calls, "after_outage": after_outage, "states": states},
    )


# 5. Storage full while an upload streams into it -------------------------------------------------
def stored_objects(storage_root: Path) -> list[str]:
    """Objects under a Storage stand-in's root (not an upload it is still discarding: no client sees those)."""
    return sorted(
        str(p)
        for p in storage_root.rglob("*")
        if p.is_file() and ".storage" not in p.parts and not p.name.startswith(".upload-")
    )


def _room_back(storage_root: Path) -> bool:
    """No upload still being discarded (named, or unlinked but open) holds the file system's room."""
    in_flight = any(p.is_file() for p in storage_root.rglob(".upload-*"))
    return not in_flight and shutil.disk_usage(storage_root).free >= 64 * 1024


def storage_full_upload(
    db_url: str, api_url: str, headers: dict[str, str], storage_root: Path, *, too_big: int
) -> DrillResult:
    """The API's Storage keeps its objects on a small file system (a tmpfs): an upload larger than its
    room must fail cleanly (502: Storage did not take it; nothing kept, no job), and the next one that
    fits must succeed, without restarting anything. The API itself writes no file."""
    row = f"{USER},2026-03-01,STORAGE FULL DRILL SHOP,1.00\n".encode()
    big = b"user_id,txn_date,descriptor,amount\n" + row * (too_big // len(row) + 1)
    with psycopg.connect(db_url, autocommit=True) as conn:
        jobs_before = conn.execute("select count(*) from public.import_jobs").fetchone()
        with httpx.Client(base_url=api_url, headers=headers, timeout=120) as http:
            # This drill is about Storage: an earlier drill may have cut the API's database and the API
            # may still be reconnecting (its /readyz says when it answers again).
            wait_for(lambda: http.get("/readyz").status_code == 200, timeout_s=30)
            full = http.post("/v1/imports/upload", params={"kind": "transactions"}, files={"file": ("a.csv", big)})
            left_behind = stored_objects(storage_root)
            jobs_after = conn.execute("select count(*) from public.import_jobs").fetchone()
            # Storage may answer before its handler has let go of the discarded upload's file: "the next
            # upload that fits" is the next one once that room is back.
            room_back = bool(wait_for(lambda: _room_back(storage_root), timeout_s=15))
            used_kb = shutil.disk_usage(storage_root).used // 1024
            small = b"user_id,txn_date,descriptor,amount\n" + f"{USER},2026-03-01,FITS {time.time_ns()},2.00\n".encode()
            fits = http.post("/v1/imports/upload", params={"kind": "transactions"}, files={"file": ("b.csv", small)})
            if fits.status_code == 201:
                conn.execute("select private.cancel_import_job(%s)", (fits.json()["id"],))
                for path in stored_objects(storage_root):
                    Path(path).unlink(missing_ok=True)
            ready = http.get("/readyz").status_code
    passed = full.status_code == 502 and not left_behind
    passed = passed and jobs_before == jobs_after and fits.status_code == 201 and ready == 200
    return DrillResult(
        "Storage full while an upload streams into it",
        passed,
        f"{len(big) / 1e6:.1f} MB into a Storage on a small tmpfs: {full.status_code},"
        f" {len(left_behind)} partial objects left, import jobs"
        f" {jobs_before[0] if jobs_before else '?'} -> {jobs_after[0] if jobs_after else '?'};"
        f" the next upload that fits: {fits.status_code}; /readyz {ready}",
        {"problem": full.text[:300], "fits": fits.text[:300], "room_back": room_back, "used_kb": used_kb},
    )


# 6. a 1 GB line in a file referenced on the server ----------------------------------------------
def huge_line_import(env: DrillEnv, *, line_bytes: int, max_rss_mb: int = HUGE_LINE_MAX_RSS_MB) -> DrillResult:
    """Streamed to disk (never in this process's memory): good lines around one line of `line_bytes`.
    Passes when the line is rejected, every good line lands, and the worker's peak RSS stays under
    `max_rss_mb` (the reader skips a line over its cap unread)."""
    path = env.work_dir / f"huge-line-{line_bytes}.csv"
    good = [f"{USER},2026-03-{1 + n % 28:02d},HUGE LINE DRILL SHOP {n},{n + 1}.00\n".encode() for n in range(200)]
    block = b"A" * (1 << 20)
    with path.open("wb") as out:
        out.write(b"user_id,txn_date,descriptor,amount\n" + b"".join(good[:100]))
        for _ in range(line_bytes // len(block)):
            out.write(block)
        out.write(b"\n" + b"".join(good[100:]))
    good_lines = len(good)
    with psycopg.connect(env.db_url, autocommit=True) as conn:
        job = register(conn, path)
        # The drills' 1.5 s lease: skipping the line never holds the GIL long enough to starve the heartbeat.
        with drill_worker(env, "huge", [DRILL_IMPORT], {}) as worker:
            peak_kb = 0
            sampling = threading.Event()

            def sample() -> None:
                nonlocal peak_kb
                while not sampling.wait(0.2):
                    peak_kb = max(peak_kb, _peak_rss_kb(worker.pid))

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            started = time.monotonic()
            final = settle(conn, job, 1800)
            final_seconds = time.monotonic() - started
            sampling.set()
            sampler.join()
        inserted = conn.execute(
            "select count(*) from public.transactions where import_job_id = %s", (job.id,)
        ).fetchone()
        reasons = conn.execute(
            "select reason from public.import_rejections where import_job_id = %s", (job.id,)
        ).fetchall()
    path.unlink()
    imported = inserted[0] if inserted else 0
    passed = final.state == "succeeded" and imported == good_lines and len(reasons) == 1 and peak_kb < max_rss_mb * 1024
    return DrillResult(
        f"a {line_bytes / 2**30:.0f} GB line in an import",
        passed,
        f"{final.state}; {imported}/{good_lines} good lines imported, the long one rejected"
        f" ({reasons[0][0] if reasons else 'no rejection'}); worker peak RSS {peak_kb / 1024:,.0f} MB"
        f" (limit {max_rss_mb} MB)",
        {"peak_rss_mb": round(peak_kb / 1024), "max_rss_mb": max_rss_mb, "seconds": round(final_seconds, 1)},
    )


def _peak_rss_kb(pid: int | None) -> int:
    if pid is None:
        return 0
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    return next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")), 0)


def huge_upload_refused(
    api_url: str, headers: dict[str, str], storage_root: Path, *, size: int, limit: int
) -> DrillResult:
    """A `size`-byte upload sent chunked (no Content-Length, so it cannot be refused up front):
    refused once it passes the limit, long before its end. Raw socket: an HTTP client would keep
    writing and never read the early answer."""
    host, port = api_url.removeprefix("http://").split(":")
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    preamble = b'--b\r\nContent-Disposition: form-data; name="file"; filename="huge.csv"\r\n\r\n'
    block = b"A" * (1 << 20)
    sent, answer, started = 0, b"", time.monotonic()
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(
            f"POST /v1/imports/upload?kind=transactions HTTP/1.1\r\nHost: {host}\r\n{head}"
            "Content-Type: multipart/form-data; boundary=b\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
        )
        for data in itertools.chain([preamble], itertools.repeat(block, size // len(block))):
            try:
                sock.sendall(b"%x\r\n%b\r\n" % (len(data), data))
            except OSError:
                break  # the server answered and closed
            sent += len(data)
            if select.select([sock], [], [], 0)[0]:
                break
        sock.settimeout(30)
        with contextlib.suppress(OSError):
            answer = sock.recv(4096)
    elapsed = time.monotonic() - started
    status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0
    kept = stored_objects(storage_root)
    passed = status == 413 and sent <= limit + (64 << 20) and not kept
    return DrillResult(
        f"a {size / 2**30:.0f} GB upload",
        passed,
        f"sent chunked (no length): {status} after {sent / 2**20:,.0f} MB of {size / 2**20:,.0f} MB"
        f" ({elapsed:.1f}s; upload limit {limit / 2**20:,.0f} MB); {len(kept)} files kept",
    )
