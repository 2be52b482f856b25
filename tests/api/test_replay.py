"""api.replay: repeats of a rendered admin aggregate are answered in front of the app, and only
to callers, encodings and origins the app itself would have answered the same way."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import httpx
import pytest

from api.read_routing import ReadRouter, ReplicaHealth
from kamioi.settings import Settings

AppClient = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]
ENDPOINT = "/v1/stats/dashboard"

pytestmark = pytest.mark.usefixtures("stack_worker_paused")


async def replays(client: httpx.AsyncClient) -> float:
    for line in (await client.get("/metrics")).text.splitlines():
        if line.startswith('kamioi_api_cache_lookups_total{key="dashboard_stats",outcome="replay"}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_repeat_reads_are_replayed_with_their_own_request_ids(
    app_client: AppClient, admin_headers: dict[str, str]
) -> None:
    async with app_client(api_replay_s=30, api_local_cache_s=30) as client:
        first = await client.get(ENDPOINT, headers=admin_headers)
        repeats = [await client.get(ENDPOINT, headers=admin_headers) for _ in range(3)]
        assert await replays(client) == 3
    assert first.status_code == 200
    assert [r.status_code for r in repeats] == [200] * 3
    assert all(r.json() == first.json() for r in repeats)
    assert {r.headers["x-cache"] for r in repeats} == {"hit"}
    assert len({r.headers["x-request-id"] for r in [first, *repeats]}) == 4
    assert all(r.headers["content-type"] == first.headers["content-type"] for r in repeats)


async def test_each_encoding_gets_its_own_rendering(app_client: AppClient, admin_headers: dict[str, str]) -> None:
    rounds = []
    async with app_client(api_replay_s=30, api_local_cache_s=30) as client:
        for _ in range(2):
            plain = await client.get(ENDPOINT, headers={**admin_headers, "Accept-Encoding": "identity"})
            zipped = await client.get(ENDPOINT, headers={**admin_headers, "Accept-Encoding": "gzip"})
            rounds.append((plain, zipped))
        assert await replays(client) == 2
    (plain, zipped), (plain_again, zipped_again) = rounds
    assert "content-encoding" not in plain.headers and "content-encoding" not in plain_again.headers
    # gzip only over 500 bytes, which the dashboard passes once the database holds a few categories.
    expected = "gzip" if len(plain.content) > 500 else None
    assert zipped.headers.get("content-encoding") == zipped_again.headers.get("content-encoding") == expected
    assert zipped_again.json() == plain_again.json() == plain.json()  # httpx decodes


async def test_only_admins_get_replays(
    app_client: AppClient,
    admin_headers: dict[str, str],
    user_headers: dict[str, str],
    token_for: Callable[..., str],
    admin_id: str,
) -> None:
    expired = token_for(admin_id, exp=int(time.time()) - 3600, iat=int(time.time()) - 7200)
    forged = admin_headers["Authorization"][:-4] + "AAAA"
    async with app_client(api_replay_s=30, api_local_cache_s=30) as client:
        assert (await client.get(ENDPOINT, headers=admin_headers)).status_code == 200
        user = await client.get(ENDPOINT, headers=user_headers)
        nobody = await client.get(ENDPOINT)
        bad_signature = await client.get(ENDPOINT, headers={"Authorization": forged})
        too_old = await client.get(ENDPOINT, headers={"Authorization": f"Bearer {expired}"})
        wrong_key = await client.get(ENDPOINT, headers={"apikey": "sb_secret_not-the-key"})
        assert await replays(client) == 0
    assert (user.status_code, nobody.status_code) == (403, 401)
    assert (bad_signature.status_code, too_old.status_code, wrong_key.status_code) == (401, 401, 401)
    assert too_old.json()["detail"] == "the token has expired"


async def test_the_secret_key_is_replayed_like_an_admin(app_client: AppClient, api_settings: Settings) -> None:
    headers = {"apikey": api_settings.supabase_secret_key}
    async with app_client(api_replay_s=30, api_local_cache_s=30) as client:
        statuses = [(await client.get(ENDPOINT, headers=headers)).status_code for _ in range(2)]
        assert await replays(client) == 1
    assert statuses == [200, 200]


async def test_an_invalidation_ends_the_replay(app_client: AppClient, admin_headers: dict[str, str]) -> None:
    async with app_client(api_replay_s=30, api_local_cache_s=30) as client:
        await client.get(ENDPOINT, headers=admin_headers)
        await client.get(ENDPOINT, headers=admin_headers)
        assert await replays(client) == 1
        transport = client._transport
        assert isinstance(transport, httpx.ASGITransport)
        await transport.app.state.resources.cache.invalidate()  # type: ignore[attr-defined]
        after = await client.get(ENDPOINT, headers=admin_headers)
        assert await replays(client) == 1
    assert after.headers["x-cache"] == "miss"


async def test_a_replay_names_where_this_process_reads_now(
    app_client: AppClient, admin_headers: dict[str, str]
) -> None:
    """A replayed chart says what any cached answer says: where reads go now, not where they went."""
    chart = "/v1/analytics/activity?grain=day&days=3"
    async with app_client(api_replay_s=30, api_local_cache_s=30, read_replica_check_s=3600) as client:
        transport = client._transport
        assert isinstance(transport, httpx.ASGITransport)
        reads: ReadRouter = transport.app.state.resources.reads  # type: ignore[attr-defined]
        reads.health = ReplicaHealth(up=True, lag_s=0.0, checked_at=time.monotonic())
        first = await client.get(chart, headers=admin_headers)
        reads.health = ReplicaHealth(up=False, lag_s=None, checked_at=time.monotonic())
        replayed = await client.get(chart, headers=admin_headers)
    assert first.headers["x-read-source"] == "replica"
    assert replayed.headers["x-cache"] == "hit"
    assert replayed.headers["x-read-source"] == "primary"
    assert replayed.json() == first.json()


async def test_replays_expire(app_client: AppClient, admin_headers: dict[str, str]) -> None:
    async with app_client(api_replay_s=0.2, api_local_cache_s=30) as client:
        await client.get(ENDPOINT, headers=admin_headers)
        await asyncio.sleep(0.3)
        later = await client.get(ENDPOINT, headers=admin_headers)
        assert await replays(client) == 0
    assert later.headers["x-cache"] == "hit"  # from the local layer, through the app


async def test_origins_and_conditional_requests(
    app_client: AppClient, admin_headers: dict[str, str], api_settings: Settings
) -> None:
    allowed = api_settings.api_cors_origins[0]
    async with app_client(api_replay_s=30, api_local_cache_s=30) as client:
        for _ in range(2):
            from_frontend = await client.get(ENDPOINT, headers={**admin_headers, "Origin": allowed})
            from_elsewhere = await client.get(ENDPOINT, headers={**admin_headers, "Origin": "https://evil.example"})
        assert await replays(client) == 2
        await client.get(ENDPOINT, headers={**admin_headers, "If-None-Match": '"x"'})
        await client.get(ENDPOINT, headers={**admin_headers, "Cache-Control": "no-cache"})
        assert await replays(client) == 2
    assert from_frontend.headers["access-control-allow-origin"] == allowed
    assert "access-control-allow-origin" not in from_elsewhere.headers


def test_replay_over_real_http(admin_headers: dict[str, str], api_server: str) -> None:
    """Through uvicorn with the default settings (replayed for 1 s)."""
    with httpx.Client(base_url=api_server, headers=admin_headers, timeout=10) as client:
        for _ in range(5):  # a database NOTIFY (pg_cron's compaction) may invalidate in between
            responses = [client.get(ENDPOINT) for _ in range(3)]
            if 'outcome="replay"' in client.get("/metrics").text:
                break
        else:
            pytest.fail("no request was replayed")
    assert [r.status_code for r in responses] == [200] * 3
    assert responses[2].headers["x-cache"] == "hit"
