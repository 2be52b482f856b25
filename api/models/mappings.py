from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal, Self
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from api.models.filters import ListQuery, NoNulText, SearchText, require_ordered
from kamioi.mapping.normalizer import MAX_DESCRIPTOR_CHARS
from kamioi.mapping.providers.base import Category

Decision = Literal["approved", "rejected"]


class Mapping(BaseModel):
    """A row of public.llm_mappings; (id, created_at) is its key."""

    id: int
    created_at: AwareDatetime
    merchant_name: str
    merchant_key: str
    company_name: str | None
    ticker: str | None
    category: str | None
    confidence: float | None
    status: Literal["pending", "approved", "rejected"]
    admin_approved: bool
    source: str
    tier: str | None
    model: str | None
    prompt_version: str | None
    reason: str | None
    reviewer: UUID | None
    reviewed_at: AwareDatetime | None
    updated_at: AwareDatetime
    import_job_id: int | None
    submitted_by: UUID | None
    # The provider's side (null state: never sent to one). 'failed' is asked again at next_attempt_at;
    # 'gave_up' failed provider_attempts times and waits for an admin like any pending mapping.
    provider_state: Literal["asking", "failed", "gave_up", "answered"] | None
    provider_attempts: int
    provider_error: str | None
    next_attempt_at: AwareDatetime | None


class ReviewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Decision
    created_at: AwareDatetime = Field(description="The mapping's created_at (part of its primary key).")


class MappingKey(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: int = Field(ge=1, le=2**63 - 1)
    created_at: AwareDatetime


class BulkReviewFilter(BaseModel):
    """Pending mappings matching every given field; omitted fields do not filter."""

    model_config = ConfigDict(extra="forbid")

    category: Category | None = None
    source: Literal["llm", "admin", "import", "catalog", "user"] | None = None
    tier: Literal["approved", "catalog", "similarity", "llm", "review"] | None = None
    # No NUL: PostgreSQL text cannot hold one (it would fail in the database as a 500, not here as a 422).
    merchant_key: str | None = Field(default=None, min_length=1, max_length=200, pattern=r"^[^\x00]*$")
    import_job_id: int | None = Field(default=None, ge=1, le=2**63 - 1)
    min_confidence: float | None = Field(default=None, ge=0, le=1)
    max_confidence: float | None = Field(default=None, ge=0, le=1)
    created_after: AwareDatetime | None = None
    created_before: AwareDatetime | None = None


class BulkReviewRequest(BaseModel):
    """Exactly one of `ids` (up to 1000 mappings) or `filter`. Only pending mappings change. Approval by
    filter never approves a user's suggestion (source user): approve those by id."""

    model_config = ConfigDict(extra="forbid")

    decision: Decision
    ids: list[MappingKey] | None = Field(default=None, min_length=1, max_length=1000)
    filter: BulkReviewFilter | None = None

    @model_validator(mode="after")
    def one_selection(self) -> Self:
        if (self.ids is None) == (self.filter is None):
            raise ValueError("give exactly one of ids or filter")
        return self


class JobAccepted(BaseModel):
    job_id: int
    kind: str
    status_url: str = Field(description="Where to follow the job.")


Descriptor = Annotated[str, StringConstraints(min_length=1, max_length=MAX_DESCRIPTOR_CHARS)]


class ResolveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    descriptors: list[Descriptor] = Field(
        min_length=1, max_length=100, description="Raw card descriptors; larger batches go through an import."
    )
    save: bool = Field(
        default=False, description="Write new mappings (pending or approved by policy); false is a dry run."
    )


class ResolvedMerchant(BaseModel):
    merchant_key: str
    display_name: str
    company: str | None
    ticker: str | None
    category: str | None
    confidence: float | None
    tier: Literal["approved", "catalog", "similarity", "llm", "review"]
    status: Literal["approved", "pending", "rejected"]
    mapping_id: int | None
    mapping_created_at: AwareDatetime | None


class ResolvedDescriptor(BaseModel):
    descriptor: str
    processor: str | None = Field(description="Payment processor prefix found in the descriptor (SQ *, TST* ...).")
    merchant: ResolvedMerchant


class ResolveResponse(BaseModel):
    results: list[ResolvedDescriptor]


MappingSort = Literal["newest", "confidence_desc", "confidence_asc"]


class MappingFilters(BaseModel):
    """The LLM Center's filters; every given one must hold. `search` is a merchant-name substring."""

    model_config = ConfigDict(extra="forbid")

    status: Literal["pending", "approved", "rejected"] | None = None
    admin_approved: bool | None = None
    category: Category | None = None
    source: Literal["llm", "admin", "import", "catalog", "user"] | None = None
    tier: Literal["approved", "catalog", "similarity", "llm", "review"] | None = None
    confidence_min: Decimal | None = Field(default=None, ge=0, le=1, max_digits=5, decimal_places=4)
    confidence_max: Decimal | None = Field(default=None, ge=0, le=1, max_digits=5, decimal_places=4)
    merchant_key_prefix: NoNulText | None = None
    created_from: AwareDatetime | None = None
    created_to: AwareDatetime | None = None
    # A trigram needs three characters; shorter terms would scan.
    search: Annotated[SearchText, Field(min_length=3)] | None = None

    @model_validator(mode="after")
    def ranges_are_ordered(self) -> Self:
        require_ordered("confidence", self.confidence_min, self.confidence_max)
        require_ordered("created", self.created_from, self.created_to)
        return self


class MappingListQuery(MappingFilters, ListQuery):
    sort: MappingSort = "newest"
    limit: int = Field(default=50, ge=1, le=50)
