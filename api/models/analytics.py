from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field


class CategoryMonth(BaseModel):
    month: dt.date
    category: str = Field(description="Category of the merchant's mapping in force, or UNMAPPED.")
    transactions: int
    amount: float
    round_up: float


class TopMerchant(BaseModel):
    merchant_key: str
    display_name: str
    company_name: str | None
    ticker: str | None
    category: str | None
    transactions: int
    amount: float
    round_up: float


class ThroughputDay(BaseModel):
    day: dt.date
    created: int
    auto_approved: int
    admin_approved: int
    rejected: int
    pending: int
    reviewed: int = Field(description="Mappings reviewed (approved or rejected by an admin) that day.")


class ActivityBucket(BaseModel):
    bucket: dt.date = Field(description="The day, or the first day of the month.")
    transactions: int
    amount: float
    round_up: float
    invested: float = Field(description="Invested in open lots for transactions of this day or month.")


class TickerMonth(BaseModel):
    month: dt.date
    ticker: str
    lots: int
    amount: float = Field(description="Invested in open lots (buys net of reversals) for transactions of the month.")
    shares: float


class Window(BaseModel):
    start: dt.date = Field(description="First day included.")
    end: dt.date = Field(description="First day not included.")


class CategoryMonths(BaseModel):
    computed_at: dt.datetime
    window: Window
    rows: list[CategoryMonth]


class TopMerchants(BaseModel):
    computed_at: dt.datetime
    window: Window
    rows: list[TopMerchant]


class MappingThroughput(BaseModel):
    computed_at: dt.datetime
    window: Window
    rows: list[ThroughputDay]


class TickerInvested(BaseModel):
    ticker: str
    amount: float = Field(description="Invested in open lots (buys net of reversals).")
    shares: float
    lots: int


class InvestingByTicker(BaseModel):
    computed_at: dt.datetime
    rows: list[TickerInvested] = Field(description="Every ticker held, largest amount first.")


class Activity(BaseModel):
    computed_at: dt.datetime
    window: Window
    grain: str = Field(description="day | month")
    rows: list[ActivityBucket]


class TickerMonths(BaseModel):
    computed_at: dt.datetime
    window: Window
    rows: list[TickerMonth] = Field(description="Per month, the largest amount first.")
