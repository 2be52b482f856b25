"""The admin lists (GET /v1/transactions, /v1/mappings, /v1/users): keyset pages equal to the same
query in SQL, filters in combination, admins only, cursors that cannot be forged, hostile filters."""

from __future__ import annotations

import base64
import random
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import httpx
import psycopg
import pytest

from kamioi.db import postgrest_request
from kamioi.settings import Settings
from tests.jobs.investing import LOTS, insert_transactions, make_merchant, run_invest

# Investing runs inline here; the stack's worker would race it.
pytestmark = pytest.mark.usefixtures("stack_worker_paused")


@pytest.fixture(scope="module")
def shopper(make_user: Callable[[str], str], settings: Settings) -> Iterator[dict[str, Any]]:
    """A user with 60 purchases at two tagged merchants, most of them invested."""
    tag = uuid.uuid4().hex[:8]
    keys = [f"lists-{tag}-a", f"lists-{tag}-b"]
    user = make_user("user")
    with psycopg.connect(settings.db_url, autocommit=True) as conn:
        mapping_ids = [make_merchant(conn, keys[0], "SBUX"), make_merchant(conn, keys[1], None)]
        insert_transactions(conn, [user], keys, 50, random.Random(7))
        run_invest(settings.db_url, conn)
        insert_transactions(conn, [user], keys, 10, random.Random(8), status="pending")
        yield {"user": user, "keys": keys, "mapping_ids": mapping_ids, "tag": tag}


def sql_ids(conn: psycopg.Connection[Any], where: str, params: tuple[Any, ...]) -> list[int]:
    rows = conn.execute(
        f"select id from public.transactions where {where} order by txn_date desc, id desc", params
    ).fetchall()
    return [r[0] for r in rows]


async def walk(client: httpx.AsyncClient, path: str, params: dict[str, Any], headers: dict[str, str]) -> list[Any]:
    """Every item of a list, page by page, following next_cursor."""
    items: list[Any] = []
    cursor = None
    while True:
        response = await client.get(path, params={**params, **({"cursor": cursor} if cursor else {})}, headers=headers)
        assert response.status_code == 200, response.text
        page = response.json()
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items


async def test_transactions_pages_equal_the_query_with_allocations(
    client: httpx.AsyncClient, admin_headers: dict[str, str], shopper: dict[str, Any], owner_db: psycopg.Connection[Any]
) -> None:
    items = await walk(client, "/v1/transactions", {"user_id": shopper["user"], "limit": 7}, admin_headers)
    assert [t["id"] for t in items] == sql_ids(owner_db, "user_id = %s", (shopper["user"],))
    assert len(items) == 60
    allocations = dict(
        owner_db.execute(
            "select transaction_id, jsonb_agg(jsonb_build_object('ticker', ticker, 'amount', amount, 'lot', lot))"
            " from public.allocations where user_id = %s group by transaction_id",
            (shopper["user"],),
        ).fetchall()
    )
    invested = [t for t in items if t["status"] == "invested" and Decimal(t["round_up"]) > 0]
    assert invested, "the fixture invests most purchases"
    for t in invested:
        expected = allocations[t["id"]]
        assert [(a["ticker"], Decimal(a["amount"]), a["lot"]) for a in t["allocations"]] == [
            (a["ticker"], Decimal(str(a["amount"])), a["lot"]) for a in expected
        ]
    by_key = {t["merchant_key"]: t for t in items}
    assert by_key[shopper["keys"][0]]["merchant_name"] == shopper["keys"][0]
    assert by_key[shopper["keys"][0]]["ticker"] == "SBUX"
    assert by_key[shopper["keys"][1]]["ticker"] is None  # no listed company: invested in the fallback fund
    assert all(t["allocations"] == [] for t in items if t["status"] == "pending")


