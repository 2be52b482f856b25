from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

ReplicaStatus = Literal["ok", "lagging", "unavailable", "none"]


class Liveness(BaseModel):
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    status: Literal["ready", "degraded", "unavailable"]
    database: Literal["ok", "unavailable"]
    cache: Literal["ok", "unavailable"]
    replica: ReplicaStatus = Field(
        description="The read replica (READ_REPLICA_URL): lagging or unavailable means reads go to the primary;"
        " none: not configured."
    )
    replica_lag_s: float | None = Field(description="Replay lag of the read replica, when it answers.")
