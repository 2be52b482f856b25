"""Cache-aside for the admin aggregates in Upstash.

- Fresh for `ttl_s` (stats: 5 minutes), then served stale for up to `stale_s` more while one request
  recomputes in the background (stale-while-revalidate).
- A cold or invalidated key is computed once: in-process callers share one future, and across
  processes a lock (SET NX PX) lets one caller compute while the others poll for its result.
- Invalidation is by version: every entry records the version it was computed under, and
  `invalidate_stats` writes a new version, so all aggregates become misses at once. The API calls
  it after a review; api.notify calls it when the database announces changed numbers (NOTIFY).
- Upstash down or slow: compute from the database and report "bypass" (also while this process
  serves what it computed so); never an error.
- A tiny per-process layer absorbs hot-key traffic without a round trip: a value checked against
  Upstash less than `local_s` (~1 s) ago is served as is; an older one (still within its TTL) is
  served while one request checks for a newer version in the background. api.replay keeps the
  rendered responses for `local_s`, and `generation` tells it when they are out of date.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Literal

from upstash_redis.asyncio import Redis

from api.metrics import Metrics
from api.upstash import BREAKER_OPEN_S, CacheUnavailable, Upstash

STATS_VERSION_KEY = "kamioi:cache:stats:version"
# The version of entries that ignore invalidation (follows_changes=False).
TTL_ONLY_VERSION = "ttl"
KEY_PREFIX = "kamioi:cache:"
CacheStatus = Literal["hit", "miss", "stale", "bypass"]
Compute = Callable[[], Awaitable[Any]]

# Delete the lock only if it is still ours (it may have expired and been taken by someone else).
_RELEASE_LOCK = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"

log = logging.getLogger("api.cache")


async def invalidate_stats(redis: Redis) -> str:
    """Mark every cached aggregate out of date; the next read recomputes it. Returns the new version.

    A fresh random token rather than INCR: if the version key is ever evicted, reads see "0", which no
    entry written since the first invalidation carries, so eviction cannot resurrect old numbers. The
    "v" prefix keeps it a string for clients that JSON-decode replies (@upstash/redis in the edge
    functions would turn a long digit string into an imprecise number).
    """
    version = f"v{uuid.uuid4().hex}"
    await redis.set(STATS_VERSION_KEY, version)
    return version


@dataclass(frozen=True)
class Cached:
    value: Any
    computed_at: float
    status: CacheStatus


@dataclass(frozen=True)
class CachePolicy:
    ttl_s: float
    stale_s: float
    local_s: float
    lock_ms: int = 15_000
    # How long to wait for another process's computation before computing too (a reader's budget).
    wait_s: float = 5.0
    poll_s: float = 0.025


@dataclass(frozen=True)
class _Entry:
    version: str
    computed_at: float
    value: Any

    def encode(self) -> str:
        return json.dumps({"v": self.version, "t": self.computed_at, "value": self.value}, default=str)

    @classmethod
    def decode(cls, raw: str | None) -> _Entry | None:
        if raw is None:
            return None
        try:
            data = json.loads(raw)
            return cls(version=str(data["v"]), computed_at=float(data["t"]), value=data["value"])
        except (ValueError, KeyError, TypeError):
            return None


class AggregateCache:
    def __init__(self, upstash: Upstash, metrics: Metrics, policy: CachePolicy) -> None:
        self._upstash = upstash
        self._metrics = metrics
        self.policy = policy
        # key -> (when last checked against Upstash, entry, "hit", or "bypass" if computed without Upstash)
        self._local: dict[str, tuple[float, _Entry, CacheStatus]] = {}
        # What the local layer held when a database change superseded it: served as stale while one
        # request per key revalidates (see invalidate(serve_stale=True)).
        self._superseded: dict[str, _Entry] = {}
        # Bumped by every invalidation, so layers above (api.replay) can tell their copies are old.
        self.generation = 0
        self._inflight: dict[str, asyncio.Future[Cached]] = {}
        self._refreshing: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def get(self, family: str, params: str, compute: Compute, *, follows_changes: bool = True) -> Cached:
        """The cached value of `family` for `params`, computing it with `compute` when needed.

        follows_changes=False: the entry ignores invalidation and lives by TTL (and stale-while-
        revalidate) alone. For expensive aggregates over history (the analytics charts): a bulk import
        invalidates once a second, and recomputing a multi-second query after each would make every
        reader wait on it (measured: the API stalled for a minute under the load scenario)."""
        key = f"{KEY_PREFIX}{family}:{params}" if params else f"{KEY_PREFIX}{family}"
        local = self._local.get(key)
        if local is not None:
            checked_at, entry, status = local
            recently_checked = time.monotonic() - checked_at < self.policy.local_s
            if recently_checked or time.time() - entry.computed_at < self.policy.ttl_s:
                if not recently_checked and follows_changes:
                    # Still within its TTL: look for a newer version in the background and serve this
                    # one meanwhile, so no reader waits on Upstash. (Entries that ignore invalidation
                    # have nothing to look for before their TTL is up.)
                    self._revalidate_in_background(family, key, compute, follows_changes)
                self._count(family, "local_hit")
                return Cached(entry.value, entry.computed_at, status)
        superseded = self._superseded.get(key)
        if superseded is not None:
            self._revalidate_in_background(family, key, compute, follows_changes)
            self._count(family, "stale")
            return Cached(superseded.value, superseded.computed_at, "stale")
        inflight = self._inflight.get(key)
        if inflight is not None:
            try:
                return await asyncio.shield(inflight)
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise
                # The leader was cancelled (its client went away): look up on our own.
        future: asyncio.Future[Cached] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            result = await self._lookup(family, key, compute, follows_changes)
        except BaseException:
            future.cancel()
            raise
        else:
            future.set_result(result)
            return result
        finally:
            if self._inflight.get(key) is future:
                del self._inflight[key]

    async def invalidate(self, *, serve_stale: bool = False) -> bool:
        """Invalidate every aggregate, here and in Upstash. False if Upstash missed it (TTL then applies).

        serve_stale: what this process holds stays readable, as stale, until one request per key has
        revalidated it in the background. For changes announced by the database: a bulk import moves
        the numbers every second, and readers should not all wait for a recomputation each time. An
        admin's own review invalidates hard, so the next read shows its effect."""
        if serve_stale:
            self._superseded.update((key, entry) for key, (_, entry, _) in self._local.items())
        else:
            self._superseded.clear()
        self._local.clear()
        self.generation += 1
        redis = self._upstash.redis
        try:
            await self._upstash.run(lambda: invalidate_stats(redis))
        except CacheUnavailable:
            return False
        return True

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _lookup(self, family: str, key: str, compute: Compute, follows: bool) -> Cached:
        try:
            version, entry = await self._read(key, follows)
        except CacheUnavailable:
            return await self._bypass(family, key, compute)
        if entry is not None and entry.version == version:
            if time.time() - entry.computed_at < self.policy.ttl_s:
                self._remember(key, entry)
                self._count(family, "hit")
                return Cached(entry.value, entry.computed_at, "hit")
            self._refresh_in_background(family, key, compute, follows)
            self._count(family, "stale")
            return Cached(entry.value, entry.computed_at, "stale")
        return await self._fill(family, key, compute, follows)

    async def _fill(self, family: str, key: str, compute: Compute, follows: bool) -> Cached:
        """Single flight: whoever takes the lock computes; everyone else polls for the result."""
        deadline = time.monotonic() + self.policy.wait_s
        try:
            while True:
                filled = await self._compute_if_locked(family, key, compute, follows)
                if filled is not None:
                    return filled
                await asyncio.sleep(self.policy.poll_s)
                version, entry = await self._read(key, follows)
                if entry is not None and entry.version == version:
                    self._remember(key, entry)
                    self._count(family, "hit")
                    return Cached(entry.value, entry.computed_at, "hit")
                if time.monotonic() > deadline:
                    log.warning("cache lock wait timed out; computing directly", extra={"key": key})
                    return await self._bypass(family, key, compute)
        except CacheUnavailable:
            return await self._bypass(family, key, compute)

    async def _compute_if_locked(self, family: str, key: str, compute: Compute, follows: bool) -> Cached | None:
        """Take the key's lock and fill the key; None if someone else holds the lock."""
        lock, token = f"{key}:lock", secrets.token_hex(8)
        redis = self._upstash.redis
        try:
            if not await self._upstash.run(lambda: redis.set(lock, token, nx=True, px=self.policy.lock_ms)):
                return None
        except CacheUnavailable:
            # The SET may have landed though its reply did not (a timeout under load): a lock nobody
            # releases would keep every other process polling until it expires.
            self._release_later(lock, token)
            raise
        try:
            # The previous holder may have filled the key between our read and our lock.
            version, entry = await self._read(key, follows)
            if entry is not None and entry.version == version and time.time() - entry.computed_at < self.policy.ttl_s:
                self._count(family, "hit")
                return Cached(entry.value, entry.computed_at, "hit")
            self._count(family, "miss")
            entry = _Entry(version, time.time(), await self._compute(family, compute))
            expire_s = int(self.policy.ttl_s + self.policy.stale_s)
            try:
                await self._upstash.run(lambda: redis.set(key, entry.encode(), ex=expire_s))
            except CacheUnavailable:
                self._remember(key, entry, "bypass")
                return Cached(entry.value, entry.computed_at, "bypass")
            self._remember(key, entry)
            return Cached(entry.value, entry.computed_at, "miss")
        finally:
            # If Upstash is away the lock expires by itself after lock_ms.
            await self._release(lock, token)

    async def _release(self, lock: str, token: str) -> None:
        with contextlib.suppress(CacheUnavailable):
            await self._upstash.run(lambda: self._upstash.redis.eval(_RELEASE_LOCK, [lock], [token]))

    def _release_later(self, lock: str, token: str) -> None:
        """Release the lock if it is ours, once Upstash is tried again (after the breaker's pause)."""

        async def release() -> None:
            await asyncio.sleep(BREAKER_OPEN_S)
            await self._release(lock, token)

        self._spawn(release())

    def _refresh_in_background(self, family: str, key: str, compute: Compute, follows: bool) -> None:
        async def refresh() -> None:
            with contextlib.suppress(CacheUnavailable):
                # If another process holds the lock it is refreshing already: keep serving stale.
                await self._compute_if_locked(family, key, compute, follows)

        self._once_in_background(key, refresh)

    def _revalidate_in_background(self, family: str, key: str, compute: Compute, follows: bool) -> None:
        async def revalidate() -> None:
            try:
                await self._lookup(family, key, compute, follows)  # remembers what it finds or computes
            finally:
                self._superseded.pop(key, None)

        self._once_in_background(key, revalidate)

    def _once_in_background(self, key: str, work: Callable[[], Awaitable[None]]) -> None:
        """Run `work` for `key` in a task, unless some is running for it already."""
        if key in self._refreshing:
            return
        self._refreshing.add(key)

        async def run() -> None:
            try:
                await work()
            except Exception:
                log.exception("background cache work failed", extra={"key": key})
            finally:
                self._refreshing.discard(key)

        self._spawn(run())

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)  # held until done (the loop keeps only weak references); close() cancels
        task.add_done_callback(self._tasks.discard)

    async def _read(self, key: str, follows: bool) -> tuple[str, _Entry | None]:
        if not follows:
            return TTL_ONLY_VERSION, _Entry.decode(await self._upstash.run(lambda: self._upstash.redis.get(key)))

        async def both() -> list[Any]:
            pipeline = self._upstash.redis.pipeline()
            pipeline.get(STATS_VERSION_KEY)
            pipeline.get(key)
            return await pipeline.exec()

        version, raw = await self._upstash.run(both)
        return str(version or "0"), _Entry.decode(raw)

    async def _bypass(self, family: str, key: str, compute: Compute) -> Cached:
        """Computed without Upstash; remembered in this process (as a bypass), so an outage costs the
        database one computation per key and process per local_s (TTL, for entries that ignore
        invalidation), not one per request."""
        self._count(family, "bypass")
        entry = _Entry(TTL_ONLY_VERSION, time.time(), await self._compute(family, compute))
        self._remember(key, entry, "bypass")
        return Cached(entry.value, entry.computed_at, "bypass")

    async def _compute(self, family: str, compute: Compute) -> Any:
        self._metrics.cache_computations.labels(family).inc()
        return await compute()

    def _remember(self, key: str, entry: _Entry, status: CacheStatus = "hit") -> None:
        if self.policy.local_s > 0:
            self._local[key] = (time.monotonic(), entry, status)

    def _count(self, family: str, outcome: str) -> None:
        self._metrics.count_lookup(family, outcome)
