"""Oversized and malformed bodies, multipart abuse, and path traversal in file references: each a 4xx,
no file left behind, no import registered, no table changed (the module's data snapshot)."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from api.main import MAX_JSON_BODY_BYTES, create_app
from kamioi.settings import Settings
from tests.conftest import LocalStorage

pytestmark = pytest.mark.usefixtures("data_untouched")

UPLOAD_LIMIT = 64 * 1024


def chunks(total: int, size: int = 64 * 1024) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        yield b" " * min(size, total - sent)
        sent += size


async def achunks(data: bytes, size: int = 16 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def stored_objects(storage: LocalStorage) -> list[Path]:
    """Every object in the Storage stand-in (not an upload it is still discarding: no client sees those)."""
    return [
        path
        for path in storage.objects.root.rglob("*")
        if path.is_file() and ".storage" not in path.parts and not path.name.startswith(".upload-")
    ]


@pytest.fixture(scope="module")
async def small_uploads(api_settings: Settings, storage_server: LocalStorage) -> AsyncIterator[httpx.AsyncClient]:
    """An app whose uploads may be at most 64 KB, streamed into the Storage stand-in."""
    storage_server.clear()
    app = create_app(
        api_settings.model_copy(
            update={"supabase_storage_url": storage_server.url, "api_upload_max_bytes": UPLOAD_LIMIT}
        )
    )
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        yield http


JSON_BODIES = {
    "2 MB with content-length": (
        json.dumps({"descriptors": ["x" * 400] * 5000}).encode(),
        413,
    ),
    "deeply nested arrays": (b'{"descriptors": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", 400),
    "deeply nested objects": (b'{"a":' * 50_000 + b"1" + b"}" * 50_000, 400),
    "101 descriptors": (json.dumps({"descriptors": ["SHOP"] * 101}).encode(), 422),
    "a 501-character descriptor": (json.dumps({"descriptors": ["x" * 501]}).encode(), 422),
    "an integer of 5000 digits": (b'{"descriptors": ["A"], "save": ' + b"9" * 5000 + b"}", 400),
    "NaN and Infinity": (b'{"descriptors": [NaN, Infinity]}', 422),
    "not JSON": (b"descriptors=SHOP", 422),
    "truncated JSON": (b'{"descriptors": ["SHOP"', 422),
    "empty body": (b"", 422),
    "invalid UTF-8": (b'{"descriptors": ["\xff\xfe"]}', 400),
}


@pytest.mark.parametrize("name", JSON_BODIES, ids=list(JSON_BODIES))
async def test_json_body(name: str, client: httpx.AsyncClient, admin_headers: dict[str, str]) -> None:
    content, status = JSON_BODIES[name]
    response = await client.post(
        "/v1/mappings/resolve", content=content, headers={**admin_headers, "content-type": "application/json"}
    )
    assert response.status_code == status, (name, response.text[:300])
    assert response.headers["content-type"] == "application/problem+json"


async def test_json_body_without_length_is_cut_off_at_the_limit(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    """Chunked: no Content-Length to refuse up front, so the body is counted while it arrives."""
    sent = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal sent
        for chunk in chunks(64 * MAX_JSON_BODY_BYTES):
            sent += len(chunk)
            yield chunk

    response = await client.post(
        "/v1/mappings/bulk-review", content=body(), headers={**admin_headers, "content-type": "application/json"}
    )
    assert response.status_code == 413
    assert sent < 4 * MAX_JSON_BODY_BYTES, "the API read far past its limit before refusing"


@pytest.fixture(scope="module")
def outside_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    secret = tmp_path_factory.mktemp("outside") / "secret.csv"
    secret.write_text("user_id,txn_date,descriptor,amount\n")
    return secret


def server_paths(outside: Path) -> dict[str, str]:
    up = os.path.relpath(outside)
    return {
        "dot-dot to /etc/passwd": "../../../../../../../../etc/passwd",
        "absolute /etc/passwd": "/etc/passwd",
        "dot-dot to a CSV outside": up,
        "absolute CSV outside": str(outside),
        "proc environ": "/proc/self/environ",
        "device": "/dev/zero",
        "file URL": "file:///etc/passwd",
        "home": "~/.ssh/id_rsa",
        "NUL byte": "a.csv\x00../../etc/passwd",
    }


async def test_no_server_path_is_ever_read(
    client: httpx.AsyncClient, admin_headers: dict[str, str], outside_file: Path
) -> None:
    """The API reads no file of its own disk: a `file_path` (the old way) is refused whatever it names."""
    for name, file_path in server_paths(outside_file).items():
        for kind in ("transactions", "mappings"):
            body = {"kind": kind, "file_path": file_path, "storage_object": {"bucket": "imports", "path": "a.csv"}}
            response = await client.post("/v1/imports", json=body, headers=admin_headers)
            assert response.status_code == 422, (name, response.status_code, response.text)
            assert response.headers["content-type"] == "application/problem+json"


STORAGE_PATHS = {
    "dot-dot out of the bucket": ("../../../auth/v1/admin/users", 422),
    "dot segment": ("a/./b.csv", 422),
    "backslash dot-dot": ("..\\..\\auth\\v1\\admin\\users", 422),
    "CR LF": ("a.csv\r\nX-Injected: 1", 422),
    "percent-encoded dot-dot": ("%2e%2e/%2e%2e/auth/v1/admin/users", 422),
    "query string stays literal": ("a.csv?download=1&token=x", 404),
    "fragment stays literal": ("a.csv#x", 404),
    "dot-dot after a query mark": ("a.csv?download=../../x", 422),
}


@pytest.mark.parametrize("name", STORAGE_PATHS, ids=list(STORAGE_PATHS))
async def test_storage_object_path_stays_in_its_bucket(
    name: str, client: httpx.AsyncClient, admin_headers: dict[str, str], storage_requests: list[str]
) -> None:
    path, status = STORAGE_PATHS[name]
    response = await client.post(
        "/v1/imports",
        json={"kind": "transactions", "storage_object": {"bucket": "imports", "path": path}},
        headers=admin_headers,
    )
    assert response.status_code == status, response.text
    # The storage client signs the object first (POST /object/sign/<bucket>/<path>).
    assert all(r.startswith("/storage/v1/object/sign/imports/") for r in storage_requests), storage_requests
    assert all(".." not in r.split("?")[0].split("/") for r in storage_requests), storage_requests


def multipart(parts: list[tuple[str, str | None, bytes]], boundary: str = "kamioiboundary") -> bytes:
    out = b""
    for name, filename, data in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename is not None else "")
        out += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + data + b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


CSV = b"user_id,txn_date,descriptor,amount\n"
MULTIPART = "multipart/form-data; boundary=kamioiboundary"
UPLOADS = {
    "file over the limit": (multipart([("file", "a.csv", CSV + b"x" * UPLOAD_LIMIT)]), MULTIPART, 413),
    "nine form fields": (multipart([(f"f{n}", None, b"v") for n in range(9)]), MULTIPART, 422),
    "a 5 KB form field": (multipart([("note", None, b"v" * 5000), ("file", "a.csv", CSV)]), MULTIPART, 422),
    "two file parts": (multipart([("file", "a.csv", CSV), ("file", "b.csv", CSV)]), MULTIPART, 422),
    "no file part": (multipart([("note", None, b"v")]), MULTIPART, 422),
    "not multipart": (CSV, "text/csv", 415),
    "no boundary": (CSV, "multipart/form-data", 400),
    "garbage after the boundary": (b"--kamioiboundary\r\n\x00\x01garbage", MULTIPART, 400),
}


@pytest.mark.parametrize("name", UPLOADS, ids=list(UPLOADS))
async def test_upload_abuse(
    name: str, small_uploads: httpx.AsyncClient, admin_headers: dict[str, str], storage_server: LocalStorage
) -> None:
    content, content_type, status = UPLOADS[name]
    response = await small_uploads.post(
        "/v1/imports/upload",
        params={"kind": "transactions"},
        content=content,
        headers={**admin_headers, "content-type": content_type},
    )
    assert response.status_code == status, (name, response.text)
    assert not stored_objects(storage_server), "a refused upload left an object behind"


async def test_streamed_upload_over_the_limit_stops_early(
    small_uploads: httpx.AsyncClient, admin_headers: dict[str, str], storage_server: LocalStorage
) -> None:
    """No Content-Length: the upload is counted as it streams into Storage and cut off at the limit."""
    body = multipart([("file", "big.csv", CSV + b"1" * (100 * UPLOAD_LIMIT))])
    response = await small_uploads.post(
        "/v1/imports/upload",
        params={"kind": "transactions"},
        content=achunks(body),
        headers={**admin_headers, "content-type": MULTIPART},
    )
    assert response.status_code == 413
    assert not stored_objects(storage_server)
