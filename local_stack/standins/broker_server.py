"""A real local HTTP server speaking the parts of Alpaca's Broker API that Kamioi's broker client uses
(through alpaca-py's BrokerClient, pointed here with its url_override), for the stack, tests and drills.

- `GET /v1/assets`: every ticker of the sample prices, active, tradable and fractionable (symbols in
  the `untradable` / `unfractionable` options are not).
- `POST /v1/trading/accounts/{account_id}/orders`: a notional market order (`notional` xor `qty`:
  else 400), idempotent by `client_order_id` (a second order with the same id is 422, as the broker
  answers); it fills at the sample price (the quote stand-in's prices), shares = notional / price
  down to 9 decimals.
- `GET /v1/trading/accounts/{account_id}/orders:by_client_order_id?client_order_id=...` (404 unknown).
- `GET /v1/trading/accounts/{account_id}/positions`: the account's long positions per symbol, from its
  executions (busts removed, corrections repriced) plus its opening positions; closed ones are left out.
- `GET /v2/events/trades?since_id=N` (also `/v1/...`, the SDK's legacy path; `since` = an RFC 3339
  time): Server-Sent Events, each `data: {event_id, event, execution_id, qty, price, timestamp,
  order}`; the stream stays open and sends new events as they happen.
Requests need the Basic auth of `--key`/`--secret` (401 otherwise).

Fault modes, combinable (`POST /__mode {"mode": "partial_fills,duplicate_events", ...}`):
`server_error` (the first `fail_first` API requests get 503), `accept_then_error` (the first
`fail_first` orders are created, then answered 503), `rate_limit` (the first `fail_first` get 429
with Retry-After `retry_after_s`), `slow` (answers after `slow_s`, the order already created),
`partial_fills` (each order fills in three executions), `reject` (orders are rejected),
`duplicate_events` and `out_of_order` (the stream repeats, or swaps, adjacent events),
`drop_stream` (a stream is cut after `drop_after` events), `bust` (each fill is busted and
executed again), `correct` (each fill is corrected to a price 1% higher), `drift` (each order also gets an execution
of `drift_qty` shares the stream never reports: the positions disagree with the events).
`GET /__stats`: counters. `POST /__positions {"SYMBOL": "qty", ...}` sets the opening positions (what
the account held before this instance started), so a fresh stand-in can agree with a database that
holds earlier fills.

    python -m local_stack.standins.broker_server --port 54391
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime as dt
import json
import socket
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, Field

from kamioi.prices.sample import sample_prices
from local_stack.standins.server import FakeServerControl, serve_app_in_thread, socket_root, uvicorn_server

FAULTS = (
    "server_error", "accept_then_error", "rate_limit", "slow", "partial_fills", "reject",
    "duplicate_events", "out_of_order", "drop_stream", "bust", "correct", "drift",
)  # fmt: skip
DEFAULT_KEY = "fake-broker-key"
DEFAULT_SECRET = "fake-broker-secret"  # noqa: S105 (the fake's own credentials, not a secret)
NANO = Decimal("0.000000001")


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")


@dataclass
class Faults:
    active: frozenset[str] = frozenset()
    fail_first: int = 2
    retry_after_s: int = 1
    slow_s: float = 2.0
    drop_after: int = 3
    drift_qty: Decimal = Decimal("0.001")
    untradable: frozenset[str] = frozenset()
    unfractionable: frozenset[str] = frozenset()
    api_requests: int = 0
    orders_posted: int = 0
    statuses: Counter[int] = field(default_factory=Counter)

    def stats(self) -> dict[str, Any]:
        return {"mode": ",".join(sorted(self.active)) or "good", "api_requests": self.api_requests,
                "orders_posted": self.orders_posted,
                "statuses": {str(k): v for k, v in self.statuses.items()}}  # fmt: skip


class ModeChange(BaseModel):
    mode: str = "good"
    fail_first: int | None = Field(default=None, ge=0)
    retry_after_s: int | None = Field(default=None, ge=0)
    slow_s: float | None = Field(default=None, ge=0)
    drop_after: int | None = Field(default=None, ge=1)
    drift_qty: Decimal | None = Field(default=None, gt=0)
    untradable: list[str] | None = None
    unfractionable: list[str] | None = None


@dataclass
class Execution:
    account_id: str
    symbol: str
    qty: Decimal
    price: Decimal


class OrderBody(BaseModel):
    symbol: str
    side: str = "buy"
    type: str = "market"
    time_in_force: str = "day"
    notional: Decimal | None = None
    qty: Decimal | None = None
    client_order_id: str | None = None


class Broker:
    """The omnibus account's orders and the trade event log. Event ids increase across restarts of the
    server (they start at its start time in microseconds), as a broker's do, so a consumer's stored
    cursor stays meaningful for a new instance."""

    def __init__(self) -> None:
        self.first_id = time.time_ns() // 1000
        self.prices = sample_prices()
        self.orders: dict[str, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self.executions: dict[str, Execution] = {}
        self.opening: dict[str, Decimal] = {}
        self.new_event = asyncio.Event()

    def emit(self, order: dict[str, Any], event: str, **fields: Any) -> None:
        record = {"event_id": str(self.first_id + len(self.events)), "event": event, "timestamp": now_iso(),
                  "at": now_iso(), "order": dict(order), **fields}  # fmt: skip
        self.events.append(record)
        self.new_event.set()
        self.new_event = asyncio.Event()

    def place(self, account_id: str, body: OrderBody, faults: Faults) -> dict[str, Any]:
        stamp = now_iso()
        order: dict[str, Any] = {
            "id": str(uuid.uuid4()), "client_order_id": body.client_order_id or str(uuid.uuid4()),
            "created_at": stamp, "updated_at": stamp, "submitted_at": stamp, "filled_at": None,
            "asset_id": str(uuid.uuid5(uuid.NAMESPACE_URL, body.symbol)), "symbol": body.symbol,
            "asset_class": "us_equity", "notional": str(body.notional), "qty": None, "filled_qty": "0",
            "filled_avg_price": None, "order_class": "simple", "order_type": "market", "type": "market",
            "side": body.side, "time_in_force": "day", "status": "new", "extended_hours": False,
            "commission": "0", "account_id": account_id,
        }  # fmt: skip
        self.orders[order["client_order_id"]] = order
        self.emit(order, "new")
        if "reject" in faults.active:
            order.update(status="rejected", failed_at=stamp, updated_at=now_iso())
            self.emit(order, "rejected", reason="insufficient buying power")
            return order
        price = self.prices[body.symbol]
        assert body.notional is not None
        total = (body.notional / price).quantize(NANO, rounding=ROUND_DOWN)
        parts = [total] if "partial_fills" not in faults.active else self.split(total)
        filled = Decimal(0)
        for i, qty in enumerate(parts):
            filled += qty
            self.fill(order, qty, price, filled, last=i == len(parts) - 1, faults=faults)
        if "drift" in faults.active:
            self.executions[str(uuid.uuid4())] = Execution(account_id, body.symbol, faults.drift_qty, price)
        return order

    @staticmethod
    def split(total: Decimal) -> list[Decimal]:
        first = (total * Decimal("0.3")).quantize(NANO, rounding=ROUND_DOWN)
        second = (total * Decimal("0.5")).quantize(NANO, rounding=ROUND_DOWN)
        return [part for part in (first, second, total - first - second) if part > 0]

    def fill(self, order: dict[str, Any], qty: Decimal, price: Decimal, filled: Decimal, *, last: bool,
             faults: Faults) -> None:  # fmt: skip
        execution = str(uuid.uuid4())
        self.executions[execution] = Execution(order["account_id"], order["symbol"], qty, price)
        order.update(filled_qty=str(filled), filled_avg_price=str(price), updated_at=now_iso(),
                     status="filled" if last else "partially_filled",
                     filled_at=now_iso() if last else None)  # fmt: skip
        event = "fill" if last else "partial_fill"
        self.emit(order, event, execution_id=execution, qty=str(qty), price=str(price), position_qty=str(filled))
        if "bust" in faults.active:
            self.emit(order, "trade_bust", execution_id=execution, qty=str(qty), price=str(price))
            # The busted execution leaves the position; the one executed again takes its place.
            again = str(uuid.uuid4())
            self.executions[again] = self.executions.pop(execution)
            self.emit(order, event, execution_id=again, qty=str(qty), price=str(price), position_qty=str(filled))
        if "correct" in faults.active:
            corrected = (price * Decimal("1.01")).quantize(Decimal("0.0001"))
            if execution in self.executions:  # not busted
                self.executions[execution].price = corrected
            self.emit(order, "trade_correct", execution_id=execution, qty=str(qty), price=str(corrected))

    def positions(self, account_id: str) -> list[dict[str, Any]]:
        """Alpaca's Position objects (the fields alpaca-py requires, and the values) of the open positions."""
        qty: dict[str, Decimal] = dict(self.opening)
        cost: dict[str, Decimal] = {s: q * self.prices[s] for s, q in self.opening.items()}
        for execution in self.executions.values():
            if execution.account_id == account_id:
                qty[execution.symbol] = qty.get(execution.symbol, Decimal(0)) + execution.qty
                cost[execution.symbol] = cost.get(execution.symbol, Decimal(0)) + execution.qty * execution.price
        return [
            {"asset_id": str(uuid.uuid5(uuid.NAMESPACE_URL, symbol)), "symbol": symbol, "exchange": "NYSE",
             "asset_class": "us_equity", "asset_marginable": True, "qty": str(q), "qty_available": str(q),
             "side": "long", "avg_entry_price": str((cost[symbol] / q).quantize(Decimal("0.0001"))),
             "cost_basis": str(cost[symbol].quantize(Decimal("0.01"))),
             "market_value": str((q * self.prices[symbol]).quantize(Decimal("0.01"))),
             "current_price": str(self.prices[symbol])}
            for symbol, q in sorted(qty.items()) if q != 0
        ]  # fmt: skip


