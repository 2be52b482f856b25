"""The dashboard stats cache on the real Upstash proxy: miss, hit, invalidation, single flight, SWR, bypass."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import psycopg
import pytest

from api.cache import invalidate_stats
from api.notify import STATS_CHANNEL
from api.upstash import create_redis
from kamioi.settings import Settings

AppClient = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]
ENDPOINT = "/v1/stats/dashboard"

# Jobs the stack worker runs meanwhile (mapping after the other suites' imports) change the stats.
pytestmark = pytest.mark.usefixtures("stack_worker_paused")


async def fresh_version(settings: Settings) -> None:
    """Start from a cold cache: a new stats version makes every cached aggregate a miss."""
    redis = create_redis(settings.upstash_redis_rest_url, settings.upstash_redis_rest_token)
    try:
        await invalidate_stats(redis)
    finally:
        await redis.close()


def computations(app_client_response_text: str) -> float:
    for line in app_client_response_text.splitlines():
        if line.startswith('kamioi_api_cache_computations_total{key="dashboard_stats"}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def insert_pending_mapping(conn: psycopg.Connection[Any]) -> None:
    key = f"test-{uuid.uuid4().hex[:12]}"
    conn.execute(
        "insert into public.llm_mappings (merchant_name, merchant_key, company_name, category, confidence)"
        " values (%s, %s, 'Test Co', 'FOOD_AND_DRINK', 0.5)",
        (key.upper(), key),
    )


def wait_for_stats_to_settle(settings: Settings, quiet_s: float = 1.5, budget_s: float = 15.0) -> None:
    """Wait until no stat change was announced for `quiet_s`.

    The stack's own API listens too and, about a second after a change (its debounce), writes a new
    version to the Upstash both share. Changes left by earlier test modules would otherwise turn a
    hit into a miss in the middle of a test."""
    deadline = time.monotonic() + budget_s
    with psycopg.connect(settings.db_url, autocommit=True) as conn:
        conn.execute(f"listen {STATS_CHANNEL}")
        while any(True for _ in conn.notifies(timeout=quiet_s, stop_after=1)):
            assert time.monotonic() < deadline, "stat changes kept coming"


async def cold_cache(settings: Settings) -> None:
    """A cold cache that nothing but the test itself will invalidate."""
    await asyncio.to_thread(wait_for_stats_to_settle, settings)
    await fresh_version(settings)


async def test_miss_then_hit_then_invalidation(
    app_client: AppClient,
    admin_headers: dict[str, str],
    api_settings: Settings,
    owner_db: psycopg.Connection[Any],
) -> None:
    await cold_cache(api_settings)
    async with app_client(api_local_cache_s=0) as client:
        first = await client.get(ENDPOINT, headers=admin_headers)
        second = await client.get(ENDPOINT, headers=admin_headers)
        assert (first.status_code, first.headers["x-cache"]) == (200, "miss")
        assert (second.status_code, second.headers["x-cache"]) == (200, "hit")
        assert second.json() == first.json()

        insert_pending_mapping(owner_db)
        await fresh_version(api_settings)  # what an import's end, a review or the NOTIFY listener does
        after = await client.get(ENDPOINT, headers=admin_headers)
        assert after.headers["x-cache"] == "miss"
        assert after.json()["mappings"]["pending"] == first.json()["mappings"]["pending"] + 1


async def test_database_notify_invalidates(
    app_client: AppClient, admin_headers: dict[str, str], api_settings: Settings, owner_db: psycopg.Connection[Any]
) -> None:
    await cold_cache(api_settings)
    async with app_client(api_local_cache_s=0) as client:
        before = (await client.get(ENDPOINT, headers=admin_headers)).json()
        # Other writers (pg_cron, a job finishing) may invalidate too: wait until the value is cached.
        deadline = time.monotonic() + 5
        while (cached := await client.get(ENDPOINT, headers=admin_headers)).headers["x-cache"] != "hit":
            assert time.monotonic() < deadline, "the stats never came from the cache"
            before = cached.json()
        insert_pending_mapping(owner_db)  # stat deltas -> NOTIFY kamioi_stats_changed -> new version
        deadline = time.monotonic() + 5
        while True:
            response = await client.get(ENDPOINT, headers=admin_headers)
            if response.json()["mappings"]["pending"] != before["mappings"]["pending"] or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
    assert response.json()["mappings"]["pending"] == before["mappings"]["pending"] + 1


async def test_single_flight_across_two_processes_under_50_requests(
    app_client: AppClient, admin_headers: dict[str, str], api_settings: Settings
) -> None:
    """Two app instances (as two API processes would) share Upstash: one computation for 50 requests."""
    await cold_cache(api_settings)
    async with app_client(api_local_cache_s=0) as one, app_client(api_local_cache_s=0) as two:
        responses = await asyncio.gather(*(client.get(ENDPOINT, headers=admin_headers) for client in [one, two] * 25))
        metrics = [(await client.get("/metrics")).text for client in (one, two)]
    assert [r.status_code for r in responses] == [200] * 50
    assert sum(computations(text) for text in metrics) == 1
    assert sorted({r.headers["x-cache"] for r in responses}) == ["hit", "miss"]
    assert len({r.json()["computed_at"] for r in responses}) == 1


async def test_stale_while_revalidate(
    app_client: AppClient, admin_headers: dict[str, str], api_settings: Settings
) -> None:
    await cold_cache(api_settings)
    async with app_client(api_local_cache_s=0, api_stats_ttl_s=1, api_stats_stale_s=60) as client:
        first = await client.get(ENDPOINT, headers=admin_headers)
        await asyncio.sleep(1.1)
        stale = await client.get(ENDPOINT, headers=admin_headers)
        assert stale.headers["x-cache"] == "stale"
        assert stale.json()["computed_at"] == first.json()["computed_at"]
        deadline = time.monotonic() + 3
        while True:  # the background refresh lands shortly
            refreshed = await client.get(ENDPOINT, headers=admin_headers)
            if refreshed.headers["x-cache"] == "hit" or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
    assert refreshed.headers["x-cache"] == "hit"
    assert refreshed.json()["computed_at"] > first.json()["computed_at"]


async def test_upstash_down_still_200_from_database(
    app_client: AppClient, admin_headers: dict[str, str], dead_upstash_url: str
) -> None:
    async with app_client(upstash_redis_rest_url=dead_upstash_url) as client:
        responses = [await client.get(ENDPOINT, headers=admin_headers) for _ in range(3)]
    assert [r.status_code for r in responses] == [200, 200, 200]
    assert {r.headers["x-cache"] for r in responses} == {"bypass"}
    assert "mappings" in responses[0].json()


async def test_an_upstash_outage_costs_one_computation_per_process(
    app_client: AppClient, admin_headers: dict[str, str], dead_upstash_url: str
) -> None:
    async with app_client(upstash_redis_rest_url=dead_upstash_url, api_local_cache_s=30, api_replay_s=0) as client:
        responses = [await client.get(ENDPOINT, headers=admin_headers) for _ in range(5)]
        metrics = (await client.get("/metrics")).text
    assert {r.headers["x-cache"] for r in responses} == {"bypass"}  # still says Upstash is away
    assert computations(metrics) == 1


async def test_local_layer_serves_repeat_reads_without_upstash(
    app_client: AppClient, admin_headers: dict[str, str], api_settings: Settings
) -> None:
    await cold_cache(api_settings)
    async with app_client(api_local_cache_s=30, api_replay_s=0) as client:
        await client.get(ENDPOINT, headers=admin_headers)
        await client.get(ENDPOINT, headers=admin_headers)
        metrics = (await client.get("/metrics")).text
    assert 'kamioi_api_cache_lookups_total{key="dashboard_stats",outcome="local_hit"} 1.0' in metrics


class SlowLockReplies:
    """An HTTP relay in front of the Upstash endpoint that forwards every command at once but holds
    the reply to a lock's SET NX for `delay_s`: the lock is taken, the caller times out waiting."""

    def __init__(self, upstream: str, delay_s: float) -> None:
        outer = self

        class Relay(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                forwarded = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                reply = httpx.post(upstream + self.path, content=body, headers=forwarded)
                if b'"NX"' in body and b":lock" in body:
                    time.sleep(outer.delay_s)
                self.send_response(reply.status_code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply.content)))
                self.end_headers()
                self.wfile.write(reply.content)

            def log_message(self, *args: Any) -> None:
                pass

        self.delay_s = delay_s
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Relay)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> SlowLockReplies:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()


