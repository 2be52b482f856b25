"""Fixtures for the reliability suite: the API in process with fresh admins, and a data snapshot
taken before and after each hostile module (any change to the domain tables fails its teardown)."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import psycopg
import pytest

from api.main import create_app
from kamioi.db import connect
from kamioi.settings import Settings
from local_stack.keys import KeyMaterial
from local_stack.tokens import access_token_claims, sign
from tests.reliability.support import DataSnapshot, wait_for_quiet_queue

# Limits high enough that no hostile case is refused by a rate limit instead of by its own check.
GENEROUS_LIMITS: dict[str, Any] = {
    "api_rate_reads_per_minute": 1_000_000,
    "api_rate_writes_per_minute": 1_000_000,
    "api_rate_uploads_per_hour": 1_000_000,
    "api_log_level": "WARNING",
}


@pytest.fixture(scope="session")
def claims_for(settings: Settings) -> Callable[..., dict[str, Any]]:
    def make(user_id: str, role: str = "admin", **changes: Any) -> dict[str, Any]:
        claims = access_token_claims(
            user_id=user_id, email=f"{role}@test.kamioi.local", user_role=role, issuer=settings.jwt_issuer
        )
        claims.update(changes)
        return claims

    return make


@pytest.fixture(scope="session")
def admin_headers(admin_id: str, claims_for: Callable[..., dict[str, Any]], keys: KeyMaterial) -> dict[str, str]:
    return {"Authorization": f"Bearer {sign(claims_for(admin_id), keys)}"}


@pytest.fixture(scope="session")
def user_headers(user_id: str, claims_for: Callable[..., dict[str, Any]], keys: KeyMaterial) -> dict[str, str]:
    return {"Authorization": f"Bearer {sign(claims_for(user_id, 'user'), keys)}"}


class MissingObjects(BaseHTTPRequestHandler):
    """Stands in for Supabase Storage (not in the local stack): every object is missing (400).
    Records the paths asked for, so tests can see that no request left the bucket."""

    requested: list[str] = []

    def do_POST(self) -> None:  # the storage client's sign request, before any download
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.do_GET()

    def do_GET(self) -> None:
        MissingObjects.requested.append(self.path)
        body = b'{"statusCode":"404","error":"not_found","message":"Object not found"}'
        self.send_response(400)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def storage_requests() -> list[str]:
    MissingObjects.requested.clear()
    return MissingObjects.requested


@pytest.fixture(scope="session")
def storage_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), MissingObjects)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/storage/v1"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def api_settings(settings: Settings, storage_url: str) -> Settings:
    return settings.model_copy(update={**GENEROUS_LIMITS, "supabase_storage_url": storage_url})


@pytest.fixture(scope="module")
async def client(api_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The API in process (lifespan run), with generous rate limits; its Storage has no objects."""
    app = create_app(api_settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api.test", timeout=30) as http:
            yield http


@pytest.fixture
def owner_db(settings: Settings) -> Iterator[psycopg.Connection[Any]]:
    with connect(settings.db_url, autocommit=True) as conn:
        yield conn


@pytest.fixture(scope="module")
def data_untouched(settings: Settings, admin_id: str, user_id: str, stack_worker_paused: None) -> Iterator[None]:
    """Fails the module's last teardown if any domain table changed while its tests ran (the test
    users are created first: they are arrangement, not the hostile input's doing; the stack's own
    worker is paused, so no job of an earlier suite writes meanwhile)."""
    with connect(settings.db_url, autocommit=True) as conn:
        wait_for_quiet_queue(conn)
        before = DataSnapshot.take(conn)
        yield
        changes = before.changes(conn)
    assert not changes, f"hostile input changed data: {changes}"
