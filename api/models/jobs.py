from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, BaseModel


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
