"""Admin API benchmark (issue 5): the cached stats endpoint under load, and uncached vs cached.

1. wrk, 100 connections for 30 s, against GET /v1/stats/dashboard on uvicorn started here the way
   `kamioi up` runs it (API_WORKERS processes sharing Prometheus metrics, JSON access logs on, read
   rate limit raised so the bench itself is not throttled). Reports req/s, p50/p95/p99, errors.
   Run twice: replay on (the default: repeats answered by api.replay) and off (API_REPLAY_S=0:
   every request goes through the app to the per-process layer) as the baseline.
2. CPU per cached request, in process (no HTTP, no wrk: robust on a noisy machine): the same
   request driven through the ASGI app 5,000 times, replayed vs through the app.
3. The same endpoint, one client, uncached vs cached: before each uncached request the stats
   version is bumped in Upstash (untimed), so the request misses, computes dashboard_stats() and
   refills the cache; cached requests hit. Run on a process with the per-process cache off
   (API_LOCAL_CACHE_S=0) so a hit really goes to Upstash.
4. Optionally (--with-bypass) the wrk run again with Upstash unreachable: every request is served
   from the database (X-Cache: bypass), concurrent requests coalesced in-process.

Runs against the stack in KAMIOI_ENV_FILE (default .env); signs a token for the seeded admin.

    python -m bench.api_bench                      # 30 s per wrk run, 100 connections
    python -m bench.api_bench --duration 5         # quick check
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import MutableMapping
from typing import Any

import httpx

from api.cache import invalidate_stats
from api.main import create_app
from api.upstash import create_redis
from bench.drills.processes import ApiProcess, free_port
from kamioi.settings import Settings, get_settings
from local_stack.keys import ensure_keys
from local_stack.tokens import token_for

ENDPOINT = "/v1/stats/dashboard"
RATIO_SAMPLES = 300
UNTHROTTLED = {"API_RATE_READS_PER_MINUTE": str(10**9)}

WRK_SCRIPT = """
wrk.headers["Authorization"] = "Bearer %(token)s"
function done(summary, latency, requests)
  io.write(string.format(
    '{"requests": %%d, "duration_us": %%d, "connect": %%d, "read": %%d, "write": %%d, "status": %%d, '
    .. '"timeout": %%d, "p50_us": %%d, "p95_us": %%d, "p99_us": %%d, "max_us": %%d}\\n',
    summary.requests, summary.duration, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.status, summary.errors.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max))
