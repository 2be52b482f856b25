from __future__ import annotations

from typing import Literal, Self
from urllib.parse import unquote
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

ImportKind = Literal["mappings", "transactions"]


class ImportJob(BaseModel):
    """A row of public.import_jobs: state and progress of one imported file."""

    id: int
    kind: ImportKind
    state: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    file_path: str
    file_sha256: str
    file_size: int
    total_rows: int | None
    total_rows_exact: bool
    processed_rows: int
    inserted_rows: int
    updated_rows: int
    rejected_rows: int
    rows_per_second: float | None
    eta_seconds: float | None
    attempts: int
    error: str | None
    created_by: UUID | None
    force: bool
    cancel_requested: bool
    created_at: AwareDatetime
    started_at: AwareDatetime | None
    finished_at: AwareDatetime | None
    updated_at: AwareDatetime


class Rejection(BaseModel):
    """One rejected line of an import (line 1 is the header; column null means the whole line)."""

    id: int
    line_number: int
    column_name: str | None
    reason: str
    raw_line: str | None
    created_at: AwareDatetime


class StorageObject(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bucket: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._-]+$")
    path: str = Field(min_length=1, max_length=1024, description="The object's path inside the bucket.")

    @field_validator("path")
    @classmethod
    def stays_in_bucket(cls, path: str) -> str:
        # The path is appended to Storage's URL, and URL clients resolve dot segments: "../../auth/v1/..."
        # would send the project's secret key to another Supabase endpoint. The storage client also
        # percent-decodes the path (and refuses dot segments it finds then): "%2e%2e" is one too.
        for candidate in (path, unquote(path)):
            if any(segment in (".", "..") for segment in candidate.replace("\\", "/").split("/")):
                raise ValueError("path must not contain . or .. segments")
        if any(ord(char) < 32 or ord(char) == 127 for char in path):
            raise ValueError("path must not contain control characters")
        return path


class ImportRequest(BaseModel):
    """Import a file already on the server (under the upload directory) or a Supabase Storage object."""

    model_config = ConfigDict(extra="forbid")

    kind: ImportKind
    file_path: str | None = Field(
        default=None, min_length=1, max_length=4096, description="Absolute, or relative to the upload directory."
    )
    storage_object: StorageObject | None = Field(
        default=None, description="Downloaded (streamed, size-limited) into the upload directory first."
    )
    force: bool = Field(default=False, description="Import again even if this file was imported before.")

    @model_validator(mode="after")
    def one_source(self) -> Self:
        if (self.file_path is None) == (self.storage_object is None):
            raise ValueError("give exactly one of file_path or storage_object")
        return self
