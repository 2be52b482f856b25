"""Registers the `import` job kind: payload {"import_job_id": <public.import_jobs id>}."""

from __future__ import annotations

from jobs.context import JobContext
from jobs.errors import PermanentJobError
from jobs.imports.pipeline import run_import
from jobs.registry import Outcome, job_handler

IMPORT_JOB_KIND = "import"


@job_handler(IMPORT_JOB_KIND)
def import_file(ctx: JobContext) -> Outcome:
    import_job_id = ctx.job.payload.get("import_job_id")
    if not isinstance(import_job_id, int):
        raise PermanentJobError(f"payload lacks an integer import_job_id: {ctx.job.payload}")
    return run_import(ctx, import_job_id)
