"""The broker, through its official SDK (alpaca-py's BrokerClient): one omnibus account, notional market
orders idempotent by client_order_id, order lookup by client id, the asset list, the account's
positions (reconciliation), and the trade-event stream (Server-Sent Events, replayable with since_id /
since).

Where it points (Settings): BROKER_BASE_URL if set (the SDK's url_override); else the broker's sandbox
when BROKER_API_KEY is set; else the local stand-in (local_stack/standins/broker_server.py) with its
own keys. The SDK is synchronous `requests`: call it from the worker's job thread.

Failures: the SDK retries 429 itself at a fixed interval; this wrapper owns retries instead (the SDK's
are turned off) so it can honour Retry-After, back off 5xx and timeouts, and, for an order, ask the
broker by client_order_id before placing again: an order the broker accepted whose answer was lost
is found, never placed twice.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

import requests
from alpaca.broker.client import BrokerClient
from alpaca.broker.requests import GetEventsRequest, OrderRequest
from alpaca.common.exceptions import APIError
from alpaca.trading.enums import OrderSide, OrderType, TimeInForce

from kamioi.settings import Settings

STANDIN_KEY = "fake-broker-key"
STANDIN_SECRET = "fake-broker-secret"  # noqa: S105 (the local stand-in's own credentials)
T = TypeVar("T")


class BrokerUnavailable(Exception):
    """The broker did not answer usefully after every attempt (the job's retry is the next retry)."""


@dataclass(frozen=True)
class PlacedOrder:
    broker_order_id: str
    status: str
    reject_reason: str | None = None


@dataclass(frozen=True)
class AssetFlags:
    symbol: str
    tradable: bool
    fractionable: bool


@dataclass(frozen=True)
class BrokerPosition:
    symbol: str
    qty: Decimal


class _TimeoutSession(requests.Session):
    """requests has no session-wide timeout; the SDK passes none, so a hung broker would hang the job."""

    def __init__(self, timeout: tuple[float, float]) -> None:
        super().__init__()
        self._timeout = timeout

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", self._timeout)
        return super().request(*args, **kwargs)


def broker_url(settings: Settings) -> str | None:
    """The SDK's url_override: None means the broker's own sandbox."""
    if settings.broker_base_url:
        return settings.broker_base_url.rstrip("/")
    if settings.broker_api_key:
        return None
    return f"http://127.0.0.1:{settings.broker_port}"


def _status_of(error: APIError) -> int | None:
    try:
        return int(error.status_code)
    except (TypeError, ValueError, AttributeError):
        return None


def _retry_after(error: APIError) -> float | None:
    response = getattr(getattr(error, "_http_error", None), "response", None)
    value = response.headers.get("Retry-After") if response is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


class Broker:
    def __init__(self, settings: Settings, *, sleep: Callable[[float], None] = time.sleep) -> None:
        key = settings.broker_api_key or STANDIN_KEY
        secret = settings.broker_secret_key or STANDIN_SECRET
        url = broker_url(settings)
        timeout = (min(settings.broker_timeout_s, 5.0), settings.broker_timeout_s)

        def client(api_version: str, read_timeout: float) -> BrokerClient:
            made = BrokerClient(key, secret, sandbox=True, url_override=url, api_version=api_version)
            made._retry = 0  # this wrapper retries (Retry-After, lookups by client id)
            made._session = _TimeoutSession((timeout[0], read_timeout))
            return made

        self._client = client("v1", settings.broker_timeout_s)
        # Alpaca documents /v2/events/trades for new partners; the SDK builds <base>/<version>/events/trades.
        self._events = client("v2", settings.broker_events_idle_s)
        self.account_id = settings.broker_account_id
        self.max_attempts = settings.broker_max_attempts
        self._sleep = sleep

    def _call(self, what: str, call: Callable[[], T]) -> T:
        delay = 0.5
        for attempt in range(1, self.max_attempts + 1):
            try:
                return call()
            except APIError as error:
                status = _status_of(error)
                if status is None or (status != 429 and status < 500) or attempt == self.max_attempts:
                    raise
                wait = _retry_after(error) if status == 429 else None
            except requests.RequestException as error:
                if attempt == self.max_attempts:
                    raise BrokerUnavailable(f"{what}: {error}") from error
                wait = None
            self._sleep(wait if wait is not None else delay)
            delay = min(delay * 2, 8.0)
        raise BrokerUnavailable(what)  # unreachable: the last attempt returns or raises

    def assets(self) -> list[AssetFlags]:
        raw = self._call("assets", lambda: self._client.get_all_assets())
        return [AssetFlags(a.symbol, bool(a.tradable), bool(a.fractionable)) for a in raw]  # type: ignore[union-attr]

    def positions(self) -> list[BrokerPosition]:
        """What the omnibus account holds per symbol, as the broker counts it (for reconciliation)."""
        raw = self._call("positions", lambda: self._client.get_all_positions_for_account(self.account_id))
        return [BrokerPosition(p.symbol, Decimal(p.qty)) for p in raw]  # type: ignore[union-attr]

    def find(self, client_order_id: str) -> PlacedOrder | None:
        try:
            order = self._call("order lookup", lambda: self._client.get_order_for_account_by_client_id(
                self.account_id, client_order_id))  # fmt: skip
        except APIError as error:
            if _status_of(error) == 404:
                return None
            raise
        return PlacedOrder(str(order.id), str(order.status.value))  # type: ignore[union-attr]

    def place(self, client_order_id: str, symbol: str, notional: Decimal) -> PlacedOrder:
        """Place the order once: any answer that may hide an accepted order is settled by a lookup."""
        request = OrderRequest(symbol=symbol, type=OrderType.MARKET, notional=float(notional), side=OrderSide.BUY,
                                     time_in_force=TimeInForce.DAY, client_order_id=client_order_id)  # fmt: skip
        for attempt in range(1, self.max_attempts + 1):
            try:
                order = self._client.submit_order_for_account(self.account_id, request)
                return PlacedOrder(str(order.id), str(order.status.value))  # type: ignore[union-attr]
            except APIError as error:
                status = _status_of(error)
                if status == 422 and "client_order_id" in str(error):
                    found = self.find(client_order_id)
                    if found is not None:
                        return found
                if status is not None and status != 429 and status < 500:
                    return PlacedOrder("", "rejected", str(error)[:500])
                wait = _retry_after(error) if status == 429 else None
            except requests.RequestException:
                wait = None
            # 5xx, 429, a timeout: the broker may have the order; ask before placing again.
            found = self.find(client_order_id)
            if found is not None:
                return found
            if attempt < self.max_attempts:
                self._sleep(wait if wait is not None else min(0.5 * 2 ** (attempt - 1), 8.0))
        raise BrokerUnavailable(f"placing {client_order_id}")

    def trade_events(self, *, since_id: int | None = None, since: str | None = None) -> Iterator[dict[str, Any]]:
        """Events from the stream until it is quiet for BROKER_EVENTS_IDLE_S or the broker closes it."""
        request = GetEventsRequest(since_id=since_id) if since is None else GetEventsRequest(since=since)
        try:
            for data in self._events.get_trade_events(request):
                if data:
                    yield json.loads(data)
        except requests.RequestException:
            return  # quiet or dropped: the caller reconciles and reads again
