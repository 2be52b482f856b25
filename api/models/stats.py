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


class TickerTotals(BaseModel):
    ticker: str
    amount: float
    shares: float
    lots: int


class WaitingTotals(BaseModel):
    count: int
    round_up: float


class WaitingRoundUps(BaseModel):
    pending: WaitingTotals = Field(description="Not mapped yet, or the merchant awaits review.")
    mapped: WaitingTotals = Field(description="Mapped, not invested yet (queued, or no price: investing_backlog).")


class InvestingStats(BaseModel):
    invested: float = Field(description="Amount invested in open lots (buys net of reversals).")
    open_lots: int
    tickers: int
    top_tickers: list[TickerTotals] = Field(description="The 25 tickers with the most invested.")
    waiting: WaitingRoundUps


class DashboardStats(BaseModel):
    """public.dashboard_stats(), exact at the moment it was computed (`computed_at`)."""

    computed_at: datetime = Field(description="When these numbers were read from the database.")
    mappings: MappingStats
    transactions: TransactionStats
    investing: InvestingStats | None = Field(
        default=None,
        description="Null only for a value cached before the investing section existed (at most API_STATS_TTL_S).",
    )
