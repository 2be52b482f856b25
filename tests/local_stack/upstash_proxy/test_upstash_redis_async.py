"""The unmodified upstash_redis.asyncio.Redis against the proxy."""

import asyncio

import pytest
from upstash_redis.asyncio import Redis as AsyncRedis
from upstash_redis.errors import UpstashError


async def test_strings_ints_and_none(async_redis: AsyncRedis, key: str) -> None:
    assert await async_redis.set(key, "ünï\ncode")
    assert await async_redis.get(key) == "ünï\ncode"
    assert await async_redis.incr(f"{key}:n") == 1
    assert await async_redis.get(f"{key}:missing") is None


async def test_concurrent_increments_are_all_counted(async_redis: AsyncRedis, key: str) -> None:
    results = await asyncio.gather(*(async_redis.incr(key) for _ in range(50)))
    assert sorted(results) == list(range(1, 51))


async def test_pipeline_and_transaction(async_redis: AsyncRedis, key: str) -> None:
    pipeline = async_redis.pipeline()
    pipeline.rpush(key, "a", "b")
    pipeline.lrange(key, 0, -1)
    assert await pipeline.exec() == [2, ["a", "b"]]

    transaction = async_redis.multi()
    transaction.hset(f"{key}:h", "f", "v")
    transaction.hgetall(f"{key}:h")
    assert await transaction.exec() == [1, {"f": "v"}]


async def test_redis_error_raises(async_redis: AsyncRedis, key: str) -> None:
    await async_redis.rpush(key, "a")
    with pytest.raises(UpstashError, match="WRONGTYPE"):
        await async_redis.get(key)
