"""Database connections, and PostgREST's way of running one request (for RLS tests and benches)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.rows import dict_row

from kamioi.settings import get_settings


def connect(url: str | None = None, **kwargs: Any) -> psycopg.Connection[Any]:
    """A direct connection. prepare_threshold=None keeps it valid behind Supavisor transaction mode."""
    return psycopg.connect(url or get_settings().db_url, prepare_threshold=None, **kwargs)


def postgrest_preamble(
    conn: psycopg.Connection[Any],
    role: str,
    claims: dict[str, Any] | None = None,
    *,
    method: str = "POST",
    path: str = "/rpc",
    headers: dict[str, str] | None = None,
) -> None:
    """Set what PostgREST sets at the start of each request's transaction."""
    all_claims = {"role": role, **(claims or {})}
    conn.execute(
        "select set_config('search_path', 'public, extensions', true),"
        " set_config('role', %s, true),"
        " set_config('request.jwt.claims', %s, true),"
        " set_config('request.method', %s, true),"
        " set_config('request.path', %s, true),"
        " set_config('request.headers', %s, true)",
        (role, json.dumps(all_claims), method, path, json.dumps(headers or {})),
    )


@contextmanager
def postgrest_request(
    conn: psycopg.Connection[Any],
    role: str,
    claims: dict[str, Any] | None = None,
    *,
    read_only: bool = False,
    method: str = "POST",
    path: str = "/rpc",
) -> Iterator[psycopg.Cursor[dict[str, Any]]]:
    """One PostgREST-shaped transaction: BEGIN [READ ONLY], preamble, the caller's queries, COMMIT."""
    with conn.transaction():
        if read_only:
            conn.execute("set transaction read only")
        postgrest_preamble(conn, role, claims, method=method, path=path)
        with conn.cursor(row_factory=dict_row) as cur:
            yield cur
