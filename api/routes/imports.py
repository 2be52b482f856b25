"""Bulk imports: a CSV goes to Supabase Storage (a signed upload from the browser, or the multipart route
streamed through), then a job names the object and a worker streams it; follow, list, cancel, retry.
No file is ever written to the API's disk."""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Security, status
from fastapi import Path as PathParam
from fastapi.responses import StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials

from api.auth import SERVICE, Principal
from api.cursors import SIGNED_CURSOR_PATTERN
from api.deps import (
    ADMIN_ERRORS,
    CurrentAdmin,
    ReadLimit,
    Res,
    UploadLimit,
    WriteLimit,
    apikey_scheme,
    bearer_scheme,
    require_admin,
)
from api.models.imports import (
    ImportJob,
    ImportKind,
    ImportRequest,
    Rejection,
    SignedUpload,
    StorageObject,
    UploadRequest,
)
from api.pagination import Page
from api.problems import ProblemError, problem_responses
from api.queries import imports as queries
from api.resources import Resources
from api.storage import fingerprint_object
from api.uploads import FILE_FIELD, receive_upload, storage_problem
from jobs.imports.report import aiter_rejections_csv
from jobs.imports.service import StoredFile
from kamioi.signed_links import SIGNATURE_PATTERN, link_is_valid
from kamioi.storage import (
    UPLOAD_SIGNATURE_S,
    StorageObjectMissing,
    StorageUnavailable,
    object_etag,
    remove_object,
    sign_upload,
)

router = APIRouter(prefix="/v1/imports", tags=["imports"])

ImportId = Annotated[int, PathParam(ge=1, le=2**63 - 1)]
Cursor = Annotated[str | None, Query(pattern=SIGNED_CURSOR_PATTERN, description="next_cursor of the previous page")]

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


