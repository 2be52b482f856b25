"""The one Upstash client, guarded so a slow or dead endpoint costs a request at most one short wait."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from upstash_redis.asyncio import Redis

T = TypeVar("T")
log = logging.getLogger("api.upstash")

# After a failure, skip Upstash for this long instead of paying the timeout on every request.
BREAKER_OPEN_S = 1.0


class CacheUnavailable(Exception):
    """Upstash did not answer in time or answered with an error; callers fall back to the database."""


def create_redis(url: str, token: str) -> Redis:
    # No client-side retries: the library sleeps 3 s between them, and the database is the fallback.
    return Redis(url, token, rest_retries=0, allow_telemetry=False, read_your_writes=False)


class Upstash:
    def __init__(self, redis: Redis, timeout_s: float) -> None:
        self.redis = redis
        self.timeout_s = timeout_s
        self._open_until = 0.0

    @property
    def available(self) -> bool:
        return time.monotonic() >= self._open_until

    async def run(self, call: Callable[[], Awaitable[T]]) -> T:
        """Make one Upstash call under the deadline; any failure becomes CacheUnavailable."""
        if not self.available:
            raise CacheUnavailable("Upstash marked unavailable after a recent failure")
        try:
            return await asyncio.wait_for(call(), self.timeout_s)
        except Exception as error:
            if self.available:
                log.warning("upstash unavailable; serving without it", extra={"error": repr(error)})
            self._open_until = time.monotonic() + BREAKER_OPEN_S
            raise CacheUnavailable(repr(error)) from error
