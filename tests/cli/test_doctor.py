"""`kamioi doctor` against the local stack: healthy as it is, then each setting broken in turn (and a
database that never saw a migration), each named by the check that fails and the setting that fixes it."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest

from kamioi.doctor import Finding, run_checks
from kamioi.settings import PROJECT_ROOT, Settings
from local_stack.standins.quote_server import serve_in_thread as quotes_in_thread
from tests.conftest import LocalStorage


def findings(settings: Settings) -> dict[str, Finding]:
    return {finding.check: finding for finding, _ in run_checks(settings)}


def failed(settings: Settings) -> dict[str, Finding]:
    return {name: finding for name, finding in findings(settings).items() if finding.status == "fail"}


def test_the_local_stack_passes(settings: Settings) -> None:
    """Every check answers ok; the paid providers have no keys locally, which is a warning, not a failure."""
    result = findings(settings)
    assert {name for name, f in result.items() if f.status != "ok"} == {"llm", "prices"}, result
    assert result["migrations"].detail.startswith("all ")
    assert "kamioi-invest-mapped" in result["pg_cron jobs"].detail


def test_the_command_exits_non_zero_on_a_failure(settings: Settings, dead_port: int) -> None:
    def doctor(**env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "cli", "doctor"],
            cwd=PROJECT_ROOT,
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    healthy = doctor()
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    broken = doctor(SMTP_PORT=str(dead_port))
    assert broken.returncode == 1
    assert "FAIL  smtp" in broken.stdout and "fix: SMTP_HOST, SMTP_PORT" in broken.stdout


@pytest.fixture(scope="module")
def public_bucket(storage_server: LocalStorage, settings: Settings) -> str:
    """A public bucket in a Storage stand-in, which the imports bucket must never be."""
    response = httpx.post(
        f"{storage_server.url}/bucket",
        json={"id": "everyone", "public": True},
        headers={"Authorization": f"Bearer {settings.supabase_secret_key}"},
    )
    assert response.status_code == 200, response.text
    return storage_server.url


@pytest.fixture(scope="module")
def quote_feed() -> Iterator[str]:
    with quotes_in_thread("good", token="the-right-key") as url:
        yield url


@pytest.mark.parametrize(
    ("change", "check", "fix"),
    [
        ({"database_url": "postgresql://postgres:postgres@127.0.0.1:{dead}/postgres"}, "database", "DATABASE_URL"),
        (
            {"api_listen_database_url": "postgresql://postgres:postgres@127.0.0.1:{dead}/postgres"},
            "database (LISTEN)",
            "API_LISTEN_DATABASE_URL",
        ),
        ({"read_replica_url": "{primary}"}, "read replica", "READ_REPLICA_URL"),
        ({"supabase_storage_url": "http://127.0.0.1:{dead}/storage/v1"}, "storage buckets", "SUPABASE_STORAGE_URL"),
        ({"supabase_secret_key": "sb_secret_wrong"}, "storage buckets", "SUPABASE_SECRET_KEY"),
        ({"import_bucket": "no-such-bucket"}, "storage buckets", "IMPORT_BUCKET"),
        ({"supabase_storage_url": "{public_storage}", "import_bucket": "everyone"}, "storage buckets", "private"),
        ({"upstash_redis_rest_token": "wrong-token"}, "upstash", "UPSTASH_REDIS_REST_TOKEN"),
        ({"smtp_port": "{dead}"}, "smtp", "SMTP_PORT"),
        ({"llm_api_key": "sk-test", "llm_base_url": "http://127.0.0.1:{dead}/v1"}, "llm", "LLM_BASE_URL, LLM_API_KEY"),
        ({"price_api_key": "a-wrong-key", "price_api_base_url": "{quotes}"}, "prices", "PRICE_API_KEY"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_each_broken_setting_is_named(
    settings: Settings,
    dead_port: int,
    public_bucket: str,
    quote_feed: str,
    change: dict[str, str],
    check: str,
    fix: str,
) -> None:
    values = {"dead": dead_port, "primary": settings.db_url, "public_storage": public_bucket, "quotes": quote_feed}
    broken = settings.model_copy(update={key: value.format(**values) for key, value in change.items()})
    result = failed(broken)
    assert check in result, result
    # Only what depends on the broken setting fails (a dead DATABASE_URL fails every database check), and
    # each failure names that setting.
    assert all(fix in finding.fix for finding in result.values()), result


def test_a_good_price_key_passes(settings: Settings, quote_feed: str) -> None:
    result = findings(settings.model_copy(update={"price_api_key": "the-right-key", "price_api_base_url": quote_feed}))
    assert result["prices"].status == "ok", result["prices"]


@pytest.fixture
def empty_database(settings: Settings) -> Iterator[str]:
    name = f"kamioi_doctor_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(settings.db_url, autocommit=True) as conn:
        conn.execute(f"create database {name}")
    try:
        yield settings.db_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(settings.db_url, autocommit=True) as conn:
            conn.execute(f"drop database {name} with (force)")


def test_a_database_without_the_migrations(settings: Settings, empty_database: str) -> None:
    result: dict[str, Any] = failed(settings.model_copy(update={"database_url": empty_database}))
    assert set(result) == {"extensions", "migrations", "access-token hook", "pg_cron jobs"}, result
    assert "supabase db push" in result["migrations"].fix
