"""Liveness, readiness and the Prometheus endpoint."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import httpx

AppClient = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


async def test_healthz_needs_no_dependencies(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_checks_database_cache_and_replica(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body | {"replica_lag_s": None} == {
        "status": "ready",
        "database": "ok",
        "cache": "ok",
        "replica": "ok",
        "replica_lag_s": None,
    }
    assert 0 <= body["replica_lag_s"] < 10


async def test_readyz_is_degraded_without_upstash(app_client: AppClient, dead_upstash_url: str) -> None:
    async with app_client(upstash_redis_rest_url=dead_upstash_url) as client:
        response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json() | {"replica_lag_s": None} == {
        "status": "degraded",
        "database": "ok",
        "cache": "unavailable",
        "replica": "ok",
        "replica_lag_s": None,
    }


async def test_readyz_is_503_without_database(app_client: AppClient, dead_port: int) -> None:
    async with app_client(database_url=f"postgresql://postgres:postgres@127.0.0.1:{dead_port}/postgres") as client:
        response = await client.get("/readyz")
        live = await client.get("/healthz")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert "database unavailable" in response.json()["detail"]
    assert live.status_code == 200


async def test_metrics_exposes_latency_cache_queue_and_llm_series(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    await client.get("/v1/stats/dashboard", headers=admin_headers)
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    body = response.text
    assert 'kamioi_api_request_seconds_bucket{le="0.005",method="GET",route="/v1/stats/dashboard"' in body
    assert "kamioi_api_cache_lookups_total" in body
    assert "# TYPE kamioi_job_queue_depth gauge" in body
    assert "# TYPE kamioi_llm_calls gauge" in body
