"""Connection pools and PostgREST-shaped transactions, so RLS and the RPCs' own checks apply to the API too."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from psycopg import AsyncConnection, AsyncCursor, OperationalError, errors
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from api.auth import Principal
from api.problems import problem_response

log = logging.getLogger("api.db")

Pool = AsyncConnectionPool[AsyncConnection[DictRow]]
Cursor = AsyncCursor[DictRow]

# What PostgREST sets at the start of every request (see kamioi.db.postgrest_preamble), plus a
# statement timeout for this transaction only, which also works behind a transaction-mode pooler.
_PREAMBLE = (
    "select set_config('search_path', 'public, extensions', true),"
    " set_config('role', %s, true),"
    " set_config('request.jwt.claims', %s, true),"
    " set_config('request.method', %s, true),"
    " set_config('request.path', %s, true),"
    " set_config('request.headers', '{}', true),"
    " set_config('statement_timeout', %s, true)"
)


# How long a pool keeps retrying one lost connection before it gives up on it (psycopg_pool's
# reconnect_timeout, 5 minutes by default). Its retries wait 1, 2, 4, 8 ... s, capped to what is left
# of this, so a database back from an outage is reached within a few seconds, not after the next
# doubled wait; once a retry gives up, the next request that needs a connection starts a fresh one.
RECONNECT_TIMEOUT_S = 5.0


def create_pool(
    url: str, *, name: str, min_size: int, max_size: int, timeout_s: float = 30.0, check: bool = False
) -> Pool:
    """Opened by the lifespan. No prepared statements: Supavisor's transaction mode cannot keep them.
    timeout_s: how long a request waits for a connection; check: test each connection before lending
    it (a server that restarted leaves broken ones behind)."""
    return AsyncConnectionPool(
        url,
        name=name,
        min_size=min_size,
        max_size=max_size,
        timeout=timeout_s,
        reconnect_timeout=RECONNECT_TIMEOUT_S,
        check=AsyncConnectionPool.check_connection if check else None,
        open=False,
        connection_class=AsyncConnection[DictRow],
        kwargs={"prepare_threshold": None, "autocommit": True, "row_factory": dict_row},
    )


@asynccontextmanager
async def as_caller(
    pool: Pool,
    principal: Principal,
    *,
    read_only: bool,
    timeout_s: float,
    path: str = "/rpc",
) -> AsyncIterator[Cursor]:
    """One transaction run exactly as PostgREST would run it for this caller's token."""
    claims: dict[str, Any] = {**principal.claims, "role": principal.role}
    async with pool.connection() as conn, conn.transaction():
        if read_only:
            await conn.execute("set transaction read only")
        await conn.execute(
            _PREAMBLE,
            (
                principal.role,
                json.dumps(claims),
                "GET" if read_only else "POST",
                path,
                str(max(1, int(timeout_s * 1000))),
            ),
        )
        async with conn.cursor() as cur:
            yield cur


@asynccontextmanager
async def as_owner(pool: Pool, *, timeout_s: float, read_only: bool = True) -> AsyncIterator[Cursor]:
    """A transaction as the pool's own role, for admin-wide aggregates and the private SQL API (after the
    API checked admin)."""
    async with pool.connection() as conn, conn.transaction():
        if read_only:
            await conn.execute("set transaction read only")
        await conn.execute("select set_config('statement_timeout', %s, true)", (str(max(1, int(timeout_s * 1000))),))
        async with conn.cursor() as cur:
            yield cur


def install_db_error_handlers(app: FastAPI) -> None:
    """Database errors with a meaning for the client become problems; the RPCs raise these codes."""

    async def on_db_error(request: Request, exc: Exception) -> JSONResponse:
        status, detail, headers = 500, "database error; quote the request id", {}
        if isinstance(exc, errors.InsufficientPrivilege):
            status, detail = 403, _primary(exc, "not allowed")
        elif isinstance(exc, errors.NoDataFound):
            status, detail = 404, _primary(exc, "not found")
        elif isinstance(exc, errors.InvalidParameterValue | errors.InvalidTextRepresentation):
            status, detail = 422, _primary(exc, "invalid value")
        elif isinstance(exc, errors.QueryCanceled):
            status, detail = 504, "the database query took too long"
        elif isinstance(exc, OperationalError | PoolTimeout):
            status, detail, headers = 503, "the database is unavailable", {"Retry-After": "5"}
        else:
            log.exception("database error", extra={"path": request.url.path})
        return problem_response(status, detail, instance=request.url.path, headers=headers)

    app.add_exception_handler(psycopg.Error, on_db_error)
    app.add_exception_handler(PoolTimeout, on_db_error)


def _primary(error: psycopg.Error, fallback: str) -> str:
    return error.diag.message_primary or fallback
