"""Upstash as the hot cache of merchant_key -> mapping, in front of the database.

The database stays the source of truth (a key with any mapping there is never sent to an LLM again);
the cache only saves the lookups for keys seen over and over. Entries expire, and whoever changes a
mapping (an admin review, one by one or in bulk) calls `invalidate` once its change has committed,
so the next lookup reads the database. Any cache failure counts as a miss (a lost invalidation as an
entry that lives out its TTL): mapping never depends on the cache being up. After a failure the cache
is skipped for BREAKER_OPEN_S, so a dead Upstash costs a long job one timeout a second, not one per
call.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Protocol

from upstash_redis.asyncio import Redis

from kamioi.settings import Settings

log = logging.getLogger(__name__)

KEY_PREFIX = "kamioi:mapping:v1:"
BREAKER_OPEN_S = 1.0


@dataclass(frozen=True)
class StoredMapping:
    """The llm_mappings row that answers for a merchant key (in force, or the newest open one)."""

    mapping_id: int
    created_at: datetime
    company: str | None
    ticker: str | None
    category: str | None
    confidence: float | None
    status: str
    tier: str | None

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "created_at": self.created_at.isoformat()})

    @classmethod
    def from_json(cls, text: str) -> StoredMapping:
        fields: dict[str, Any] = json.loads(text)
        return cls(**{**fields, "created_at": datetime.fromisoformat(fields["created_at"])})


class MappingCache(Protocol):
    async def get_many(self, keys: Sequence[str]) -> dict[str, StoredMapping]: ...

    async def put_many(self, mappings: dict[str, StoredMapping]) -> None: ...

    async def invalidate(self, keys: Iterable[str]) -> None: ...


class UpstashMappingCache:
    def __init__(self, redis: Redis, *, ttl_s: int, pending_ttl_s: int, op_timeout_s: float = 0.5) -> None:
        self._redis = redis
        # An approved mapping rarely changes; a pending one changes when an admin reviews it.
        self._ttl_s = ttl_s
        self._pending_ttl_s = pending_ttl_s
        self._op_timeout_s = op_timeout_s
        self._open_until = 0.0

    @classmethod
    def from_settings(cls, settings: Settings) -> UpstashMappingCache | None:
        if not (settings.upstash_redis_rest_url and settings.upstash_redis_rest_token):
            return None
        redis = Redis(
            settings.upstash_redis_rest_url,
            settings.upstash_redis_rest_token,
            rest_retries=0,
            allow_telemetry=False,
        )
        return cls(
            redis,
            ttl_s=settings.mapping_cache_ttl_s,
            pending_ttl_s=settings.mapping_cache_pending_ttl_s,
        )

    async def aclose(self) -> None:
        await self._redis.close()

    async def get_many(self, keys: Sequence[str]) -> dict[str, StoredMapping]:
        if not keys:
            return {}
        values = await self._guarded(lambda: self._redis.mget(*(KEY_PREFIX + key for key in keys)), "read")
        if not isinstance(values, list):
            return {}
        found: dict[str, StoredMapping] = {}
        for key, value in zip(keys, values, strict=True):
            if isinstance(value, str):
                try:
                    found[key] = StoredMapping.from_json(value)
                except (ValueError, TypeError, KeyError):
                    log.warning("dropping an unreadable mapping cache entry for %r", key)
        return found

    async def put_many(self, mappings: dict[str, StoredMapping]) -> None:
        if not mappings:
            return
        pipeline = self._redis.pipeline()
        for key, mapping in mappings.items():
            ttl = self._ttl_s if mapping.status == "approved" else self._pending_ttl_s
            pipeline.set(KEY_PREFIX + key, mapping.to_json(), ex=ttl)
        await self._guarded(pipeline.exec, "write")

    async def invalidate(self, keys: Iterable[str]) -> None:
        """Drop the keys' entries in one round trip (a multi-key DEL)."""
        names = [KEY_PREFIX + key for key in keys]
        if names:
            await self._guarded(lambda: self._redis.delete(*names), "invalidate")

    async def _guarded(self, operation: Callable[[], Awaitable[Any]], what: str) -> Any:
        """The operation's result, or None when it failed or the breaker is open."""
        if time.monotonic() < self._open_until:
            return None
        try:
            return await asyncio.wait_for(operation(), self._op_timeout_s)
        except Exception as exc:
            self._open_until = time.monotonic() + BREAKER_OPEN_S
            log.warning("mapping cache %s failed; the database answers, entries expire on their own: %s", what, exc)
            return None
