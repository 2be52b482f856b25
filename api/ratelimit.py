"""Per-user sliding-window rate limits in Upstash (upstash-ratelimit).

If Upstash cannot answer, reads go through (logged: they are cheap and mostly cached) and writes
are refused with 503: an upload or an LLM batch must not slip past its limit. Reviews count against
the writes window but go through like reads: an admin's decision costs one short transaction and no
money, and must not wait for the cache to come back.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Literal

from upstash_ratelimit.asyncio import Ratelimit, SlidingWindow
from upstash_ratelimit.limiter import Response

from api.auth import Principal
from api.metrics import Metrics
from api.problems import ProblemError
from api.upstash import CacheUnavailable, Upstash
from kamioi.settings import Settings

LimitName = Literal["reads", "writes", "reviews", "uploads"]
log = logging.getLogger("api.ratelimit")


@dataclass(frozen=True)
class _Limit:
    limiter: Ratelimit
    fail_open: bool


class RateLimits:
    def __init__(self, upstash: Upstash, settings: Settings, metrics: Metrics) -> None:
        self._upstash = upstash
        self._metrics = metrics

        def limit(window_name: str, max_requests: int, unit: Literal["m", "h"], *, fail_open: bool) -> _Limit:
            window = SlidingWindow(max_requests=max_requests, window=1, unit=unit)
            return _Limit(Ratelimit(upstash.redis, window, prefix=f"kamioi:rl:{window_name}"), fail_open)

        self._limits: dict[LimitName, _Limit] = {
            "reads": limit("reads", settings.api_rate_reads_per_minute, "m", fail_open=True),
            "writes": limit("writes", settings.api_rate_writes_per_minute, "m", fail_open=False),
            "reviews": limit("writes", settings.api_rate_writes_per_minute, "m", fail_open=True),
            "uploads": limit("uploads", settings.api_rate_uploads_per_hour, "h", fail_open=False),
        }

    async def check(self, name: LimitName, principal: Principal) -> None:
        """Count one request against the caller's window; raise 429 (or 503) when it may not pass."""
        entry = self._limits[name]
        identifier = principal.subject
        try:
            response: Response = await self._upstash.run(lambda: entry.limiter.limit(identifier))
        except CacheUnavailable as error:
            if entry.fail_open:
                log.warning("rate limiter unavailable; letting the request through", extra={"limit": name})
                return
            raise ProblemError(
                503, "the rate limiter is unavailable; try again shortly", headers={"Retry-After": "5"}
            ) from error
        if not response.allowed:
            self._metrics.rate_limited.labels(name).inc()
            retry_after = max(1, math.ceil(response.reset - time.time()))
            raise ProblemError(
                429,
                f"rate limit for {name} exceeded ({response.limit} per window); retry in {retry_after} s",
                headers={
                    "Retry-After": str(retry_after),
                    "RateLimit-Limit": str(response.limit),
                    "RateLimit-Remaining": "0",
                },
            )
