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


class BrokerOrder(BaseModel):
    id: int
    sweep_id: int
    client_order_id: str
    ticker: str
    notional: float
    status: str = Field(description="The broker's words: new, partially_filled, filled, canceled, rejected.")
    filled_qty: float
    filled_avg_price: float | None
    reject_reason: str | None
    created_at: datetime
    filled_at: datetime | None


class FillTotals(BaseModel):
    events: int
    shares: float


class HousePosition(BaseModel):
    ticker: str
    shares: float = Field(description="Shares no user's pro-rata share rounded down to.")
    cash: float = Field(description="Cents left over the same way.")


class WaitingForThreshold(BaseModel):
    users: int
    round_ups: int
    amount: float


class CarriedNotional(BaseModel):
    positions: int
    notional: float


class TickerFallback(BaseModel):
    ticker: str
    reason: str = Field(description="not_at_broker, not_tradable or not_fractionable: bought as the fallback fund.")
    round_ups: int


class PositionBreak(BaseModel):
    ticker: str
    broker_qty: float | None = Field(description="What the broker holds; null: no position there.")
    book_qty: float | None = Field(description="Sum of the fill allocations' shares; null: none in the books.")
    difference: float = Field(description="broker_qty - book_qty.")


class PositionReconciliation(BaseModel):
    checked_at: datetime
    tickers: int = Field(description="Symbols either side holds.")
    breaks: int = Field(description="Symbols whose quantities differ.")
    break_rows: list[PositionBreak]


class InvestingOverview(BaseModel):
    """public.investing_overview(): the money at the broker, read live."""

    orders: list[BrokerOrder] = Field(description="The 50 newest orders.")
    orders_by_status: dict[str, int]
    fills: FillTotals
    house: list[HousePosition]
    waiting_for_threshold: WaitingForThreshold
    carried: CarriedNotional
    fallbacks: list[TickerFallback]
    reconciliation: PositionReconciliation | None = Field(
        description="The latest comparison of the broker's positions with the books; null: none yet."
    )
