"""record_answers and tickers_due against the local stack's database (public.prices, private.price_holds).

Every test prices its own made-up tickers (ZT + random letters) and removes their rows afterwards."""

from __future__ import annotations

import datetime as dt
import random
import string
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import pytest
from psycopg import AsyncConnection

from kamioi.prices.base import PriceAnswer, PriceProblem, Quote
from kamioi.prices.store import HoldPolicy, record_answers, tickers_due
from kamioi.settings import Settings

POLICY = HoldPolicy(max_age=dt.timedelta(hours=1), retry_base_s=60.0, retry_max_s=300.0)

NewTicker = Callable[[], str]


@pytest.fixture
async def aconn(settings: Settings) -> AsyncIterator[AsyncConnection[Any]]:
    """An idle autocommit connection as `postgres`, the way the worker hands it to the store."""
    async with await AsyncConnection.connect(settings.db_url, autocommit=True, prepare_threshold=None) as conn:
        yield conn


@pytest.fixture
async def new_ticker(aconn: AsyncConnection[Any]) -> AsyncIterator[NewTicker]:
    """Makes unique test tickers; deletes their prices and holds at the end."""
    made: list[str] = []

    def make() -> str:
        ticker = "ZT" + "".join(random.choices(string.ascii_uppercase, k=6))
        made.append(ticker)
        return ticker

    yield make
    await aconn.execute("delete from public.prices where ticker = any(%s)", (made,))
    await aconn.execute("delete from private.price_holds where ticker = any(%s)", (made,))


def answers(*items: PriceAnswer) -> dict[str, PriceAnswer]:
    return {item.ticker: item for item in items}


def quote(ticker: str, *, age: dt.timedelta = dt.timedelta(0), price: str = "12.345678") -> Quote:
    as_of = (dt.datetime.now(dt.UTC) - age).replace(microsecond=0)
    return Quote(ticker, Decimal(price), as_of, "sample")


async def stored(conn: AsyncConnection[Any], ticker: str) -> list[tuple[Any, ...]]:
    cur = await conn.execute(
        "select as_of, price, source from public.prices where ticker = %s order by as_of, source", (ticker,)
    )
    return await cur.fetchall()


async def hold(conn: AsyncConnection[Any], ticker: str) -> dict[str, Any] | None:
    cur = await conn.execute(
        """select reason, detail, attempts, retry_at - last_tried_at as delay, retry_at > now() as waiting,
                  first_held_at, last_tried_at
           from private.price_holds where ticker = %s""",
        (ticker,),
    )
    row = await cur.fetchone()
    if row is None:
        return None
    assert cur.description is not None
    return dict(zip([column.name for column in cur.description], row, strict=True))


async def test_fresh_quote_is_stored_and_releases_the_hold(aconn: AsyncConnection[Any], new_ticker: NewTicker) -> None:
    ticker = new_ticker()
    await record_answers(aconn, answers(PriceProblem(ticker, "provider_error", "HTTP 500")), POLICY)
    assert await hold(aconn, ticker) is not None

    fresh_quote = quote(ticker, age=dt.timedelta(minutes=5))
    fresh = await record_answers(aconn, answers(fresh_quote), POLICY)

    assert fresh == {ticker}
    assert await stored(aconn, ticker) == [(fresh_quote.as_of, Decimal("12.345678"), "sample")]
    assert await hold(aconn, ticker) is None
    assert await tickers_due(aconn, [ticker]) == [ticker]


async def test_stale_quote_is_stored_but_held(aconn: AsyncConnection[Any], new_ticker: NewTicker) -> None:
    ticker = new_ticker()
    old = quote(ticker, age=POLICY.max_age + dt.timedelta(minutes=1))

    fresh = await record_answers(aconn, answers(old), POLICY)

    assert fresh == set()
    assert await stored(aconn, ticker) == [(old.as_of, old.price, "sample")]
    held = await hold(aconn, ticker)
    assert held is not None
    assert (held["reason"], held["attempts"], held["waiting"]) == ("stale_quote", 1, True)
    assert held["detail"] == f"latest quote is from {old.as_of.isoformat()}"
    assert held["delay"] == dt.timedelta(seconds=POLICY.retry_base_s)
    assert await tickers_due(aconn, [ticker]) == []


async def test_quote_just_inside_max_age_is_fresh(aconn: AsyncConnection[Any], new_ticker: NewTicker) -> None:
    ticker = new_ticker()

    fresh = await record_answers(aconn, answers(quote(ticker, age=POLICY.max_age - dt.timedelta(minutes=1))), POLICY)

    assert fresh == {ticker}
    assert await hold(aconn, ticker) is None


