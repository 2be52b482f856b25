"""Offline price provider: the synthetic, clearly labelled sample prices shipped in data/sample_prices.csv.

Needs no key and no network, so `make dev` and the tests invest round-ups end to end. Every quote is
stamped now (a sample price is as fresh as the demo) with source `sample`, so sample money can always
be told apart from market data in public.prices. A ticker the file does not list is `unknown_ticker`,
exactly what a real feed answers for a symbol it does not carry.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

from kamioi.prices.base import PriceAnswer, PriceProblem, Quote

SAMPLE_PRICES = Path(__file__).with_name("data") / "sample_prices.csv"
SOURCE = "sample"


@lru_cache(maxsize=1)
def sample_prices(path: Path = SAMPLE_PRICES) -> dict[str, Decimal]:
    with path.open(encoding="utf-8") as f:
        rows = csv.DictReader(line for line in f if not line.startswith("#"))
        return {row["ticker"]: Decimal(row["price"]) for row in rows}


class SampleProvider:
    name = SOURCE

    def __init__(self, prices: dict[str, Decimal] | None = None) -> None:
        self._prices = sample_prices() if prices is None else prices

    async def quotes(self, tickers: Sequence[str]) -> dict[str, PriceAnswer]:
        now = dt.datetime.now(dt.UTC)
        answers: dict[str, PriceAnswer] = {}
        for ticker in tickers:
            price = self._prices.get(ticker)
            answers[ticker] = (
                Quote(ticker, price, now, SOURCE)
                if price is not None
                else PriceProblem(ticker, "unknown_ticker", "not in the sample price list")
            )
        return answers
