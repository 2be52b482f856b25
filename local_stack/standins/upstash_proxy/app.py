"""The ASGI app: Upstash REST routes, bearer-token auth, sync tokens and the unauthenticated /healthz."""

import hmac
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from local_stack.standins.upstash_proxy.commands import (
    Command,
    InvalidRequest,
    parse_command,
    parse_commands,
    path_command,
)
from local_stack.standins.upstash_proxy.config import ProxyConfig
from local_stack.standins.upstash_proxy.redis_runner import RedisRunner, RedisUnavailable, TransactionAborted
from local_stack.standins.upstash_proxy.replies import RedisReply, encode_reply
from local_stack.standins.upstash_proxy.sync_tokens import HEADER, SyncTokenError, WriteClock


class Unauthorized(Exception):
    """Missing or wrong bearer token (answered with HTTP 401)."""


def create_app(config: ProxyConfig) -> Starlette:
    runner = RedisRunner.from_config(config)
    clock = WriteClock(wait_timeout=config.sync_wait_timeout)
    expected_token = config.token.encode()

    def authorize(request: Request) -> None:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer":
            # Upstash also takes the token as a query parameter.
            token = request.query_params.get("_token", "")
        if not hmac.compare_digest(token.encode(), expected_token):
            raise Unauthorized

    async def run(request: Request, commands: list[Command], *, atomic: bool = False) -> list[RedisReply]:
        """Runs the commands once the request's sync token is reached; counts their writes."""
        await clock.reach(request.headers.get(HEADER, ""))
        replies = await (runner.transaction(commands) if atomic else runner.pipeline(commands))
        await clock.advance(await runner.writes_in(commands))
        return replies

    async def single_command(request: Request) -> Response:
        authorize(request)
        (reply,) = await run(request, [parse_command(await request.body())])
        return _single_reply(reply, request, clock.token)

    async def path_form_command(request: Request) -> Response:
        authorize(request)
        raw_path: bytes = request.scope.get("raw_path") or request.url.path.encode()
        (reply,) = await run(request, [path_command(raw_path, await request.body())])
        return _single_reply(reply, request, clock.token)

    async def pipeline(request: Request) -> Response:
        authorize(request)
        replies = await run(request, parse_commands(await request.body()))
        return _reply_list(replies, request, clock.token)

    async def multi_exec(request: Request) -> Response:
        authorize(request)
        replies = await run(request, parse_commands(await request.body()), atomic=True)
        return _reply_list(replies, request, clock.token)

    async def healthz(_: Request) -> Response:
        try:
            (pong,) = await runner.pipeline([[b"PING"]])
        except RedisUnavailable as error:
            return JSONResponse({"status": "unavailable", "error": str(error)}, status_code=503)
        if not isinstance(pong, bytes):  # e.g. "LOADING ..." while redis reads its dataset
            return JSONResponse({"status": "unavailable", "error": str(pong)}, status_code=503)
        return JSONResponse({"status": "ok", "redis": pong.decode()})

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        yield
        await runner.close()

    return Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            Route("/", single_command, methods=["POST"]),
            Route("/pipeline", pipeline, methods=["POST"]),
            Route("/multi-exec", multi_exec, methods=["POST"]),
            Route("/{path:path}", path_form_command, methods=["GET", "POST"]),
        ],
        exception_handlers={
            Unauthorized: _error_handler(401, message="Unauthorized"),
            InvalidRequest: _error_handler(400, clock),
            SyncTokenError: _error_handler(400, clock),
            TransactionAborted: _error_handler(400, clock),
            RedisUnavailable: _error_handler(503, clock),
        },
        lifespan=lifespan,
    )


def _wants_base64(request: Request) -> bool:
    return request.headers.get("upstash-encoding", "").lower() == "base64"


def _single_reply(reply: RedisReply, request: Request, sync_token: str) -> Response:
    body = encode_reply(reply, base64=_wants_base64(request))
    return JSONResponse(body, status_code=400 if "error" in body else 200, headers={HEADER: sync_token})


def _reply_list(replies: list[RedisReply], request: Request, sync_token: str) -> Response:
    base64 = _wants_base64(request)
    return JSONResponse([encode_reply(reply, base64=base64) for reply in replies], headers={HEADER: sync_token})


def _error_handler(
    status_code: int, clock: WriteClock | None = None, *, message: str | None = None
) -> Callable[[Request, Exception], Awaitable[Response]]:
    """Errors past authorization carry the sync token too: every answer to a client names the state."""

    async def handle(_: Request, error: Exception) -> Response:
        headers = {HEADER: clock.token} if clock is not None else None
        return JSONResponse({"error": message or str(error)}, status_code=status_code, headers=headers)

    return handle
