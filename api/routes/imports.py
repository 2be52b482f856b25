"""Bulk imports: upload a CSV (streamed to disk) or name a file on the server; follow, list, cancel, retry."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, status
from fastapi import Path as PathParam

from api.deps import ADMIN_ERRORS, CurrentAdmin, ReadLimit, Res, UploadLimit, WriteLimit
from api.models.imports import ImportJob, ImportKind, ImportRequest, Rejection
from api.pagination import CURSOR_PATTERN, Page, decode_int_pair, decode_timestamp_id, encode_cursor
from api.problems import ProblemError, problem_responses
from api.queries import imports as queries
from api.storage import download_object
from api.uploads import FILE_FIELD, receive_upload
from jobs.imports import service

router = APIRouter(prefix="/v1/imports", tags=["imports"])

ImportId = Annotated[int, PathParam(ge=1, le=2**63 - 1)]
Cursor = Annotated[str | None, Query(pattern=CURSOR_PATTERN)]

UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": [FILE_FIELD],
                    "properties": {FILE_FIELD: {"type": "string", "format": "binary", "description": "The CSV."}},
                }
            }
        },
    }
}


@router.post(
    "/upload",
    status_code=status.HTTP_201_CREATED,
    summary="Upload a CSV (multipart, streamed to disk, size-limited) and queue its import",
    responses={**ADMIN_ERRORS, **problem_responses(400, 409, 413, 415, 507)},
    dependencies=[UploadLimit],
    openapi_extra=UPLOAD_BODY,
)
async def upload(
    request: Request,
    res: Res,
    admin: CurrentAdmin,
    kind: ImportKind,
    force: Annotated[bool, Query(description="Import again even if this file was imported before.")] = False,
) -> ImportJob:
    stored = await receive_upload(request, directory=res.upload_dir, max_bytes=res.settings.api_upload_max_bytes)
    try:
        row = await queries.create(
            res.pool,
            admin,
            kind=kind,
            file_path=stored.path,
            sha256=stored.sha256,
            size=stored.size,
            force=force,
        )
    except BaseException:
        await asyncio.to_thread(stored.path.unlink, missing_ok=True)  # no job will ever read it
        raise
    return ImportJob.model_validate(row)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Queue the import of a file on the server (under the upload directory) or in Supabase Storage",
    responses={**ADMIN_ERRORS, **problem_responses(404, 409, 413, 502, 507)},
    dependencies=[WriteLimit],
)
async def start_import(res: Res, admin: CurrentAdmin, body: ImportRequest) -> ImportJob:
    settings = res.settings
    downloaded = body.storage_object is not None
    if body.storage_object is not None:
        spooled = await download_object(
            res.http,
            settings,
            bucket=body.storage_object.bucket,
            object_path=body.storage_object.path,
            directory=res.upload_dir,
            max_bytes=settings.api_upload_max_bytes,
        )
        path, size, sha256 = spooled.path, spooled.size, spooled.sha256
    else:
        assert body.file_path is not None
        path = _inside(res.upload_dir, body.file_path)
        sha256, size = await asyncio.to_thread(service.file_fingerprint, path)
    try:
        row = await queries.create(
            res.pool,
            admin,
            kind=body.kind,
            file_path=path,
            sha256=sha256,
            size=size,
            force=body.force,
        )
    except BaseException:
        if downloaded:  # our copy; a file the admin named stays where it was
            await asyncio.to_thread(path.unlink, missing_ok=True)
        raise
    return ImportJob.model_validate(row)


@router.get(
    "",
    summary="Import jobs, newest first (keyset pages)",
    responses={**ADMIN_ERRORS, **problem_responses(400)},
    dependencies=[ReadLimit],
)
async def list_imports(
    res: Res, admin: CurrentAdmin, cursor: Cursor = None, limit: Annotated[int, Query(ge=1, le=100)] = 50
) -> Page[ImportJob]:
    after = decode_timestamp_id(cursor) if cursor is not None else None
    rows = await queries.page(res.pool, admin, after, limit, timeout_s=res.settings.api_request_timeout_s)
    items = [ImportJob.model_validate(row) for row in rows]
    next_cursor = encode_cursor(items[-1].created_at, items[-1].id) if len(items) == limit else None
    return Page[ImportJob](items=items, next_cursor=next_cursor)


@router.get(
    "/{import_id}",
    summary="One import job: state and progress",
    responses={**ADMIN_ERRORS, **problem_responses(404)},
    dependencies=[ReadLimit],
)
async def get_import(res: Res, admin: CurrentAdmin, import_id: ImportId) -> ImportJob:
    row = await queries.get(res.pool, admin, import_id, timeout_s=res.settings.api_request_timeout_s)
    if row is None:
        raise ProblemError(404, f"no import job {import_id}")
    return ImportJob.model_validate(row)


@router.post(
    "/{import_id}/cancel",
    summary="Cancel: a queued job at once, a running one after its current chunk",
    responses={**ADMIN_ERRORS, **problem_responses(404)},
    dependencies=[WriteLimit],
)
async def cancel_import(res: Res, _: CurrentAdmin, import_id: ImportId) -> ImportJob:
    row = await queries.cancel(res.pool, import_id)
    return ImportJob.model_validate(row)


@router.post(
    "/{import_id}/retry",
    summary="Retry a failed or cancelled import: queued again, it resumes at its checkpoint",
    description=(
        "Rows and rejections already committed stay and are never written twice; duplicates of lines"
        " before the checkpoint are still caught. 409 when the import is queued, running or succeeded,"
        " or when the same file was imported again since (then `force=true` retries anyway)."
    ),
    responses={**ADMIN_ERRORS, **problem_responses(404, 409)},
    dependencies=[WriteLimit],
)
async def retry_import(
    res: Res,
    _: CurrentAdmin,
    import_id: ImportId,
    force: Annotated[bool, Query(description="Retry even if the same file was imported again since.")] = False,
) -> ImportJob:
    row = await queries.retry(res.pool, import_id, force=force)
    return ImportJob.model_validate(row)


@router.get(
    "/{import_id}/rejections",
    summary="The rejected-rows report, in file order (keyset pages)",
    responses={**ADMIN_ERRORS, **problem_responses(400, 404)},
    dependencies=[ReadLimit],
)
async def rejections(
    res: Res,
    admin: CurrentAdmin,
    import_id: ImportId,
    cursor: Cursor = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Page[Rejection]:
    timeout_s = res.settings.api_request_timeout_s
    if await queries.get(res.pool, admin, import_id, timeout_s=timeout_s) is None:
        raise ProblemError(404, f"no import job {import_id}")
    after = decode_int_pair(cursor) if cursor is not None else None
    rows = await queries.rejections(res.pool, admin, import_id, after, limit, timeout_s=timeout_s)
    items = [Rejection.model_validate(row) for row in rows]
    next_cursor = encode_cursor(items[-1].line_number, items[-1].id) if len(items) == limit else None
    return Page[Rejection](items=items, next_cursor=next_cursor)


def _inside(root: Path, file_path: str) -> Path:
    """The named file, only if it is a regular file under `root` (no escaping with .. or symlinks)."""
    resolved_root = root.resolve()
    try:
        candidate = (resolved_root / file_path).resolve()
        is_file = candidate.is_file()
    except (OSError, ValueError) as error:  # NUL bytes, names too long for the file system
        raise ProblemError(422, "file_path is not a usable path") from error
    if not candidate.is_relative_to(resolved_root):
        raise ProblemError(422, "file_path must be under the upload directory")
    if not is_file:
        raise ProblemError(404, "no such file in the upload directory")
    return candidate
