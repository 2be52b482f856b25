"""Run one queued job in the calling process (an operator's CLI when no worker is around)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from jobs import queue
from jobs.context import JobContext
from jobs.heartbeat import Heartbeat
from jobs.registry import load_handler_modules, registered_kinds
from jobs.runner import run_claimed_job
from jobs.worker import new_worker_id
from kamioi.settings import Settings


class InlineRun:
    """Claim the queue job `queue_job_id` and run it here, with a heartbeat like a worker's.

    `request_stop()` (e.g. on Ctrl-C) hands the job back after its current unit of work.
    """

    def __init__(self, db_url: str, queue_job_id: int, settings: Settings) -> None:
        self.db_url = db_url
        self.queue_job_id = queue_job_id
        self.settings = settings
        self._ctx: JobContext | None = None
        self._stop_requested = False

    def request_stop(self) -> None:
        self._stop_requested = True
        if self._ctx is not None:
            self._ctx.request_stop()

    def run(self) -> str | None:
        """The job's state afterwards; None if a worker claimed it first or the lease was lost."""
        load_handler_modules()
        with psycopg.connect(self.db_url, autocommit=True, prepare_threshold=None) as conn:

            @contextmanager
            def connections() -> Iterator[psycopg.Connection[Any]]:
                yield conn  # psycopg serialises the heartbeat thread's and this thread's statements

            claimed = queue.claim(
                conn,
                f"{new_worker_id()}:inline",
                registered_kinds(),
                self.settings.lease_seconds,
                1,
                only_ids=[self.queue_job_id],
            )
            if not claimed:
                return None
            self._ctx = JobContext(claimed[0], self.db_url, self.settings, logging.getLogger("jobs.inline"))
            if self._stop_requested:
                self._ctx.request_stop()
            with Heartbeat(connections, self.settings.lease_seconds, self.settings.heartbeat_seconds) as hb:
                hb.track(self._ctx)
                return run_claimed_job(self._ctx, connections)
