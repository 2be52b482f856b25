"""The offline sample price provider and its labelled, synthetic price list."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
from decimal import Decimal
from pathlib import Path

from kamioi.prices.base import PriceProblem, Quote
from kamioi.prices.sample import SAMPLE_PRICES, SampleProvider, sample_prices

MAPPING_DATA = Path(__file__).resolve().parents[2] / "kamioi" / "mapping" / "data"


def catalog_tickers() -> set[str]:
    with (MAPPING_DATA / "catalog.csv").open(encoding="utf-8") as f:
        return {row["ticker"] for row in csv.DictReader(f) if row["ticker"]}


def known_tickers() -> set[str]:
    lines = (MAPPING_DATA / "known_tickers.txt").read_text(encoding="utf-8").splitlines()
    names = {line.split("#", 1)[0].strip() for line in lines}  # a symbol, then its source after a #
    return names - {""}


def every_ticker_named() -> set[str]:
    return catalog_tickers() | known_tickers() | {"VTI"}


async def test_every_catalog_and_known_ticker_and_vti_has_a_positive_price() -> None:
    tickers = sorted(every_ticker_named())
    assert len(catalog_tickers()) > 100 and len(known_tickers()) > 10  # the files were really read

    answers = await SampleProvider().quotes(tickers)

    assert sorted(answers) == tickers
    missing = [t for t, a in answers.items() if not isinstance(a, Quote)]
    assert missing == []
    for ticker, quote in answers.items():
        assert isinstance(quote, Quote)
        assert (quote.ticker, quote.source) == (ticker, "sample")
        assert isinstance(quote.price, Decimal)
        assert Decimal(5) <= quote.price < Decimal(500)


def test_the_list_names_no_ticker_nobody_uses() -> None:
    assert set(sample_prices()) == every_ticker_named()


async def test_prices_are_deterministic_and_stamped_now() -> None:
    before = dt.datetime.now(dt.UTC)
    first = await SampleProvider().quotes(["SBUX", "VTI", "BRK.B"])
    second = await SampleProvider().quotes(["SBUX", "VTI", "BRK.B"])
    after = dt.datetime.now(dt.UTC)

    for ticker in ("SBUX", "VTI", "BRK.B"):
        a, b = first[ticker], second[ticker]
        assert isinstance(a, Quote) and isinstance(b, Quote)
        assert a.price == b.price
        assert before <= a.as_of <= b.as_of <= after
        assert a.as_of.tzinfo is not None


def test_prices_follow_the_formula_the_header_states() -> None:
    # price = 5 + (first 8 bytes of sha256(ticker) mod 49,500) / 100
    for ticker, price in sample_prices().items():
        digest = int.from_bytes(hashlib.sha256(ticker.encode()).digest()[:8], "big")
        assert price == Decimal(5) + Decimal(digest % 49_500) / 100, ticker


async def test_unknown_ticker_is_unknown() -> None:
    answers = await SampleProvider().quotes(["ZZQXQ", "SBUX"])

    unknown = answers["ZZQXQ"]
    assert isinstance(unknown, PriceProblem)
    assert (unknown.ticker, unknown.reason) == ("ZZQXQ", "unknown_ticker")
    assert isinstance(answers["SBUX"], Quote)


async def test_own_price_list_replaces_the_file() -> None:
    answers = await SampleProvider({"ABC": Decimal("1.50")}).quotes(["ABC", "SBUX"])

    assert isinstance(answers["ABC"], Quote) and answers["ABC"].price == Decimal("1.50")
    assert isinstance(answers["SBUX"], PriceProblem)


def test_the_file_says_it_is_sample_data_not_market_data() -> None:
    lines = SAMPLE_PRICES.read_text(encoding="utf-8").splitlines()
    header = [line for line in lines if line.startswith("#")]

    assert lines[0].startswith("# SAMPLE PRICES")
    assert "NOT market data" in header[0]
    assert lines[len(header)] == "ticker,price"  # the comment comes before the CSV header
