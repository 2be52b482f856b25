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
