from __future__ import annotations

from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, Field

from kamioi.job_list import JobState


class Job(BaseModel):
    """A background job in the durable queue (private.job_queue)."""

    id: int
    kind: str
    state: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    attempts: int
    max_attempts: int
    cancel_requested: bool
    last_error: str | None
    created_at: AwareDatetime
    started_at: AwareDatetime | None
    finished_at: AwareDatetime | None


class JobEntry(BaseModel):
    """One row of the jobs view: a queue job, or (kind `mail`, state `dead`) a mail that was never sent."""

    id: int = Field(description="The queue job's id, or the outbox mail's id for kind `mail`.")
    kind: str
    state: JobState
    attempts: int
    last_error: str | None
    created_at: AwareDatetime
    finished_at: AwareDatetime | None = Field(description="For a dead mail: its last attempt.")
    payload: dict[str, Any] = Field(
        description="The job's payload; for a mail: the job it was about (job_kind, job_id), recipient."
    )
    bad_input: bool = Field(description="Failed because of its input (the user's file), not the system.")
