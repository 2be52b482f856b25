"""CSV exports of the admin lists: queued as report jobs, followed, cancelled, downloaded.

An export is the requesting admin's: other admins get 404 on all of it (the read policy). Its link is
a Storage URL signed for EXPORT_LINK_TTL_S each time its admin reads it, never a stored one."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, status
from fastapi.responses import FileResponse, RedirectResponse

from api.auth import Principal
from api.deps import ADMIN_ERRORS, CurrentAdmin, ReadLimit, Res, WriteLimit
from api.models.exports import ExportJob, ExportRequest
from api.problems import ProblemError, problem_responses
from api.queries import exports as queries
from api.resources import Resources
from kamioi.storage import StorageObjectMissing, StorageUnavailable, sign_download

router = APIRouter(prefix="/v1/exports", tags=["exports"])

ExportId = Annotated[int, Path(ge=1, le=2**63 - 1)]


async def _own_export(res: Resources, admin: Principal, export_id: int) -> dict[str, Any]:
    row = await queries.get(res.pool, admin, export_id, timeout_s=res.settings.api_request_timeout_s)
    if row is None:
        raise ProblemError(404, f"no export {export_id}")
    return row


async def _signed_link(res: Resources, row: dict[str, Any]) -> str | None:
    """A fresh short-lived link to the export's copy in Storage; None when there is none to sign."""
    if row["state"] != "succeeded" or not row["storage_bucket"] or not row["storage_path"]:
        return None
    try:
        return await sign_download(
            res.http,
            res.settings,
            bucket=row["storage_bucket"],
            object_path=row["storage_path"],
            expires_s=res.settings.export_link_ttl_s,
        )
    except (StorageObjectMissing, StorageUnavailable):
        return None


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Export a filtered admin list as CSV, in the background (progress on realtime `admin:exports`)",
    responses=ADMIN_ERRORS,
    dependencies=[WriteLimit],
)
async def create_export(res: Res, admin: CurrentAdmin, body: ExportRequest) -> ExportJob:
    row = await queries.create(
        res.pool,
        admin,
        list_name=body.list,
        filters=body.filters.model_dump(mode="json", exclude_none=True),
        sort=getattr(body, "sort", None),
        timeout_s=res.settings.api_request_timeout_s,
    )
    return ExportJob.model_validate(row)


@router.get(
    "/{export_id}",
    summary="An export's state and progress; once it succeeded, a download link signed for minutes",
    responses={**ADMIN_ERRORS, **problem_responses(404)},
    dependencies=[ReadLimit],
)
async def get_export(res: Res, admin: CurrentAdmin, export_id: ExportId) -> ExportJob:
    row = await _own_export(res, admin, export_id)
    link = await _signed_link(res, row)
    return ExportJob.model_validate({**row, "download_url": link or row["download_url"]})


@router.post(
    "/{export_id}/cancel",
    summary="Cancel an export (a running one stops after its chunk; its partial file is deleted)",
    responses={**ADMIN_ERRORS, **problem_responses(404)},
    dependencies=[WriteLimit],
)
async def cancel_export(res: Res, admin: CurrentAdmin, export_id: ExportId) -> ExportJob:
    await _own_export(res, admin, export_id)
    return ExportJob.model_validate(
        await queries.cancel(res.pool, export_id, timeout_s=res.settings.api_request_timeout_s)
    )


@router.get(
    "/{export_id}/download",
    summary="The finished CSV: streamed from the worker's disk, or a redirect to a short-lived Storage link",
    response_class=FileResponse,
    response_model=None,
    responses={**ADMIN_ERRORS, **problem_responses(404, 409), 307: {"description": "A signed Storage link"}},
    dependencies=[ReadLimit],
)
async def download_export(res: Res, admin: CurrentAdmin, export_id: ExportId) -> FileResponse | RedirectResponse:
    row = await _own_export(res, admin, export_id)
    if row["state"] != "succeeded" or row["file_name"] is None:
        raise ProblemError(409, f"export {export_id} is {row['state']}; download it once it has succeeded")
    path = res.settings.exports_dir / row["file_name"]
    if path.is_file():
        return FileResponse(path, media_type="text/csv", filename=row["file_name"])
    link = await _signed_link(res, row)
    if link is None:
        raise ProblemError(404, f"the file of export {export_id} is gone")
    return RedirectResponse(link, status_code=status.HTTP_307_TEMPORARY_REDIRECT)
