"""Run an ASGI app as a real local HTTP server: the fakes of paid services (LLM, price feed) use it,
with their shared fault modes: the state every fake keeps per mode (FaultState), its control endpoints
(`POST /__mode`, `GET /__stats`, served by FaultModes) and their client (FakeServerControl)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

import httpx
import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError


def uvicorn_server(app: FastAPI) -> uvicorn.Server:
    # Short graceful shutdown: a `slow` request still sleeping must not hold up a test run.
    config = uvicorn.Config(app, log_level="warning", lifespan="off", timeout_graceful_shutdown=1)
    return uvicorn.Server(config)


def socket_root(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://{host}:{port}"


@contextmanager
def serve_app_in_thread(app: FastAPI, *, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve `app` on a background thread; yields its root URL (http://host:port)."""
    sock = socket.create_server((host, port))
    server = uvicorn_server(app)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("local server did not start")
            time.sleep(0.01)
        yield socket_root(sock)
    finally:
        server.should_exit = True
        thread.join(timeout=5)
        sock.close()


@dataclass
class FaultState:
    """A fake's mode, its fault settings, and the counters of the requests that arrived in that mode.
    A fake subclasses it for its own settings (with defaults) and counters, extending stats()."""

    mode: str
    fail_first: int = 2  # failing requests in the *_then_ok modes
    slow_s: float = 2.0
    retry_after_s: int = 0
    requests: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    in_flight: int = 0
    max_in_flight: int = 0

    def stats(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "requests": self.requests,
            "statuses": {str(status): count for status, count in self.statuses.items()},
            "max_in_flight": self.max_in_flight,
        }

    def scripted_failure(self, request_no: int) -> tuple[int, dict[str, str]] | None:
        """The failure the mode scripts for this request (status, headers), or None: a 429 with
        Retry-After, or a 5xx, for the first `fail_first` requests of a *_then_ok mode, or always."""
        if self.mode == "rate_limit_then_ok" and request_no <= self.fail_first:
            return 429, {"Retry-After": str(self.retry_after_s)}
        if self.mode == "server_error":
            return 500, {}
        if self.mode == "server_error_then_ok" and request_no <= self.fail_first:
            return 503, {}
        return None


class ModeChange(BaseModel):
    """A `POST /__mode` body; a fake subclasses it to name its modes and add its settings (all optional:
    what a change leaves out keeps its current value)."""

    mode: str
    fail_first: int | None = Field(default=None, ge=0)
    slow_s: float | None = Field(default=None, ge=0)
    retry_after_s: int | None = Field(default=None, ge=0)


S = TypeVar("S", bound=FaultState)


class FaultModes(Generic[S]):
    """A fake's current FaultState behind its control endpoints: `POST /__mode` starts a new state (the
    settings carried over unless changed, the counters at zero) and `GET /__stats` reads it."""

    def __init__(self, state: S, change: type[ModeChange]) -> None:
        self.state = state
        self._change = change

    def install(self, app: FastAPI) -> None:
        app.add_api_route("/__mode", self._set_mode, methods=["POST"], summary="Switch mode and count afresh")
        app.add_api_route("/__stats", self._stats, methods=["GET"])

    async def counted(self, handle: Callable[[S, int], Awaitable[Response]]) -> Response:
        """Serve one request, counted against the state it arrived in: a slow request still running when
        a test switches modes must not show up in the next mode's counters."""
        now = self.state
        now.requests += 1
        now.in_flight += 1
        now.max_in_flight = max(now.max_in_flight, now.in_flight)
        try:
            response = await handle(now, now.requests)
        finally:
            now.in_flight -= 1
        now.statuses[response.status_code] += 1
        return response

    async def _set_mode(self, request: Request) -> JSONResponse:
        try:
            change = self._change.model_validate_json(await request.body())
        except ValidationError as err:
            return JSONResponse({"detail": json.loads(err.json(include_url=False))}, status_code=422)
        kept = {name: getattr(self.state, name) if value is None else value
                for name, value in change.model_dump(exclude={"mode"}).items()}  # fmt: skip
        self.state = type(self.state)(mode=change.mode, **kept)
        return JSONResponse(self.state.stats())

    async def _stats(self) -> JSONResponse:
        return JSONResponse(self.state.stats())


class FakeServerControl:
    """Client for a fake server's control endpoints, so tests and fault drills can flip modes and read counters."""

    api_path: ClassVar[str] = ""  # where the faked API lives under the root

    def __init__(self, root: str, http: httpx.AsyncClient) -> None:
        self.root = root.rstrip("/")
        self._http = http

    @property
    def base_url(self) -> str:
        """What a client of the faked service uses as its base URL."""
        return self.root + self.api_path

    async def set_mode(self, mode: str, **options: float) -> None:
        """Switch mode (options as the server's /__mode takes them) and zero the counters."""
        response = await self._http.post(f"{self.root}/__mode", json={"mode": mode, **options})
        response.raise_for_status()

    async def stats(self) -> dict[str, Any]:
        response = await self._http.get(f"{self.root}/__stats")
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result
