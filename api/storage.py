"""Download an object from Supabase Storage into the upload directory, streamed like an upload.

GET <storage>/object/<bucket>/<path> with the project's secret key (Storage's authenticated
download, what storage-js `download()` calls). Storage answers a missing object with 400 or 404.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import httpx

from api.problems import ProblemError
from api.spool import SpooledFile, disk_sink, too_large


async def download_object(
    http: httpx.AsyncClient,
    *,
    storage_url: str,
    secret_key: str,
    bucket: str,
    object_path: str,
    directory: Path,
    max_bytes: int,
) -> SpooledFile:
    url = f"{storage_url.rstrip('/')}/object/{quote(bucket, safe='')}/{quote(object_path.lstrip('/'))}"
    headers = {"Authorization": f"Bearer {secret_key}", "apikey": secret_key}
    try:
        async with http.stream("GET", url, headers=headers) as response:
            if response.status_code in (400, 404):
                raise ProblemError(404, f"no object {object_path} in bucket {bucket}")
            if response.status_code != 200:
                raise ProblemError(502, f"Storage answered {response.status_code}")
            declared = response.headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > max_bytes:
                raise too_large(max_bytes)
            async with disk_sink(directory, max_bytes) as (sink, path):
                async for chunk in response.aiter_bytes():
                    await sink.write([chunk])
    except httpx.HTTPError as error:
        raise ProblemError(502, f"Storage is unreachable: {type(error).__name__}") from error
    return SpooledFile(path=path, size=sink.size, sha256=sink.sha256)