async def test_failures_back_off_exponentially_up_to_the_cap(
    aconn: AsyncConnection[Any], new_ticker: NewTicker
) -> None:
    ticker = new_ticker()
    policy = HoldPolicy(max_age=dt.timedelta(hours=1), retry_base_s=10.0, retry_max_s=25.0)
    seen: list[tuple[str, int, dt.timedelta]] = []
    first_held_at = None

    for n, reason in enumerate(["provider_error", "unknown_ticker", "provider_error", "no_quote"], start=1):
        problem = PriceProblem(ticker, reason, f"failure {n}")  # type: ignore[arg-type]
        assert await record_answers(aconn, answers(problem), policy) == set()
        held = await hold(aconn, ticker)
        assert held is not None
        assert held["detail"] == f"failure {n}"
        assert held["waiting"]
        first_held_at = first_held_at or held["first_held_at"]
        assert held["first_held_at"] == first_held_at
        seen.append((held["reason"], held["attempts"], held["delay"]))

    seconds = dt.timedelta(seconds=1)
    assert seen == [
        ("provider_error", 1, 10 * seconds),
        ("unknown_ticker", 2, 20 * seconds),
        ("provider_error", 3, 25 * seconds),
        ("no_quote", 4, 25 * seconds),
    ]
    assert await stored(aconn, ticker) == []


async def test_a_long_held_ticker_still_backs_off(aconn: AsyncConnection[Any], new_ticker: NewTicker) -> None:
    """2 ^ attempts must not overflow once a delisted ticker has failed for years."""
    ticker = new_ticker()
    await record_answers(aconn, answers(PriceProblem(ticker, "unknown_ticker", "no such symbol")), POLICY)
    await aconn.execute("update private.price_holds set attempts = 5000 where ticker = %s", (ticker,))

    await record_answers(aconn, answers(PriceProblem(ticker, "unknown_ticker", "no such symbol")), POLICY)

    held = await hold(aconn, ticker)
    assert held is not None
    assert (held["attempts"], held["delay"]) == (5001, dt.timedelta(seconds=POLICY.retry_max_s))


async def test_detail_is_cut_to_500_characters(aconn: AsyncConnection[Any], new_ticker: NewTicker) -> None:
    ticker = new_ticker()

    await record_answers(aconn, answers(PriceProblem(ticker, "provider_error", "x" * 2000)), POLICY)

    held = await hold(aconn, ticker)
    assert held is not None and held["detail"] == "x" * 500


async def test_tickers_due_skips_only_holds_still_waiting(aconn: AsyncConnection[Any], new_ticker: NewTicker) -> None:
    waiting, due_again, never_held = new_ticker(), new_ticker(), new_ticker()
    await record_answers(
        aconn,
        answers(PriceProblem(waiting, "provider_error", "HTTP 503"), PriceProblem(due_again, "no_quote", "none")),
        POLICY,
    )
    await aconn.execute(
        "update private.price_holds set retry_at = now() - interval '1 second' where ticker = %s", (due_again,)
    )

    due = await tickers_due(aconn, [waiting, never_held, due_again, never_held])

    assert due == sorted([due_again, never_held])
    assert await tickers_due(aconn, []) == []


async def test_one_batch_mixes_quotes_stale_quotes_and_problems(
    aconn: AsyncConnection[Any], new_ticker: NewTicker
) -> None:
    good, stale, broken = new_ticker(), new_ticker(), new_ticker()

    fresh = await record_answers(
        aconn,
        answers(
            quote(good),
            quote(stale, age=dt.timedelta(days=30)),
            PriceProblem(broken, "provider_error", "timed out after 10s (attempt 3 of 3)"),
        ),
        POLICY,
    )

    assert fresh == {good}
    assert [len(await stored(aconn, t)) for t in (good, stale, broken)] == [1, 1, 0]
    reasons = {t: (h or {}).get("reason") for t in (good, stale, broken) for h in [await hold(aconn, t)]}
    assert reasons == {good: None, stale: "stale_quote", broken: "provider_error"}
    assert await tickers_due(aconn, [good, stale, broken]) == [good]


async def test_duplicate_quote_is_ignored(aconn: AsyncConnection[Any], new_ticker: NewTicker) -> None:
    ticker = new_ticker()
    first = quote(ticker, price="10.00")
    await record_answers(aconn, answers(first), POLICY)

    # Same ticker, source and as_of: the provider gave the same quote again (even at another price).
    again = await record_answers(aconn, answers(Quote(ticker, Decimal("11.00"), first.as_of, "sample")), POLICY)
    # Another source at the same instant is another quote.
    other = await record_answers(aconn, answers(Quote(ticker, Decimal("10.50"), first.as_of, "finnhub")), POLICY)

    assert again == other == {ticker}
    assert await stored(aconn, ticker) == [
        (first.as_of, Decimal("10.50"), "finnhub"),
        (first.as_of, Decimal("10.00"), "sample"),
    ]


async def test_nothing_to_record_writes_nothing(aconn: AsyncConnection[Any]) -> None:
    assert await record_answers(aconn, {}, POLICY) == set()
