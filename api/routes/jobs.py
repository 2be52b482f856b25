"""Background jobs: one followed by id (bulk reviews), and the jobs view by state (failed jobs, dead
mails, cancelled exports)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from api.cursors import SIGNED_CURSOR_PATTERN
from api.deps import ADMIN_ERRORS, CurrentAdmin, ReadLimit, Res
from api.models.jobs import Job, JobEntry
from api.pagination import Page
from api.problems import ProblemError, problem_responses
from api.queries import jobs as queries
from kamioi.job_list import MAX_PAGE, JobState

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], dependencies=[ReadLimit])

JobKind = Annotated[str, Query(pattern=r"^[a-z][a-z0-9_.]{0,62}$", description="Only this kind (`mail` for mails).")]


@router.get(
    "",
    summary="Jobs in one state, newest first (keyset pages, no count)",
    description=(
        "`failed` and `cancelled` are queue jobs that gave up or were stopped (a cancelled export is a"
        " cancelled `exports.csv` job); `dead` lists mails about finished jobs that SMTP refused until"
        " their last attempt (kind `mail`)."
    ),
    responses=ADMIN_ERRORS,
)
async def list_jobs(
    res: Res,
    _: CurrentAdmin,
    state: Annotated[JobState, Query()],
    kind: JobKind | None = None,
    cursor: Annotated[
        str | None, Query(pattern=SIGNED_CURSOR_PATTERN, description="next_cursor of the previous page")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
) -> Page[JobEntry]:
    scope = f"jobs:{state}:{kind or ''}"
    before_id = res.cursors.decode_id(scope, cursor) if cursor is not None else None
    rows = await queries.list_jobs(
        res.pool, state, kind, before_id, limit, timeout_s=res.settings.api_request_timeout_s
    )
    items = [JobEntry.model_validate(row) for row in rows]
    last = items[-1] if len(items) == limit else None
    return Page[JobEntry](items=items, next_cursor=res.cursors.encode(scope, (last.id,)) if last else None)


@router.get("/{job_id}", summary="A background job's state", responses={**ADMIN_ERRORS, **problem_responses(404)})
async def get_job(res: Res, _: CurrentAdmin, job_id: Annotated[int, Path(ge=1, le=2**63 - 1)]) -> Job:
    row = await queries.get_job(res.pool, job_id, timeout_s=res.settings.api_request_timeout_s)
    if row is None:
        raise ProblemError(404, f"no job {job_id}")
    return Job.model_validate(row)
