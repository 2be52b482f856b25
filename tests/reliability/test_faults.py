"""The fast parts of the fault suite (`python -m bench.faults` runs them at full size): the same
drills, small. Each breaks something only this module uses (its own worker, a relay in front of
the database, its own Upstash endpoint, a fake LLM, a 1 MB file system), so the shared stack keeps
serving everyone else."""

from __future__ import annotations

import random
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from bench.drills.outages import CutDatabaseConnections, KillUpstashProxy
from bench.drills.processes import ApiProcess, UpstashProxyProcess
from bench.drills.scenarios import (
    ApiWatch,
    DrillEnv,
    DrillResult,
    cache_outage_under_load,
    database_outage_during_import,
    kill_worker_during_import,
    llm_outage_during_mapping,
    storage_full_upload,
    wait_for,
)
from bench.drills.tcp_proxy import TcpProxy
from kamioi.settings import Settings
from local_stack.keys import KeyMaterial
from local_stack.redis_server import LocalRedis
from local_stack.standins.llm_server import serve_in_thread
from local_stack.standins.storage_server import serve_in_thread as storage_in_thread
from local_stack.tokens import access_token_claims, sign

# The stack's own worker would race this module's runs for their jobs.
pytestmark = pytest.mark.usefixtures("stack_worker_paused")


@pytest.fixture(scope="module")
def work_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("faults")


@pytest.fixture(scope="module")
def relay(settings: Settings) -> Iterator[TcpProxy]:
    """The database, as this module's API and workers reach it: through a relay the drills can cut."""
    with TcpProxy(settings.db_url) as proxy:
        yield proxy


@pytest.fixture(scope="module")
def upstash(settings: Settings, work_dir: Path) -> Iterator[UpstashProxyProcess]:
    proxy = UpstashProxyProcess(LocalRedis(settings).url, settings.upstash_redis_rest_token, work_dir / "upstash.log")
    proxy.start()
    yield proxy
    proxy.kill9()


@pytest.fixture(scope="module")
def tiny_disk(work_dir: Path) -> Iterator[Path | None]:
    """A 1 MB tmpfs for the Storage stand-in's objects (needs root); None where mounting is not allowed."""
    mount_point = work_dir / "tiny-disk"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount_point)], capture_output=True, check=False
    )
    yield mount_point if mounted.returncode == 0 else None
    if mounted.returncode == 0:
        subprocess.run(["umount", str(mount_point)], check=False)


@pytest.fixture(scope="module")
def api(
    settings: Settings, relay: TcpProxy, upstash: UpstashProxyProcess, tiny_disk: Path | None, work_dir: Path
) -> Iterator[ApiProcess]:
    root = tiny_disk or work_dir / "objects"
    keys = {"secret_key": settings.supabase_secret_key, "jwt_secret": settings.supabase_jwt_secret}
    with storage_in_thread(root, **keys) as storage:
        yield from _api_process(settings, relay, upstash, work_dir, storage)


def _api_process(
    settings: Settings, relay: TcpProxy, upstash: UpstashProxyProcess, work_dir: Path, storage: str
) -> Iterator[ApiProcess]:
    env = {
        "DATABASE_URL": relay.relay_url(settings.db_url),
        "UPSTASH_REDIS_REST_URL": upstash.url,
        "UPSTASH_REDIS_REST_TOKEN": settings.upstash_redis_rest_token,
        "SUPABASE_STORAGE_URL": storage,
        "API_RATE_READS_PER_MINUTE": "1000000",
        "API_RATE_WRITES_PER_MINUTE": "1000000",
        "API_RATE_UPLOADS_PER_HOUR": "1000000",
        "API_LOG_LEVEL": "WARNING",
    }
    with ApiProcess(env, work_dir / "api.log") as process:
        yield process


@pytest.fixture(scope="module")
def admin_headers(settings: Settings, keys: KeyMaterial, make_user: Callable[[str], str]) -> dict[str, str]:
    claims = access_token_claims(
        user_id=make_user("admin"), email="faults@test.kamioi.local", user_role="admin", issuer=settings.jwt_issuer
    )
    return {"Authorization": f"Bearer {sign(claims, keys)}"}


@pytest.fixture(scope="module")
def env(settings: Settings, relay: TcpProxy, work_dir: Path) -> DrillEnv:
    return DrillEnv(settings.db_url, relay.relay_url(settings.db_url), work_dir, random.Random())


def check(result: DrillResult) -> None:
    assert result.passed, f"{result.name}: {result.summary}\n{result.details}"


def test_kill_9_the_worker_three_times_during_an_import(env: DrillEnv) -> None:
    check(kill_worker_during_import(env, rows=6000, kills=3, chunk_rows=100))


def test_database_restart_during_an_import(
    env: DrillEnv, relay: TcpProxy, api: ApiProcess, admin_headers: dict[str, str]
) -> None:
    watch = ApiWatch(api.url, admin_headers, ("/readyz", "/v1/imports?limit=1", "/v1/stats/dashboard"))
    result = database_outage_during_import(
        env, CutDatabaseConnections(relay), rows=6000, chunk_rows=100, outage_s=3, api=watch
    )
    check(result)
    assert any(key.startswith("/readyz 503") for key in result.details["api_during_outage"]), result.details
    assert result.details["slowest_api_s"] < 10, "a request waited on the database for longer than a client would"


def test_upstash_killed_under_load(
    api: ApiProcess, upstash: UpstashProxyProcess, admin_headers: dict[str, str]
) -> None:
    check(cache_outage_under_load(api.url, admin_headers, KillUpstashProxy(upstash), clients=4, phase_s=2))


def test_llm_errors_and_timeouts_during_mapping(env: DrillEnv) -> None:
    with serve_in_thread("good") as llm_url:
        check(llm_outage_during_mapping(env, llm_url, merchants=60, outage_s=4, timeout_s=0.5))


def test_storage_full_while_an_upload_streams_in(
    settings: Settings, api: ApiProcess, admin_headers: dict[str, str], tiny_disk: Path | None
) -> None:
    if tiny_disk is None:
        pytest.skip("mounting a tmpfs is not permitted here (needs root): `python -m bench.faults` says the same")
    check(storage_full_upload(settings.db_url, api.url, admin_headers, tiny_disk, too_big=2_000_000))


def test_metrics_say_when_the_database_is_away(relay: TcpProxy, api: ApiProcess) -> None:
    """The alert-worthy gauges: kamioi_database_up drops to 0 while the database is unreachable and
    comes back by itself; the queue gauges are exported."""

    def scrape() -> str:
        return httpx.get(f"{api.url}/metrics", timeout=30).text

    assert "kamioi_database_up 1.0" in scrape()
    relay.cut()
    try:
        assert "kamioi_database_up 0.0" in scrape()
    finally:
        relay.restore()
    assert wait_for(lambda: "kamioi_database_up 1.0" in scrape(), 30, 0.2)
    assert "kamioi_job_workers" in scrape()
