"""A real local HTTP server speaking Finnhub's quote protocol, for tests and fault drills.

`GET /api/v1/quote?symbol=AAPL` with header `X-Finnhub-Token` answers the sample prices
(kamioi/prices/data/sample_prices.csv, synthetic) as Finnhub would: `{"c", "d", "dp", "h", "l", "o",
"pc", "t"}`, and a symbol it does not carry with the all-zero quote. A missing or wrong token is 401.
The failure mode can be switched at runtime so tests can watch a client retry, time out and validate.

    python -m local_stack.standins.quote_server --port 8766 --token k --mode good
    curl -H 'X-Finnhub-Token: k' 'localhost:8766/api/v1/quote?symbol=SBUX'
    curl -X POST localhost:8766/__mode -d '{"mode": "rate_limit_then_ok", "fail_first": 3}'
    curl localhost:8766/__stats

Base URL for clients (PRICE_API_BASE_URL): http://HOST:PORT/api/v1. Port 0 picks a free port; the
first line on stdout says which.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal, get_args

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import Field

from kamioi.prices.sample import sample_prices
from local_stack.standins import server

Mode = Literal[
    "good",  # known tickers priced now, unknown ones all-zero
    "server_error",  # 500 on every request
    "server_error_then_ok",  # the first `fail_first` requests get 503, then good
    "rate_limit_then_ok",  # the first `fail_first` requests get 429 with Retry-After: `retry_after_s`, then good
    "slow",  # sleeps `slow_s` before a good answer (longer than a client's timeout)
    "garbage",  # 200 with a body that is not JSON
    "corrupt",  # 200 claiming gzip content encoding for a body that is not gzip
    "wrong_shape",  # 200 with JSON that is not a quote (in turn: a list, c as a string, no t)
    "stale",  # a good answer stamped `stale_s` ago
    "unknown",  # the all-zero answer for every symbol
]
MODES: tuple[str, ...] = get_args(Mode)

DEFAULT_TOKEN = "fake-finnhub-key"  # noqa: S105 (the fake's own key, not a secret)
UNKNOWN_QUOTE: dict[str, Any] = {"c": 0, "d": None, "dp": None, "h": 0, "l": 0, "o": 0, "pc": 0, "t": 0}


@dataclass
class FakeState(server.FaultState):
    stale_s: float = 7 * 86400.0
    symbols: Counter[str] = field(default_factory=Counter)

    def stats(self) -> dict[str, Any]:
        return super().stats() | {"symbols": dict(self.symbols)}


class QuoteModeChange(server.ModeChange):
    mode: Mode
    stale_s: float | None = Field(default=None, ge=0)


def quote_body(price: Decimal, stamp: int) -> dict[str, Any]:
    """A plausible Finnhub quote for `price`: previous close 1% lower, the day's range around both."""
    c = float(price)
    pc = round(c / 1.01, 2)
    o = round((c + pc) / 2, 2)
    return {
        "c": c,
        "d": round(c - pc, 4),
        "dp": round((c - pc) / pc * 100, 4),
        "h": round(max(c, o) * 1.004, 2),
        "l": round(min(c, o) * 0.996, 2),
        "o": o,
        "pc": pc,
        "t": stamp,
    }


def wrong_shape(request_no: int, symbol: str) -> Any:
    shapes: tuple[Any, ...] = (
        [quote_body(Decimal("100"), int(time.time()))],
        {"c": "100.25", "t": int(time.time()), "symbol": symbol},
        {"c": 100.25, "pc": 99.0},
    )
    return shapes[(request_no - 1) % len(shapes)]


def error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


async def respond(state: FakeState, symbol: str, request_no: int, prices: dict[str, Decimal]) -> Response:
    mode = state.mode
    if failure := state.scripted_failure(request_no):
        status, headers = failure
        message = "API limit reached. Please try again later." if status == 429 else "Internal server error"
        return error(status, message, headers)
    if not symbol:
        return error(400, "Wrong symbol")
    if mode == "garbage":
        return Response("<html><body>502 Bad Gateway</body></html>", media_type="application/json")
    if mode == "corrupt":
        return Response(b"\x00 not gzip \xff", media_type="application/json", headers={"Content-Encoding": "gzip"})
    if mode == "wrong_shape":
        return JSONResponse(wrong_shape(request_no, symbol))
    if mode == "slow":
        await asyncio.sleep(state.slow_s)
    price = prices.get(symbol)
    if price is None or mode == "unknown":
        return JSONResponse(UNKNOWN_QUOTE)
    stamp = int(time.time() - (state.stale_s if mode == "stale" else 0))
    return JSONResponse(quote_body(price, stamp))


def create_app(mode: Mode = "good", *, token: str = DEFAULT_TOKEN, fail_first: int = 2, slow_s: float = 2.0) -> FastAPI:
    app = FastAPI(title="fake Finnhub quote API")
    modes = server.FaultModes(FakeState(mode=mode, fail_first=fail_first, slow_s=slow_s), QuoteModeChange)
    modes.install(app)
    prices = sample_prices()

    @app.get("/api/v1/quote")
    async def quote(request: Request) -> Response:
        async def handle(state: FakeState, request_no: int) -> Response:
            symbol = request.query_params.get("symbol", "")
            state.symbols[symbol] += 1
            if request.headers.get("x-finnhub-token") != token:
                return error(401, "Invalid API key")
            return await respond(state, symbol, request_no, prices)

        return await modes.counted(handle)

    return app


class FakeQuoteControl(server.FakeServerControl):
    """Control client of this server; base_url is what a Finnhub client (PRICE_API_BASE_URL) uses."""

    api_path = "/api/v1"


@contextmanager
def serve_in_thread(
    mode: Mode = "good",
    *,
    token: str = DEFAULT_TOKEN,
    host: str = "127.0.0.1",
    port: int = 0,
    fail_first: int = 2,
    slow_s: float = 2.0,
) -> Iterator[str]:
    """Run the server on a background thread; yields the base URL (http://host:port/api/v1)."""
    app = create_app(mode, token=token, fail_first=fail_first, slow_s=slow_s)
    with server.serve_app_in_thread(app, host=host, port=port) as root:
        yield root + "/api/v1"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--token", default=DEFAULT_TOKEN, help="the X-Finnhub-Token the server accepts")
    parser.add_argument("--mode", choices=MODES, default="good")
    parser.add_argument("--fail-first", type=int, default=2, help="failing requests in *_then_ok modes")
    parser.add_argument("--slow-s", type=float, default=2.0, help="delay in slow mode")
    args = parser.parse_args(argv)
    sock = socket.create_server((args.host, args.port))
    print(f"fake quote server listening on {server.socket_root(sock)}/api/v1", flush=True)
    app = create_app(args.mode, token=args.token, fail_first=args.fail_first, slow_s=args.slow_s)
    server.uvicorn_server(app).run(sockets=[sock])


if __name__ == "__main__":
    main()
