"""CSV exports of the admin lists: queued as report jobs, followed, cancelled, downloaded."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, status
from fastapi.responses import FileResponse

from api.deps import ADMIN_ERRORS, CurrentAdmin, ReadLimit, Res, WriteLimit
from api.models.exports import ExportJob, ExportRequest
from api.problems import ProblemError, problem_responses
from api.queries import exports as queries

router = APIRouter(prefix="/v1/exports", tags=["exports"])

ExportId = Annotated[int, Path(ge=1, le=2**63 - 1)]


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
    summary="An export's state and progress",
    responses={**ADMIN_ERRORS, **problem_responses(404)},
    dependencies=[ReadLimit],
)
async def get_export(res: Res, admin: CurrentAdmin, export_id: ExportId) -> ExportJob:
    row = await queries.get(res.pool, admin, export_id, timeout_s=res.settings.api_request_timeout_s)
    if row is None:
        raise ProblemError(404, f"no export {export_id}")
    return ExportJob.model_validate(row)


@router.post(
    "/{export_id}/cancel",
    summary="Cancel an export (a running one stops after its chunk; its partial file is deleted)",
    responses={**ADMIN_ERRORS, **problem_responses(404)},
    dependencies=[WriteLimit],
)
async def cancel_export(res: Res, _: CurrentAdmin, export_id: ExportId) -> ExportJob:
    return ExportJob.model_validate(
        await queries.cancel(res.pool, export_id, timeout_s=res.settings.api_request_timeout_s)
    )


@router.get(
    "/{export_id}/download",
    summary="The finished CSV (streamed from disk)",
    response_class=FileResponse,
    responses={**ADMIN_ERRORS, **problem_responses(404, 409)},
    dependencies=[ReadLimit],
)
async def download_export(res: Res, admin: CurrentAdmin, export_id: ExportId) -> FileResponse:
    row = await queries.get(res.pool, admin, export_id, timeout_s=res.settings.api_request_timeout_s)
    if row is None:
        raise ProblemError(404, f"no export {export_id}")
    if row["state"] != "succeeded" or row["file_name"] is None:
        raise ProblemError(409, f"export {export_id} is {row['state']}; download it once it has succeeded")
    path = res.settings.exports_dir / row["file_name"]
    if not path.is_file():
        raise ProblemError(404, f"the file of export {export_id} is gone")
    return FileResponse(path, media_type="text/csv", filename=row["file_name"])