def problem(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"code": status * 100000 + 1, "message": message}, status_code=status, headers=headers)


def create_app(*, key: str = DEFAULT_KEY, secret: str = DEFAULT_SECRET) -> FastAPI:
    app = FastAPI(title="fake Alpaca Broker API")
    broker = Broker()
    faults = Faults()
    expected_auth = "Basic " + base64.b64encode(f"{key}:{secret}".encode()).decode()

    def gate(request: Request) -> Response | None:
        """Auth and the request-level faults; None lets the request through."""
        faults.api_requests += 1
        if request.headers.get("authorization") != expected_auth:
            return problem(401, "access key verification failed")
        if faults.api_requests <= faults.fail_first:
            if "server_error" in faults.active:
                return problem(503, "service unavailable")
            if "rate_limit" in faults.active:
                return problem(429, "rate limit exceeded", {"Retry-After": str(faults.retry_after_s)})
        return None

    def counted(response: Response) -> Response:
        faults.statuses[response.status_code] += 1
        return response

    @app.get("/v1/assets")
    async def assets(request: Request) -> Response:
        if (refused := gate(request)) is not None:
            return counted(refused)
        return counted(JSONResponse([
            {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, symbol)), "class": "us_equity", "exchange": "NYSE",
             "symbol": symbol, "name": symbol, "status": "active", "tradable": symbol not in faults.untradable,
             "marginable": True, "shortable": True, "easy_to_borrow": True,
             "fractionable": symbol not in faults.unfractionable}
            for symbol in sorted(broker.prices)
        ]))  # fmt: skip

    @app.post("/v1/trading/accounts/{account_id}/orders")
    async def submit(account_id: str, body: OrderBody, request: Request) -> Response:
        if (refused := gate(request)) is not None:
            return counted(refused)
        if (body.notional is None) == (body.qty is None):
            return counted(problem(400, "one of qty or notional is required"))
        if body.notional is not None and body.notional < 1:
            return counted(problem(403, "notional must be at least 1"))
        if body.symbol not in broker.prices:
            return counted(problem(422, f"asset {body.symbol} not found"))
        if body.client_order_id in broker.orders:
            return counted(problem(422, "client_order_id must be unique"))
        faults.orders_posted += 1
        order = broker.place(account_id, body, faults)
        if "slow" in faults.active:
            await asyncio.sleep(faults.slow_s)
        if "accept_then_error" in faults.active and faults.orders_posted <= faults.fail_first:
            return counted(problem(503, "upstream timeout"))
        return counted(JSONResponse(order))

    @app.get("/v1/trading/accounts/{account_id}/positions")
    async def positions(account_id: str, request: Request) -> Response:
        if (refused := gate(request)) is not None:
            return counted(refused)
        return counted(JSONResponse(broker.positions(account_id)))

    @app.get("/v1/trading/accounts/{account_id}/orders:by_client_order_id")
    async def by_client_id(account_id: str, request: Request) -> Response:
        if (refused := gate(request)) is not None:
            return counted(refused)
        order = broker.orders.get(request.query_params.get("client_order_id", ""))
        if order is None:
            return counted(problem(404, "order not found"))
        return counted(JSONResponse(order))

    async def stream(since_id: int, since: str | None) -> AsyncIterator[bytes]:
        sent = 0
        position = max(0, since_id - broker.first_id + 1)
        if since is not None:
            position = next((i for i, e in enumerate(broker.events) if e["at"] >= since), len(broker.events))
        while True:
            waiter = broker.new_event
            batch = broker.events[position:]
            position += len(batch)
            if "out_of_order" in faults.active:
                batch = [batch[i ^ 1] if (i ^ 1) < len(batch) else batch[i] for i in range(len(batch))]
            for event in batch:
                copies = 2 if "duplicate_events" in faults.active else 1
                for _ in range(copies):
                    if "drop_stream" in faults.active and sent >= faults.drop_after:
                        return
                    sent += 1
                    yield f"data: {json.dumps(event)}\n\n".encode()
            await waiter.wait()

    @app.get("/v2/events/trades")
    @app.get("/v1/events/trades")
    async def trade_events(request: Request) -> Response:
        if request.headers.get("authorization") != expected_auth:
            return counted(problem(401, "access key verification failed"))
        since_id = int(request.query_params.get("since_id") or 0)
        return StreamingResponse(stream(since_id, request.query_params.get("since")), media_type="text/event-stream")

    @app.post("/__mode")
    async def set_mode(change: ModeChange) -> dict[str, Any]:
        nonlocal faults
        active = frozenset(m for m in change.mode.split(",") if m and m != "good")
        unknown = active - set(FAULTS)
        if unknown:
            return {"error": f"unknown modes {sorted(unknown)}"}
        faults = Faults(
            active=active,
            fail_first=faults.fail_first if change.fail_first is None else change.fail_first,
            retry_after_s=faults.retry_after_s if change.retry_after_s is None else change.retry_after_s,
            slow_s=faults.slow_s if change.slow_s is None else change.slow_s,
            drop_after=faults.drop_after if change.drop_after is None else change.drop_after,
            drift_qty=faults.drift_qty if change.drift_qty is None else change.drift_qty,
            untradable=faults.untradable if change.untradable is None else frozenset(change.untradable),
            unfractionable=faults.unfractionable if change.unfractionable is None else frozenset(change.unfractionable),
        )
        return faults.stats()

    @app.post("/__positions")
    async def set_opening_positions(opening: dict[str, Decimal]) -> Response:
        if unknown := sorted(set(opening) - set(broker.prices)):
            return problem(422, f"unknown symbols {unknown}")
        broker.opening = dict(opening)
        return JSONResponse({symbol: str(q) for symbol, q in broker.opening.items()})

    @app.get("/__stats")
    async def stats() -> dict[str, Any]:
        return {**faults.stats(), "orders": len(broker.orders), "events": len(broker.events)}

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


class FakeBrokerControl(FakeServerControl):
    """Control client of this server; its root is what BROKER_BASE_URL (the SDK's url_override) takes."""


@contextmanager
def serve_in_thread(*, key: str = DEFAULT_KEY, secret: str = DEFAULT_SECRET, host: str = "127.0.0.1",
                    port: int = 0) -> Iterator[str]:  # fmt: skip
    """Run the server on a background thread; yields its root URL (the SDK's url_override)."""
    with serve_app_in_thread(create_app(key=key, secret=secret), host=host, port=port) as root:
        yield root


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--key", default=DEFAULT_KEY)
    parser.add_argument("--secret", default=DEFAULT_SECRET)
    args = parser.parse_args(argv)
    sock = socket.create_server((args.host, args.port))
    print(f"fake broker listening on {socket_root(sock)}", flush=True)
    uvicorn_server(create_app(key=args.key, secret=args.secret)).run(sockets=[sock])


if __name__ == "__main__":
    main()
