"""Supabase Storage through supabase-py's storage client (storage3), with the project's secret key.

Two calls, one per direction:
- `open_object` (async, the admin API's imports from a bucket): the client signs a short-lived URL
  for the object (POST /object/sign/...; a missing object is Storage's 400/404), then the object is
  streamed from that URL, never held in memory (the client's own `download()` returns the whole
  body as bytes).
- `upload_file_with_link` (sync, for worker threads: report exports): the client uploads a local
  file (multipart, streamed from disk, overwriting) and signs a download URL for it.

Locally `kamioi up` runs a Storage stand-in speaking the same protocol (local_stack/standins/storage_server.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from storage3.exceptions import StorageApiError
from supabase import ASupabaseStorageClient, SupabaseStorageClient

from kamioi.settings import Settings

# A signed URL only has to outlive the download that follows it at once.
DOWNLOAD_SIGNATURE_S = 60
UPLOAD_TIMEOUT = httpx.Timeout(30.0, write=300.0)


class StorageObjectMissing(Exception):
    """The bucket has no such object (or no such bucket)."""


class StorageUnavailable(Exception):
    """Storage could not be reached or answered with an error; the message says which."""


def storage_url(settings: Settings) -> str:
    """Storage's REST root, with the trailing slash the client joins paths onto."""
    url = settings.supabase_storage_url or f"{settings.supabase_url.rstrip('/')}/storage/v1"
    return url.rstrip("/") + "/"


def _headers(settings: Settings) -> dict[str, str]:
    key = settings.supabase_secret_key
    return {"Authorization": f"Bearer {key}", "apikey": key}


def _is_missing(error: StorageApiError) -> bool:
    # Storage answers a missing object with HTTP 400 and statusCode "404" in the body.
    return str(error.status) in ("400", "404") or error.code in ("not_found", "NoSuchKey", "NoSuchBucket")


def _signed(url: str | None) -> str:
    if url is None:
        raise StorageUnavailable("Storage signed no URL")
    return url


@dataclass(frozen=True)
class StorageObjectStream:
    declared_size: int | None  # Content-Length, when Storage sent one
    chunks: AsyncIterator[bytes]


@asynccontextmanager
async def open_object(
    http: httpx.AsyncClient, settings: Settings, *, bucket: str, object_path: str
) -> AsyncIterator[StorageObjectStream]:
    """Stream an object. Raises StorageObjectMissing, StorageUnavailable."""
    client = ASupabaseStorageClient(storage_url(settings), _headers(settings), http_client=http)
    try:
        try:
            signed = await client.from_(bucket).create_signed_url(object_path, DOWNLOAD_SIGNATURE_S)
        except StorageApiError as error:
            if _is_missing(error):
                raise StorageObjectMissing(f"no object {object_path} in bucket {bucket}") from error
            raise StorageUnavailable(f"Storage answered {error.status}") from error
        async with http.stream("GET", _signed(signed["signedURL"])) as response:
            if response.status_code in (400, 404):
                raise StorageObjectMissing(f"no object {object_path} in bucket {bucket}")
            if response.status_code != 200:
                raise StorageUnavailable(f"Storage answered {response.status_code}")
            declared = response.headers.get("content-length")
            size = int(declared) if declared is not None and declared.isdigit() else None
            yield StorageObjectStream(declared_size=size, chunks=response.aiter_bytes())
    except httpx.HTTPError as error:
        raise StorageUnavailable(f"Storage is unreachable: {type(error).__name__}") from error


@dataclass(frozen=True)
class UploadedObject:
    bucket: str
    path: str
    signed_url: str  # a GET of this URL downloads the object, no key needed, until expires_at
    expires_at: datetime


def upload_file_with_link(
    settings: Settings,
    *,
    bucket: str,
    object_path: str,
    file: Path,
    content_type: str = "text/csv",
    link_expires_s: int = 7 * 86400,
) -> UploadedObject:
    """Upload `file` to `bucket`/`object_path` (replacing an object already there, so a retried
    export overwrites its first try) and sign a download link. Blocking: call it from a worker
    thread. Raises StorageUnavailable (the job's retry is the retry)."""
    with httpx.Client(timeout=UPLOAD_TIMEOUT) as http:
        client = SupabaseStorageClient(storage_url(settings), _headers(settings), http_client=http)
        objects = client.from_(bucket)
        try:
            objects.upload(object_path, file, {"content-type": content_type, "upsert": "true"})
            signed_url = _signed(objects.create_signed_url(object_path, link_expires_s)["signedURL"])
        except StorageApiError as error:
            raise StorageUnavailable(f"Storage answered {error.status}: {error.message}") from error
        except httpx.HTTPError as error:
            raise StorageUnavailable(f"Storage is unreachable: {type(error).__name__}") from error
    expires_at = datetime.now(UTC) + timedelta(seconds=link_expires_s)
    return UploadedObject(bucket=bucket, path=object_path, signed_url=signed_url, expires_at=expires_at)
