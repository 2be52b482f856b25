"""The API in process (httpx + ASGITransport over create_app) on the real local stack.

Each test session signs in as a fresh admin (a new auth user promoted in public.profiles), so
per-user rate-limit windows in Upstash never carry over from an earlier run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import httpx
import psycopg
import pytest
from fastapi import FastAPI

from api.main import create_app
from kamioi.db import connect
from kamioi.settings import PROJECT_ROOT, Settings
from local_stack.keys import KeyMaterial
from local_stack.services import api_server_args
from local_stack.tokens import access_token_claims, sign
from tests.conftest import LocalStorage, free_port

# Generous limits for the suite; the rate-limit tests build apps with tight ones.
TEST_OVERRIDES: dict[str, Any] = {
    "api_rate_reads_per_minute": 100_000,
    "api_rate_writes_per_minute": 100_000,
    "api_rate_uploads_per_hour": 100_000,
    "api_log_level": "WARNING",
}

AppClient = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture(scope="session")
def token_for(settings: Settings, keys: KeyMaterial) -> Callable[..., str]:
    def make(user_id: str, role: str = "admin", **changes: Any) -> str:
        claims = access_token_claims(
            user_id=user_id, email=f"{role}@test.kamioi.local", user_role=role, issuer=settings.jwt_issuer
        )
        claims.update(changes)
        return sign(claims, keys)

    return make


@pytest.fixture(scope="session")
def admin_headers(admin_id: str, token_for: Callable[..., str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {token_for(admin_id)}"}


@pytest.fixture(scope="session")
def user_headers(user_id: str, token_for: Callable[..., str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {token_for(user_id, 'user')}"}


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
            yield client


@pytest.fixture(scope="session")
def api_settings(settings: Settings) -> Settings:
    return settings.model_copy(update=TEST_OVERRIDES)


@pytest.fixture(scope="session")
def app_client(api_settings: Settings) -> AppClient:
    """`async with app_client(api_request_timeout_s=0.2) as client:` an app with these settings."""

    def build(**overrides: Any) -> AbstractAsyncContextManager[httpx.AsyncClient]:
        return running(create_app(api_settings.model_copy(update=overrides)))

    return build


@pytest.fixture
async def client(app_client: AppClient) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client() as client:
        yield client


@pytest.fixture
def owner_db(settings: Settings) -> Iterator[psycopg.Connection[Any]]:
    """Autocommit connection as `postgres`, for arranging data."""
    with connect(settings.db_url, autocommit=True) as conn:
        yield conn


@pytest.fixture(scope="session")
def dead_upstash_url(dead_url: str) -> str:
    return dead_url


@pytest.fixture(scope="session")
def api_server(storage_server: LocalStorage) -> Iterator[str]:
    """The API as production runs it: a uvicorn subprocess (the command `kamioi up` uses)."""
    port = free_port()
    env = {
        **os.environ,
        **{name.upper(): str(value) for name, value in TEST_OVERRIDES.items()},
        "SUPABASE_STORAGE_URL": storage_server.url,
    }
    process = subprocess.Popen(
        [sys.executable, *api_server_args("127.0.0.1", port, workers=1)],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(base_url, process)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_healthy(base_url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            stderr = process.stderr.read().decode() if process.stderr else ""
            raise RuntimeError(f"uvicorn exited with {process.returncode}:\n{stderr}")
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError("the API did not answer /healthz within 20 s")
