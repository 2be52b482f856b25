"""The read router against the stack's standby behind a relay that can cut it: reads leave the
replica while it is away and come back to it on the first good check, on a fresh pool."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest

from api.db import Pool, create_pool
from api.read_routing import ReadRouter
from bench.drills.tcp_proxy import TcpProxy
from kamioi.settings import Settings


@pytest.fixture
def relay(settings: Settings) -> Iterator[TcpProxy]:
    with TcpProxy(settings.local_replica_url) as proxy:
        yield proxy


@pytest.fixture
async def router(settings: Settings, relay: TcpProxy) -> AsyncIterator[ReadRouter]:
    replica_url = relay.relay_url(settings.local_replica_url)
    primary = create_pool(settings.db_url, name="primary", min_size=1, max_size=2)
    await primary.open()
    router = ReadRouter(
        primary,
        replica_url,
        lambda: create_pool(replica_url, name="replica", min_size=1, max_size=2, timeout_s=0.5, check=True),
        max_lag_s=60,
        check_every_s=3600,  # the tests check by hand
    )
    await router.open()
    try:
        yield router
    finally:
        await router.close()
        await primary.close()


async def in_recovery(pool: Pool) -> bool:
    async with pool.connection() as conn:
        row = await (await conn.execute("select pg_is_in_recovery() as standby")).fetchone()
    assert row is not None
    return bool(row["standby"])


async def test_reads_leave_a_cut_replica_and_return_on_a_fresh_pool(router: ReadRouter, relay: TcpProxy) -> None:
    assert router.choice() == "replica"
    assert await router.read(in_recovery, "replica") == (True, "replica")
    first_pool = router.replica

    relay.cut()
    health = await router.check()
    assert health is not None and not health.up
    assert router.choice() == "primary"
    # A read that had already chosen the replica runs on the primary instead of failing.
    assert await router.read(in_recovery, "replica") == (False, "primary")
    # The old pool keeps failing to connect, so its next attempt waits out a growing delay.
    await asyncio.sleep(1.5)

    relay.restore()
    health = await router.check()
    assert health is not None and health.up
    assert router.replica is not first_pool
    assert router.choice() == "replica"
    # The first read after the good check gets a connection from the new pool, not a timeout.
    assert await router.read(in_recovery, "replica") == (True, "replica")


async def test_good_checks_keep_the_pool(router: ReadRouter) -> None:
    pool = router.replica
    for _ in range(3):
        health = await router.check()
        assert health is not None and health.up
    assert router.replica is pool
