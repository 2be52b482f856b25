"""Imports: streamed upload (size limit, hash), start from a server path, get, list, cancel, rejections."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

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


@pytest.fixture
def upload_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "uploads"
    directory.mkdir()
    return directory


def files_in(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir())


def write_csv(directory: Path, name: str) -> None:
    (directory / name).write_bytes(unique_csv())


@pytest.fixture
async def imports_client(app_client: AppClient, upload_dir: Path) -> Any:
    async with app_client(api_upload_dir=str(upload_dir), api_upload_max_bytes=64 * 1024) as client:
        yield client


@pytest.fixture
def cleanup_jobs(owner_db: psycopg.Connection[Any]) -> Iterator[list[int]]:
    created: list[int] = []
    yield created
    for import_id in created:
        owner_db.execute("select private.cancel_import_job(%s)", (import_id,))


async def test_upload_streams_to_disk_and_queues_the_import(
    imports_client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    admin_id: str,
    upload_dir: Path,
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
    stored = Path(job["file_path"])
    assert stored.parent == upload_dir
    assert files_in(upload_dir) == [stored.name]
    assert stored.read_bytes() == content  # noqa: ASYNC240 (a test's few bytes)
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
    assert files_in(upload_dir) == [stored.name]  # the duplicate was not kept


async def test_upload_over_the_limit_is_413_and_leaves_nothing(
    imports_client: httpx.AsyncClient, admin_headers: dict[str, str], upload_dir: Path
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
    assert files_in(upload_dir) == []


async def test_declared_length_over_the_limit_is_refused_before_reading(
    app_client: AppClient, admin_headers: dict[str, str], upload_dir: Path
) -> None:
    async with app_client(api_upload_dir=str(upload_dir), api_upload_max_bytes=1024) as client:
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


async def test_import_from_server_path_get_list_cancel(
    imports_client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    upload_dir: Path,
    cleanup_jobs: list[int],
) -> None:
    write_csv(upload_dir, "nightly.csv")
    created = await imports_client.post(
        "/v1/imports", json={"kind": "transactions", "file_path": "nightly.csv"}, headers=admin_headers
    )
    assert created.status_code == 201, created.text
    job = created.json()
    cleanup_jobs.append(job["id"])

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


@pytest.mark.parametrize(("file_path", "status"), [("../../etc/passwd", 422), ("/etc/passwd", 422), ("nope.csv", 404)])
async def test_server_path_must_stay_in_the_upload_dir(
    imports_client: httpx.AsyncClient, admin_headers: dict[str, str], upload_dir: Path, file_path: str, status: int
) -> None:
    response = await imports_client.post(
        "/v1/imports", json={"kind": "transactions", "file_path": file_path}, headers=admin_headers
    )
    assert response.status_code == status


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
    upload_dir: Path,
    cleanup_jobs: list[int],
    owner_db: psycopg.Connection[Any],
) -> None:
    write_csv(upload_dir, "bad.csv")
    job = (
        await imports_client.post(
            "/v1/imports", json={"kind": "transactions", "file_path": "bad.csv"}, headers=admin_headers
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
