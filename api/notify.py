"""Invalidate cached aggregates when the database says the numbers changed (LISTEN/NOTIFY).

The database sends NOTIFY on STATS_CHANNEL from a statement trigger (migration
20261122130000_api_stats_notify.sql), so imports, reviews and anything else that moves the numbers
invalidate the cache without having to remember to. Bursts (an import commits a chunk a second)
are coalesced: at most one invalidation per `debounce_s`, always after the last change, and readers
get the previous numbers (stale) while one request recomputes them.
LISTEN needs a session connection, so this uses its own direct connection, never a transaction-mode
pooler.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import psycopg

from api.cache import AggregateCache

STATS_CHANNEL = "kamioi_stats_changed"
RECONNECT_DELAY_S = 2.0

log = logging.getLogger("api.notify")


class ChannelListener:
    """LISTEN on one channel on its own session connection, reconnecting after an error. Subclasses
    say what the notifications mean (`consume`) and what to do about those missed while away
    (`caught_up`, run before `listening` is set again)."""

    channel: str
    name: str

    def __init__(self, url: str) -> None:
        self._url = url
        self._task: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def consume(self, conn: psycopg.AsyncConnection[Any]) -> None:
        raise NotImplementedError

    async def caught_up(self) -> None:
        raise NotImplementedError

    async def _run(self) -> None:
        reconnecting = False
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self._url, autocommit=True) as conn:
                    await conn.execute(f"listen {self.channel}")
                    if reconnecting:
                        await self.caught_up()
                    self.listening.set()
                    await self.consume(conn)
            except psycopg.Error as error:
                self.listening.clear()
                reconnecting = True
                log.warning(f"{self.name} disconnected; retrying", extra={"error": repr(error)})
                await asyncio.sleep(RECONNECT_DELAY_S)


class StatsChangeListener(ChannelListener):
    channel, name = STATS_CHANNEL, "stats-change-listener"

    def __init__(self, url: str, cache: AggregateCache, debounce_s: float = 1.0) -> None:
        super().__init__(url)
        self._cache = cache
        self._debounce_s = debounce_s

    async def consume(self, conn: psycopg.AsyncConnection[Any]) -> None:
        while True:
            async for _ in conn.notifies(stop_after=1):
                pass
            await asyncio.sleep(self._debounce_s)
            async for _ in conn.notifies(timeout=0):
                pass
            await self._invalidate()

    async def caught_up(self) -> None:
        await self._invalidate()  # changes may have happened while we were away

    async def _invalidate(self) -> None:
        if await self._cache.invalidate(serve_stale=True):
            log.info("cached aggregates invalidated by a database change")
        else:
            log.warning("could not invalidate cached aggregates in Upstash; they expire by TTL")
