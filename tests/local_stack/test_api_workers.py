"""The stack's API runs API_WORKERS uvicorn processes whose metrics add up in every scrape."""

from __future__ import annotations

import asyncio

import httpx

from kamioi.settings import Settings
from local_stack.manager import Stack


def healthz_count(metrics: str) -> float:
    prefix = 'kamioi_api_request_seconds_count{method="GET",route="/healthz",status="200"}'
    return sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines() if line.startswith(prefix))


async def hammer(url: str, requests: int, concurrency: int) -> None:
    async def client_loop(client: httpx.AsyncClient, n: int) -> None:
        for _ in range(n):
            (await client.get("/healthz")).raise_for_status()

    # Separate clients: separate connections, so the kernel spreads them over the workers.
    clients = [httpx.AsyncClient(base_url=url) for _ in range(concurrency)]
    try:
        await asyncio.gather(*(client_loop(c, requests // concurrency) for c in clients))
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))


def test_every_worker_serves_and_is_counted(settings: Settings) -> None:
    url = f"http://{settings.api_host}:{settings.api_port}"
    assert settings.api_workers > 1
    service = next(s for s in Stack(settings).services() if s.name == "api")
    assert service.env == {"PROMETHEUS_MULTIPROC_DIR": str(settings.state_dir / "run" / "api-metrics")}

    before = healthz_count(httpx.get(f"{url}/metrics").text)
    asyncio.run(hammer(url, requests=400, concurrency=40))
    scrapes = [healthz_count(httpx.get(f"{url}/metrics").text) for _ in range(4)]

    # Whichever worker answers the scrape, it reports every worker's requests.
    assert scrapes == [before + 400] * 4