async def test_transaction_filters_combine(
    client: httpx.AsyncClient, admin_headers: dict[str, str], shopper: dict[str, Any], owner_db: psycopg.Connection[Any]
) -> None:
    key = shopper["keys"][0]
    params = {
        "status": "invested",
        "merchant_key": key,
        "mapping_id": shopper["mapping_ids"][0],
        "date_from": "2025-01-01",
        "amount_min": "10",
        "amount_max": "60.50",
        "limit": 3,
    }
    items = await walk(client, "/v1/transactions", params, admin_headers)
    expected = sql_ids(
        owner_db,
        "status = 'invested' and merchant_key = %s and mapping_id = %s and txn_date >= '2025-01-01'"
        " and amount between 10 and 60.50",
        (key, shopper["mapping_ids"][0]),
    )
    assert expected, "the filter should keep some rows"
    assert [t["id"] for t in items] == expected


async def test_mappings_filtered_and_sorted_by_confidence(
    client: httpx.AsyncClient, admin_headers: dict[str, str], owner_db: psycopg.Connection[Any]
) -> None:
    tag = uuid.uuid4().hex[:8]
    with owner_db.cursor() as cur:
        cur.executemany(
            "insert into public.llm_mappings (merchant_name, merchant_key, category, confidence, status, source)"
            " values (%s, %s, %s, %s, %s, 'llm')",
            [
                (
                    f"CENTER {tag} {n}",
                    f"center_{tag}_{n}",
                    "TRAVEL" if n % 2 else "FOOD_AND_DRINK",
                    None if n == 0 else n / 20,
                    "pending" if n % 3 else "approved",
                )
                for n in range(12)
            ],
        )
    try:
        params = {"merchant_key_prefix": f"center_{tag}_", "sort": "confidence_desc", "limit": 4}
        items = await walk(client, "/v1/mappings", params, admin_headers)
        assert [m["merchant_key"] for m in items] == [f"center_{tag}_{n}" for n in [*range(11, 0, -1), 0]]
        ascending = await walk(client, "/v1/mappings", {**params, "sort": "confidence_asc"}, admin_headers)
        assert [m["id"] for m in ascending] == [m["id"] for m in reversed(items)]
        combined = await walk(
            client,
            "/v1/mappings",
            {"search": f"center {tag}", "status": "pending", "category": "TRAVEL", "confidence_min": 0.2, "limit": 2},
            admin_headers,
        )
        assert sorted(m["merchant_key"] for m in combined) == sorted(
            f"center_{tag}_{n}" for n in range(12) if n % 2 and n % 3 and n / 20 >= 0.2
        )
        # A LIKE wildcard in the prefix is a character, not "anything".
        wildcard = await client.get("/v1/mappings", params={"merchant_key_prefix": "center%"}, headers=admin_headers)
        assert wildcard.json()["items"] == []
    finally:
        owner_db.execute("delete from public.llm_mappings where merchant_key like %s", (f"center_{tag}_%",))


async def test_users_carry_maintained_totals_and_search_by_email_prefix(
    client: httpx.AsyncClient, admin_headers: dict[str, str], shopper: dict[str, Any], owner_db: psycopg.Connection[Any]
) -> None:
    email = owner_db.execute("select email from public.profiles where id = %s", (shopper["user"],)).fetchone()
    assert email is not None
    found = await walk(client, "/v1/users", {"email_prefix": email[0][:13].upper(), "limit": 1}, admin_headers)
    row = next(u for u in found if u["id"] == shopper["user"])
    counted = owner_db.execute(
        "select (select count(*) from public.transactions where user_id = %s),"
        f" (select coalesce(sum(amount), 0) from {LOTS} as l where user_id = %s)",
        (shopper["user"], shopper["user"]),
    ).fetchone()
    assert counted is not None
    assert (row["transactions"], Decimal(row["invested"])) == (counted[0], counted[1])
    assert all(u["email"].lower().startswith(email[0][:13].lower()) for u in found)
    assert [u["email"] for u in found] == sorted(u["email"] for u in found)
    newest = await client.get("/v1/users", params={"limit": 100}, headers=admin_headers)
    created = [u["created_at"] for u in newest.json()["items"]]
    assert created == sorted(created, reverse=True)


@pytest.mark.parametrize("path", ["/v1/transactions", "/v1/mappings", "/v1/users"])
async def test_only_admins_list(client: httpx.AsyncClient, user_headers: dict[str, str], path: str) -> None:
    assert (await client.get(path, headers=user_headers)).status_code == 403
    assert (await client.get(path)).status_code == 401


