"""Mapping review endpoints: the pending queue (keyset), single review, bulk review job, resolve."""

from __future__ import annotations

import random
import string
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
import psycopg
import pytest
from psycopg.types.json import Jsonb

# The bulk-review test checks the job the API queued; the stack's own worker would claim it first.
pytestmark = pytest.mark.usefixtures("stack_worker_paused")

AppClient = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def pending(owner_db: psycopg.Connection[Any]) -> Iterator[list[dict[str, Any]]]:
    """Three fresh pending mappings (newest last), removed afterwards."""
    tag = uuid.uuid4().hex[:10]
    rows = [
        owner_db.execute(
            "insert into public.llm_mappings (merchant_name, merchant_key, company_name, ticker, category,"
            " confidence, created_at) values (%s, %s, 'Acme Coffee', 'SBUX', 'FOOD_AND_DRINK', 0.42,"
            " now() + make_interval(secs => %s)) returning id, created_at, merchant_key",
            (f"ACME {tag} {n}", f"acme-{tag}-{n}", 1000 + n),
        ).fetchone()
        for n in range(3)
    ]
    yield [{"id": r[0], "created_at": r[1].isoformat(), "merchant_key": r[2]} for r in rows if r is not None]
    keys = [f"acme-{tag}-{n}" for n in range(3)]
    owner_db.execute("delete from public.merchants where merchant_key = any(%s)", (keys,))
    owner_db.execute("delete from public.llm_mappings where merchant_key = any(%s)", (keys,))


async def test_pending_queue_pages_by_keyset(
    client: httpx.AsyncClient, admin_headers: dict[str, str], pending: list[dict[str, Any]]
) -> None:
    first = await client.get("/v1/mappings/pending", params={"limit": 2}, headers=admin_headers)
    assert first.status_code == 200
    page = first.json()
    assert [m["id"] for m in page["items"]] == [pending[2]["id"], pending[1]["id"]]
    assert page["next_cursor"]
    second = await client.get(
        "/v1/mappings/pending", params={"limit": 2, "cursor": page["next_cursor"]}, headers=admin_headers
    )
    assert second.json()["items"][0]["id"] == pending[0]["id"]


async def test_invalid_cursor_is_422(client: httpx.AsyncClient, admin_headers: dict[str, str]) -> None:
    response = await client.get("/v1/mappings/pending", params={"cursor": "bm90LWEtY3Vyc29y"}, headers=admin_headers)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


async def test_review_approves_and_puts_in_force(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    admin_id: str,
    pending: list[dict[str, Any]],
    owner_db: psycopg.Connection[Any],
) -> None:
    target = pending[0]
    await client.get("/v1/stats/dashboard", headers=admin_headers)  # warm the stats cache
    response = await client.post(
        f"/v1/mappings/{target['id']}/review",
        json={"decision": "approved", "created_at": target["created_at"]},
        headers=admin_headers,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["status"], body["admin_approved"], body["reviewer"]) == ("approved", True, admin_id)
    in_force = owner_db.execute(
        "select mapping_id from public.merchants where merchant_key = %s", (target["merchant_key"],)
    ).fetchone()
    assert in_force == (target["id"],)
    after = await client.get("/v1/stats/dashboard", headers=admin_headers)
    assert after.headers["x-cache"] == "miss"  # the review invalidated the cached numbers


async def test_review_reject(
    client: httpx.AsyncClient, admin_headers: dict[str, str], pending: list[dict[str, Any]]
) -> None:
    target = pending[1]
    response = await client.post(
        f"/v1/mappings/{target['id']}/review",
        json={"decision": "rejected", "created_at": target["created_at"]},
        headers=admin_headers,
    )
    assert (response.status_code, response.json()["status"]) == (200, "rejected")


async def test_review_unknown_mapping_is_404(client: httpx.AsyncClient, admin_headers: dict[str, str]) -> None:
    response = await client.post(
        "/v1/mappings/999999999/review",
        json={"decision": "approved", "created_at": "2026-01-01T00:00:00Z"},
        headers=admin_headers,
    )
    assert response.status_code == 404
    assert "not found" in response.json()["detail"]


async def test_review_rejects_bad_decision(client: httpx.AsyncClient, admin_headers: dict[str, str]) -> None:
    response = await client.post(
        "/v1/mappings/1/review", json={"decision": "maybe", "created_at": "2026-01-01T00:00:00Z"}, headers=admin_headers
    )
    assert response.status_code == 422
    problem = response.json()
    assert response.headers["content-type"] == "application/problem+json"
    assert problem["errors"][0]["loc"] == ["body", "decision"]


