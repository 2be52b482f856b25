"""Follow one job's progress as the database pushes it, instead of polling its row.

Every progress message goes through `private.publish_job_progress(topic, event, payload)` (migration
20261204300000): a Realtime broadcast on the topic, and the same message NOTIFYed on
`kamioi_job_progress`. A `JobProgressFeed` hands out the payloads of one job (`payload.id`):
- `RealtimeFeed` (kamioi/realtime_feed.py, realtime-py) where a Realtime server is configured
  (SUPABASE_REALTIME_URL): joins the private channel with the secret key;
- `ListenFeed` otherwise (the local stack has no Realtime server): LISTEN on a direct connection.

    with open_job_progress(settings, db_url, topic="admin:imports", event="import_progress", job_id=7) as feed:
        # read the row once now: messages from here on are not missed
        payload = feed.next(timeout=30)  # None: nothing within the timeout
"""

from __future__ import annotations

import json
import time
from abc import ABC, abstractmethod
from collections import deque
from types import TracebackType
from typing import Any, Self

import psycopg

from kamioi.db import connect
from kamioi.settings import Settings

PROGRESS_CHANNEL = "kamioi_job_progress"

Payload = dict[str, Any]


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


def open_job_progress(settings: Settings, db_url: str, *, topic: str, event: str, job_id: int) -> JobProgressFeed:
    """A feed over Realtime when SUPABASE_REALTIME_URL is set, else over LISTEN on `db_url`."""
    if settings.supabase_realtime_url:
        # realtime-py (and its websockets) cost ~0.6 s to import: only a Realtime follower pays it.
        from kamioi.realtime_feed import RealtimeFeed

        return RealtimeFeed(
            settings.supabase_realtime_url, settings.supabase_secret_key, topic=topic, event=event, job_id=job_id
        )
    return ListenFeed(db_url, topic=topic, event=event, job_id=job_id)
