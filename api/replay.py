"""Replay rendered responses of the hot cached aggregates for about a second (per process).

A cached dashboard read spends nearly all of its CPU in the framework (middleware, routing,
dependency injection, validation, serialization, gzip), not in the cache. For the aggregates that
are the same for every admin (`paths`), this layer sits in front of the whole app, keeps the last
rendered 200 response per path, query, encoding and Origin, and answers repeats of it itself when:

- the caller's token is one the verifier has already checked, and its user's profile role was read
  as admin within API_ROLE_CACHE_S (api.roles; anything else goes through the app, which answers
  401/403 as usual);
- the copy is younger than `max_age_s` (API_REPLAY_S) and no invalidation happened since it
  was rendered (the aggregate cache's generation, bumped by reviews and database NOTIFYs);
- the request is a plain GET without conditional, range or cache-control headers.

A replay carries the original's headers (CORS ones included: the Origin is part of the key) with a
new X-Request-ID, `X-Cache: hit` (`bypass` stays `bypass`: Upstash is still down) and, like any
cached answer, X-Read-Source naming where this process reads from now (api.read_routing); it is
logged and timed like any request, and counts as a `replay` lookup. Rate limits are unaffected: only reads
that reach the database count against them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.jsonlog import request_id_var
from api.middleware import REQUEST_ID_HEADER, record_request, request_id_of
from api.read_routing import READ_SOURCE_HEADER
from api.resources import Resources

MAX_ENTRIES = 256
MAX_BODY_BYTES = 256 * 1024
_SKIP_IF_PRESENT = frozenset({b"if-none-match", b"if-modified-since", b"range", b"cache-control"})
_REQUEST_ID = REQUEST_ID_HEADER.encode()
_READ_SOURCE = READ_SOURCE_HEADER.lower().encode()

_Key = tuple[str, bytes, bool, bytes]


@dataclass(frozen=True)
class _Rendered:
    stored_at: float
    generation: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


@dataclass(frozen=True)
class _Request:
    bearer: str | None
    apikey: str | None
    key: _Key


class ReplayMiddleware:
    def __init__(self, app: ASGIApp, paths: dict[str, str], max_age_s: float) -> None:
        """paths: the replayed paths and the cache family each one reads (for the lookup metric)."""
        self.app = app
        self.paths = paths
        self.max_age_s = max_age_s
        self._entries: dict[_Key, _Rendered] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = _replayable(scope) if self.max_age_s > 0 and scope.get("path") in self.paths else None
        # Starlette puts the app in the scope before its middleware runs; the lifespan gives it resources.
        resources: Resources | None = getattr(scope["app"].state, "resources", None) if request else None
        if request is None or resources is None:
            await self.app(scope, receive, send)
            return
        entry = self._entries.get(request.key)
        if (
            entry is not None
            and time.monotonic() - entry.stored_at < self.max_age_s
            and entry.generation == resources.cache.generation
            and _is_admin(resources, request)
        ):
            await _replay(entry, scope, send, resources, self.paths[scope["path"]])
            return
        await self._render(scope, receive, send, request, resources)

    async def _render(
        self, scope: Scope, receive: Receive, send: Send, request: _Request, resources: Resources
    ) -> None:
        generation = resources.cache.generation
        started_at = time.monotonic()
        status = 0
        headers: list[tuple[bytes, bytes]] = []
        chunks: list[bytes] = []
        size = 0

        async def capture(message: Message) -> None:
            nonlocal status, headers, size
            if message["type"] == "http.response.start":
                status, headers = message["status"], list(message.get("headers", []))
            elif message["type"] == "http.response.body" and size <= MAX_BODY_BYTES:
                body: bytes = message.get("body", b"")
                size += len(body)
                chunks.append(body)
            await send(message)

        await self.app(scope, receive, capture)
        # Kept only if it is an admin aggregate rendered under the current generation: not if an
        # invalidation came while it was computed, nor if the caller turned out not to be an admin.
        if (
            status == 200
            and size <= MAX_BODY_BYTES
            and generation == resources.cache.generation
            and _is_admin(resources, request)
        ):
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[request.key] = _Rendered(started_at, generation, _replay_headers(headers), b"".join(chunks))


async def _replay(entry: _Rendered, scope: Scope, send: Send, resources: Resources, family: str) -> None:
    started = time.perf_counter()
    request_id = request_id_of(scope)
    token = request_id_var.set(request_id)
    try:
        resources.metrics.count_lookup(family, "replay")
        source = resources.reads.choice().encode()
        headers = [
            *((name, source if name == _READ_SOURCE else value) for name, value in entry.headers),
            (_REQUEST_ID, request_id.encode()),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": entry.body})
    finally:
        record_request(resources.metrics, scope, scope["path"], 200, started)
        request_id_var.reset(token)


def _replayable(scope: Scope) -> _Request | None:
    if scope["type"] != "http" or scope["method"] != "GET":
        return None
    bearer = apikey = None
    gzip = False
    origin = b""
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, credentials = bytes(value).decode("latin-1").partition(" ")
            if scheme.lower() == "bearer":
                bearer = credentials.strip()
        elif name == b"apikey":
            apikey = bytes(value).decode("latin-1")
        elif name == b"accept-encoding":
            gzip = b"gzip" in value  # as GZipMiddleware decides
        elif name == b"origin":
            origin = bytes(value)
        elif name in _SKIP_IF_PRESENT:
            return None
    if bearer is None and apikey is None:
        return None
    return _Request(bearer, apikey, (scope["path"], scope["query_string"], gzip, origin))


def _is_admin(resources: Resources, request: _Request) -> bool:
    """Admin by what is already known: the secret key, or a user whose profile role was read as
    admin within API_ROLE_CACHE_S (the token's claim is not enough; anything else goes to the app)."""
    principal = resources.verifier.remembered(request.bearer, request.apikey)
    if principal is None:
        return False
    if principal.role == "service_role":
        return True
    return principal.user_id is not None and resources.roles.cached(principal.user_id) == "admin"


def _replay_headers(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    # Whatever the original said, a replay comes from a cache; a bypass (Upstash away) stays a bypass.
    replayed = []
    for name, value in headers:
        if name == b"x-cache" and value != b"bypass":
            value = b"hit"
        if name != _REQUEST_ID:
            replayed.append((name, value))
    return replayed
