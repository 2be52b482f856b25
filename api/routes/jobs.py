"""Background jobs started through the API (bulk reviews), followed by id."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from api.deps import ADMIN_ERRORS, CurrentAdmin, ReadLimit, Res
from api.models.jobs import Job
from api.problems import ProblemError, problem_responses
from api.queries import jobs as queries

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], dependencies=[ReadLimit])


@router.get("/{job_id}", summary="A background job's state", responses={**ADMIN_ERRORS, **problem_responses(404)})
async def get_job(res: Res, _: CurrentAdmin, job_id: Annotated[int, Path(ge=1, le=2**63 - 1)]) -> Job:
    row = await queries.get_job(res.pool, job_id, timeout_s=res.settings.api_request_timeout_s)
    if row is None:
        raise ProblemError(404, f"no job {job_id}")
    return Job.model_validate(row)
