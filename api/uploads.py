"""Multipart uploads streamed into Supabase Storage: never held in memory nor written to the API's disk,
size-capped, hashed while they arrive.

Starlette's form parser would spool the file and hand it over only after the whole body arrived;
here each chunk of the request body goes through python-multipart and on into one streamed Storage
upload, and the upload is refused (413) the moment it passes the limit: the Storage request is then
abandoned, so no object is created.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import PurePosixPath, PureWindowsPath

import httpx
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from api.problems import ProblemError
from kamioi.settings import Settings
from kamioi.storage import StorageRefused, StorageUnavailable, upload_stream

FILE_FIELD = "file"
MAX_TEXT_FIELD_BYTES = 4096
MAX_TEXT_FIELDS = 8
# Multipart framing around the file: boundaries, part headers and a few small text fields.
FRAMING_ALLOWANCE = MAX_TEXT_FIELDS * MAX_TEXT_FIELD_BYTES + 16 * 1024


def too_large(max_bytes: int) -> ProblemError:
    return ProblemError(413, f"the file is larger than the limit of {max_bytes} bytes")


def storage_problem(error: StorageUnavailable | StorageRefused) -> ProblemError:
    if isinstance(error, StorageRefused) and error.status == 413:
        return ProblemError(413, f"Storage refused the file as too large: {error}")
    return ProblemError(502, f"Storage did not take the file: {error}")


class CappedDigest:
    """Size and sha256 of bytes going by; refuses (413) past max_bytes."""

    def __init__(self, max_bytes: int) -> None:
        self._max_bytes = max_bytes
        self._digest = hashlib.sha256()
        self.size = 0

    def update(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self._max_bytes:
            raise too_large(self._max_bytes)
        self._digest.update(chunk)

    @property
    def sha256(self) -> str:
        return self._digest.hexdigest()


@dataclass(frozen=True)
class StoredUpload:
    bucket: str
    path: str
    filename: str
    size: int
    sha256: str
    fields: dict[str, str] = field(default_factory=dict)


class _Receiver:
    """python-multipart callbacks: file bytes are queued for the writer, text fields kept (small)."""

    def __init__(self) -> None:
        self.pending: list[bytes] = []
        self.fields: dict[str, str] = {}
        self.filename: str | None = None
        self._header_name = b""
        self._header_value = b""
        self._disposition = b""
        self._part_name = ""
        self._in_file = False
        self._text = bytearray()

    def on_part_begin(self) -> None:
        self._disposition, self._part_name, self._in_file, self._text = b"", "", False, bytearray()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        if self._header_name.lower() == b"content-disposition":
            self._disposition = self._header_value
        self._header_name, self._header_value = b"", b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        self._part_name = options.get(b"name", b"").decode("utf-8", "replace")
        if self._part_name == FILE_FIELD and b"filename" in options:
            if self.filename is not None:
                raise ProblemError(422, f"send exactly one `{FILE_FIELD}` part")
            self.filename = _display_name(options[b"filename"].decode("utf-8", "replace"))
            self._in_file = True
        elif len(self.fields) >= MAX_TEXT_FIELDS:
            raise ProblemError(422, f"at most {MAX_TEXT_FIELDS} form fields besides the file")

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        chunk = data[start:end]
        if self._in_file:
            self.pending.append(chunk)
        else:
            self._text += chunk
            if len(self._text) > MAX_TEXT_FIELD_BYTES:
                raise ProblemError(422, f"form field `{self._part_name}` is too long")

    def on_part_end(self) -> None:
        if not self._in_file and self._part_name:
            self.fields[self._part_name] = self._text.decode("utf-8", "replace")


def _display_name(raw: str) -> str:
    """Only the last path component of what the browser sent, for display; never used as a path."""
    name = PureWindowsPath(PurePosixPath(raw).name).name.strip()
    return name[:255] or "upload"


def _boundary(request: Request) -> bytes:
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    if content_type != b"multipart/form-data":
        raise ProblemError(415, "send the file as multipart/form-data")
    boundary = params.get(b"boundary")
    if not boundary:
        raise ProblemError(400, "multipart body without a boundary")
    return boundary


async def receive_upload(
    request: Request, http: httpx.AsyncClient, settings: Settings, *, bucket: str, object_path: str, max_bytes: int
) -> StoredUpload:
    """Stream the request's `file` part into a new Storage object `bucket`/`object_path`."""
    boundary = _boundary(request)
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes + FRAMING_ALLOWANCE:
        raise too_large(max_bytes)  # refused before reading a byte
    receiver = _Receiver()
    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": receiver.on_part_begin,
            "on_header_field": receiver.on_header_field,
            "on_header_value": receiver.on_header_value,
            "on_header_end": receiver.on_header_end,
            "on_headers_finished": receiver.on_headers_finished,
            "on_part_data": receiver.on_part_data,
            "on_part_end": receiver.on_part_end,
        },
    )
    digest = CappedDigest(max_bytes)

    async def file_bytes() -> AsyncIterator[bytes]:
        async for chunk in request.stream():
            try:
                parser.write(chunk)
            except FormParserError as error:
                raise ProblemError(400, "malformed multipart body") from error
            if receiver.pending:
                batch, receiver.pending = b"".join(receiver.pending), []
                digest.update(batch)
                yield batch
        try:
            parser.finalize()
        except FormParserError as error:
            raise ProblemError(400, "malformed multipart body") from error
        if receiver.filename is None:
            raise ProblemError(422, f"the form has no `{FILE_FIELD}` file part")

    try:
        await upload_stream(http, settings, bucket=bucket, object_path=object_path, chunks=file_bytes())
    except (StorageUnavailable, StorageRefused) as error:
        raise storage_problem(error) from error
    assert receiver.filename is not None  # file_bytes() ran to its end
    return StoredUpload(
        bucket=bucket,
        path=object_path,
        filename=receiver.filename,
        size=digest.size,
        sha256=digest.sha256,
        fields=receiver.fields,
    )
