"""`kamioi jobs [--state failed|cancelled|dead|...] [--kind K]`: the jobs in one state, newest first
(the same view as `GET /v1/jobs`): what gave up, what was cancelled, which mails never left."""

from __future__ import annotations

import argparse
import sys
from typing import Any, TextIO

from psycopg.rows import dict_row

from kamioi.db import connect
from kamioi.job_list import JOB_STATES, MAX_PAGE, job_list_query
from kamioi.settings import get_settings

ERROR_CHARS = 100


def fetch_jobs(db_url: str, state: str, kind: str | None, before_id: int | None, limit: int) -> list[dict[str, Any]]:
    sql, params = job_list_query(state, kind, before_id, limit)
    with connect(db_url) as conn, conn.cursor(row_factory=dict_row) as cur:
        cur.execute(sql, params)
        return cur.fetchall()


def _about(row: dict[str, Any]) -> str:
    """What a row is about beyond its kind: the mail's job and recipient, or the payload's ids."""
    payload = row["payload"] or {}
    if row["kind"] == "mail":
        return f"{payload.get('job_kind')} {payload.get('job_id')} to {payload.get('recipient')}"
    return " ".join(f"{key}={value}" for key, value in payload.items() if key.endswith("id") or key == "list")


def print_jobs(rows: list[dict[str, Any]], out: TextIO) -> None:
    for row in rows:
        when = row["finished_at"] or row["created_at"]
        error = " ".join((row["last_error"] or "").split())
        if len(error) > ERROR_CHARS:
            error = error[: ERROR_CHARS - 3] + "..."
        attempts = f"{row['attempts']} attempt" + ("" if row["attempts"] == 1 else "s")
        if row["bad_input"]:
            attempts += ", bad input"
        line = f"{row['id']:>8}  {row['kind']:<20} {row['state']:<9} {when:%Y-%m-%d %H:%M:%S}  {attempts}"
        about = _about(row)
        print(line + (f"  {about}" if about else "") + (f"\n          {error}" if error else ""), file=out)


def _jobs(args: argparse.Namespace) -> int:
    rows = fetch_jobs(args.db_url or get_settings().db_url, args.state, args.kind, args.before, args.limit)
    if not rows:
        print(f"no {args.state} jobs" + (f" of kind {args.kind}" if args.kind else ""))
        return 0
    print_jobs(rows, sys.stdout)
    if len(rows) == args.limit:
        kind = f" --kind {args.kind}" if args.kind else ""
        print(f"more: kamioi jobs --state {args.state}{kind} --before {rows[-1]['id']}")
    return 0


def _limit(text: str) -> int:
    value = int(text)
    if not 1 <= value <= MAX_PAGE:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_PAGE}")
    return value


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "jobs",
        help="jobs in one state, newest first: failed jobs, cancelled exports, dead mails",
        description="The jobs in one state, newest first (as GET /v1/jobs). `failed`: jobs that gave up;"
        " `cancelled`: stopped ones (a cancelled export is an exports.csv job); `dead`: mails about finished"
        " jobs that SMTP refused until their last attempt.",
    )
    parser.add_argument("--state", choices=JOB_STATES, default="failed", help="default: failed")
    parser.add_argument("--kind", default=None, help="only this job kind, e.g. import, exports.csv (mail for mails)")
    parser.add_argument("--limit", type=_limit, default=20, help=f"rows (at most {MAX_PAGE}; default 20)")
    parser.add_argument("--before", type=int, default=None, metavar="ID", help="the next page: older than this id")
    parser.add_argument("--db-url", default=None, help="default: DATABASE_URL (env or .env)")
    parser.set_defaults(func=_jobs)
