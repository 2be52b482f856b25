"""CSV exports of the admin lists as background report jobs."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from api.models.mappings import MappingFilters, MappingSort
from api.models.transactions import TransactionFilters
from api.models.users import UserFilters


class TransactionsExport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    list: Literal["transactions"]
    filters: TransactionFilters = Field(default_factory=TransactionFilters)


class MappingsExport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    list: Literal["mappings"]
    filters: MappingFilters = Field(default_factory=MappingFilters)
    sort: MappingSort = "newest"


class UsersExport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    list: Literal["users"]
    filters: UserFilters = Field(default_factory=UserFilters)


ExportRequest = Annotated[TransactionsExport | MappingsExport | UsersExport, Field(discriminator="list")]


class ExportJob(BaseModel):
    """A row of public.export_jobs, for the admin who asked for it (other admins get 404): follow it here
    or on the realtime topic `admin:exports`."""

    id: int
    list: Literal["transactions", "mappings", "users"]
    filters: dict[str, object]
    sort: str | None
    state: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    rows_written: int
    bytes_written: int
    file_name: str | None
    file_sha256: str | None
    download_url: str | None = Field(
        description="Set once the export has succeeded: a Storage link signed for EXPORT_LINK_TTL_S (minutes),"
        " anew on each read, or the API's download path when the file is not in Storage."
    )
    attempts: int
    error: str | None
    cancel_requested: bool
    created_at: AwareDatetime
    started_at: AwareDatetime | None
    finished_at: AwareDatetime | None
