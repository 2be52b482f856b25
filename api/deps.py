"""Typed dependencies: routes declare what they need (`admin: CurrentAdmin`, `res: Res`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request, Response, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from api.auth import Principal
from api.problems import ProblemError, problem_responses
from api.ratelimit import LimitName
from api.read_routing import READ_SOURCE_HEADER, RoutedRead
from api.resources import Resources

bearer_scheme = HTTPBearer(
    auto_error=False,
    description="A Supabase access token (ES256/RS256 via JWKS, or HS256 legacy), or the sb_secret_ key.",
)
apikey_scheme = APIKeyHeader(
    name="apikey", auto_error=False, description="The project's sb_secret_ key, for server-to-server calls."
)


async def get_resources(request: Request) -> Resources:
    # async: FastAPI would run a plain def in the thread pool, a thread hop per request for a lookup.
    resources: Resources = request.app.state.resources
    return resources


Res = Annotated[Resources, Depends(get_resources)]


async def get_read_db(res: Res, response: Response) -> RoutedRead:
    return RoutedRead(res.reads, response.headers)


# Reads that may be served by the read replica: `await read.run(lambda pool: query(pool, ...))`.
# The replica while it is up and within READ_REPLICA_MAX_LAG_S, else the primary; sets X-Read-Source.
ReadDb = Annotated[RoutedRead, Depends(get_read_db)]


async def get_principal(
    res: Res,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)],
    apikey: Annotated[str | None, Security(apikey_scheme)],
) -> Principal:
    return await res.verifier.authenticate(bearer.credentials if bearer else None, apikey)


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


async def require_admin(res: Res, principal: CurrentPrincipal) -> Principal:
    """The secret key, or a user whose profile says admin now (a token's claim can be an hour old)."""
    if principal.role == "service_role":
        return principal
    if principal.user_id is None or await res.roles.role(principal.user_id) != "admin":
        raise ProblemError(403, "this endpoint is for admins; the caller's profile role is not admin")
    return principal


CurrentAdmin = Annotated[Principal, Depends(require_admin)]


def rate_limited(name: LimitName) -> Callable[[Resources, Principal], Awaitable[None]]:
    """A route dependency counting the request against the admin's `name` window."""

    async def check(res: Res, admin: CurrentAdmin) -> None:
        await res.limits.check(name, admin)

    return check


ReadLimit = Depends(rate_limited("reads"))
WriteLimit = Depends(rate_limited("writes"))
ReviewLimit = Depends(rate_limited("reviews"))  # the writes budget, but open while Upstash is away
UploadLimit = Depends(rate_limited("uploads"))

# Errors every admin route can answer with (422 is added by FastAPI where there is input).
ADMIN_ERRORS = problem_responses(401, 403, 429, 503, 504)
CACHE_HEADER = {
    "X-Cache": {
        "description": "hit | miss | stale (refreshing in the background) | bypass (Upstash unavailable)",
        "schema": {"type": "string", "enum": ["hit", "miss", "stale", "bypass"]},
    }
}
READ_SOURCE = {
    READ_SOURCE_HEADER: {
        "description": "replica | primary: the database that served this read (on a cached answer: that"
        " this process reads from now); primary while the replica is down or lags past READ_REPLICA_MAX_LAG_S",
        "schema": {"type": "string", "enum": ["replica", "primary"]},
    }
}
