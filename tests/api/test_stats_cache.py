"""The dashboard stats cache on the real Upstash proxy: miss, hit, invalidation, single flight, SWR, bypass."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
import psycopg
import pytest

from api.cache import invalidate_stats
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


async def test_miss_then_hit_then_invalidation(
    app_client: AppClient,
    admin_headers: dict[str, str],
    api_settings: Settings,
    owner_db: psycopg.Connection[Any],
) -> None:
    await fresh_version(api_settings)
    async with app_client(api_local_cache_s=0) as client:
        first = await client.get(ENDPOINT, headers=admin_headers)
        second = await client.get(ENDPOINT, headers=admin_headers)
        assert (first.status_code, first.headers["x-cache"]) == (200, "miss")
        assert (second.status_code, second.headers["x-cache"]) == (200, "hit")
        assert second.json() == first.json()

        insert_pending_mapping(owner_db)
        still_cached = await client.get(ENDPOINT, headers=admin_headers)
        assert still_cached.headers["x-cache"] == "hit"
        assert still_cached.json()["mappings"]["pending"] == first.json()["mappings"]["pending"]

        await fresh_version(api_settings)  # what an import's end or a review does
        after = await client.get(ENDPOINT, headers=admin_headers)
        assert after.headers["x-cache"] == "miss"
        assert after.json()["mappings"]["pending"] == first.json()["mappings"]["pending"] + 1


async def test_database_notify_invalidates(
    app_client: AppClient, admin_headers: dict[str, str], api_settings: Settings, owner_db: psycopg.Connection[Any]
) -> None:
    await fresh_version(api_settings)
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
            if response.headers["x-cache"] == "miss" or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
    assert response.headers["x-cache"] == "miss"
    assert response.json()["mappings"]["pending"] == before["mappings"]["pending"] + 1


async def test_single_flight_across_two_processes_under_50_requests(
    app_client: AppClient, admin_headers: dict[str, str], api_settings: Settings
) -> None:
    """Two app instances (as two API processes would) share Upstash: one computation for 50 requests."""
    await fresh_version(api_settings)
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
    await fresh_version(api_settings)
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


async def test_local_layer_serves_repeat_reads_without_upstash(
    app_client: AppClient, admin_headers: dict[str, str], api_settings: Settings
) -> None:
    await fresh_version(api_settings)
    async with app_client(api_local_cache_s=30) as client:
        await client.get(ENDPOINT, headers=admin_headers)
        await client.get(ENDPOINT, headers=admin_headers)
        metrics = (await client.get("/metrics")).text
    assert 'kamioi_api_cache_lookups_total{key="dashboard_stats",outcome="local_hit"} 1.0' in metrics