async def test_a_lock_whose_reply_timed_out_is_released(
    app_client: AppClient, admin_headers: dict[str, str], api_settings: Settings
) -> None:
    """Under load an Upstash call can time out after it landed: a lock taken that way is released
    (when it is ours) as soon as Upstash is tried again, not left to block others for lock_ms."""
    await cold_cache(api_settings)
    redis = create_redis(api_settings.upstash_redis_rest_url, api_settings.upstash_redis_rest_token)
    lock = "kamioi:cache:dashboard_stats:lock"
    try:
        with SlowLockReplies(api_settings.upstash_redis_rest_url, delay_s=1.0) as relay:
            settings = {"upstash_redis_rest_url": relay.url, "api_local_cache_s": 0, "api_cache_op_timeout_s": 0.3}
            async with app_client(**settings) as client:
                response = await client.get(ENDPOINT, headers=admin_headers)
                assert (response.status_code, response.headers["x-cache"]) == (200, "bypass")
                assert await redis.get(lock) is not None  # taken, and its taker gave up waiting
                deadline = time.monotonic() + 5  # the lock itself would live 15 s
                while await redis.get(lock) is not None:
                    assert time.monotonic() < deadline, "the lock was left to expire"
                    await asyncio.sleep(0.1)
    finally:
        await redis.close()