async def test_bulk_review_by_filter_is_a_job_the_chunk_function_completes(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    admin_id: str,
    pending: list[dict[str, Any]],
    owner_db: psycopg.Connection[Any],
) -> None:
    merchant_key = pending[2]["merchant_key"]
    response = await client.post(
        "/v1/mappings/bulk-review",
        json={"decision": "rejected", "filter": {"merchant_key": merchant_key, "max_confidence": 0.5}},
        headers=admin_headers,
    )
    assert response.status_code == 202, response.text
    accepted = response.json()
    assert accepted["kind"] == "mappings.bulk_review"
    job = await client.get(accepted["status_url"], headers=admin_headers)
    assert (job.status_code, job.json()["state"]) == (200, "queued")

    # What the job's handler does: chunks until none is left.
    row = owner_db.execute("select payload from private.job_queue where id = %s", (accepted["job_id"],)).fetchone()
    assert row is not None
    payload = row[0]
    assert payload["reviewer"] == admin_id
    chunk = "select private.bulk_review_mappings_chunk(%s, %s, %s, 1000)"
    args = (payload["decision"], payload["reviewer"], Jsonb(payload["selection"]))
    assert owner_db.execute(chunk, args).fetchone() == (1,)
    assert owner_db.execute(chunk, args).fetchone() == (0,)
    status = owner_db.execute("select status from public.llm_mappings where merchant_key = %s", (merchant_key,))
    assert status.fetchone() == ("rejected",)
    owner_db.execute("delete from private.job_queue where id = %s", (accepted["job_id"],))


async def test_bulk_review_by_ids_approves_the_newest_per_merchant(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    pending: list[dict[str, Any]],
    owner_db: psycopg.Connection[Any],
) -> None:
    ids = [{"id": m["id"], "created_at": m["created_at"]} for m in pending]
    response = await client.post(
        "/v1/mappings/bulk-review", json={"decision": "approved", "ids": ids}, headers=admin_headers
    )
    assert response.status_code == 202
    row = owner_db.execute("select payload from private.job_queue where id = %s", (response.json()["job_id"],))
    payload = row.fetchone()[0]  # type: ignore[index]
    reviewed = owner_db.execute(
        "select private.bulk_review_mappings_chunk(%s, %s, %s, 2)",
        (payload["decision"], payload["reviewer"], Jsonb(payload["selection"])),
    ).fetchone()
    assert reviewed == (2,)  # the chunk size bounds each call
    in_force = owner_db.execute(
        "select count(*) from public.merchants where merchant_key = any(%s) and mapping_id is not null",
        ([m["merchant_key"] for m in pending],),
    ).fetchone()
    assert in_force == (2,)
    owner_db.execute("delete from private.job_queue where id = %s", (response.json()["job_id"],))


@pytest.mark.parametrize(
    "body",
    [
        {"decision": "approved"},
        {"decision": "approved", "ids": [{"id": 1, "created_at": "2026-01-01T00:00:00Z"}], "filter": {}},
        {"decision": "approved", "filter": {"category": "NOT_A_CATEGORY"}},
        {"decision": "approved", "ids": []},
    ],
)
async def test_bulk_review_needs_exactly_one_valid_selection(
    client: httpx.AsyncClient, admin_headers: dict[str, str], body: dict[str, Any]
) -> None:
    response = await client.post("/v1/mappings/bulk-review", json=body, headers=admin_headers)
    assert response.status_code == 422


async def test_unknown_job_is_404(client: httpx.AsyncClient, admin_headers: dict[str, str]) -> None:
    assert (await client.get("/v1/jobs/999999999", headers=admin_headers)).status_code == 404


async def test_resolve_dry_run_answers_from_the_catalog(
    client: httpx.AsyncClient, admin_headers: dict[str, str], owner_db: psycopg.Connection[Any]
) -> None:
    name = "KAMIOITEST" + "".join(random.choices(string.ascii_uppercase, k=8))
    key = name.lower()
    owner_db.execute(
        "insert into public.merchant_catalog (merchant_key, canonical_name, ticker, category)"
        " values (%s, 'Kamioi Test Co', 'SBUX', 'FOOD_AND_DRINK')",
        (key,),
    )
    try:
        response = await client.post(
            "/v1/mappings/resolve",
            json={"descriptors": [f"SQ *{name} 1234", "   "], "save": False},
            headers=admin_headers,
        )
    finally:
        owner_db.execute("delete from public.merchant_catalog where merchant_key = %s", (key,))
    assert response.status_code == 200, response.text
    found, blank = response.json()["results"]
    assert found["processor"] == "square"
    assert found["merchant"] | {"mapping_id": None} == {
        "merchant_key": key,
        "display_name": found["merchant"]["display_name"],
        "company": "Kamioi Test Co",
        "ticker": "SBUX",
        "category": "FOOD_AND_DRINK",
        "confidence": found["merchant"]["confidence"],
        "tier": "catalog",
        "status": "approved",
        "mapping_id": None,
        "mapping_created_at": None,
    }
    assert blank["merchant"]["status"] == "pending"
    written = owner_db.execute("select count(*) from public.llm_mappings where merchant_key = %s", (key,))
    assert written.fetchone() == (0,)  # a dry run writes nothing


