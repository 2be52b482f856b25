"""Imports from a Supabase Storage object: hashed as it streams by (never written to the API's disk).

The Storage calls are kamioi.storage's (supabase-py's storage client); here its errors become the
API's problems: a missing object 404, Storage failing or unreachable 502, too large 413.
"""

from __future__ import annotations

import httpx

from api.problems import ProblemError
from api.uploads import CappedDigest, too_large
from jobs.imports.service import StoredFile
from kamioi.settings import Settings
from kamioi.storage import StorageObjectMissing, StorageUnavailable, open_object


async def fingerprint_object(
    http: httpx.AsyncClient, settings: Settings, *, bucket: str, object_path: str, max_bytes: int
) -> StoredFile:
    """The object's size, sha256 and ETag (the version a worker will insist on), read once."""
    digest = CappedDigest(max_bytes)
    try:
        async with open_object(http, settings, bucket=bucket, object_path=object_path) as stream:
            if stream.declared_size is not None and stream.declared_size > max_bytes:
                raise too_large(max_bytes)
            async for chunk in stream.chunks:
                digest.update(chunk)
    except StorageObjectMissing as error:
        raise ProblemError(404, str(error)) from error
    except StorageUnavailable as error:
        raise ProblemError(502, str(error)) from error
    return StoredFile(path=object_path, sha256=digest.sha256, size=digest.size, bucket=bucket, etag=stream.etag)
