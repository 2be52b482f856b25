"""Read-your-writes: ``Upstash-Sync-Token`` sent on every answer and honoured on every request.

The first half drives the real ``upstash_redis`` clients (sync and asyncio) the way upstash/redis-python's own
read-your-writes tests do (tests/test_read_your_writes.py upstream: a token after a plain command, a
pipeline, a transaction and a Lua script; none when the option is off). The installed package ships no
tests and the stored snapshot of that repository predates the feature, so the assertions are written
here against the same client API. The second half is the proxy's side over raw HTTP: a request that
carries a token is answered only from a state at least that new.
"""

import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from upstash_redis import Redis
from upstash_redis.asyncio import Redis as AsyncRedis

from tests.local_stack.upstash_proxy.conftest import REDIS_PASSWORD, TOKEN, start_proxy, stop

HEADER = "Upstash-Sync-Token"
SET_SCRIPT = "redis.call('SET', KEYS[1], ARGV[1]); return 1"


def _writes(token: str) -> int:
    return int(token.rpartition(".")[2])


def test_a_command_sets_the_sync_token(redis: Redis, key: str) -> None:
    assert redis._sync_token == ""
    redis.set(key, "v")
    assert redis._sync_token != ""


def test_each_write_advances_the_sync_token(redis: Redis, key: str) -> None:
    redis.set(key, "1")
    first = redis._sync_token
    redis.set(key, "2")
    assert _writes(redis._sync_token) > _writes(first)


def test_a_pipeline_updates_the_sync_token(redis: Redis, key: str) -> None:
    redis.set(key, "0")
    before = redis._sync_token
    pipeline = redis.pipeline()
    pipeline.set(f"{key}:a", "a")
    pipeline.set(f"{key}:b", "b")
    pipeline.exec()
    assert _writes(redis._sync_token) >= _writes(before) + 2


def test_a_transaction_updates_the_sync_token(redis: Redis, key: str) -> None:
    redis.set(key, "0")
    before = redis._sync_token
    transaction = redis.multi()
    transaction.incr(key)
    transaction.incr(key)
    assert transaction.exec() == [1, 2]
    assert _writes(redis._sync_token) >= _writes(before) + 2


def test_a_lua_script_updates_the_sync_token(redis: Redis, key: str) -> None:
    redis.set(key, "0")
    before = redis._sync_token
    assert redis.eval(SET_SCRIPT, keys=[key], args=["from-lua"]) == 1
    assert _writes(redis._sync_token) > _writes(before)
    assert redis.get(key) == "from-lua"


def test_no_sync_token_is_kept_when_read_your_writes_is_off(proxy_url: str, key: str) -> None:
    with Redis(url=proxy_url, token=TOKEN, read_your_writes=False) as client:
        client.set(key, "v")
        assert client._sync_token == ""


async def test_async_a_command_sets_the_sync_token(async_redis: AsyncRedis, key: str) -> None:
    assert async_redis._sync_token == ""
    await async_redis.set(key, "v")
    assert async_redis._sync_token != ""


async def test_async_a_pipeline_and_a_transaction_update_the_sync_token(async_redis: AsyncRedis, key: str) -> None:
    await async_redis.set(key, "0")
    before = async_redis._sync_token
    pipeline = async_redis.pipeline()
    pipeline.incr(key)
    await pipeline.exec()
    after_pipeline = async_redis._sync_token
    transaction = async_redis.multi()
    transaction.incr(key)
    await transaction.exec()
    assert _writes(before) < _writes(after_pipeline) < _writes(async_redis._sync_token)


async def test_async_a_lua_script_updates_the_sync_token(async_redis: AsyncRedis, key: str) -> None:
    await async_redis.set(key, "0")
    before = async_redis._sync_token
    await async_redis.eval(SET_SCRIPT, keys=[key], args=["from-lua"])
    assert _writes(async_redis._sync_token) > _writes(before)


async def test_async_no_sync_token_is_kept_when_read_your_writes_is_off(proxy_url: str, key: str) -> None:
    async with AsyncRedis(url=proxy_url, token=TOKEN, read_your_writes=False) as client:
        await client.set(key, "v")
        assert client._sync_token == ""


# The proxy's side, over raw HTTP.


def test_every_answer_carries_a_token_and_only_writes_advance_it(http: httpx.Client, key: str) -> None:
    written = http.post("/", json=["SET", key, "v"]).headers[HEADER]
    assert http.post("/", json=["GET", key]).headers[HEADER] == written
    assert http.post("/pipeline", json=[["GET", key], ["EXISTS", key]]).headers[HEADER] == written
    refused = http.post("/", json=["SHUTDOWN"])
    assert refused.status_code == 400 and refused.headers[HEADER] == written
    failed = http.post("/", json=["INCR", key])  # a write command that redis-server rejects
    assert failed.status_code == 400 and _writes(failed.headers[HEADER]) >= _writes(written)


def test_a_read_carrying_a_newer_token_waits_for_the_write(http: httpx.Client, proxy_url: str, key: str) -> None:
    current = http.post("/", json=["SET", key, "old"]).headers[HEADER]
    epoch, _, writes = current.rpartition(".")
    ahead = f"{epoch}.{int(writes) + 1}"
    answers: list[httpx.Response] = []
    headers = {"Authorization": f"Bearer {TOKEN}", HEADER: ahead}
    reader = threading.Thread(target=lambda: answers.append(httpx.post(proxy_url, json=["GET", key], headers=headers)))
    reader.start()
    time.sleep(0.3)  # the read is waiting now; without the token it would have answered "old"
    assert answers == []
    http.post("/", json=["SET", key, "new"])
    reader.join(timeout=5)
    assert answers[0].json() == {"result": "new"}


def test_a_token_from_an_earlier_proxy_process_is_satisfied_at_once(http: httpx.Client, key: str) -> None:
    response = http.post("/", json=["GET", key], headers={HEADER: "0123456789ab.999999"})
    assert response.status_code == 200


@pytest.mark.parametrize("token", ["garbage", "abc.", "abc.-1", "abc.1.5"])
def test_a_malformed_token_is_400(http: httpx.Client, key: str, token: str) -> None:
    response = http.post("/", json=["GET", key], headers={HEADER: token})
    assert response.status_code == 400
    assert response.json()["error"].startswith("ERR invalid")


@pytest.fixture
def impatient_proxy(redis_port: int) -> Iterator[str]:
    process, url = start_proxy(f"redis://:{REDIS_PASSWORD}@127.0.0.1:{redis_port}/0", "--sync-wait-timeout", "0.5")
    yield url
    stop(process)


def test_a_forged_token_ahead_of_the_state_is_refused_not_waited_on_forever(impatient_proxy: str, key: str) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    epoch = httpx.post(impatient_proxy, json=["GET", key], headers=auth).headers[HEADER].rpartition(".")[0]
    forged = {**auth, HEADER: f"{epoch}.{10**12}"}
    response = httpx.post(impatient_proxy, json=["GET", key], headers=forged, timeout=10)
    assert response.status_code == 400
    assert "ahead" in response.json()["error"]