def _new_object_path(admin: Principal, filename: str) -> str:
    """A fresh object per upload, under the uploader's folder; the name only keeps safe characters."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", filename).strip("._") or "upload.csv"
    return f"{admin.user_id or 'service'}/{uuid.uuid4().hex}/{safe[:100]}"


async def _discard(res: Resources, bucket: str, object_path: str) -> None:
    """Remove an object this request created and no job will read."""
    with contextlib.suppress(StorageUnavailable):  # an orphan costs room only; its name is unguessable
        await remove_object(res.http, res.settings, bucket=bucket, object_path=object_path)


@router.post(
    "/uploads",
    status_code=status.HTTP_201_CREATED,
    summary="A signed URL to upload a CSV straight to Storage (PUT, or resumable over TUS); then POST /v1/imports",
    responses={**ADMIN_ERRORS, **problem_responses(502)},
    dependencies=[UploadLimit],
)
async def sign_import_upload(res: Res, admin: CurrentAdmin, body: UploadRequest) -> SignedUpload:
    object_path = _new_object_path(admin, body.filename)
    try:
        signed = await sign_upload(res.http, res.settings, bucket=res.settings.import_bucket, object_path=object_path)
    except StorageUnavailable as error:
        raise ProblemError(502, str(error)) from error
    return SignedUpload(
        storage_object=StorageObject(bucket=signed.bucket, path=signed.path),
        upload_url=signed.url,
        token=signed.token,
        resumable_url=signed.resumable_url,
        expires_at=datetime.now(UTC) + timedelta(seconds=UPLOAD_SIGNATURE_S),
    )


@router.post(
    "/upload",
    status_code=status.HTTP_201_CREATED,
    summary="Upload a CSV (multipart, streamed into Storage, size-limited) and queue its import",
    responses={**ADMIN_ERRORS, **problem_responses(400, 409, 413, 415, 502)},
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
    settings = res.settings
    stored = await receive_upload(
        request,
        res.http,
        settings,
        bucket=settings.import_bucket,
        object_path=_new_object_path(admin, "upload.csv"),
        max_bytes=settings.api_upload_max_bytes,
    )
    try:
        etag = await object_etag(res.http, settings, bucket=stored.bucket, object_path=stored.path)
        file = StoredFile(path=stored.path, sha256=stored.sha256, size=stored.size, bucket=stored.bucket, etag=etag)
        return await queries.create(res.pool, admin, kind=kind, file=file, force=force)
    except StorageObjectMissing as error:
        raise ProblemError(502, f"Storage lost the uploaded file: {error}") from error
    except StorageUnavailable as error:
        await _discard(res, stored.bucket, stored.path)
        raise storage_problem(error) from error
    except BaseException:  # a duplicate, the database: no job will read the object
        await _discard(res, stored.bucket, stored.path)
        raise


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Queue the import of a Supabase Storage object (read once here to hash it; the worker streams it)",
    responses={**ADMIN_ERRORS, **problem_responses(404, 409, 413, 502)},
    dependencies=[WriteLimit],
)
async def start_import(res: Res, admin: CurrentAdmin, body: ImportRequest) -> ImportJob:
    file = await fingerprint_object(
        res.http,
        res.settings,
        bucket=body.storage_object.bucket,
        object_path=body.storage_object.path,
        max_bytes=res.settings.api_upload_max_bytes,
    )
    # The admin's object stays whatever happens: it was theirs before this request.
    return await queries.create(res.pool, admin, kind=body.kind, file=file, force=body.force)


@router.get(
    "",
    summary="Import jobs, newest first (keyset pages)",
    responses=ADMIN_ERRORS,
    dependencies=[ReadLimit],
)
async def list_imports(
    res: Res, admin: CurrentAdmin, cursor: Cursor = None, limit: Annotated[int, Query(ge=1, le=100)] = 50
) -> Page[ImportJob]:
    after = res.cursors.decode_timestamp_id("imports", cursor) if cursor is not None else None
    rows = await queries.page(res.pool, admin, after, limit, timeout_s=res.settings.api_request_timeout_s)
    items = [ImportJob.model_validate(row) for row in rows]
    last = items[-1] if len(items) == limit else None
    next_cursor = res.cursors.encode("imports", (last.created_at, last.id)) if last else None
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
    return await queries.cancel(res.pool, import_id)


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
    return await queries.retry(res.pool, import_id, force=force)


@router.get(
    "/{import_id}/rejections",
    summary="The rejected-rows report, in file order (keyset pages)",
    responses={**ADMIN_ERRORS, **problem_responses(404)},
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
    scope = f"rejections:{import_id}"
    after = res.cursors.decode_int_pair(scope, cursor) if cursor is not None else None
    rows = await queries.rejections(res.pool, admin, import_id, after, limit, timeout_s=timeout_s)
    items = [Rejection.model_validate(row) for row in rows]
    last = items[-1] if len(items) == limit else None
    next_cursor = res.cursors.encode(scope, (last.line_number, last.id)) if last else None
    return Page[Rejection](items=items, next_cursor=next_cursor)


@router.get(
    "/{import_id}/rejections.csv",
    summary="The rejected-rows report as CSV (line_number, column, reason, raw), in file order",
    description=(
        "Streamed, whatever its size. An admin token, or instead the `expires` and `signature` of a"
        " signed link (the mail about a finished import carries one): such a link opens without a token"
        " until it expires. Cells a spreadsheet would evaluate are prefixed with `'`."
    ),
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/csv": {"schema": {"type": "string"}}}},
        **ADMIN_ERRORS,
        **problem_responses(404),
    },
)
async def rejections_csv(
    request: Request,
    res: Res,
    import_id: ImportId,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)],
    apikey: Annotated[str | None, Security(apikey_scheme)],
    expires: Annotated[int | None, Query(ge=0, le=2**62, description="From a signed link.")] = None,
    signature: Annotated[str | None, Query(pattern=SIGNATURE_PATTERN, description="From a signed link.")] = None,
) -> StreamingResponse:
    if signature is not None or expires is not None:
        if (
            signature is None
            or expires is None
            or not link_is_valid(res.settings, request.url.path, expires, signature)
        ):
            raise ProblemError(403, "the link's signature is not valid, or the link has expired")
        caller = SERVICE
    else:
        token = bearer.credentials if bearer else None
        caller = await require_admin(res, await res.verifier.authenticate(token, apikey))
        await res.limits.check("reads", caller)
    if await queries.get(res.pool, caller, import_id, timeout_s=res.settings.api_request_timeout_s) is None:
        raise ProblemError(404, f"no import job {import_id}")

    async def body() -> AsyncIterator[bytes]:
        async with res.pool.connection() as conn:
            async for data in aiter_rejections_csv(conn, import_id):
                yield data

    return StreamingResponse(
        body(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="import-{import_id}-rejections.csv"'},
    )