async def test_resolve_batch_is_capped(client: httpx.AsyncClient, admin_headers: dict[str, str]) -> None:
    response = await client.post("/v1/mappings/resolve", json={"descriptors": ["X"] * 101}, headers=admin_headers)
    assert response.status_code == 422


async def resolve_one(client: httpx.AsyncClient, headers: dict[str, str], descriptor: str) -> dict[str, Any]:
    body = {"descriptors": [descriptor], "save": True}
    response = await client.post("/v1/mappings/resolve", json=body, headers=headers)
    assert response.status_code == 200, response.text
    merchant: dict[str, Any] = response.json()["results"][0]["merchant"]
    return merchant


@pytest.fixture
def unknown_descriptor(owner_db: psycopg.Connection[Any]) -> Iterator[str]:
    """A merchant no tier knows (the stack's provider is offline): resolving it leaves it for review."""
    name = "ZQREVIEW " + "".join(random.choices(string.ascii_uppercase, k=8))
    yield name
    key = name.lower()
    owner_db.execute("delete from public.merchants where merchant_key = %s", (key,))
    owner_db.execute("delete from public.llm_mappings where merchant_key = %s", (key,))


@pytest.mark.parametrize("decision", ["approved", "rejected"])
async def test_review_is_seen_by_the_next_resolve_at_once(
    client: httpx.AsyncClient, admin_headers: dict[str, str], unknown_descriptor: str, decision: str
) -> None:
    first = await resolve_one(client, admin_headers, unknown_descriptor)
    assert first["status"] == "pending"  # and cached as pending by that resolve

    response = await client.post(
        f"/v1/mappings/{first['mapping_id']}/review",
        json={"decision": decision, "created_at": first["mapping_created_at"]},
        headers=admin_headers,
    )

    assert response.status_code == 200
    after = await resolve_one(client, admin_headers, unknown_descriptor)
    assert (after["status"], after["mapping_id"]) == (decision, first["mapping_id"])


async def test_review_succeeds_with_upstash_down(
    client: httpx.AsyncClient,
    app_client: AppClient,
    admin_headers: dict[str, str],
    unknown_descriptor: str,
    dead_upstash_url: str,
    owner_db: psycopg.Connection[Any],
) -> None:
    first = await resolve_one(client, admin_headers, unknown_descriptor)  # pending, cached as pending
    async with app_client(upstash_redis_rest_url=dead_upstash_url) as down:
        response = await down.post(
            f"/v1/mappings/{first['mapping_id']}/review",
            json={"decision": "approved", "created_at": first["mapping_created_at"]},
            headers=admin_headers,
        )

    # Neither the rate limiter nor either cache could be reached: the review stands all the same.
    assert (response.status_code, response.json()["status"]) == (200, "approved")
    in_force = owner_db.execute(
        "select mapping_id from public.merchants where merchant_key = %s", (first["merchant_key"],)
    ).fetchone()
    assert in_force == (first["mapping_id"],)


async def test_review_queue_shows_a_key_the_provider_gave_up_on(
    client: httpx.AsyncClient, admin_headers: dict[str, str], owner_db: psycopg.Connection[Any]
) -> None:
    key = "zqgaveup-" + uuid.uuid4().hex[:10]
    owner_db.execute(
        "insert into public.llm_mappings (merchant_name, merchant_key, tier, reason, provider_state,"
        " provider_attempts, provider_error, created_at) values (%s, %s, 'review',"
        " 'openai_compatible failed 6 times; gave up, left for review', 'gave_up', 6, 'HTTP 500: down',"
        " now() + interval '1 hour')",
        (key.upper(), key),
    )
    try:
        response = await client.get("/v1/mappings/pending", params={"limit": 1}, headers=admin_headers)
    finally:
        owner_db.execute("delete from public.llm_mappings where merchant_key = %s", (key,))
    [item] = response.json()["items"]
    assert (item["merchant_key"], item["status"]) == (key, "pending")
    provider = (item["provider_state"], item["provider_attempts"], item["provider_error"])
    assert provider == ("gave_up", 6, "HTTP 500: down")
    assert item["reason"] == "openai_compatible failed 6 times; gave up, left for review"
