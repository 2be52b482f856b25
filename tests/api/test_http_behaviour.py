"""Cross-cutting behaviour: rate limits, gzip, timeouts, request ids and JSON logs, CORS, problem documents."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
import pytest

from api.cache import invalidate_stats
from api.upstash import create_redis
from kamioi.db import connect
from kamioi.settings import Settings

AppClient = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def fresh_admin(make_user: Callable[[str], str], token_for: Callable[..., str]) -> dict[str, str]:
    """An admin with empty rate-limit windows."""
    return {"Authorization": f"Bearer {token_for(make_user('admin'))}"}


async def test_read_limit_answers_429_with_retry_after(app_client: AppClient, fresh_admin: dict[str, str]) -> None:
    async with app_client(api_rate_reads_per_minute=3, api_local_cache_s=60) as client:
        warm = await client.get("/v1/stats/dashboard", headers=fresh_admin)  # counts only if it was a miss
        pages = [await client.get("/v1/mappings/pending", headers=fresh_admin) for _ in range(4)]
        # Cached aggregates do not count: a hit is cheaper than the limit check itself.
        cached = [await client.get("/v1/stats/dashboard", headers=fresh_admin) for _ in range(3)]
    statuses = [r.status_code for r in pages]
    assert warm.status_code == 200
    assert statuses[:2] == [200, 200] and statuses[-1] == 429
    limited = pages[-1]
    assert limited.headers["content-type"] == "application/problem+json"
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert [r.status_code for r in cached] == [200, 200, 200]


async def test_uploads_are_limited_per_hour(app_client: AppClient, fresh_admin: dict[str, str]) -> None:
    async with app_client(api_rate_uploads_per_hour=1) as client:
        # The limit is checked before the body is read, so even a refused body counts.
        first = await client.post("/v1/imports/upload", params={"kind": "transactions"}, headers=fresh_admin)
        second = await client.post("/v1/imports/upload", params={"kind": "transactions"}, headers=fresh_admin)
    assert first.status_code == 415
    assert second.status_code == 429
    assert 1 <= int(second.headers["retry-after"]) <= 3600  # until the hour window moves on


async def test_without_upstash_reads_fail_open_and_uploads_fail_closed(
    app_client: AppClient, admin_headers: dict[str, str], dead_upstash_url: str
) -> None:
    async with app_client(upstash_redis_rest_url=dead_upstash_url) as client:
        read = await client.get("/v1/mappings/pending", headers=admin_headers)
        upload = await client.post("/v1/imports/upload", params={"kind": "transactions"}, headers=admin_headers)
    assert read.status_code == 200
    assert upload.status_code == 503
    assert upload.headers["retry-after"] == "5"


async def test_gzip_above_500_bytes_only(client: httpx.AsyncClient) -> None:
    large = await client.get("/openapi.json", headers={"Accept-Encoding": "gzip"})
    small = await client.get("/healthz", headers={"Accept-Encoding": "gzip"})
    assert large.headers["content-encoding"] == "gzip"
    assert int(large.headers["content-length"]) < len(large.content)  # httpx decoded it for us
    assert "content-encoding" not in small.headers


async def test_slow_request_is_504(app_client: AppClient, admin_headers: dict[str, str], settings: Settings) -> None:
    redis = create_redis(settings.upstash_redis_rest_url, settings.upstash_redis_rest_token)
    await invalidate_stats(redis)  # a miss, so the request has to ask the database
    await redis.close()
    with connect(settings.superuser_db_url) as blocker:
        blocker.execute("lock table private.stat_totals in access exclusive mode")  # held until rollback
        async with app_client(api_request_timeout_s=0.3, api_local_cache_s=0) as client:
            started = asyncio.get_running_loop().time()
            response = await client.get("/v1/stats/dashboard", headers=admin_headers)
            elapsed = asyncio.get_running_loop().time() - started
        blocker.rollback()
    assert response.status_code == 504
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["request_id"] == response.headers["x-request-id"]
    assert elapsed < 2


async def test_request_id_in_response_and_logs(
    app_client: AppClient, admin_headers: dict[str, str], capfd: pytest.CaptureFixture[str]
) -> None:
    async with app_client(api_log_level="INFO") as client:
        echoed = await client.get("/healthz", headers={"X-Request-ID": "trace-abc.123"})
        generated = await client.get("/healthz", headers={"X-Request-ID": "not safe\nto log"})
        problem = await client.get("/v1/stats/dashboard", headers={"X-Request-ID": "trace-401"})
    assert echoed.headers["x-request-id"] == "trace-abc.123"
    assert len(generated.headers["x-request-id"]) == 32
    assert problem.json()["request_id"] == "trace-401"
    logs = [json.loads(line) for line in capfd.readouterr().err.splitlines() if line.startswith("{")]
    access = [entry for entry in logs if entry.get("logger") == "api.access"]
    mine = next(entry for entry in access if entry.get("request_id") == "trace-abc.123")
    assert (mine["route"], mine["status"], mine["method"]) == ("/healthz", 200, "GET")
    assert isinstance(mine["duration_ms"], float)
    assert any(entry.get("request_id") == "trace-401" and entry["status"] == 401 for entry in access)


async def test_cors_for_configured_origins_only(app_client: AppClient) -> None:
    preflight: dict[str, Any] = {
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization",
    }
    async with app_client(api_cors_origins=["https://admin.kamioi.example"]) as client:
        allowed = await client.options(
            "/v1/stats/dashboard", headers={"Origin": "https://admin.kamioi.example", **preflight}
        )
        refused = await client.options("/v1/stats/dashboard", headers={"Origin": "https://evil.example", **preflight})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://admin.kamioi.example"
    assert "access-control-allow-origin" not in refused.headers


async def test_unknown_route_is_a_problem_document(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/nothing-here")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["title"] == "Not Found"