async def test_an_older_local_value_is_served_while_upstash_is_checked(
    app_client: AppClient, admin_headers: dict[str, str], api_settings: Settings
) -> None:
    """Past local_s, the process's value (still within its TTL) is served at once while one request
    checks Upstash for a newer version in the background: readers never wait on Upstash for it."""
    await cold_cache(api_settings)
    async with app_client(api_local_cache_s=0.2, api_replay_s=0) as client:
        first = await client.get(ENDPOINT, headers=admin_headers)
        await fresh_version(api_settings)  # as another process's review would
        await asyncio.sleep(0.3)
        served = await client.get(ENDPOINT, headers=admin_headers)
        deadline = time.monotonic() + 5
        while (newer := await client.get(ENDPOINT, headers=admin_headers)).json() == first.json():
            assert time.monotonic() < deadline, "the newer version was never fetched"
            await asyncio.sleep(0.02)
        metrics = (await client.get("/metrics")).text
    assert first.headers["x-cache"] == "miss"
    assert (served.headers["x-cache"], served.json()) == ("hit", first.json())
    assert newer.headers["x-cache"] == "hit"
    assert newer.json()["computed_at"] > first.json()["computed_at"]
    assert computations(metrics) == 2


async def test_database_changes_serve_stale_while_one_request_recomputes(
    app_client: AppClient, admin_headers: dict[str, str], api_settings: Settings, owner_db: psycopg.Connection[Any]
) -> None:
    """A change the database announces (an import's chunk each second) leaves the previous numbers
    readable, as stale, while one request recomputes them: nobody waits for the recomputation.
    Last in the module: its insert also NOTIFYs the stack's own API, which bumps the shared stats
    version a second later, under whatever test runs then."""
    await cold_cache(api_settings)
    async with app_client(api_local_cache_s=30, api_replay_s=0) as client:
        transport = client._transport
        assert isinstance(transport, httpx.ASGITransport)
        cache = transport.app.state.resources.cache  # type: ignore[attr-defined]
        before = await client.get(ENDPOINT, headers=admin_headers)
        insert_pending_mapping(owner_db)
        assert await cache.invalidate(serve_stale=True)  # what api.notify does on NOTIFY
        stale = await asyncio.gather(*(client.get(ENDPOINT, headers=admin_headers) for _ in range(10)))
        deadline = time.monotonic() + 5
        while (fresh := await client.get(ENDPOINT, headers=admin_headers)).headers["x-cache"] == "stale":
            assert time.monotonic() < deadline, "the stale value was never revalidated"
            await asyncio.sleep(0.02)
        metrics = (await client.get("/metrics")).text
    assert {r.headers["x-cache"] for r in stale} == {"stale"}
    assert all(r.json() == before.json() for r in stale)
    assert fresh.headers["x-cache"] == "hit"  # remembered by the revalidation
    assert fresh.json()["mappings"]["pending"] == before.json()["mappings"]["pending"] + 1
    assert computations(metrics) == 2  # the first fill, and one revalidation for the 10 stale reads
