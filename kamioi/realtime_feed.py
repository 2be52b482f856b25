"""`RealtimeFeed`: a JobProgressFeed over Supabase Realtime (realtime-py), for where a Realtime server runs.

It joins the job's private broadcast channel with the secret key and queues the payloads of its job.
realtime-py is asyncio-only, so the client runs on an event loop of its own thread and the feed's
`next()` blocks on a queue, like ListenFeed's.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from typing import Any

from realtime import (
    AsyncRealtimeClient,
    RealtimeChannelBroadcastConfig,
    RealtimeChannelConfig,
    RealtimeChannelOptions,
    RealtimeSubscribeStates,
)

from kamioi.progress import JobProgressFeed, Payload

SUBSCRIBE_TIMEOUT_S = 10.0


class FeedUnavailable(Exception):
    """Realtime refused the join, or did not answer it."""


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
