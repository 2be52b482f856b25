"""One rule for query parameters and cursors on every route: unknown names and bad cursors are a 422."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import psycopg
import pytest

from api.main import create_app
from kamioi.settings import Settings

BOGUS = "no_such_parameter"


def _routes(settings: Settings) -> list[tuple[str, str]]:
    """(method, path with every path parameter set to 1) of every API route (its OpenAPI operations)."""
    paths = create_app(settings).openapi()["paths"]
    return [
        (method.upper(), re.sub(r"\{[^}]+\}", "1", path)) for path, operations in paths.items() for method in operations
    ]


async def test_every_route_refuses_an_unknown_query_parameter(
    client: httpx.AsyncClient, admin_headers: dict[str, str], api_settings: Settings
) -> None:
    routes = _routes(api_settings)
    assert ("GET", "/v1/imports/1/rejections") in routes and len(routes) > 20
    for method, path in routes:
        response = await client.request(method, path, params={BOGUS: "1"}, headers=admin_headers)
        assert response.status_code == 422, (method, path, response.text)
        errors = response.json()["errors"]
        assert {"loc": ["query", BOGUS], "msg": "Extra inputs are not permitted", "type": "extra_forbidden"} in errors


@pytest.mark.parametrize(
    "path", ["/v1/imports", "/v1/mappings/pending", "/v1/stats/dashboard", "/v1/analytics/categories", "/healthz"]
)
async def test_a_filter_that_does_not_exist_is_not_ignored(
    client: httpx.AsyncClient, admin_headers: dict[str, str], path: str
) -> None:
    response = await client.get(path, params={"state": "failed"}, headers=admin_headers)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


async def test_declared_parameters_still_pass(client: httpx.AsyncClient, admin_headers: dict[str, str]) -> None:
    for path, params in [
        ("/v1/imports", {"limit": "2"}),
        ("/v1/mappings/pending", {"limit": "2"}),
        ("/v1/transactions", {"limit": "2", "status": "invested"}),
        ("/v1/analytics/activity", {"grain": "month", "months": "3"}),
    ]:
        response = await client.get(path, params=params, headers=admin_headers)
        assert response.status_code == 200, (path, response.text)


def _garbage(cursor: str) -> list[str]:
    payload, tag = cursor.split(".")
    return [
        "bm90LWEtY3Vyc29y",  # the unsigned base64 the rejections and imports once took
        payload + "." + ("A" * 22 if not tag.startswith("AAAA") else "B" * 22),
        cursor[:-3],
    ]


async def _next_cursor(client: httpx.AsyncClient, headers: dict[str, str], path: str) -> str:
    page = (await client.get(path, params={"limit": 1}, headers=headers)).json()
    assert page["next_cursor"], (path, page)
    return str(page["next_cursor"])


async def test_cursors_are_signed_bound_to_their_list_and_refused_with_422(
    client: httpx.AsyncClient, admin_headers: dict[str, str], owner_db: psycopg.Connection[Any], admin_id: str
) -> None:
    jobs = []
    for n in range(2):
        row = owner_db.execute(
            "select id from private.create_import_job('transactions', %s, %s, 10, %s::uuid)",
            (f"/tmp/query-rules-{n}.csv", uuid.uuid4().hex * 2, admin_id),
        ).fetchone()
        assert row is not None
        jobs.append(row[0])
        for line in (3, 5):
            owner_db.execute(
                "insert into public.import_rejections (import_job_id, line_number, column_name, reason, raw_line)"
                " values (%s, %s, 'amount', 'not a number', 'x')",
                (row[0], line),
            )
    owner_db.commit()
    try:
        first, second = (f"/v1/imports/{job}/rejections" for job in jobs)
        cursors = {
            "/v1/imports": await _next_cursor(client, admin_headers, "/v1/imports"),
            first: await _next_cursor(client, admin_headers, first),
        }
        for path, cursor in cursors.items():
            for bad in _garbage(cursor):
                response = await client.get(path, params={"cursor": bad}, headers=admin_headers)
                assert response.status_code == 422, (path, bad, response.text)
        # A cursor only continues the list it came from: not another import's rejections, not another list.
        moved = [
            (second, cursors[first]),
            ("/v1/imports", cursors[first]),
            ("/v1/mappings/pending", cursors["/v1/imports"]),
            ("/v1/transactions", cursors["/v1/imports"]),
        ]
        for path, cursor in moved:
            response = await client.get(path, params={"cursor": cursor}, headers=admin_headers)
            assert response.status_code == 422, (path, response.text)
        rest = (await client.get(first, params={"cursor": cursors[first]}, headers=admin_headers)).json()
        assert [r["line_number"] for r in rest["items"]] == [5]
    finally:
        owner_db.execute("delete from public.import_rejections where import_job_id = any(%s)", (jobs,))
        owner_db.execute("select private.cancel_import_job(id) from unnest(%s::bigint[]) as id", (jobs,))
        owner_db.commit()
