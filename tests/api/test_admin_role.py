"""The admin API trusts the profile's role, not the token's claim: a token that says admin for a user
whose profile says user is refused on every route of the OpenAPI document (so new routes are covered
without editing this file), cached and replayed answers included; a demotion applies as soon as the
database announces it."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

import httpx
import psycopg

from api.db import create_pool
from api.main import REPLAYED_PATHS, create_app
from api.roles import ProfileRoles, RoleChangeListener
from kamioi.settings import Settings
from tests.api.conftest import running

# Routes for everyone (probes and the Prometheus scrape) and the framework's documentation pages.
PUBLIC_PATHS = {"/healthz", "/readyz", "/metrics"}
NOTIFY_WAIT_S = 10.0


def admin_operations(app: Any) -> list[tuple[str, str]]:
    """(method, path with its parameters filled) of every operation outside PUBLIC_PATHS."""
    operations = [
        (method.upper(), re.sub(r"\{[^}]+\}", "1", path))
        for path, item in app.openapi()["paths"].items()
        if path not in PUBLIC_PATHS
        for method in item
    ]
    assert len(operations) >= 25, "the OpenAPI document lost its admin routes"
    return operations


async def call(client: httpx.AsyncClient, method: str, path: str, headers: dict[str, str]) -> int:
    response = await client.request(method, path, headers=headers, json={} if method == "POST" else None)
    return response.status_code


async def wait_forgotten(roles: ProfileRoles, user_id: str) -> None:
    for _ in range(int(NOTIFY_WAIT_S / 0.02)):
        if roles.cached(user_id) is None:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"the role of {user_id} was still remembered after {NOTIFY_WAIT_S} s")


async def test_an_admin_claim_without_an_admin_profile_is_refused_everywhere(
    api_settings: Settings,
    make_user: Callable[[str], str],
    token_for: Callable[..., str],
    admin_headers: dict[str, str],
) -> None:
    pretender = {"Authorization": f"Bearer {token_for(make_user('user'), 'admin')}"}
    app = create_app(api_settings)
    async with running(app) as client:
        # A real admin first fills the aggregate cache and the replay layer.
        for path in REPLAYED_PATHS:
            assert await call(client, "GET", path, admin_headers) == 200, path
        refused = {}
        for method, path in admin_operations(app):
            # Twice: the second time the token is one the verifier remembers, what replay relies on.
            refused[(method, path)] = [await call(client, method, path, pretender) for _ in range(2)]
    assert {operation: codes for operation, codes in refused.items() if codes != [403, 403]} == {}


async def test_a_demotion_applies_once_the_database_announces_it(
    api_settings: Settings,
    make_user: Callable[[str], str],
    token_for: Callable[..., str],
    owner_db: psycopg.Connection[Any],
) -> None:
    admin_id = make_user("admin")
    headers = {"Authorization": f"Bearer {token_for(admin_id)}"}
    app = create_app(api_settings)
    async with running(app) as client:
        roles: ProfileRoles = app.state.resources.roles
        for _ in range(2):  # computed, then replayed
            assert await call(client, "GET", "/v1/stats/dashboard", headers) == 200
        assert roles.cached(admin_id) == "admin"

        owner_db.execute("update public.profiles set role = 'user' where id = %s", (admin_id,))
        await wait_forgotten(roles, admin_id)

        codes = {path: await call(client, "GET", path, headers) for path in [*REPLAYED_PATHS, "/v1/jobs/1"]}
        assert set(codes.values()) == {403}, codes


async def test_the_notify_clears_a_role_long_before_its_ttl(
    settings: Settings, make_user: Callable[[str], str], owner_db: psycopg.Connection[Any]
) -> None:
    user_id = make_user("admin")
    pool = create_pool(settings.db_url, name="roles-test", min_size=1, max_size=1)
    await pool.open()
    roles = ProfileRoles(pool, ttl_s=3600, timeout_s=5)
    listener = RoleChangeListener(settings.db_url, roles)
    listener.start()
    try:
        await asyncio.wait_for(listener.listening.wait(), NOTIFY_WAIT_S)
        assert await roles.role(user_id) == "admin"
        owner_db.execute("update public.profiles set role = 'user' where id = %s", (user_id,))
        await wait_forgotten(roles, user_id)  # an hour's TTL: only the NOTIFY can have cleared it
        assert await roles.role(user_id) == "user"
    finally:
        await listener.stop()
        await pool.close()