end
"""


def wrk(url: str, token: str, *, connections: int, threads: int, duration_s: int) -> dict[str, float]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT % {"token": token})
    try:
        out = subprocess.run(
            [
                "wrk",
                f"-t{threads}",
                f"-c{connections}",
                f"-d{duration_s}s",
                "--timeout",
                "10s",
                "-s",
                script.name,
                f"{url}{ENDPOINT}",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        os.unlink(script.name)
    raw: dict[str, int] = json.loads(out.strip().splitlines()[-1])
    errors = raw["connect"] + raw["read"] + raw["write"] + raw["status"] + raw["timeout"]
    return {
        "requests": raw["requests"],
        "rps": raw["requests"] / (raw["duration_us"] / 1e6),
        "p50_ms": raw["p50_us"] / 1000,
        "p95_ms": raw["p95_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "max_ms": raw["max_us"] / 1000,
        "errors": errors,
        "error_rate": errors / max(raw["requests"], 1),
    }


async def one_client(url: str, token: str, settings: Settings) -> dict[str, dict[str, float]]:
    """Sequential requests: miss (after an untimed version bump) vs Upstash hit."""
    redis = create_redis(settings.upstash_redis_rest_url, settings.upstash_redis_rest_token)
    timings: dict[str, list[float]] = {"miss": [], "hit": []}
    headers = {"Authorization": f"Bearer {token}"}
    try:
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=10) as client:
            for _ in range(20):  # warm connections and code paths
                await client.get(ENDPOINT)
            for outcome in ("miss", "hit"):
                for _ in range(RATIO_SAMPLES):
                    if outcome == "miss":
                        await invalidate_stats(redis)
                    started = time.perf_counter()
                    response = await client.get(ENDPOINT)
                    timings[outcome].append(time.perf_counter() - started)
                    if response.headers.get("x-cache") != outcome:
                        raise RuntimeError(f"expected X-Cache {outcome}, got {response.headers.get('x-cache')}")
    finally:
        await redis.close()
    return {outcome: summarize(values) for outcome, values in timings.items()}


def summarize(seconds: list[float]) -> dict[str, float]:
    ordered = sorted(seconds)

    def percentile_ms(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    return {
        "rps": len(ordered) / sum(ordered),
        "p50_ms": percentile_ms(0.5),
        "p95_ms": percentile_ms(0.95),
        "p99_ms": percentile_ms(0.99),
        "mean_ms": statistics.fmean(ordered) * 1000,
    }


async def cpu_per_request(settings: Settings, token: str, *, replay: bool, requests: int = 5000) -> float:
    """Microseconds of CPU per cached dashboard read, driving the ASGI app directly."""
    app = create_app(
        settings.model_copy(update={"api_replay_s": 1.0 if replay else 0.0, "api_rate_reads_per_minute": 10**9})
    )
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
        "path": ENDPOINT, "raw_path": ENDPOINT.encode(), "query_string": b"", "root_path": "",
        "headers": [(b"host", b"api"), (b"authorization", f"Bearer {token}".encode()), (b"accept-encoding", b"gzip")],
        "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80),
    }  # fmt: skip
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    async with app.router.lifespan_context(app):
        for _ in range(200):  # warm: verified token, local layer, replay entry
            await app(dict(scope), receive, send)
        started = time.process_time()
        for _ in range(requests):
            await app(dict(scope), receive, send)
        spent = time.process_time() - started
    if set(statuses) != {200}:
        raise RuntimeError(f"unexpected statuses {set(statuses)}")
    return spent / requests * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=30, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--workers", type=int, default=None, help="uvicorn workers (default API_WORKERS)")
    parser.add_argument("--with-bypass", action="store_true", help="also run wrk with Upstash unreachable")
    args = parser.parse_args()

    settings = get_settings()
    args.workers = args.workers or settings.api_workers
    token = token_for("admin", ensure_keys(settings.keys_dir), settings.jwt_issuer)
    log_path = settings.state_dir / "logs" / "api-bench.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"connections": args.connections, "duration_s": args.duration, "workers": args.workers}

    def wrk_run(env: dict[str, str]) -> dict[str, float]:
        with ApiProcess({**UNTHROTTLED, **env}, log_path, args.workers) as api:
            url = api.url
            warm = httpx.get(f"{url}{ENDPOINT}", headers={"Authorization": f"Bearer {token}"}, timeout=10)
            warm.raise_for_status()
            return wrk(url, token, connections=args.connections, threads=args.threads, duration_s=args.duration)

    results["cached_wrk"] = wrk_run({})
    results["cached_wrk_no_replay"] = wrk_run({"API_REPLAY_S": "0"})
    if args.with_bypass:
        results["bypass_wrk"] = wrk_run({"UPSTASH_REDIS_REST_URL": f"http://127.0.0.1:{free_port()}"})
    with open(os.devnull, "w") as devnull, contextlib.redirect_stderr(devnull):  # access logs on, not shown
        through_app = asyncio.run(cpu_per_request(settings, token, replay=False))
        replayed = asyncio.run(cpu_per_request(settings, token, replay=True))
    results["cpu_us_per_request"] = {"through_app": through_app, "replayed": replayed, "ratio": through_app / replayed}
    with ApiProcess({**UNTHROTTLED, "API_LOCAL_CACHE_S": "0"}, log_path) as api:
        results["one_client"] = asyncio.run(one_client(api.url, token, settings))
    one = results["one_client"]
    results["ratio"] = {
        "rps": one["hit"]["rps"] / one["miss"]["rps"],
        "p50": one["miss"]["p50_ms"] / one["hit"]["p50_ms"],
        "p95": one["miss"]["p95_ms"] / one["hit"]["p95_ms"],
    }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
