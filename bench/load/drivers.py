"""The traffic of the load scenario and what watches it: pgbench for users, wrk per admin class, a
reviewer deciding pending mappings, and samplers for connections and the API's metrics."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import psycopg

HERE = Path(__file__).resolve().parent
PGBENCH = "/usr/lib/postgresql/15/bin/pgbench"


@dataclass(frozen=True)
class ClassResult:
    """One traffic class: requests, throughput, latency percentiles (ms) and errors."""

    name: str
    requests: int
    per_second: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    errors: int

    @property
    def error_rate(self) -> float:
        return self.errors / max(self.requests, 1)


def percentile(sorted_ms: list[float], q: float) -> float:
    if not sorted_ms:
        return 0.0
    return sorted_ms[min(len(sorted_ms) - 1, int(q / 100 * len(sorted_ms)))]


def api_side_latency(log_path: Path, since: datetime, until: datetime) -> dict[str, dict[str, float]]:
    """Per route, the API's own request durations (its JSON access log) within [since, until): what
    the app spent, without the client's or the kernel's queueing."""
    durations: dict[str, list[float]] = {}
    with log_path.open() as log:
        for line in log:
            if not line.startswith("{") or '"msg": "request"' not in line:
                continue
            entry = json.loads(line)
            if since <= datetime.fromisoformat(entry["ts"]) < until:
                durations.setdefault(entry["route"], []).append(float(entry["duration_ms"]))
    summary = {}
    for route, values in sorted(durations.items()):
        values.sort()
        summary[route] = {
            "requests": len(values),
            "p50_ms": percentile(values, 50),
            "p95_ms": percentile(values, 95),
            "p99_ms": percentile(values, 99),
        }
    return summary


def start_pgbench(
    db_url: str, log_dir: Path, *, users: int, clients: int, seconds: int, rate: int | None
) -> subprocess.Popen[str]:
    """Users reading their transactions as PostgREST would, connected as `authenticator`."""
    url = urlsplit(db_url)
    args = [PGBENCH, "-h", url.hostname or "127.0.0.1", "-p", str(url.port or 5432), "-U", "authenticator"]
    args += ["-n", "-c", str(clients), "-j", "2", "-T", str(seconds), "-D", f"users={users}"]
    args += ["-f", str(HERE / "user_reads.pgbench"), "--log", "--log-prefix", str(log_dir / "pgbench")]
    args += ["--failures-detailed", "--max-tries", "1"]
    if rate:
        args += ["-R", str(rate)]
    env = {"PGPASSWORD": url.password or "postgres", "PATH": "/usr/bin:/bin"}
    return subprocess.Popen([*args, "postgres"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def pgbench_result(proc: subprocess.Popen[str], log_dir: Path, seconds: int) -> ClassResult:
    output, _ = proc.communicate(timeout=seconds + 120)
    # Per-transaction log lines: client_id transaction_no time_us script_no epoch epoch_us [lag];
    # a failed transaction logs "failed" in place of its time.
    latencies, failed = [], 0
    for log_file in log_dir.glob("pgbench*"):
        for line in log_file.read_text().splitlines():
            parts = line.split()
            if parts[2].isdigit():
                latencies.append(int(parts[2]) / 1000)
            else:
                failed += 1
    latencies.sort()
    reported_failed = next(
        (int(line.split()[-2]) for line in output.splitlines() if line.startswith("number of failed transactions")), 0
    )
    total = len(latencies) + failed
    return ClassResult(
        "users: own transactions (pgbench, PostgREST-shaped, RLS)",
        total,
        total / seconds,
        percentile(latencies, 50),
        percentile(latencies, 95),
        percentile(latencies, 99),
        max(failed, reported_failed) + (0 if proc.returncode == 0 else 1),
    )


MEASURING_NICE = -10


def as_instrument(run: Callable[..., object]) -> Callable[..., object]:
    """Run a measuring thread at MEASURING_NICE (Linux threads have their own priority): on a machine
    where the load oversubscribes the cores, a starved driver measures its own scheduling delay
    (seen here: the API's own p95 21 ms, the driver's 2 s). Left as is where not permitted."""

    def boosted(*args: object) -> object:
        with contextlib.suppress(PermissionError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), MEASURING_NICE)
        return run(*args)

    return boosted


@dataclass
class OpenLoop:
    """Admin traffic at a fixed rate (open loop): request n is due at start + n / rate whatever the
    earlier ones did, and its latency counts from when it was due, so a slow server shows as latency
    instead of as fewer requests (no coordinated omission). Round-robin over paths and tokens."""

    name: str
    api_url: str
    paths: list[str]
    tokens: list[str]
    rate: float
    latencies_ms: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)

    async def run(self, seconds: float) -> None:
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
        async with httpx.AsyncClient(base_url=self.api_url, timeout=30, limits=limits) as http:
            start, tasks = time.monotonic(), []
            for n in range(int(seconds * self.rate)):
                due = start + n / self.rate
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                tasks.append(asyncio.create_task(self._one(http, n, due)))
            await asyncio.gather(*tasks)

    async def _one(self, http: httpx.AsyncClient, n: int, due: float) -> None:
        headers = {"Authorization": f"Bearer {self.tokens[n % len(self.tokens)]}"}
        try:
            status = (await http.get(self.paths[n % len(self.paths)], headers=headers)).status_code
        except httpx.HTTPError:
            status = 0
        self.latencies_ms.append((time.monotonic() - due) * 1000)
        self.statuses[status] += 1

    def result(self, seconds: float) -> ClassResult:
        ordered = sorted(self.latencies_ms)
        errors = sum(n for status, n in self.statuses.items() if status != 200)
        return ClassResult(
            self.name,
            len(ordered),
            len(ordered) / seconds,
            percentile(ordered, 50),
            percentile(ordered, 95),
            percentile(ordered, 99),
            errors,
        )


@dataclass
class Reviewer:
    """An admin working the review queue: take the newest pending mapping, decide, every `every_s`."""

    api_url: str
    token: str
    every_s: float
    latencies_ms: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)

    def run(self, stop: threading.Event) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        with httpx.Client(base_url=self.api_url, headers=headers, timeout=30) as http:
            decision = 0
            while not stop.wait(self.every_s):
                page = http.get("/v1/mappings/pending", params={"limit": 10})
                items = page.json().get("items", []) if page.status_code == 200 else []
                if not items:
                    continue
                item = items[decision % len(items)]
                decision += 1
                started = time.perf_counter()
                response = http.post(
                    f"/v1/mappings/{item['id']}/review",
                    json={"decision": ("approved", "rejected")[decision % 2], "created_at": item["created_at"]},
                )
                self.latencies_ms.append((time.perf_counter() - started) * 1000)
                self.statuses[response.status_code] += 1

    def result(self, seconds: int) -> ClassResult:
        ordered = sorted(self.latencies_ms)
        failed = sum(n for status, n in self.statuses.items() if status != 200)
        return ClassResult(
            "admins: review decisions (POST)",
            len(ordered),
            len(ordered) / seconds,
            percentile(ordered, 50),
            percentile(ordered, 95),
            percentile(ordered, 99),
            failed,
        )


@dataclass
class ConnectionSampler:
    """pg_stat_activity once a second: client backends by role, and the most at once."""

    superuser_url: str
    samples: list[dict[str, int]] = field(default_factory=list)

    def run(self, stop: threading.Event) -> None:
        with psycopg.connect(self.superuser_url, autocommit=True) as conn:
            while not stop.wait(1.0):
                rows = conn.execute(
                    "select coalesce(usename, '?'), count(*) from pg_stat_activity"
                    " where backend_type = 'client backend' group by 1"
                ).fetchall()
                self.samples.append({role: int(n) for role, n in rows})

    def summary(self) -> dict[str, Any]:
        totals = [sum(sample.values()) for sample in self.samples] or [0]
        roles = sorted({role for sample in self.samples for role in sample})
        return {
            "max_total": max(totals),
            "mean_total": round(statistics.fmean(totals), 1),
            "max_by_role": {role: max(sample.get(role, 0) for sample in self.samples) for role in roles},
        }


def scrape(api_url: str) -> dict[str, float]:
    """The API's /metrics as {sample name with labels: value} (Prometheus text format)."""
    values: dict[str, float] = {}
    for line in httpx.get(f"{api_url}/metrics", timeout=10).text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


def cache_hit_rate(before: dict[str, float], after: dict[str, float]) -> tuple[float, dict[str, float]]:
    """Share of aggregate-cache lookups answered from a cache (Upstash, the 1 s local layer or replay)."""
    outcomes: dict[str, float] = dict.fromkeys(("hit", "local_hit", "stale", "replay"), 0.0)
    for name, value in after.items():
        if name.startswith("kamioi_api_cache_lookups_total{"):
            outcome = name.split('outcome="', 1)[1].split('"', 1)[0]
            outcomes[outcome] = outcomes.get(outcome, 0.0) + value - before.get(name, 0.0)
    hits = outcomes["hit"] + outcomes["local_hit"] + outcomes["stale"] + outcomes["replay"]
    return hits / max(sum(outcomes.values()), 1), outcomes
