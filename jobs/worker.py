"""The worker process: claims jobs from private.job_queue and runs up to `concurrency` at once.

Idle workers LISTEN on `kamioi_jobs` (the queue NOTIFYs on every enqueue and requeue) and otherwise
only ask the database when a retried job falls due or every poll_seconds, in case a notification was
missed. SIGTERM/SIGINT: stop claiming, ask running handlers to stop after their current unit of work
(an import chunk commits first), hand their jobs back to the queue, and exit 0.

Lanes: `concurrency` slots take jobs of any lane, and `user_slots` more are kept for the user lane
(imports, exports, mails: private.job_lanes). A background job starts only while user_slots slots
stay free after it, and each claim takes user jobs first, so a user-facing job never waits for
background work to finish, however much of it is queued or running.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from uuid import UUID

import psycopg
from psycopg_pool import ConnectionPool

from jobs import queue
from jobs.context import JobContext
from jobs.heartbeat import Heartbeat, Presence
from jobs.runner import run_claimed_job
from kamioi.settings import Settings

log = logging.getLogger("jobs.worker")

# How often the dispatch loop looks at its stop flag and finished slots; a local wait, not a query.
TICK_SECONDS = 0.25
# Due jobs we could not claim are being claimed by another worker right now: look again soon.
CONTENDED_RETRY_SECONDS = 0.2


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class Worker:
    def __init__(
        self, db_url: str, *, kinds: list[str], concurrency: int, settings: Settings, user_slots: int = 1
    ) -> None:
        self.db_url = db_url
        self.kinds = kinds
        self.user_slots = user_slots
        self.concurrency = concurrency + user_slots
        self.settings = settings
        self.worker_id = new_worker_id()
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._running: dict[UUID, tuple[threading.Thread, JobContext]] = {}
        self._lock = threading.Lock()

    def request_stop(self) -> None:
        # Called from a signal handler: only set flags, take no locks.
        self._stopping.set()

    def install_signal_handlers(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: self.request_stop())

    def run(self) -> int:
        log.info(
            "worker %s: kinds %s, concurrency %s (%s kept for user-facing jobs)",
            self.worker_id, self.kinds, self.concurrency, self.user_slots,
        )  # fmt: skip
        with ConnectionPool(
            self.db_url,
            min_size=1,
            max_size=self.concurrency + 2,
            kwargs={"autocommit": True, "prepare_threshold": None},
            check=ConnectionPool.check_connection,
            name="jobs-queue",
        ) as pool:
            self._pool = pool
            presence = Presence(self.worker_id, self.kinds, self.concurrency)
            with Heartbeat(
                self._queue_connection, self.settings.lease_seconds, self.settings.heartbeat_seconds, presence
            ) as hb:
                self._heartbeat = hb
                self._dispatch()
                self._drain()
        log.info("worker %s: stopped", self.worker_id)
        return 0

    @contextmanager
    def _queue_connection(self) -> Iterator[psycopg.Connection[Any]]:
        with self._pool.connection() as conn:
            yield conn

    def _dispatch(self) -> None:
        listener: psycopg.Connection[Any] | None = None
        next_claim = next_reap = 0.0
        try:
            while not self._stopping.is_set():
                try:
                    if listener is None:
                        listener = psycopg.connect(self.db_url, autocommit=True, prepare_threshold=None)
                        listener.execute(f"listen {queue.NOTIFY_CHANNEL}")
                        next_claim = 0.0  # notifications sent while we were not listening are lost
                    now = time.monotonic()
                    if now >= next_reap:
                        with self._queue_connection() as conn:
                            if reaped := queue.requeue_expired(conn):
                                log.warning("requeued %s job(s) whose worker stopped heartbeating", reaped)
                        next_reap = now + self.settings.heartbeat_seconds
                    if self._wake.is_set() or now >= next_claim:
                        self._wake.clear()
                        next_claim = self._claim_and_start()
                    timeout = max(0.0, min(TICK_SECONDS, next_claim - time.monotonic()))
                    for note in listener.notifies(timeout=timeout, stop_after=1):
                        if note.payload in self.kinds:
                            self._wake.set()
                except psycopg.OperationalError as err:
                    log.warning("database unavailable (%s); retrying", err)
                    if listener is not None:
                        listener.close()
                    listener = None
                    self._stopping.wait(min(self.settings.poll_seconds, 5.0))
        finally:
            if listener is not None:
                listener.close()

    def _claim_and_start(self) -> float:
        """Claim up to the free slots, user lane first; returns when (monotonic) to look at the queue again."""
        with self._lock:
            free = self.concurrency - len(self._running)
        if free <= 0:
            return time.monotonic() + self.settings.poll_seconds  # a finishing job sets _wake
        open_lanes: list[str] = []
        with self._queue_connection() as conn:
            for lane, keep_free in ((queue.USER_LANE, 0), (queue.BACKGROUND_LANE, self.user_slots)):
                limit = free - keep_free
                if limit <= 0:
                    continue
                jobs = queue.claim(conn, self.worker_id, self.kinds, self.settings.lease_seconds, limit, lanes=[lane])
                for job in jobs:
                    self._start(job)
                free -= len(jobs)
                if len(jobs) < limit:
                    open_lanes.append(lane)
            # A lane that filled its slots is looked at again when a job finishes (that sets _wake).
            due_in = queue.seconds_until_next(conn, self.kinds, open_lanes) if open_lanes else None
        if due_in is None:
            return time.monotonic() + self.settings.poll_seconds
        wait = CONTENDED_RETRY_SECONDS if due_in <= 0 else min(due_in, self.settings.poll_seconds)
        return time.monotonic() + wait

    def _start(self, job: queue.Job) -> None:
        ctx = JobContext(job, self.db_url, self.settings, logging.getLogger(f"jobs.{job.kind}"))
        thread = threading.Thread(target=self._run, args=(ctx,), name=f"job-{job.id}", daemon=True)
        with self._lock:
            self._running[job.lease_token] = (thread, ctx)
        self._heartbeat.track(ctx)
        thread.start()

    def _run(self, ctx: JobContext) -> None:
        try:
            if self._stopping.is_set():
                ctx.request_stop()
            run_claimed_job(ctx, self._queue_connection)
        except Exception:
            # Recording the outcome failed (database away): the lease runs out and the job is requeued.
            log.exception("job %s: could not record its outcome", ctx.job.id)
        finally:
            self._heartbeat.untrack(ctx)
            with self._lock:
                self._running.pop(ctx.job.lease_token, None)
            self._wake.set()

    def _drain(self) -> None:
        """Ask running handlers to stop after their current unit of work, and wait for them."""
        with self._lock:
            running = list(self._running.values())
        if running:
            log.info("stopping: waiting for %s running job(s) to hand back", len(running))
        for _, ctx in running:
            ctx.request_stop()
        for thread, _ in running:
            thread.join()
