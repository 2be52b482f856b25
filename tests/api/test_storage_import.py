"""Imports from a Supabase Storage object: hashed as it streams through the API (never onto its disk), queued."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
import psycopg
import pytest

AppClient = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
async def client(app_client: AppClient, storage_server: Any) -> Any:
    storage_server.clear()
    async with app_client(supabase_storage_url=storage_server.url, api_upload_max_bytes=4096) as client:
        yield client


async def test_storage_object_is_downloaded_and_queued(
    client: httpx.AsyncClient,
    storage_server: Any,
    admin_headers: dict[str, str],
    owner_db: psycopg.Connection[Any],
) -> None:
    content = f"user_id,txn_date,descriptor,amount\nu,2026-11-01,SHOP {uuid.uuid4().hex},1.00\n".encode()
    storage_server.objects.put("imports", "2026/11/batch 1.csv", content)
    response = await client.post(
        "/v1/imports",
        json={"kind": "transactions", "storage_object": {"bucket": "imports", "path": "2026/11/batch 1.csv"}},
        headers=admin_headers,
    )
    assert response.status_code == 201, response.text
    job = response.json()
    owner_db.execute("select private.cancel_import_job(%s)", (job["id"],))
    assert job["file_sha256"] == hashlib.sha256(content).hexdigest()
    assert job["file_size"] == len(content)
    assert (job["storage_bucket"], job["file_path"]) == ("imports", "2026/11/batch 1.csv")
    assert job["storage_etag"]
    assert storage_server.objects.read("imports", "2026/11/batch 1.csv") == content  # the admin's object stays


@pytest.mark.parametrize(
    ("objects", "status"),
    [({}, 404), ({"big.csv": b"x" * 5000}, 413)],
)
async def test_missing_or_oversized_objects_leave_nothing(
    client: httpx.AsyncClient,
    storage_server: Any,
    admin_headers: dict[str, str],
    objects: dict[str, bytes],
    status: int,
) -> None:
    for path, data in objects.items():
        storage_server.objects.put("imports", path, data)
    response = await client.post(
        "/v1/imports",
        json={"kind": "transactions", "storage_object": {"bucket": "imports", "path": "big.csv"}},
        headers=admin_headers,
    )
    assert response.status_code == status


async def test_unreachable_storage_is_502(app_client: AppClient, admin_headers: dict[str, str], dead_url: str) -> None:
    async with app_client(supabase_storage_url=dead_url) as client:
        response = await client.post(
            "/v1/imports",
            json={"kind": "transactions", "storage_object": {"bucket": "imports", "path": "a.csv"}},
            headers=admin_headers,
        )
    assert response.status_code == 502


async def test_a_storage_object_is_required(client: httpx.AsyncClient, admin_headers: dict[str, str]) -> None:
    server_path = {"kind": "transactions", "file_path": "a.csv", "storage_object": {"bucket": "b", "path": "a.csv"}}
    for body in ({"kind": "transactions"}, server_path):
        assert (await client.post("/v1/imports", json=body, headers=admin_headers)).status_code == 422
