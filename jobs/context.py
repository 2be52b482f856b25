"""What a running job handler sees: its job, the database, and the worker's stop/cancel/lease signals."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from jobs.errors import LeaseLost
from jobs.queue import Job
from jobs.registry import Outcome
from kamioi.settings import Settings


@dataclass
class JobContext:
    job: Job
    db_url: str
    settings: Settings
    log: logging.Logger
    _stop: threading.Event = field(default_factory=threading.Event)
    _cancel: threading.Event = field(default_factory=threading.Event)
    _lost: threading.Event = field(default_factory=threading.Event)

    @property
    def stop_requested(self) -> bool:
        """The worker is shutting down: finish the current unit of work and return HANDED_BACK."""
        return self._stop.is_set()

    @property
    def cancel_requested(self) -> bool:
        """Someone cancelled the job (seen by the worker's heartbeat): stop and return CANCELLED."""
        return self._cancel.is_set()

    @property
    def lease_lost(self) -> bool:
        """Another worker may own the job now: stop at once and raise LeaseLost."""
        return self._lost.is_set()

    def interruption(self, what: str, *, cancelled: bool = False) -> Outcome | None:
        """Check between units of work: raises LeaseLost when another worker may own the job, returns
        CANCELLED (`cancelled`: a cancel the handler saw itself) or HANDED_BACK, or None to go on."""
        if self.lease_lost:
            raise LeaseLost(f"{what}: lease lost")
        if cancelled or self.cancel_requested:
            return Outcome.CANCELLED
        if self.stop_requested:
            return Outcome.HANDED_BACK
        return None

    def request_stop(self) -> None:
        self._stop.set()

    def mark_cancel_requested(self) -> None:
        self._cancel.set()

    def mark_lease_lost(self) -> None:
        self._lost.set()
