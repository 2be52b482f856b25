"""The admin transactions list: filters (query parameters) and rows with their allocations."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Literal, Self
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from api.models.filters import BigId, ListQuery, NoNulText, require_ordered

TransactionStatus = Literal["pending", "mapped", "invested", "failed"]
Amount = Decimal


class TransactionFilters(BaseModel):
    """Every given filter must hold; omitted ones do not filter."""

    model_config = ConfigDict(extra="forbid")

    status: TransactionStatus | None = None
    user_id: UUID | None = None
    merchant_key: NoNulText | None = None
    mapping_id: BigId | None = None
    import_job_id: BigId | None = None
    date_from: dt.date | None = Field(default=None, description="txn_date on or after")
    date_to: dt.date | None = Field(default=None, description="txn_date on or before")
    amount_min: Amount | None = Field(default=None, ge=-(10**10), le=10**10, max_digits=12, decimal_places=2)
    amount_max: Amount | None = Field(default=None, ge=-(10**10), le=10**10, max_digits=12, decimal_places=2)

    @model_validator(mode="after")
    def ranges_are_ordered(self) -> Self:
        require_ordered("date", self.date_from, self.date_to)
        require_ordered("amount", self.amount_min, self.amount_max)
        return self


class TransactionListQuery(TransactionFilters, ListQuery):
    limit: int = Field(default=100, ge=1, le=100)


class Allocation(BaseModel):
    id: int
    kind: Literal["buy", "reversal"]
    lot: int
    ticker: str
    amount: Decimal
    shares: Decimal
    price: Decimal | None
    created_at: AwareDatetime


class AdminTransaction(BaseModel):
    """A row of public.transactions with its merchant, ticker and allocations (one query per page)."""

    id: int
    user_id: UUID
    txn_date: dt.date
    descriptor: str
    merchant_key: str | None
    amount: Decimal
    round_up: Decimal
    status: TransactionStatus
    mapping_id: int | None
    import_job_id: int | None
    import_line: int | None
    allocation_lot: int
    created_at: AwareDatetime
    updated_at: AwareDatetime
    merchant_name: str | None
    ticker: str | None
    allocations: list[Allocation]
