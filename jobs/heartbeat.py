"""One thread per worker extends the leases of all its running jobs in a single statement, and (for a
worker process) refreshes the worker's presence row."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from uuid import UUID

import psycopg

from jobs import queue
from jobs.context import JobContext
from jobs.runner import QueueConnections

log = logging.getLogger("jobs.heartbeat")


@dataclass(frozen=True)
class Presence:
    worker_id: str
    kinds: list[str]
    concurrency: int


class Heartbeat:
    def __init__(
        self,
        connections: QueueConnections,
        lease_seconds: float,
        interval_seconds: float,
        presence: Presence | None = None,
    ) -> None:
        self._connections = connections
        self._presence = presence
        self._lease_seconds = lease_seconds
        self._interval = interval_seconds
        self._contexts: dict[UUID, JobContext] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self.beat()
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        if self._presence is not None:
            try:
                with self._connections() as conn:
                    queue.worker_stopped(conn, self._presence.worker_id)
            except psycopg.Error as err:
                log.warning("could not deregister the worker: %s", err)

    def track(self, ctx: JobContext) -> None:
        with self._lock:
            self._contexts[ctx.job.lease_token] = ctx

    def untrack(self, ctx: JobContext) -> None:
        with self._lock:
            self._contexts.pop(ctx.job.lease_token, None)

    def beat(self) -> None:
        with self._lock:
            contexts = dict(self._contexts)
        try:
            with self._connections() as conn:
                if self._presence is not None:
                    p = self._presence
                    queue.worker_seen(conn, p.worker_id, p.kinds, p.concurrency)
                held = queue.heartbeat(conn, list(contexts), self._lease_seconds) if contexts else {}
        except psycopg.Error as err:
            # The lease still runs; if the database stays away long enough, the job is requeued.
            log.warning("heartbeat failed: %s", err)
            return
        for token, ctx in contexts.items():
            if token not in held:
                log.warning("job %s: lease lost", ctx.job.id)
                ctx.mark_lease_lost()
            elif held[token]:
                ctx.mark_cancel_requested()

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            self.beat()
