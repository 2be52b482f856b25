"""Where a read goes: the read replica while it answers and keeps up, otherwise the primary.

Each API process checks the replica every READ_REPLICA_CHECK_S: it must answer within the check
timeout, be in recovery, and lag at most READ_REPLICA_MAX_LAG_S (kamioi.replication's measure). Reads
a route sends through `ReadDb` (api/deps.py) use the replica while those hold, else the primary; a
read that fails on the replica (it died mid-request, the pool cannot reach it, a recovery conflict
cancelled the query) is run again on the primary at once and the replica counts as down until the
next good check, so a replica outage costs latency, never an error. The response says which one
served it in `X-Read-Source` (`replica` | `primary`); on a cached answer, which one this process reads
from now.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, TypeVar

import psycopg
from psycopg import errors
from psycopg_pool import PoolTimeout
from starlette.datastructures import MutableHeaders

from api.db import Pool
from kamioi.replication import REPLICA_LAG_SQL

log = logging.getLogger("api.read_routing")

ReadSource = Literal["replica", "primary"]
READ_SOURCE_HEADER = "X-Read-Source"
T = TypeVar("T")

# Errors after which the same read is worth running on the primary: the replica is gone or cannot
# serve it (SerializationFailure is how a standby cancels a query that conflicts with replay).
REPLICA_FAILURES = (psycopg.OperationalError, PoolTimeout, errors.SerializationFailure)


@dataclass(frozen=True)
class ReplicaHealth:
    up: bool
    lag_s: float | None  # None while it does not answer
    checked_at: float


class ReadRouter:
    def __init__(self, primary: Pool, replica: Pool | None, *, max_lag_s: float, check_every_s: float) -> None:
        self.primary = primary
        self.replica = replica
        self.max_lag_s = max_lag_s
        self.check_every_s = check_every_s
        self.health: ReplicaHealth | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def configured(self) -> bool:
        return self.replica is not None

    def choice(self) -> ReadSource:
        health = self.health
        if self.replica is None or health is None or not health.up or health.lag_s is None:
            return "primary"
        return "replica" if health.lag_s <= self.max_lag_s else "primary"

    async def check(self) -> ReplicaHealth | None:
        """Ask the replica how far behind it is; remembers and returns the answer."""
        if self.replica is None:
            return None
        timeout_s = max(0.5, min(2.0, self.check_every_s * 2))
        try:
            async with asyncio.timeout(timeout_s), self.replica.connection(timeout=timeout_s) as conn:
                row = await (await conn.execute(REPLICA_LAG_SQL)).fetchone()
            assert row is not None
            up = bool(row["in_recovery"])
            if not up:
                log.warning("the read replica is not in recovery: reads go to the primary")
            self.health = ReplicaHealth(up=up, lag_s=float(row["lag_s"]), checked_at=time.monotonic())
        except Exception as error:
            if self.health is None or self.health.up:
                log.warning("the read replica is unavailable: reads go to the primary", extra={"error": repr(error)})
            self.health = ReplicaHealth(up=False, lag_s=None, checked_at=time.monotonic())
        return self.health

    async def read(self, query: Callable[[Pool], Awaitable[T]], source: ReadSource) -> tuple[T, ReadSource]:
        """Run `query` on `source`'s pool; a replica failure runs it on the primary instead."""
        if source == "replica" and self.replica is not None:
            try:
                return await query(self.replica), "replica"
            except REPLICA_FAILURES as error:
                log.warning("a read failed on the replica; retried on the primary", extra={"error": repr(error)})
                self.health = ReplicaHealth(up=False, lag_s=None, checked_at=time.monotonic())
        return await query(self.primary), "primary"

    def start(self) -> None:
        if self.replica is not None and self._task is None:
            self._task = asyncio.create_task(self._watch(), name="replica-health")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _watch(self) -> None:
        while True:
            await self.check()
            await asyncio.sleep(self.check_every_s)


class RoutedRead:
    """One request's reads (the `ReadDb` dependency): the source is chosen when the request starts,
    and the response header follows it, also when a read falls back to the primary."""

    def __init__(self, router: ReadRouter, headers: MutableHeaders) -> None:
        self.router = router
        self.source: ReadSource = router.choice()
        self._headers = headers
        self._announce()

    async def run(self, query: Callable[[Pool], Awaitable[T]]) -> T:
        result, self.source = await self.router.read(query, self.source)
        self._announce()
        return result

    def _announce(self) -> None:
        self._headers[READ_SOURCE_HEADER] = self.source
