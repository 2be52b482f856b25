from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class MappingStats(BaseModel):
    total: int
    approved: int
    pending: int
    rejected: int
    admin_approved: int
    avg_confidence: float | None
    distinct_categories: int
    by_category: dict[str, int]


class StatusTotals(BaseModel):
    count: int
    amount: float
    round_up: float


class TransactionStats(BaseModel):
    total: int
    amount: float
    round_up: float
    by_status: dict[str, StatusTotals]


class DashboardStats(BaseModel):
    """public.dashboard_stats(), exact at the moment it was computed (`computed_at`)."""

    computed_at: datetime = Field(description="When these numbers were read from the database.")
    mappings: MappingStats
    transactions: TransactionStats
