"""Where a read goes: the read replica while it answers and keeps up, otherwise the primary.

Each API process checks the replica every READ_REPLICA_CHECK_S: it must answer within the check
timeout, be in recovery, and lag at most READ_REPLICA_MAX_LAG_S (kamioi.replication's measure). Reads
a route sends through `ReadDb` (api/deps.py) use the replica while those hold, else the primary; a
read that fails on the replica (it died mid-request, the pool cannot reach it, a recovery conflict
cancelled the query) is run again on the primary at once and the replica counts as down until the
next good check, so a replica outage costs latency, never an error. The response says which one
served it in `X-Read-Source` (`replica` | `primary`); on a cached answer, which one this process reads
from now.

The check asks on a connection of its own, not one from the replica's pool: after an outage the pool
retries with a doubling wait (1, 2, 4 ... s, psycopg_pool's backoff), so a replica back after a minute
could wait another minute for its pool. When the check reaches a replica it could not reach before,
the router swaps in a fresh pool, which connects at once; reads still holding the old one finish on it.
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
from psycopg.rows import DictRow, dict_row
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
# How long a replaced replica pool waits for the reads still holding its connections.
RETIRED_POOL_CLOSE_S = 30.0


@dataclass(frozen=True)
class ReplicaHealth:
    up: bool
    lag_s: float | None  # None while it does not answer
    checked_at: float


class ReadRouter:
    def __init__(
        self,
        primary: Pool,
        replica_url: str | None,
        new_replica_pool: Callable[[], Pool],
        *,
        max_lag_s: float,
        check_every_s: float,
    ) -> None:
        self.primary = primary
        self.replica_url = replica_url
        self.replica: Pool | None = new_replica_pool() if replica_url else None
        self.max_lag_s = max_lag_s
        self.check_every_s = check_every_s
        self.health: ReplicaHealth | None = None
        self._new_replica_pool = new_replica_pool
        self._probe: psycopg.AsyncConnection[DictRow] | None = None
        self._unreachable = False  # the last check could not reach the replica
        self._checking = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[object]] = set()  # retired pools closing, abandoned probes

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
        async with self._checking:
            try:
                row = await self._ask_replica()
                if self._unreachable and not await self._renew_replica_pool():
                    raise ConnectionError("the replica answers, but a new pool could not connect to it")
            except Exception as error:
                await self._drop_probe()
                self._unreachable = True
                if self.health is None or self.health.up:
                    log.warning(
                        "the read replica is unavailable: reads go to the primary", extra={"error": repr(error)}
                    )
                self.health = ReplicaHealth(up=False, lag_s=None, checked_at=time.monotonic())
                return self.health
            self._unreachable = False
            up = bool(row["in_recovery"])
            if not up:
                log.warning("the read replica is not in recovery: reads go to the primary")
            self.health = ReplicaHealth(up=up, lag_s=float(row["lag_s"]), checked_at=time.monotonic())
            return self.health

    async def read(self, query: Callable[[Pool], Awaitable[T]], source: ReadSource) -> tuple[T, ReadSource]:
        """Run `query` on `source`'s pool; a replica failure runs it on the primary instead."""
        replica = self.replica
        if source == "replica" and replica is not None:
            try:
                return await query(replica), "replica"
            except REPLICA_FAILURES as error:
                log.warning("a read failed on the replica; retried on the primary", extra={"error": repr(error)})
                self.health = ReplicaHealth(up=False, lag_s=None, checked_at=time.monotonic())
        return await query(self.primary), "primary"

    async def open(self) -> None:
        """Open the replica's pool without waiting for it, check once (the first requests already know
        where to read), then keep checking."""
        if self.replica is None:
            return
        await self.replica.open(wait=False)
        await self.check()
        self._task = asyncio.create_task(self._watch(), name="replica-health")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._drop_probe()
        await asyncio.gather(*self._background, return_exceptions=True)
        if self.replica is not None:
            await self.replica.close()

    @property
    def _check_timeout_s(self) -> float:
        return max(0.5, min(2.0, self.check_every_s * 2))

    async def _ask_replica(self) -> DictRow:
        """The lag query on the probe connection, within the check's timeout. A query past it is
        abandoned, not cancelled in place: psycopg answers a cancelled query by asking the server to
        cancel it and waiting up to 10 s, and a server that stopped answering would hold every check."""
        if self._probe is None:
            assert self.replica_url is not None
            self._probe = await asyncio.wait_for(
                psycopg.AsyncConnection.connect(
                    self.replica_url, autocommit=True, prepare_threshold=None, row_factory=dict_row
                ),
                self._check_timeout_s,
            )
        asking = asyncio.create_task(self._probe.execute(REPLICA_LAG_SQL))
        done, _ = await asyncio.wait({asking}, timeout=self._check_timeout_s)
        if asking not in done:
            asking.cancel()
            self._in_background(self._close_after(asking, self._probe), "replica-probe-abandoned")
            self._probe = None
            raise TimeoutError(f"the replica did not answer within {self._check_timeout_s:g}s")
        row = await asking.result().fetchone()
        assert row is not None
        return row

    @staticmethod
    async def _close_after(query: asyncio.Task[object], probe: psycopg.AsyncConnection[DictRow]) -> None:
        await asyncio.wait({query})
        await probe.close()

    def _in_background(self, work: Awaitable[object], name: str) -> None:
        task: asyncio.Task[object] = asyncio.ensure_future(work)
        task.set_name(name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _drop_probe(self) -> None:
        probe, self._probe = self._probe, None
        if probe is not None:
            with contextlib.suppress(Exception):
                await probe.close()

    async def _renew_replica_pool(self) -> bool:
        """The replica answers again: reads get a pool whose connections are made now. The old pool
        closes in the background once the reads holding its connections are done. False if the new
        pool could not connect within the check's timeout: the replica then still counts as down."""
        fresh = self._new_replica_pool()
        try:
            await fresh.open(wait=True, timeout=self._check_timeout_s)
        except Exception:
            await fresh.close()
            return False
        old, self.replica = self.replica, fresh
        log.info("the read replica answers again: its pool is renewed")
        if old is not None:
            self._in_background(old.close(timeout=RETIRED_POOL_CLOSE_S), "replica-pool-retired")
        return True

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
