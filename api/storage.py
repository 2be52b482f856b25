"""Imports from a Supabase Storage object: streamed into the upload directory like an upload.

The Storage calls are kamioi.storage's (supabase-py's storage client); here its errors become the
API's problems: a missing object 404, Storage failing or unreachable 502, too large 413.
"""

from __future__ import annotations

from pathlib import Path

import httpx

from api.problems import ProblemError
from api.spool import SpooledFile, disk_sink, too_large
from kamioi.settings import Settings
from kamioi.storage import StorageObjectMissing, StorageUnavailable, open_object


async def download_object(
    http: httpx.AsyncClient, settings: Settings, *, bucket: str, object_path: str, directory: Path, max_bytes: int
) -> SpooledFile:
    try:
        async with open_object(http, settings, bucket=bucket, object_path=object_path) as stream:
            if stream.declared_size is not None and stream.declared_size > max_bytes:
                raise too_large(max_bytes)
            async with disk_sink(directory, max_bytes) as (sink, path):
                async for chunk in stream.chunks:
                    await sink.write([chunk])
    except StorageObjectMissing as error:
        raise ProblemError(404, str(error)) from error
    except StorageUnavailable as error:
        raise ProblemError(502, str(error)) from error
    return SpooledFile(path=path, size=sink.size, sha256=sink.sha256)
