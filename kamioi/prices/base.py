"""The contract between price providers and the allocation engine."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal, Protocol

HoldReason = Literal["no_quote", "stale_quote", "unknown_ticker", "provider_error"]
"""Why a ticker cannot be priced now (private.price_holds.reason)."""


@dataclass(frozen=True)
class Quote:
    ticker: str
    price: Decimal
    as_of: dt.datetime
    source: str


@dataclass(frozen=True)
class PriceProblem:
    """No usable quote for a ticker this time; the engine holds its transactions and asks again later."""

    ticker: str
    reason: HoldReason
    detail: str


PriceAnswer = Quote | PriceProblem


class PriceProvider(Protocol):
    name: str

    async def quotes(self, tickers: Sequence[str]) -> dict[str, PriceAnswer]:
        """One answer per ticker asked; never raises for a ticker's failure (that is a PriceProblem)."""
        ...
