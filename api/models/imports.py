from __future__ import annotations

from urllib.parse import unquote

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from jobs.imports.service import ImportJob, ImportKind

__all__ = ["ImportJob", "ImportKind", "ImportRequest", "Rejection", "SignedUpload", "StorageObject", "UploadRequest"]


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
    """Import a Supabase Storage object (uploaded through a signed upload URL, or already in a bucket)."""

    model_config = ConfigDict(extra="forbid")

    kind: ImportKind
    storage_object: StorageObject = Field(description="Read once here to hash it; the worker streams it.")
    force: bool = Field(default=False, description="Import again even if this file was imported before.")


class UploadRequest(BaseModel):
    """Ask for a signed URL to upload a CSV straight to Storage (the file never passes the API)."""

    model_config = ConfigDict(extra="forbid")

    filename: str = Field(
        default="upload.csv", min_length=1, max_length=255, description="Shown in the object's name only."
    )


class SignedUpload(BaseModel):
    """Where and how the browser uploads; then `POST /v1/imports` with `storage_object`."""

    storage_object: StorageObject
    upload_url: str = Field(description="PUT the file here (multipart `file` or the raw body); no key needed.")
    token: str = Field(description="The upload's permission, for a resumable upload's `x-signature` header.")
    resumable_url: str = Field(
        description="TUS endpoint for a resumable upload (tus-js-client, Uppy): send `x-signature: <token>` and"
        " metadata bucketName, objectName (the storage_object's), contentType."
    )
    expires_at: AwareDatetime