@pytest.mark.parametrize("rpc", ["admin_list_transactions", "admin_list_mappings", "admin_list_users"])
def test_rpcs_refuse_users_and_anon(db: psycopg.Connection[Any], user_id: str, rpc: str) -> None:
    claims = {"sub": user_id, "user_role": "user"}
    with (
        pytest.raises(psycopg.errors.InsufficientPrivilege, match="admin role required"),
        postgrest_request(db, "authenticated", claims) as cur,
    ):
        cur.execute(f"select * from public.{rpc}()")
    with (
        pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied for function"),
        postgrest_request(db, "anon") as cur,
    ):
        cur.execute(f"select * from public.{rpc}()")


def _tampered(cursor: str) -> str:
    payload, tag = cursor.split(".")
    raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).replace(b"20", b"19", 1)
    return base64.urlsafe_b64encode(raw).decode().rstrip("=") + "." + tag


async def test_cursors_cannot_be_forged_or_moved(
    client: httpx.AsyncClient, admin_headers: dict[str, str], shopper: dict[str, Any]
) -> None:
    params = {"user_id": shopper["user"], "limit": 5}
    first = (await client.get("/v1/transactions", params=params, headers=admin_headers)).json()
    cursor = first["next_cursor"]
    forged = [
        _tampered(cursor),  # an edited key with the old signature
        cursor[:-2] + ("AA" if not cursor.endswith("AA") else "BB"),  # a different signature
        "bm90LWEtY3Vyc29y",  # not ours at all
        cursor + ".x",
    ]
    for bad in forged:
        response = await client.get("/v1/transactions", params={**params, "cursor": bad}, headers=admin_headers)
        assert response.status_code == 422, bad
        assert response.headers["content-type"] == "application/problem+json"
    # A real cursor with other filters, or on another list, is refused too.
    other_filters = await client.get(
        "/v1/transactions", params={"status": "pending", "limit": 5, "cursor": cursor}, headers=admin_headers
    )
    assert other_filters.status_code == 422
    other_list = await client.get("/v1/users", params={"limit": 5, "cursor": cursor}, headers=admin_headers)
    assert other_list.status_code == 422
    same = await client.get("/v1/transactions", params={**params, "cursor": cursor}, headers=admin_headers)
    assert same.status_code == 200


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/v1/transactions", {"status": "shipped"}),
        ("/v1/transactions", {"user_id": "not-a-uuid"}),
        ("/v1/transactions", {"amount_min": "50", "amount_max": "10"}),
        ("/v1/transactions", {"date_from": "2026-02-30"}),
        ("/v1/transactions", {"merchant_key": "a\x00b"}),
        ("/v1/transactions", {"limit": 101}),
        ("/v1/transactions", {"mapping_id": 2**63}),
        ("/v1/transactions", {"amount_min": "1e400"}),
        ("/v1/transactions", {"sort": "amount"}),
        ("/v1/mappings", {"search": "ab"}),
        ("/v1/mappings", {"confidence_min": 2}),
        ("/v1/mappings", {"sort": "random()"}),
        ("/v1/mappings", {"limit": 51}),
        ("/v1/mappings", {"created_from": "2026-01-01T00:00:00"}),  # no time zone
        ("/v1/users", {"email_prefix": ""}),
        ("/v1/users", {"role": "root"}),
    ],
)
async def test_hostile_filters_are_422(
    client: httpx.AsyncClient, admin_headers: dict[str, str], path: str, params: dict[str, Any]
) -> None:
    response = await client.get(path, params=params, headers=admin_headers)
    assert response.status_code == 422, response.text


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/v1/transactions", {"merchant_key": "x' or '1'='1"}),
        ("/v1/transactions", {"merchant_key": "%"}),
        ("/v1/mappings", {"search": "%%%_\\"}),
        ("/v1/mappings", {"merchant_key_prefix": "'; drop table public.llm_mappings; --"}),
        ("/v1/users", {"email_prefix": "%"}),
    ],
)
async def test_filter_values_are_data(
    client: httpx.AsyncClient, admin_headers: dict[str, str], path: str, params: dict[str, Any]
) -> None:
    response = await client.get(path, params=params, headers=admin_headers)
    assert response.status_code == 200, response.text
    assert response.json()["items"] == []
