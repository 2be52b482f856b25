"""Upstash as the hot cache of merchant_key -> mapping, in front of the database.

The database stays the source of truth (a key with any mapping there is never sent to an LLM again);
the cache only saves the lookups for keys seen over and over. Entries expire, and whoever changes a
mapping (an admin review) calls `invalidate` so the next lookup reads the database. Any cache failure
counts as a miss: mapping never depends on the cache being up.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Protocol

from upstash_redis.asyncio import Redis

from kamioi.settings import Settings

log = logging.getLogger(__name__)

KEY_PREFIX = "kamioi:mapping:v1:"


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
        try:
            values = await asyncio.wait_for(self._redis.mget(*(KEY_PREFIX + key for key in keys)), self._op_timeout_s)
        except Exception as exc:
            log.warning("mapping cache read failed, reading the database instead: %s", exc)
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
        await self._guarded(pipeline.exec(), "write")

    async def invalidate(self, keys: Iterable[str]) -> None:
        names = [KEY_PREFIX + key for key in keys]
        if names:
            await self._guarded(self._redis.delete(*names), "invalidate")

    async def _guarded(self, operation: Any, what: str) -> None:
        try:
            await asyncio.wait_for(operation, self._op_timeout_s)
        except Exception as exc:
            log.warning("mapping cache %s failed (entries expire on their own): %s", what, exc)


async def invalidate_mapping_cache(settings: Settings, keys: Iterable[str]) -> None:
    """For whoever changes a mapping outside the resolver (admin review): drop the keys' entries."""
    cache = UpstashMappingCache.from_settings(settings)
    if cache is None:
        return
    try:
        await cache.invalidate(keys)
    finally:
        await cache.aclose()
