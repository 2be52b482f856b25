"""upstash-ratelimit runs its Lua scripts (with Upstash-only shebang flags) through the proxy.

Windows are an hour long so a window boundary cannot fall inside a test and reset the count.
"""

import pytest
from upstash_ratelimit import FixedWindow, Ratelimit, SlidingWindow
from upstash_ratelimit.asyncio import Ratelimit as AsyncRatelimit
from upstash_ratelimit.limiter import Limiter
from upstash_redis import Redis
from upstash_redis.asyncio import Redis as AsyncRedis

WINDOW_S = 3600
MAX_REQUESTS = 3


@pytest.fixture(params=["sliding", "fixed"])
def limiter(request: pytest.FixtureRequest) -> Limiter:
    if request.param == "sliding":
        return SlidingWindow(max_requests=MAX_REQUESTS, window=WINDOW_S)
    return FixedWindow(max_requests=MAX_REQUESTS, window=WINDOW_S)


def test_allows_exactly_max_requests_then_blocks(redis: Redis, limiter: Limiter, key: str) -> None:
    ratelimit = Ratelimit(redis=redis, limiter=limiter, prefix=key)
    allowed = [ratelimit.limit("user-1").allowed for _ in range(MAX_REQUESTS + 2)]
    assert allowed == [True] * MAX_REQUESTS + [False, False]
    assert ratelimit.get_remaining("user-1") == 0
    assert ratelimit.limit("user-2").allowed is True


async def test_async_allows_exactly_max_requests_then_blocks(
    async_redis: AsyncRedis, limiter: Limiter, key: str
) -> None:
    ratelimit = AsyncRatelimit(redis=async_redis, limiter=limiter, prefix=key)
    allowed = [(await ratelimit.limit("user-1")).allowed for _ in range(MAX_REQUESTS + 1)]
    assert allowed == [True] * MAX_REQUESTS + [False]
