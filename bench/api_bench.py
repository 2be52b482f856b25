"""Admin API benchmark (issue 5): the cached stats endpoint under load, and uncached vs cached.

1. wrk, 100 connections for 30 s, against GET /v1/stats/dashboard on a uvicorn process started here
   with the production settings (JSON access logs on, read rate limit checked in Upstash on every
   request, raised so the bench itself is not throttled). Reports req/s, p50/p95/p99, errors.
2. The same endpoint, one client, uncached vs cached: before each uncached request the stats
   version is bumped in Upstash (untimed), so the request misses, computes dashboard_stats() and
   refills the cache; cached requests hit. Run on a second process with the per-process cache
   off (API_LOCAL_CACHE_S=0) so a hit really goes to Upstash, plus the local-layer hit for reference.
3. Optionally (--with-bypass) the wrk run again with Upstash unreachable: every request is served
   from the database (X-Cache: bypass), concurrent requests coalesced in-process.

Runs against the stack in KAMIOI_ENV_FILE (default .env); signs a token for the seeded admin.

    python -m bench.api_bench                      # 30 s, 100 connections
    python -m bench.api_bench --duration 5         # quick check
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from api.cache import invalidate_stats
from api.upstash import create_redis
from kamioi.settings import PROJECT_ROOT, Settings, get_settings
from kamioi.stack.keys import ensure_keys
from kamioi.tokens import token_for

ENDPOINT = "/v1/stats/dashboard"
UVICORN = (
    "-m",
    "uvicorn",
    "api.main:app",
    "--host",
    "127.0.0.1",
    "--no-access-log",
    "--timeout-graceful-shutdown",
    "5",
)
RATIO_SAMPLES = 300

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


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def api_process(env_overrides: dict[str, str], log_path: Path) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "API_RATE_READS_PER_MINUTE": str(10**9), **env_overrides}
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, *UVICORN, "--port", str(port)], cwd=PROJECT_ROOT, env=env, stdout=log, stderr=log
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError(f"the API did not start; see {log_path}") from None
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=30, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--with-bypass", action="store_true", help="also run wrk with Upstash unreachable")
    args = parser.parse_args()

    settings = get_settings()
    token = token_for("admin", ensure_keys(settings.keys_dir), settings.jwt_issuer)
    log_path = settings.state_dir / "logs" / "api-bench.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"connections": args.connections, "duration_s": args.duration}

    with api_process({}, log_path) as url:
        httpx.get(f"{url}{ENDPOINT}", headers={"Authorization": f"Bearer {token}"}, timeout=10).raise_for_status()
        results["cached_wrk"] = wrk(
            url, token, connections=args.connections, threads=args.threads, duration_s=args.duration
        )
    with api_process({"API_LOCAL_CACHE_S": "0"}, log_path) as url:
        results["one_client"] = asyncio.run(one_client(url, token, settings))
    if args.with_bypass:
        dead = f"http://127.0.0.1:{free_port()}"
        with api_process({"UPSTASH_REDIS_REST_URL": dead}, log_path) as url:
            results["bypass_wrk"] = wrk(
                url, token, connections=args.connections, threads=args.threads, duration_s=args.duration
            )
    one = results["one_client"]
    results["ratio"] = {
        "rps": one["hit"]["rps"] / one["miss"]["rps"],
        "p50": one["miss"]["p50_ms"] / one["hit"]["p50_ms"],
        "p95": one["miss"]["p95_ms"] / one["hit"]["p95_ms"],
    }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
