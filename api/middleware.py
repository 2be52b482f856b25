"""Pure ASGI middleware: request ids, access logs, latency metrics, last-resort 500s, and timeouts."""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import time

from starlette.exceptions import HTTPException
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.jsonlog import request_id_var
from api.metrics import Metrics
from api.problems import problem_response

REQUEST_ID_HEADER = "x-request-id"
# Accept the caller's id (a proxy's, the frontend's) only if it is safe to echo and to log.
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

access_log = logging.getLogger("api.access")
error_log = logging.getLogger("api.errors")


def request_id_of(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == REQUEST_ID_HEADER.encode():
            candidate = bytes(value).decode("latin-1")
            if _VALID_REQUEST_ID.match(candidate):
                return candidate
    return secrets.token_hex(16)


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None) if isinstance(route, BaseRoute) else None
    return path if isinstance(path, str) else "unmatched"


def record_request(metrics: Metrics, scope: Scope, route: str, status: int, started: float) -> None:
    """The access log line and latency observation of one finished request."""
    elapsed = time.perf_counter() - started
    metrics.observe_request(route, scope["method"], status, elapsed)
    access_log.info(
        "request",
        extra={
            "method": scope["method"],
            "path": scope["path"],
            "route": route,
            "status": status,
            "duration_ms": round(elapsed * 1000, 2),
        },
    )


class RequestContextMiddleware:
    """Every response, even a crash, carries X-Request-ID and is logged and timed (the outermost of the
    middleware; only api.replay, which logs its own answers the same way, sits in front of it)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_of(scope)
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            error_log.exception("unhandled error", extra={"path": scope["path"]})
            if not response_started:
                response = problem_response(500, "internal error; quote the request id", instance=scope["path"])
                await response(scope, receive, send_with_id)
        finally:
            record_request(self.metrics, scope, _route_template(scope), status, started)
            request_id_var.reset(token)


class TimeoutMiddleware:
    """Answer 504 when a request runs past its budget (and cancel the work, including its query)."""

    def __init__(self, app: ASGIApp, timeout_s: float, long_paths: dict[str, float]) -> None:
        self.app = app
        self.timeout_s = timeout_s
        # Paths whose requests legitimately take longer (streamed uploads), by exact path.
        self.long_paths = long_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        response_started = False

        async def track(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        budget = self.long_paths.get(scope["path"], self.timeout_s)
        deadline = asyncio.timeout(budget)
        try:
            async with deadline:
                await self.app(scope, receive, track)
        except TimeoutError:
            if not deadline.expired() or response_started:
                raise
            response = problem_response(504, f"the request took longer than {budget:g} s", instance=scope["path"])
            await response(scope, receive, send)


class BodyTooLarge(HTTPException):
    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"the request body is larger than the limit of {max_bytes} bytes")


class BodyLimitMiddleware:
    """413 for request bodies over `max_bytes`, before they are read into memory (JSON bodies are
    parsed whole). Paths in `exempt_paths` (streamed uploads) enforce their own, larger limit."""

    def __init__(self, app: ASGIApp, max_bytes: int, exempt_paths: tuple[str, ...]) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.exempt_paths = exempt_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.exempt_paths:
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                response = problem_response(413, BodyTooLarge(self.max_bytes).detail, instance=scope["path"])
                await response(scope, receive, send)
                return
        received = 0

        async def counted() -> Message:
            # Chunked bodies carry no length: count what arrives. FastAPI re-raises an
            # HTTPException raised while it reads the body, so the problem handler answers 413.
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        await self.app(scope, counted, send)
