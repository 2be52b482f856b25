"""FinnhubProvider against the fake Finnhub quote server over real HTTP, mode by mode, and parse_quote."""

from __future__ import annotations

import datetime as dt
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from kamioi.prices.base import PriceProblem, Quote
from kamioi.prices.finnhub import FinnhubProvider, parse_quote
from kamioi.prices.sample import sample_prices
from local_stack.standins.quote_server import FakeQuoteControl, serve_in_thread

PROJECT_ROOT = Path(__file__).resolve().parents[2]
TOKEN = "test-finnhub-token"
KNOWN = ["SBUX", "AAPL", "BRK.B", "VTI"]
UNKNOWN = "ZZQXQ"

MakeProvider = Callable[..., FinnhubProvider]


@pytest.fixture(scope="module")
def fake_quote_root() -> Iterator[str]:
    """`python -m local_stack.standins.quote_server` on a free port for this module: http://host:port."""
    with subprocess.Popen(
        [sys.executable, "-m", "local_stack.standins.quote_server", "--port", "0", "--token", TOKEN],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            assert proc.stdout is not None
            banner = proc.stdout.readline()
            assert banner.startswith("fake quote server listening on http://"), f"server did not start: {banner!r}"
            base_url = banner.split()[-1]
            assert base_url.endswith("/api/v1")
            yield base_url.removesuffix("/api/v1")
        finally:
            proc.terminate()
            proc.wait(timeout=10)


@pytest.fixture
async def fake(fake_quote_root: str) -> AsyncIterator[FakeQuoteControl]:
    """The shared server, reset to good mode with default knobs and zeroed counters."""
    async with httpx.AsyncClient() as http:
        control = FakeQuoteControl(fake_quote_root, http)
        await control.set_mode("good", fail_first=2, slow_s=2.0, retry_after_s=0, stale_s=7 * 86400)
        yield control


@pytest.fixture
async def make_provider(fake: FakeQuoteControl) -> AsyncIterator[MakeProvider]:
    """Providers against the fake server with tiny backoffs; closed afterwards."""
    made: list[FinnhubProvider] = []

    def make(**overrides: Any) -> FinnhubProvider:
        options: dict[str, Any] = {
            "base_url": fake.base_url,
            "api_key": TOKEN,
            "timeout_s": 5.0,
            "max_attempts": 3,
            "backoff_base_s": 0.001,
            "backoff_max_s": 0.01,
        }
        provider = FinnhubProvider(**(options | overrides))
        made.append(provider)
        return provider

    yield make
    for provider in made:
        await provider.__aexit__(None, None, None)


def problem(answer: Any) -> PriceProblem:
    assert isinstance(answer, PriceProblem), answer
    return answer


async def test_good_quote_is_priced_from_the_reply(fake: FakeQuoteControl, make_provider: MakeProvider) -> None:
    before = dt.datetime.now(dt.UTC).replace(microsecond=0)
    answers = await make_provider().quotes(KNOWN)
    after = dt.datetime.now(dt.UTC)

    assert sorted(answers) == sorted(KNOWN)
    for ticker in KNOWN:
        quote = answers[ticker]
        assert isinstance(quote, Quote), quote
        assert quote.ticker == ticker
        assert quote.source == "finnhub"
        assert isinstance(quote.price, Decimal)
        assert quote.price == sample_prices()[ticker]
        assert quote.price.as_tuple().exponent == -6  # quantized to numeric(18, 6)
        assert quote.as_of.tzinfo is not None
        assert before - dt.timedelta(seconds=1) <= quote.as_of <= after
    stats = await fake.stats()
    assert stats["requests"] == len(KNOWN)
    assert stats["statuses"] == {"200": len(KNOWN)}
    assert stats["symbols"] == dict.fromkeys(KNOWN, 1)


async def test_reply_speaks_finnhubs_shape(fake: FakeQuoteControl) -> None:
    async with httpx.AsyncClient() as http:
        reply = await http.get(f"{fake.base_url}/quote", params={"symbol": "SBUX"}, headers={"X-Finnhub-Token": TOKEN})
        zero = await http.get(f"{fake.base_url}/quote", params={"symbol": UNKNOWN}, headers={"X-Finnhub-Token": TOKEN})

    body = reply.json()
    assert set(body) == {"c", "d", "dp", "h", "l", "o", "pc", "t"}
    assert body["c"] == float(sample_prices()["SBUX"])
    assert body["l"] <= min(body["c"], body["o"]) <= max(body["c"], body["o"]) <= body["h"]
    assert body["d"] == pytest.approx(body["c"] - body["pc"], abs=1e-3)
    assert abs(body["t"] - time.time()) < 5
    assert zero.status_code == 200
    assert zero.json() == {"c": 0, "d": None, "dp": None, "h": 0, "l": 0, "o": 0, "pc": 0, "t": 0}


async def test_unknown_ticker_is_unknown_not_an_error(fake: FakeQuoteControl, make_provider: MakeProvider) -> None:
    answers = await make_provider().quotes([UNKNOWN, "SBUX"])

    assert problem(answers[UNKNOWN]).reason == "unknown_ticker"
    assert isinstance(answers["SBUX"], Quote)
    assert (await fake.stats())["requests"] == 2  # the zero answer is an answer: no retry


async def test_unknown_mode_makes_every_symbol_unknown(fake: FakeQuoteControl, make_provider: MakeProvider) -> None:
    await fake.set_mode("unknown")

    answers = await make_provider().quotes(KNOWN)

    assert {t: problem(a).reason for t, a in answers.items()} == dict.fromkeys(KNOWN, "unknown_ticker")


async def test_stale_quote_carries_its_old_timestamp(fake: FakeQuoteControl, make_provider: MakeProvider) -> None:
    await fake.set_mode("stale", stale_s=5 * 86400)

    quote = (await make_provider().quotes(["SBUX"]))["SBUX"]

    assert isinstance(quote, Quote)
    age = dt.datetime.now(dt.UTC) - quote.as_of
    assert dt.timedelta(days=5) <= age < dt.timedelta(days=5, seconds=10)


async def test_server_error_gives_up_after_max_attempts(fake: FakeQuoteControl, make_provider: MakeProvider) -> None:
    await fake.set_mode("server_error")

    answer = problem((await make_provider(max_attempts=4).quotes(["SBUX"]))["SBUX"])

    assert answer.reason == "provider_error"
    assert answer.detail == "HTTP 500 (attempt 4 of 4)"
    stats = await fake.stats()
    assert stats["requests"] == 4
    assert stats["statuses"] == {"500": 4}


async def test_server_error_then_ok_recovers(fake: FakeQuoteControl, make_provider: MakeProvider) -> None:
    await fake.set_mode("server_error_then_ok", fail_first=2)

    quote = (await make_provider(max_attempts=3).quotes(["SBUX"]))["SBUX"]

    assert isinstance(quote, Quote) and quote.price == sample_prices()["SBUX"]
    assert (await fake.stats())["statuses"] == {"503": 2, "200": 1}


async def test_one_attempt_too_few_is_a_provider_error(fake: FakeQuoteControl, make_provider: MakeProvider) -> None:
    await fake.set_mode("server_error_then_ok", fail_first=2)

    answer = problem((await make_provider(max_attempts=2).quotes(["SBUX"]))["SBUX"])

    assert (answer.reason, answer.detail) == ("provider_error", "HTTP 503 (attempt 2 of 2)")
    assert (await fake.stats())["requests"] == 2


async def test_retry_after_is_honoured(fake: FakeQuoteControl, make_provider: MakeProvider) -> None:
    await fake.set_mode("rate_limit_then_ok", fail_first=1, retry_after_s=1)

    started = time.monotonic()
    quote = (await make_provider(backoff_max_s=5.0).quotes(["SBUX"]))["SBUX"]

    # The exponential backoff alone would wait 1 ms; Retry-After says a whole second.
    assert time.monotonic() - started >= 1.0
    assert isinstance(quote, Quote)
    assert (await fake.stats())["statuses"] == {"429": 1, "200": 1}


async def test_retry_after_is_capped_at_the_longest_backoff(
    fake: FakeQuoteControl, make_provider: MakeProvider
) -> None:
    await fake.set_mode("rate_limit_then_ok", fail_first=2, retry_after_s=30)

    started = time.monotonic()
    quote = (await make_provider(backoff_max_s=0.05).quotes(["SBUX"]))["SBUX"]

    assert time.monotonic() - started < 2.0
    assert isinstance(quote, Quote)
    assert (await fake.stats())["statuses"] == {"429": 2, "200": 1}


async def test_rate_limit_gives_up_after_max_attempts(fake: FakeQuoteControl, make_provider: MakeProvider) -> None:
    await fake.set_mode("rate_limit_then_ok", fail_first=100)

    answer = problem((await make_provider(max_attempts=3).quotes(["SBUX"]))["SBUX"])

    assert (answer.reason, answer.detail) == ("provider_error", "HTTP 429 (attempt 3 of 3)")
    assert (await fake.stats())["requests"] == 3


async def test_slow_server_times_out_after_every_attempt(fake: FakeQuoteControl, make_provider: MakeProvider) -> None:
    await fake.set_mode("slow", slow_s=2.0)

    started = time.monotonic()
    answer = problem((await make_provider(timeout_s=0.2, max_attempts=2).quotes(["SBUX"]))["SBUX"])

    assert answer.reason == "provider_error"
    assert "timed out" in answer.detail and answer.detail.endswith("(attempt 2 of 2)")
    assert 0.4 <= time.monotonic() - started < 1.9
    assert (await fake.stats())["symbols"] == {"SBUX": 2}


async def test_slow_server_within_the_timeout_answers(fake: FakeQuoteControl, make_provider: MakeProvider) -> None:
    await fake.set_mode("slow", slow_s=0.1)

    assert isinstance((await make_provider(timeout_s=2.0).quotes(["SBUX"]))["SBUX"], Quote)


@pytest.mark.parametrize(
    ("mode", "detail"),
    [
        ("garbage", "reply is not JSON"),
        ("corrupt", "unreadable reply: DecodingError"),
    ],
)
async def test_unreadable_reply_is_not_retried(
    fake: FakeQuoteControl, make_provider: MakeProvider, mode: Any, detail: str
) -> None:
    await fake.set_mode(mode)

    answer = problem((await make_provider().quotes(["SBUX"]))["SBUX"])

    assert (answer.reason, answer.detail) == ("provider_error", detail)
    stats = await fake.stats()
    assert (stats["requests"], stats["statuses"]) == (1, {"200": 1})


async def test_wrong_shape_is_not_retried(fake: FakeQuoteControl, make_provider: MakeProvider) -> None:
    await fake.set_mode("wrong_shape")
    provider = make_provider(max_concurrency=1)

    # One ticker at a time, so the server serves each of its wrong shapes in turn.
    first = problem((await provider.quotes(["SBUX"]))["SBUX"])
    second = problem((await provider.quotes(["AAPL"]))["AAPL"])
    third = problem((await provider.quotes(["VTI"]))["VTI"])

    assert (first.reason, first.detail) == ("provider_error", "reply is not a quote object")
    assert (second.reason, second.detail) == ("provider_error", "reply has no numeric c (price) and t (time)")
    assert (third.reason, third.detail) == ("provider_error", "reply has no numeric c (price) and t (time)")
    assert (await fake.stats())["symbols"] == {"SBUX": 1, "AAPL": 1, "VTI": 1}


async def test_missing_token_is_401(fake: FakeQuoteControl) -> None:
    async with httpx.AsyncClient() as http:
        reply = await http.get(f"{fake.base_url}/quote", params={"symbol": "SBUX"})

    assert (reply.status_code, reply.json()) == (401, {"error": "Invalid API key"})


@pytest.mark.parametrize("token", ["", "not-the-token", TOKEN.upper()])
async def test_bad_token_is_a_provider_error_without_retry(
    fake: FakeQuoteControl, make_provider: MakeProvider, token: str
) -> None:
    answer = problem((await make_provider(api_key=token).quotes(["SBUX"]))["SBUX"])

    assert answer.reason == "provider_error"
    assert answer.detail.startswith("HTTP 401")
    assert "Invalid API key" in answer.detail
    stats = await fake.stats()
    assert (stats["requests"], stats["statuses"]) == (1, {"401": 1})


async def test_connection_refused_is_retried_then_a_provider_error() -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    async with FinnhubProvider(
        f"http://127.0.0.1:{port}/api/v1", TOKEN, max_attempts=3, backoff_base_s=0.001
    ) as provider:
        answers = await provider.quotes(["SBUX", "AAPL"])

    for ticker in ("SBUX", "AAPL"):
        answer = problem(answers[ticker])
        assert (answer.reason, answer.detail) == ("provider_error", "transport error: ConnectError (attempt 3 of 3)")


async def test_many_tickers_respect_max_concurrency(fake: FakeQuoteControl, make_provider: MakeProvider) -> None:
    await fake.set_mode("slow", slow_s=0.15)
    tickers = sorted(sample_prices())[:9]

    answers = await make_provider(max_concurrency=3).quotes(tickers)

    assert sorted(answers) == tickers
    assert all(isinstance(answer, Quote) for answer in answers.values())
    stats = await fake.stats()
    assert stats["requests"] == 9
    assert stats["max_in_flight"] == 3


async def test_empty_request_asks_nothing(fake: FakeQuoteControl, make_provider: MakeProvider) -> None:
    assert await make_provider().quotes([]) == {}
    assert (await fake.stats())["requests"] == 0


async def test_in_process_server_answers() -> None:
    with serve_in_thread("good", token="inproc") as base_url:
        assert base_url.endswith("/api/v1")
        async with FinnhubProvider(base_url, "inproc") as provider:
            answers = await provider.quotes(["SBUX", UNKNOWN])

    assert isinstance(answers["SBUX"], Quote) and answers["SBUX"].price == sample_prices()["SBUX"]
    assert problem(answers[UNKNOWN]).reason == "unknown_ticker"


NOW = 1_760_000_000


def test_parse_quote_reads_price_and_time() -> None:
    quote = parse_quote("SBUX", {"c": 97.125, "t": NOW, "pc": 96.0})

    assert quote == Quote("SBUX", Decimal("97.125000"), dt.datetime.fromtimestamp(NOW, dt.UTC), "finnhub")


def test_parse_quote_rounds_to_six_places() -> None:
    quote = parse_quote("SBUX", {"c": 1.23456789, "t": NOW})

    assert isinstance(quote, Quote) and quote.price == Decimal("1.234568")


def test_parse_quote_all_zero_is_unknown() -> None:
    assert problem(parse_quote("ZZQX", {"c": 0, "t": 0})).reason == "unknown_ticker"
    assert problem(parse_quote("ZZQX", {"c": 0.0, "t": 0.0, "d": None})).reason == "unknown_ticker"


@pytest.mark.parametrize(
    "body",
    [
        [],
        None,
        "100",
        {},
        {"c": 100.0},
        {"t": NOW},
        {"c": "100.0", "t": NOW},
        {"c": 100.0, "t": str(NOW)},
        {"c": True, "t": NOW},
        {"c": 100.0, "t": True},
        {"c": False, "t": False},
        {"c": float("nan"), "t": NOW},
        {"c": float("inf"), "t": NOW},
        {"c": 100.0, "t": float("nan")},
        {"c": 100.0, "t": float("-inf")},
        {"c": -5.0, "t": NOW},
        {"c": 100.0, "t": -1},
        {"c": 0, "t": NOW},
        {"c": 100.0, "t": 0},
        {"c": 1e-9, "t": NOW},  # rounds to 0.000000
        {"c": 1e12, "t": NOW},  # numeric(18, 6) holds less than 10^12
        {"c": 999_999_999_999.9999999, "t": NOW},  # rounds up to 10^12
        {"c": 1e30, "t": NOW},
        {"c": 10**400, "t": NOW},  # an integer past a float's range
        {"c": 100.0, "t": 10**400},
        {"c": 100.0, "t": 1e300},  # beyond any datetime
    ],
)
def test_parse_quote_rejects_what_is_not_a_usable_quote(body: Any) -> None:
    answer = problem(parse_quote("SBUX", body))

    assert answer.reason == "provider_error"
    assert answer.ticker == "SBUX"


def test_parse_quote_accepts_the_largest_storable_price() -> None:
    quote = parse_quote("BRK.A", {"c": 999_999_999_999.5, "t": NOW})

    assert isinstance(quote, Quote) and quote.price == Decimal("999999999999.500000")
