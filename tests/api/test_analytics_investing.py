"""GET /v1/analytics/investing: every ticker held, from the exact investing stats; admins only."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Any

import httpx
import psycopg
import pytest

from kamioi.settings import Settings
from tests.api.conftest import AppClient
from tests.api.test_stats_cache import cold_cache
from tests.jobs.conftest import unique_tag
from tests.jobs.investing import LOTS, insert_transactions, make_merchant, run_invest

ENDPOINT = "/v1/analytics/investing"
pytestmark = pytest.mark.usefixtures("stack_worker_paused")


async def test_admins_see_every_ticker_held_as_the_stats_count_it(
    app_client: AppClient,
    admin_headers: dict[str, str],
    api_settings: Settings,
    owner_db: psycopg.Connection[Any],
    make_user: Callable[[str], str],
) -> None:
    prefix = f"inv {unique_tag()}"
    make_merchant(owner_db, prefix, "NFLX")
    insert_transactions(owner_db, [make_user("user")], [prefix], 30, random.Random(5))
    # The job runs its own event loop: in a thread, as a worker would.
    assert await asyncio.to_thread(run_invest, api_settings.db_url, owner_db) == "succeeded"
    await cold_cache(api_settings)
    async with app_client(api_local_cache_s=0) as client:
        response = await client.get(ENDPOINT, headers=admin_headers)
    assert (response.status_code, response.headers["x-cache"]) == (200, "miss")
    rows = response.json()["rows"]
    recount = owner_db.execute(
        "select ticker, sum(amount)::float8, sum(shares)::float8, sum(case kind when 'buy' then 1 else -1 end)"
        f" from {LOTS} as l group by ticker having sum(case kind when 'buy' then 1 else -1 end) > 0"
    ).fetchall()
    assert sorted((r["ticker"], r["amount"], r["shares"], r["lots"]) for r in rows) == sorted(recount)
    assert [r["amount"] for r in rows] == sorted((r["amount"] for r in rows), reverse=True)
    assert "NFLX" in {r["ticker"] for r in rows}


async def test_users_and_anonymous_callers_are_refused(client: httpx.AsyncClient, user_headers: dict[str, str]) -> None:
    assert (await client.get(ENDPOINT, headers=user_headers)).status_code == 403
    assert (await client.get(ENDPOINT)).status_code == 401
