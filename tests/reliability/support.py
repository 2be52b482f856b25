"""Helpers for the reliability suite: data snapshots, hostile strings, and waiting for a quiet stack."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg

# Every table a request, an import or a job could change. auth.users and profiles included: an
# injection that promoted a user would show there.
DOMAIN_TABLES = (
    "auth.users",
    "public.profiles",
    "public.merchant_catalog",
    "public.merchants",
    "public.llm_mappings",
    "public.transactions",
    "public.allocations",
    "public.import_jobs",
    "public.import_rejections",
)

# Classic and PostgreSQL-specific injection strings: quote breaking, stacked statements, boolean and
# time-based blind probes, dollar quoting, LIKE wildcards, COPY TO PROGRAM, comments, a NUL byte.
SQL_INJECTIONS = (
    "' OR '1'='1",
    "'; DROP TABLE public.transactions; --",
    "1; DELETE FROM public.llm_mappings",
    '" OR ""="',
    "') OR 1=1 --",
    "'||(SELECT pg_sleep(3))||'",
    "1' AND (SELECT 1 FROM pg_sleep(3))::text='1",
    "$$; DROP TABLE public.merchants; $$",
    "admin'--",
    "%' OR 1=1 --",
    "'; COPY (SELECT '') TO PROGRAM 'touch /tmp/kamioi-pwned'; --",
    "1 UNION SELECT email, null FROM auth.users --",
    "'; UPDATE public.profiles SET role = 'admin'; --",
    "\x00' OR 1=1 --",
)


@dataclass(frozen=True)
class DataSnapshot:
    """Row counts of the domain tables and the transaction id at a moment. Later, any committed
    insert, update or delete since shows: a new or updated row carries a newer xmin than the snapshot
    (counted by a scan, far cheaper than hashing every row of a large table), a delete lowers a count."""

    xid: int
    counts: dict[str, int]

    @classmethod
    def take(cls, conn: psycopg.Connection[Any]) -> DataSnapshot:
        counts = {table: _scalar(conn, f"select count(*) from {table}") for table in DOMAIN_TABLES}
        return cls(_scalar(conn, "select pg_current_xact_id()::text::bigint"), counts)

    def changes(self, conn: psycopg.Connection[Any]) -> dict[str, str]:
        """{table: what changed}, empty when nothing did."""
        since = _scalar(conn, "select pg_current_xact_id()::text::bigint") - self.xid
        found: dict[str, str] = {}
        for table in DOMAIN_TABLES:
            row = conn.execute(
                f"select count(*), count(*) filter (where age(xmin) <= %s) from {table}", (since,)
            ).fetchone()
            assert row is not None
            rows, written = int(row[0]), int(row[1])
            if rows != self.counts[table] or written:
                found[table] = f"{self.counts[table]} -> {rows} rows, {written} written since"
        return found


def _scalar(conn: psycopg.Connection[Any], sql: str) -> int:
    row = conn.execute(sql).fetchone()
    assert row is not None
    return int(row[0])


def wait_until(check: Callable[[], Any], timeout: float = 20.0, what: str = "condition", every: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def busy_jobs(conn: psycopg.Connection[Any]) -> int:
    """Jobs that may write soon: running under a live lease, or due with a live worker for their kind."""
    row = conn.execute(
        "select count(*) from private.job_queue as q"
        " where (q.state = 'running' and q.lease_until > now())"
        "    or (q.state = 'queued' and q.run_at <= now() + interval '5 seconds'"
        "        and exists (select 1 from private.job_workers as w"
        "                     where q.kind = any (w.kinds) and w.seen_at > now() - interval '30 seconds'))"
    ).fetchone()
    return int(row[0]) if row else 0


def wait_for_quiet_queue(conn: psycopg.Connection[Any], timeout: float = 30.0) -> None:
    """Before a snapshot: let jobs left by earlier suites (run by a stack worker) settle."""
    deadline = time.monotonic() + timeout
    while busy_jobs(conn) and time.monotonic() < deadline:
        time.sleep(0.2)
