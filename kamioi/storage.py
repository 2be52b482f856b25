"""Supabase Storage through supabase-py's storage client (storage3), with the project's secret key.

Imports (no file ever lands on the API's disk):
- `sign_upload` (async, admin API): a signed upload URL for one new object, which the admin's browser
  uploads to directly (PUT), or resumably over TUS (`<storage>/upload/resumable/sign`, the token in
  `x-signature`), the way supabase-js and tus-js-client do.
- `upload_stream` (async, admin API's multipart route): a request body streamed into an object as it
  arrives. storage3's upload takes a whole file or bytes, so this one call is a plain streamed POST of
  Storage's upload endpoint.
- `open_object` (async, registering an import): the client signs a short-lived URL, then the object
  is streamed from it (hashed by the caller), never held in memory (storage3's `download()` returns
  the whole body as bytes).
- `ObjectReader` (sync, the worker): an object read with HTTP range requests from any offset, so a
  resumed import starts at its checkpoint; every response must carry the ETag recorded at
  registration. storage3 has no ranged or streamed download, so this is a plain GET with `Range`.
Exports: `upload_file` (sync, worker threads) uploads a local file (multipart, streamed from disk,
overwriting); `sign_download` (async, admin API) signs a short-lived download URL for the admin who
asked for the export, each time they ask (EXPORT_LINK_TTL_S).

Locally `kamioi up` runs a Storage stand-in speaking the same protocol (local_stack/standins/storage_server.py).
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterable, AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import httpx
from storage3.exceptions import StorageApiError
from supabase import ASupabaseStorageClient, SupabaseStorageClient

from kamioi.settings import Settings

# A signed URL only has to outlive the download that follows it at once.
DOWNLOAD_SIGNATURE_S = 60
# How long Storage honours a signed upload URL (its default; a hosted project can change it).
UPLOAD_SIGNATURE_S = 2 * 3600
UPLOAD_TIMEOUT = httpx.Timeout(30.0, write=300.0)
READ_TIMEOUT = httpx.Timeout(30.0)
# A range read cut by the network is reopened at the byte it reached, this many times in a row.
READ_REOPENS = 3
READ_BLOCK = 1 << 18
# Each range request asks for at most this much: a reader that stops early (a header read, a job
# handed back) leaves at most one window unread on the wire.
READ_WINDOW = 8 << 20


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


def _object_url(settings: Settings, bucket: str, object_path: str) -> str:
    return f"{storage_url(settings)}object/authenticated/{quote(bucket)}/{quote(object_path)}"


@dataclass(frozen=True)
class StorageObjectStream:
    declared_size: int | None  # Content-Length, when Storage sent one
    etag: str | None  # the object's version as Storage names it
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
            etag = response.headers.get("etag")
            yield StorageObjectStream(declared_size=size, etag=etag, chunks=response.aiter_bytes())
    except httpx.HTTPError as error:
        raise StorageUnavailable(f"Storage is unreachable: {type(error).__name__}") from error


@dataclass(frozen=True)
class SignedUpload:
    bucket: str
    path: str
    url: str  # PUT the file here (no key needed) until the token expires
    token: str  # the same permission, for a resumable upload's `x-signature` header
    resumable_url: str  # the TUS endpoint for signed resumable uploads


async def sign_upload(http: httpx.AsyncClient, settings: Settings, *, bucket: str, object_path: str) -> SignedUpload:
    """Permission to upload one new object (never replacing one). Raises StorageUnavailable."""
    client = ASupabaseStorageClient(storage_url(settings), _headers(settings), http_client=http)
    try:
        signed = await client.from_(bucket).create_signed_upload_url(object_path)
    except StorageApiError as error:
        raise StorageUnavailable(f"Storage answered {error.status}: {error.message}") from error
    except httpx.HTTPError as error:
        raise StorageUnavailable(f"Storage is unreachable: {type(error).__name__}") from error
    return SignedUpload(
        bucket=bucket,
        path=object_path,
        url=signed["signed_url"],
        token=signed["token"],
        resumable_url=f"{storage_url(settings)}upload/resumable/sign",
    )


class StorageRefused(Exception):
    """Storage refused an upload (the object exists, the bucket's size limit, no such bucket)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


async def upload_stream(
    http: httpx.AsyncClient,
    settings: Settings,
    *,
    bucket: str,
    object_path: str,
    chunks: AsyncIterable[bytes],
    content_type: str = "text/csv",
) -> None:
    """Stream `chunks` into a new object (never replacing one). Raises StorageRefused, StorageUnavailable;
    an exception from `chunks` propagates and the object is not created."""
    headers = {**_headers(settings), "content-type": content_type, "x-upsert": "false"}
    try:
        response = await http.post(
            f"{storage_url(settings)}object/{quote(bucket)}/{quote(object_path)}",
            content=chunks,
            headers=headers,
            timeout=UPLOAD_TIMEOUT,
        )
    except httpx.HTTPError as error:
        raise StorageUnavailable(f"Storage is unreachable: {type(error).__name__}") from error
    if response.status_code != 200:
        status, message = _error_of(response)
        if status in (400, 404, 409, 413, 415):
            raise StorageRefused(status, message)
        raise StorageUnavailable(f"Storage answered {status}: {message}")


def _error_of(response: httpx.Response) -> tuple[int, str]:
    """Storage's error: (the status it means, its message); the body's statusCode wins over HTTP's."""
    try:
        body = response.json()
        return int(body.get("statusCode", response.status_code)), str(body.get("message", ""))
    except (ValueError, AttributeError):
        return response.status_code, response.text[:200]


async def remove_object(http: httpx.AsyncClient, settings: Settings, *, bucket: str, object_path: str) -> None:
    """Delete an object (nothing if it is gone). Raises StorageUnavailable."""
    client = ASupabaseStorageClient(storage_url(settings), _headers(settings), http_client=http)
    try:
        await client.from_(bucket).remove([object_path])
    except StorageApiError as error:
        raise StorageUnavailable(f"Storage answered {error.status}: {error.message}") from error
    except httpx.HTTPError as error:
        raise StorageUnavailable(f"Storage is unreachable: {type(error).__name__}") from error


async def object_etag(http: httpx.AsyncClient, settings: Settings, *, bucket: str, object_path: str) -> str | None:
    """The object's ETag (its version), read with a HEAD. Raises StorageObjectMissing, StorageUnavailable."""
    try:
        response = await http.head(_object_url(settings, bucket, object_path), headers=_headers(settings))
    except httpx.HTTPError as error:
        raise StorageUnavailable(f"Storage is unreachable: {type(error).__name__}") from error
    if response.status_code in (400, 404):
        raise StorageObjectMissing(f"no object {object_path} in bucket {bucket}")
    if response.status_code != 200:
        raise StorageUnavailable(f"Storage answered {response.status_code}")
    etag: str | None = response.headers.get("etag")
    return etag


class ObjectChanged(Exception):
    """The object is not the one registered (its ETag or size differs), or it is gone."""


class ObjectReader(io.RawIOBase):
    """A Storage object as a seekable binary file, read with streamed range requests of READ_WINDOW bytes
    from the current offset; a response cut short is reopened where it stopped (READ_REOPENS times in a row).
    Wrap it in io.BufferedReader for readline. Raises ObjectChanged, StorageUnavailable."""

    def __init__(self, settings: Settings, *, bucket: str, object_path: str, size: int, etag: str | None) -> None:
        super().__init__()
        self._url = _object_url(settings, bucket, object_path)
        self._headers = _headers(settings)
        self._size, self._etag = size, etag
        self._name = f"{bucket}/{object_path}"
        self._http = httpx.Client(timeout=READ_TIMEOUT)
        self._position = 0
        self._window_end = 0
        self._response: httpx.Response | None = None
        self._blocks: Iterator[bytes] | None = None
        self._pending = b""
        self.requests = 0  # range requests made: a resumed read starts at its offset, not at 0

    def verify(self) -> None:
        """The object is still the one registered: same size and (when recorded) the same ETag."""
        try:
            response = self._http.head(self._url, headers=self._headers)
        except httpx.HTTPError as error:
            raise StorageUnavailable(f"Storage is unreachable: {type(error).__name__}") from error
        if response.status_code in (400, 404):
            raise ObjectChanged(f"the object {self._name} is gone")
        if response.status_code != 200:
            raise StorageUnavailable(f"Storage answered {response.status_code}")
        self._check(response, expected_length=self._size)

    def _check(self, response: httpx.Response, *, expected_length: int) -> None:
        etag = response.headers.get("etag")
        if self._etag is not None and etag != self._etag:
            raise ObjectChanged(f"the object {self._name} changed since it was registered (ETag {etag})")
        length = response.headers.get("content-length")
        if length is not None and int(length) != expected_length:
            raise ObjectChanged(f"the object {self._name} changed since it was registered: {length} bytes")

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        target = {io.SEEK_SET: offset, io.SEEK_CUR: self._position + offset, io.SEEK_END: self._size + offset}[whence]
        if target != self._position:
            self._drop()
            self._position = target
        return self._position

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self._position >= self._size or len(buffer) == 0:
            return 0
        failures = 0
        while not self._pending:
            try:
                self._pending = next(self._open(), b"")
            except httpx.TransportError as error:  # cut mid-stream: reopen at the byte reached
                failure: Exception | None = error
            else:
                if self._pending:
                    break
                if self._position >= self._window_end:  # this window is read: on to the next
                    self._drop()
                    continue
                failure = None  # the response ended early
            self._drop()
            failures += 1
            if failures > READ_REOPENS:
                raise StorageUnavailable(f"reading {self._name} at byte {self._position} failed: {failure!r}")
        count = min(len(buffer), len(self._pending))
        buffer[:count] = self._pending[:count]
        self._pending = self._pending[count:]
        self._position += count
        return count

    def _open(self) -> Iterator[bytes]:
        if self._blocks is None:
            self._window_end = min(self._position + READ_WINDOW, self._size)
            window = f"bytes={self._position}-{self._window_end - 1}"
            request = self._http.build_request("GET", self._url, headers={**self._headers, "Range": window})
            try:
                self._response = self._http.send(request, stream=True)
            except httpx.HTTPError as error:
                raise StorageUnavailable(f"Storage is unreachable: {type(error).__name__}") from error
            self.requests += 1
            status = self._response.status_code
            if status in (400, 404):
                raise ObjectChanged(f"the object {self._name} is gone")
            if status != 206:
                raise StorageUnavailable(f"Storage answered {status} to a range read of {self._name}")
            self._check(self._response, expected_length=self._window_end - self._position)
            self._blocks = self._response.iter_raw(READ_BLOCK)
        return self._blocks

    def _drop(self) -> None:
        self._pending, self._blocks = b"", None
        if self._response is not None:
            self._response.close()
            self._response = None

    def close(self) -> None:
        self._drop()
        self._http.close()
        super().close()


def upload_new_file(settings: Settings, *, bucket: str, object_path: str, file: Path) -> str | None:
    """Upload `file` as a new object (never replacing one); returns its ETag. Blocking. Raises
    StorageUnavailable."""
    with httpx.Client(timeout=UPLOAD_TIMEOUT) as http:
        client = SupabaseStorageClient(storage_url(settings), _headers(settings), http_client=http)
        try:
            client.from_(bucket).upload(object_path, file, {"content-type": "text/csv"})
            response = http.head(_object_url(settings, bucket, object_path), headers=_headers(settings))
        except StorageApiError as error:
            raise StorageUnavailable(f"Storage answered {error.status}: {error.message}") from error
        except httpx.HTTPError as error:
            raise StorageUnavailable(f"Storage is unreachable: {type(error).__name__}") from error
    if response.status_code != 200:
        raise StorageUnavailable(f"Storage answered {response.status_code} for the uploaded object")
    etag: str | None = response.headers.get("etag")
    return etag


def upload_file(
    settings: Settings, *, bucket: str, object_path: str, file: Path, content_type: str = "text/csv"
) -> None:
    """Upload `file` to `bucket`/`object_path`, replacing an object already there (a retried export
    overwrites its first try). Blocking: call it from a worker thread. Raises StorageUnavailable (the
    job's retry is the retry)."""
    with httpx.Client(timeout=UPLOAD_TIMEOUT) as http:
        client = SupabaseStorageClient(storage_url(settings), _headers(settings), http_client=http)
        try:
            client.from_(bucket).upload(object_path, file, {"content-type": content_type, "upsert": "true"})
        except StorageApiError as error:
            raise StorageUnavailable(f"Storage answered {error.status}: {error.message}") from error
        except httpx.HTTPError as error:
            raise StorageUnavailable(f"Storage is unreachable: {type(error).__name__}") from error


async def sign_download(
    http: httpx.AsyncClient, settings: Settings, *, bucket: str, object_path: str, expires_s: int
) -> str:
    """A download URL for one object that needs no key and works for `expires_s` seconds.
    Raises StorageObjectMissing, StorageUnavailable."""
    client = ASupabaseStorageClient(storage_url(settings), _headers(settings), http_client=http)
    try:
        signed = await client.from_(bucket).create_signed_url(object_path, expires_s)
    except StorageApiError as error:
        if _is_missing(error):
            raise StorageObjectMissing(f"no object {object_path} in bucket {bucket}") from error
        raise StorageUnavailable(f"Storage answered {error.status}") from error
    except httpx.HTTPError as error:
        raise StorageUnavailable(f"Storage is unreachable: {type(error).__name__}") from error
    return _signed(signed["signedURL"])
