"""Imports: signed upload to Storage, multipart upload streamed into Storage (size limit, hash), start from a
Storage object, get, list, cancel, rejections. Nothing is written to the API's disk."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
import psycopg
import pytest

from tests.conftest import LocalStorage

# These tests check what the API queued; the stack's own worker would claim (or finish) it first.
pytestmark = pytest.mark.usefixtures("stack_worker_paused")

AppClient = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


def unique_csv(rows: int = 3) -> bytes:
    """Transactions CSV with a unique marker, so a rerun of the suite is never a duplicate file."""
    marker = uuid.uuid4().hex
    lines = ["user_id,txn_date,descriptor,amount"] + [
        f"00000000-0000-4000-a000-000000000002,2026-11-0{n + 1},STARBUCKS {marker} {n},4.{n}5" for n in range(rows)
    ]
    return ("\n".join(lines) + "\n").encode()


def objects_in(storage: LocalStorage, bucket: str = "imports") -> list[str]:
    root = storage.objects.root / bucket
    if not root.is_dir():
        return []
    found = [path for path in root.rglob("*") if path.is_file() and not path.name.startswith(".upload-")]
    return sorted(str(path.relative_to(root)) for path in found)


@pytest.fixture
async def imports_client(app_client: AppClient, storage_server: LocalStorage) -> Any:
    storage_server.clear()
    async with app_client(supabase_storage_url=storage_server.url, api_upload_max_bytes=64 * 1024) as client:
        yield client


def put_csv(storage: LocalStorage, path: str) -> bytes:
    content = unique_csv()
    storage.objects.put("imports", path, content)
    return content


@pytest.fixture
def cleanup_jobs(owner_db: psycopg.Connection[Any]) -> Iterator[list[int]]:
    created: list[int] = []
    yield created
    for import_id in created:
        owner_db.execute("select private.cancel_import_job(%s)", (import_id,))


async def test_upload_streams_into_storage_and_queues_the_import(
    imports_client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    admin_id: str,
    storage_server: LocalStorage,
    cleanup_jobs: list[int],
    owner_db: psycopg.Connection[Any],
) -> None:
    content = unique_csv()
    response = await imports_client.post(
        "/v1/imports/upload",
        params={"kind": "transactions"},
        files={"file": ("C:\\Users\\me\\purchases.csv", content, "text/csv")},
        headers=admin_headers,
    )
    assert response.status_code == 201, response.text
    job = response.json()
    cleanup_jobs.append(job["id"])
    assert (job["kind"], job["state"], job["created_by"]) == ("transactions", "queued", admin_id)
    assert job["file_sha256"] == hashlib.sha256(content).hexdigest()
    assert job["file_size"] == len(content)
    assert job["storage_bucket"] == "imports" and job["storage_etag"]
    assert job["file_path"].startswith(f"{admin_id}/") and job["file_path"].endswith("/upload.csv")
    assert objects_in(storage_server) == [job["file_path"]]
    assert storage_server.objects.read("imports", job["file_path"]) == content
    queued = owner_db.execute(
        "select kind, state from private.job_queue where payload->>'import_job_id' = %s", (str(job["id"]),)
    ).fetchone()
    assert queued == ("import", "queued")

    again = await imports_client.post(
        "/v1/imports/upload",
        params={"kind": "transactions"},
        files={"file": ("again.csv", content, "text/csv")},
        headers=admin_headers,
    )
    assert again.status_code == 409
    assert f"/v1/imports/{job['id']}" in again.json()["detail"]
    assert objects_in(storage_server) == [job["file_path"]]  # the duplicate's object was removed


async def test_upload_over_the_limit_is_413_and_leaves_nothing(
    imports_client: httpx.AsyncClient, admin_headers: dict[str, str], storage_server: LocalStorage
) -> None:
    big = b"x" * (64 * 1024 + 1)

    def chunks() -> Iterator[bytes]:
        # Sent chunked (no Content-Length), so the limit is enforced while streaming.
        boundary = b"kamioi-test-boundary"
        yield b"--" + boundary + b'\r\nContent-Disposition: form-data; name="file"; filename="big.csv"\r\n\r\n'
        for start in range(0, len(big), 8192):
            yield big[start : start + 8192]
        yield b"\r\n--" + boundary + b"--\r\n"

    response = await imports_client.post(
        "/v1/imports/upload",
        params={"kind": "transactions"},
        content=_AsyncBytes(chunks()),
        headers={**admin_headers, "Content-Type": "multipart/form-data; boundary=kamioi-test-boundary"},
    )
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert objects_in(storage_server) == []


async def test_declared_length_over_the_limit_is_refused_before_reading(
    app_client: AppClient, admin_headers: dict[str, str]
) -> None:
    async with app_client(api_upload_max_bytes=1024) as client:
        response = await client.post(
            "/v1/imports/upload",
            params={"kind": "transactions"},
            files={"file": ("big.csv", b"x" * 200_000, "text/csv")},
            headers=admin_headers,
        )
    assert response.status_code == 413


async def test_upload_must_be_multipart_with_a_file(
    imports_client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    not_multipart = await imports_client.post(
        "/v1/imports/upload", params={"kind": "transactions"}, content=b"a,b\n", headers=admin_headers
    )
    assert not_multipart.status_code == 415
    no_file = await imports_client.post(
        "/v1/imports/upload",
        params={"kind": "transactions"},
        data={"note": "hi"},
        files={"other": ("x.csv", b"a", "text/csv")},
        headers=admin_headers,
    )
    assert no_file.status_code == 422
    bad_kind = await imports_client.post(
        "/v1/imports/upload",
        params={"kind": "users"},
        files={"file": ("x.csv", b"a", "text/csv")},
        headers=admin_headers,
    )
    assert bad_kind.status_code == 422


async def test_signed_upload_then_import_get_list_cancel(
    imports_client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    admin_id: str,
    storage_server: LocalStorage,
    cleanup_jobs: list[int],
) -> None:
    body = {"filename": "../Nov 2026.csv"}
    signed = await imports_client.post("/v1/imports/uploads", json=body, headers=admin_headers)
    assert signed.status_code == 201, signed.text
    grant = signed.json()
    target = grant["storage_object"]
    assert target["bucket"] == "imports" and target["path"].startswith(f"{admin_id}/")
    assert target["path"].endswith("/Nov_2026.csv")  # only safe characters, no path of the browser's
    content = unique_csv()
    async with httpx.AsyncClient() as browser:  # no key: the token in the URL is the permission
        put = await browser.put(grant["upload_url"], files={"file": ("Nov 2026.csv", content, "text/csv")})
        assert put.status_code == 200, put.text
        # The grant is for one new object: it neither replaces it nor writes elsewhere.
        assert (await browser.put(grant["upload_url"], content=b"other")).status_code == 400
        elsewhere = grant["upload_url"].replace("/Nov_2026.csv?", "/other.csv?")
        assert (await browser.put(elsewhere, content=b"other")).status_code == 400
    assert storage_server.objects.read("imports", target["path"]) == content

    created = await imports_client.post(
        "/v1/imports", json={"kind": "transactions", "storage_object": target}, headers=admin_headers
    )
    assert created.status_code == 201, created.text
    job = created.json()
    cleanup_jobs.append(job["id"])
    assert job["file_sha256"] == hashlib.sha256(content).hexdigest()
    assert (job["storage_bucket"], job["file_path"]) == (target["bucket"], target["path"])

    fetched = await imports_client.get(f"/v1/imports/{job['id']}", headers=admin_headers)
    assert fetched.json()["file_sha256"] == job["file_sha256"]

    listed = await imports_client.get("/v1/imports", params={"limit": 1}, headers=admin_headers)
    page = listed.json()
    assert page["items"][0]["id"] == job["id"] and page["next_cursor"]
    older = await imports_client.get(
        "/v1/imports", params={"limit": 1, "cursor": page["next_cursor"]}, headers=admin_headers
    )
    assert all(item["id"] < job["id"] for item in older.json()["items"])

    cancelled = await imports_client.post(f"/v1/imports/{job['id']}/cancel", headers=admin_headers)
    assert (cancelled.status_code, cancelled.json()["state"]) == (200, "cancelled")


async def test_a_server_path_is_no_longer_a_source(
    imports_client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    response = await imports_client.post(
        "/v1/imports", json={"kind": "transactions", "file_path": "/etc/passwd"}, headers=admin_headers
    )
    assert response.status_code == 422


async def test_unknown_import_is_404(client: httpx.AsyncClient, admin_headers: dict[str, str]) -> None:
    for response in [
        await client.get("/v1/imports/999999999", headers=admin_headers),
        await client.post("/v1/imports/999999999/cancel", headers=admin_headers),
        await client.get("/v1/imports/999999999/rejections", headers=admin_headers),
    ]:
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"


async def test_rejected_rows_report_pages_in_file_order(
    imports_client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    storage_server: LocalStorage,
    cleanup_jobs: list[int],
    owner_db: psycopg.Connection[Any],
) -> None:
    put_csv(storage_server, "bad.csv")
    job = (
        await imports_client.post(
            "/v1/imports",
            json={"kind": "transactions", "storage_object": {"bucket": "imports", "path": "bad.csv"}},
            headers=admin_headers,
        )
    ).json()
    cleanup_jobs.append(job["id"])
    # What the worker writes for bad lines (inserted here in reverse order).
    for line in (7, 3, 5):
        owner_db.execute(
            "insert into public.import_rejections (import_job_id, line_number, column_name, reason, raw_line)"
            " values (%s, %s, 'amount', 'not a number', 'x,y,z')",
            (job["id"], line),
        )
    url = f"/v1/imports/{job['id']}/rejections"
    first = (await imports_client.get(url, params={"limit": 2}, headers=admin_headers)).json()
    assert [r["line_number"] for r in first["items"]] == [3, 5]
    rest = (
        await imports_client.get(url, params={"limit": 2, "cursor": first["next_cursor"]}, headers=admin_headers)
    ).json()
    assert [r["line_number"] for r in rest["items"]] == [7]
    assert rest["next_cursor"] is None


class _AsyncBytes(httpx.AsyncByteStream):
    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks

    async def __aiter__(self) -> Any:
        for chunk in self._chunks:
            yield chunk
