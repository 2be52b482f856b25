"""The admin users list: each user with totals the database maintains (nothing is counted per request)."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from api.models.filters import ListQuery, SearchText


class UserFilters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Case-insensitive; the list is then ordered by email.
    email_prefix: SearchText | None = None
    role: Literal["admin", "user"] | None = None


class UserListQuery(UserFilters, ListQuery):
    limit: int = Field(default=100, ge=1, le=100)


class AdminUser(BaseModel):
    id: UUID
    email: str | None
    display_name: str | None
    role: Literal["admin", "user"]
    created_at: AwareDatetime
    updated_at: AwareDatetime
    transactions: int
    round_ups: Decimal
    invested: Decimal
