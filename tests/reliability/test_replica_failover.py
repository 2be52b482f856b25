"""The read replica away or behind: analytics keep answering from the primary (never a 5xx), say so in
X-Read-Source, /readyz and /metrics, and go back to the replica once it is back. The API process
reads from the drill's own standby (bench/drills/replica.py), so the stack's replica is untouched."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from bench.drills.processes import ApiProcess
from bench.drills.replica import replica_outage_under_load, source_of, throwaway_replica
from bench.drills.scenarios import wait_for
from kamioi.settings import Settings
from local_stack.replica import LocalReplica

MAX_LAG_S = 1.0


@pytest.fixture(scope="module")
def work_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("replica-failover")


@pytest.fixture(scope="module")
def replica(settings: Settings, work_dir: Path) -> Iterator[LocalReplica]:
    with throwaway_replica(settings, work_dir) as standby:
        yield standby


@pytest.fixture(scope="module")
def api(replica: LocalReplica, work_dir: Path) -> Iterator[ApiProcess]:
    env = {
        "READ_REPLICA_URL": replica.settings.local_replica_url,
        "READ_REPLICA_MAX_LAG_S": str(MAX_LAG_S),
        "READ_REPLICA_CHECK_S": "0.2",
        "API_RATE_READS_PER_MINUTE": "1000000",
        "API_LOG_LEVEL": "WARNING",
    }
    with ApiProcess(env, work_dir / "api.log") as process:
        yield process


def readiness(api: ApiProcess) -> dict[str, object]:
    response = httpx.get(f"{api.url}/readyz", timeout=10)
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def replica_gauges(api: ApiProcess) -> dict[str, float]:
    lines = httpx.get(f"{api.url}/metrics", timeout=10).text.splitlines()
    return {
        name: float(value)
        for name, _, value in (line.partition(" ") for line in lines)
        if name.startswith("kamioi_read_replica_")
    }


def test_reads_go_to_the_replica_while_it_keeps_up(api: ApiProcess, admin_headers: dict[str, str]) -> None:
    assert source_of(api.url, admin_headers, random.Random(1)) == "replica"
    assert readiness(api)["replica"] == "ok"
    gauges = replica_gauges(api)
    assert gauges["kamioi_read_replica_up"] == 1 and gauges["kamioi_read_replica_serving"] == 1
    assert 0 <= gauges["kamioi_read_replica_lag_seconds"] < MAX_LAG_S


def test_a_replica_stopped_under_load_costs_no_error(
    api: ApiProcess, admin_headers: dict[str, str], replica: LocalReplica
) -> None:
    result = replica_outage_under_load(api.url, admin_headers, replica, clients=4, phase_s=2)
    assert result.passed, f"{result.summary}\n{result.details}"


def test_a_lagging_replica_sends_reads_to_the_primary_until_it_catches_up(
    settings: Settings, api: ApiProcess, admin_headers: dict[str, str], replica: LocalReplica
) -> None:
    rng = random.Random(2)
    with (
        psycopg.connect(replica.superuser_url, autocommit=True) as standby,
        psycopg.connect(settings.db_url, autocommit=True) as primary,
    ):
        standby.execute("select pg_wal_replay_pause()")
        try:
            # Commits the standby receives but does not replay: its lag grows past the setting.
            def lagging() -> bool:
                primary.execute("select txid_current()")
                return readiness(api)["replica"] == "lagging"

            assert wait_for(lagging, 30 + MAX_LAG_S, 0.1), readiness(api)  # roomy: a loaded 2-core machine
            assert readiness(api)["status"] == "degraded"
            assert source_of(api.url, admin_headers, rng) == "primary"
            assert replica_gauges(api)["kamioi_read_replica_serving"] == 0
        finally:
            standby.execute("select pg_wal_replay_resume()")
    assert wait_for(lambda: source_of(api.url, admin_headers, rng) == "replica", 30, 0.1)
    assert readiness(api)["status"] == "ready"
