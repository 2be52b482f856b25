"""Real price provider: Finnhub's quote endpoint (`GET {base}/quote?symbol=AAPL`, header X-Finnhub-Token).

The reply is `{"c": current, "d": .., "dp": .., "h": .., "l": .., "o": .., "pc": previous close,
"t": unix seconds of the quote}`. Finnhub answers a symbol it does not carry with 200 and zeros
(`c` = 0, `t` = 0): that is `unknown_ticker`, not an error. Timeouts, transport errors, 429 and 5xx
are retried with backoff (429's Retry-After honoured, capped); 4xx otherwise (a bad key) and replies
that are not a quote are not, since asking again would get the same answer. Whatever still fails is a
PriceProblem `provider_error`: the engine holds the ticker and asks again later, nothing is lost.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from types import TracebackType
from typing import Any

import httpx

from kamioi.prices.base import PriceAnswer, PriceProblem, Quote

SOURCE = "finnhub"
RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
# public.prices.price is numeric(18, 6).
MAX_PRICE = Decimal(10) ** 12


class _Retryable(Exception):
    def __init__(self, detail: str, retry_after_s: float | None = None) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s


class FinnhubProvider:
    name = SOURCE

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        http: httpx.AsyncClient | None = None,
        timeout_s: float = 10.0,
        max_attempts: int = 3,
        max_concurrency: int = 4,
        backoff_base_s: float = 0.5,
        backoff_max_s: float = 10.0,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self._url = base_url.rstrip("/") + "/quote"
        self._headers = {"X-Finnhub-Token": api_key}
        self._owns_http = http is None
        self._http = http if http is not None else httpx.AsyncClient()
        self._timeout_s = timeout_s
        self._max_attempts = max_attempts
        self._slots = asyncio.Semaphore(max_concurrency)
        self._backoff_base_s = backoff_base_s
        self._backoff_max_s = backoff_max_s

    async def __aenter__(self) -> FinnhubProvider:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def quotes(self, tickers: Sequence[str]) -> dict[str, PriceAnswer]:
        answers = await asyncio.gather(*(self.quote(ticker) for ticker in tickers))
        return {answer.ticker: answer for answer in answers}

    async def quote(self, ticker: str) -> PriceAnswer:
        detail = ""
        for attempt in range(1, self._max_attempts + 1):
            try:
                async with self._slots:
                    return await self._ask(ticker)
            except _Retryable as err:
                detail = f"{err} (attempt {attempt} of {self._max_attempts})"
                if attempt < self._max_attempts:
                    await asyncio.sleep(self._backoff(attempt, err.retry_after_s))
        return PriceProblem(ticker, "provider_error", detail)

    def _backoff(self, attempt: int, retry_after_s: float | None) -> float:
        exponential = self._backoff_base_s * 2 ** (attempt - 1)
        return min(retry_after_s if retry_after_s is not None else exponential, self._backoff_max_s)

    async def _ask(self, ticker: str) -> PriceAnswer:
        try:
            response = await self._http.get(
                self._url, params={"symbol": ticker}, headers=self._headers, timeout=self._timeout_s
            )
        except httpx.TimeoutException as err:
            raise _Retryable(f"timed out after {self._timeout_s:g}s") from err
        except httpx.TransportError as err:
            raise _Retryable(f"transport error: {err.__class__.__name__}") from err
        except httpx.HTTPError as err:  # a reply that cannot be read (DecodingError): asking again gets the same
            return PriceProblem(ticker, "provider_error", f"unreadable reply: {err.__class__.__name__}")
        if response.status_code in RETRYABLE_STATUS:
            raise _Retryable(f"HTTP {response.status_code}", _retry_after(response))
        if response.status_code != 200:
            return PriceProblem(ticker, "provider_error", f"HTTP {response.status_code}: {response.text[:200]}")
        try:
            body = response.json()
        except ValueError:
            return PriceProblem(ticker, "provider_error", "reply is not JSON")
        return parse_quote(ticker, body)


def parse_quote(ticker: str, body: Any) -> PriceAnswer:
    """A Finnhub quote body as a Quote, `unknown_ticker` for its all-zero answer, else provider_error."""
    if not isinstance(body, dict):
        return PriceProblem(ticker, "provider_error", "reply is not a quote object")
    price, stamp = body.get("c"), body.get("t")
    if not isinstance(price, int | float) or not isinstance(stamp, int | float) or not _finite(price, stamp):
        return PriceProblem(ticker, "provider_error", "reply has no numeric c (price) and t (time)")
    if price == 0 and stamp == 0:
        return PriceProblem(ticker, "unknown_ticker", "the provider has no quote for this symbol")
    if price <= 0 or stamp <= 0:
        return PriceProblem(ticker, "provider_error", f"unusable quote: c={price}, t={stamp}")
    try:
        amount = Decimal(str(price)).quantize(Decimal("0.000001"))
        as_of = dt.datetime.fromtimestamp(stamp, dt.UTC)
    except (InvalidOperation, OverflowError, OSError, ValueError):
        amount = Decimal(0)
    if not Decimal(0) < amount < MAX_PRICE:
        return PriceProblem(ticker, "provider_error", f"unusable quote: c={price}, t={stamp}")
    return Quote(ticker, amount, as_of, SOURCE)


def _finite(*values: float) -> bool:
    # An int is finite however large; math.isfinite would raise OverflowError past a float's range.
    return all(not isinstance(v, bool) and (isinstance(v, int) or math.isfinite(v)) for v in values)


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return max(0.0, float(response.headers["Retry-After"]))
    except (KeyError, ValueError):
        return None
