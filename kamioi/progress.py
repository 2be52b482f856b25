"""Follow one job's progress as the database pushes it, instead of polling its row.

Every progress message goes through `private.publish_job_progress(topic, event, payload)` (migration
20261204300000): a Realtime broadcast on the topic, and the same message NOTIFYed on
`kamioi_job_progress`. A `JobProgressFeed` hands out the payloads of one job (`payload.id`):
- `RealtimeFeed` (realtime-py) where a Realtime server is configured (SUPABASE_REALTIME_URL): joins
  the private channel with the secret key, on a thread of its own (the client is asyncio-only);
- `ListenFeed` otherwise (the local stack has no Realtime server): LISTEN on a direct connection.

    with open_job_progress(settings, db_url, topic="admin:imports", event="import_progress", job_id=7) as feed:
        # read the row once now: messages from here on are not missed
        payload = feed.next(timeout=30)  # None: nothing within the timeout
"""

from __future__ import annotations

import asyncio
import json
import queue
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from types import TracebackType
from typing import Any, Self

import psycopg
from realtime import (
    AsyncRealtimeClient,
    RealtimeChannelBroadcastConfig,
    RealtimeChannelConfig,
    RealtimeChannelOptions,
    RealtimeSubscribeStates,
)

from kamioi.db import connect
from kamioi.settings import Settings

PROGRESS_CHANNEL = "kamioi_job_progress"
SUBSCRIBE_TIMEOUT_S = 10.0

Payload = dict[str, Any]


class FeedUnavailable(Exception):
    """The feed could not be opened (Realtime refused the join, or did not answer)."""


class JobProgressFeed(ABC):
    """The progress payloads of job `job_id` on `topic` / `event`, in the order they were committed."""

    def __init__(self, *, topic: str, event: str, job_id: int) -> None:
        self.topic, self.event, self.job_id = topic, event, job_id

    def matches(self, topic: str, event: str, payload: Any) -> bool:
        ours = isinstance(payload, dict) and payload.get("id") == self.job_id
        return ours and topic == self.topic and event == self.event

    @abstractmethod
    def next(self, timeout: float) -> Payload | None:
        """The next payload, or None when none arrived within `timeout` seconds."""

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()


class ListenFeed(JobProgressFeed):
    def __init__(self, db_url: str, *, topic: str, event: str, job_id: int) -> None:
        super().__init__(topic=topic, event=event, job_id=job_id)
        self._conn: psycopg.Connection[Any] = connect(db_url, autocommit=True)
        self._conn.execute(f"listen {PROGRESS_CHANNEL}")
        self._buffer: deque[Payload] = deque()

    def next(self, timeout: float) -> Payload | None:
        deadline = time.monotonic() + timeout
        while not self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            # Read each batch to its end: notifications that arrived together would be lost otherwise.
            for note in self._conn.notifies(timeout=remaining, stop_after=1):
                message = json.loads(note.payload)
                if self.matches(message.get("topic"), message.get("event"), message.get("payload")):
                    self._buffer.append(message["payload"])
        return self._buffer.popleft()

    def close(self) -> None:
        self._conn.close()


class RealtimeFeed(JobProgressFeed):
    def __init__(self, realtime_url: str, api_key: str, *, topic: str, event: str, job_id: int) -> None:
        super().__init__(topic=topic, event=event, job_id=job_id)
        self._payloads: queue.Queue[Payload] = queue.Queue()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="realtime-feed", daemon=True)
        self._thread.start()
        joined = asyncio.run_coroutine_threadsafe(self._join(realtime_url, api_key), self._loop)
        try:
            self._client = joined.result(SUBSCRIBE_TIMEOUT_S + 1)
        except BaseException:
            self._stop_loop()
            raise

    async def _join(self, realtime_url: str, api_key: str) -> AsyncRealtimeClient:
        client = AsyncRealtimeClient(realtime_url, token=api_key, auto_reconnect=True, timeout=int(SUBSCRIBE_TIMEOUT_S))
        config = RealtimeChannelConfig(
            broadcast=RealtimeChannelBroadcastConfig(self=False, ack=False), presence=None, private=True
        )
        channel = client.channel(self.topic, RealtimeChannelOptions(config=config))
        states: list[tuple[RealtimeSubscribeStates, Exception | None]] = []

        def on_message(message: Any) -> None:
            if self.matches(self.topic, message.get("event"), message.get("payload")):
                self._payloads.put(message["payload"])

        channel.on_broadcast(self.event, on_message)
        try:
            await channel.subscribe(lambda state, error: states.append((state, error)))
        except Exception as error:
            await client.close()
            raise FeedUnavailable(f"Realtime at {realtime_url}: {error}") from error
        if not states or states[-1][0] is not RealtimeSubscribeStates.SUBSCRIBED:
            await client.close()
            why = f"{states[-1][0]} {states[-1][1] or ''}" if states else "no answer"
            raise FeedUnavailable(f"Realtime refused the channel {self.topic}: {why}".strip())
        return client

    def next(self, timeout: float) -> Payload | None:
        try:
            return self._payloads.get(timeout=timeout)
        except queue.Empty:
            return None

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self._client.close(), self._loop).result(5)
        self._stop_loop()

    def _stop_loop(self) -> None:
        asyncio.run_coroutine_threadsafe(_cancel_pending(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()


async def _cancel_pending() -> None:
    """The client's timers and listeners, so the loop stops with nothing left running."""
    pending = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)


def open_job_progress(settings: Settings, db_url: str, *, topic: str, event: str, job_id: int) -> JobProgressFeed:
    """A feed over Realtime when SUPABASE_REALTIME_URL is set, else over LISTEN on `db_url`."""
    if settings.supabase_realtime_url:
        return RealtimeFeed(
            settings.supabase_realtime_url, settings.supabase_secret_key, topic=topic, event=event, job_id=job_id
        )
    return ListenFeed(db_url, topic=topic, event=event, job_id=job_id)
