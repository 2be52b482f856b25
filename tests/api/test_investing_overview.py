"""GET /v1/stats/investing: the broker's side of investing for admins (orders as they fill, the house
position, what waits for a threshold, the latest position reconciliation); nobody else reads it."""

from __future__ import annotations

from typing import Any

import httpx
import psycopg

ENDPOINT = "/v1/stats/investing"


async def test_admins_see_orders_as_the_database_has_them(
    client: httpx.AsyncClient, admin_headers: dict[str, str], owner_db: psycopg.Connection[Any]
) -> None:
    response = await client.get(ENDPOINT, headers=admin_headers)

    assert response.status_code == 200
    body = response.json()
    row = owner_db.execute("select count(*) from public.broker_orders").fetchone()
    assert row is not None
    assert sum(body["orders_by_status"].values()) == row[0]
    newest = owner_db.execute("select client_order_id from public.broker_orders order by id desc limit 1").fetchone()
    assert [o["client_order_id"] for o in body["orders"][:1]] == ([newest[0]] if newest else [])
    assert set(body) >= {"fills", "house", "waiting_for_threshold", "carried", "fallbacks"}


async def test_users_and_anonymous_callers_are_refused(client: httpx.AsyncClient, user_headers: dict[str, str]) -> None:
    assert (await client.get(ENDPOINT, headers=user_headers)).status_code == 403
    assert (await client.get(ENDPOINT)).status_code == 401


async def test_admins_see_the_latest_position_check_and_its_breaks(
    client: httpx.AsyncClient, admin_headers: dict[str, str], owner_db: psycopg.Connection[Any]
) -> None:
    # The broker agrees with the books except for one position the books know nothing of.
    row = owner_db.execute(
        "select private.record_position_check(coalesce(jsonb_agg(jsonb_build_object('symbol', ticker, 'qty', qty)),"
        " '[]') || %s::jsonb)"
        " from (select ticker, sum(shares) as qty from public.fill_allocations group by ticker) as books",
        ('[{"symbol": "ONLY-AT-BROKER", "qty": 2.5}]',),
    ).fetchone()
    assert row is not None

    response = await client.get(ENDPOINT, headers=admin_headers)

    assert response.status_code == 200
    shown = response.json()["reconciliation"]
    assert shown["breaks"] == 1
    assert shown["break_rows"] == [{"ticker": "ONLY-AT-BROKER", "broker_qty": 2.5, "book_qty": None, "difference": 2.5}]
