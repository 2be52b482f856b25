"""`kamioi export LIST [--filter NAME=VALUE ...]`: export an admin list as CSV through the export job,
following its progress on the job's topic (Realtime where a server runs, LISTEN/NOTIFY locally)."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import psycopg

from cli.local_run import run_here_unless_served
from jobs import export_service
from jobs.exports import EXPORT_KIND
from kamioi.db import connect
from kamioi.progress import JobProgressFeed, open_job_progress
from kamioi.settings import get_settings

TOPIC, EVENT = "admin:exports", "export_progress"
FINISHED = ("succeeded", "failed", "cancelled")
# No message for this long: read the row (a worker may have died; its lease runs out meanwhile).
STALL_RECHECK_SECONDS = 30.0


def parse_filters(pairs: list[str]) -> dict[str, str]:
    filters = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise SystemExit(f"kamioi export: --filter takes NAME=VALUE, got {pair!r}")
        filters[name] = value
    return filters


def _row(conn: psycopg.Connection[Any], export_id: int) -> dict[str, Any]:
    row = export_service.run(conn, export_service.get_call(export_id))
    assert row is not None
    return row


def follow(conn: psycopg.Connection[Any], feed: JobProgressFeed, export_id: int) -> dict[str, Any]:
    """Print each progress message until the export ends (the feed was opened before the row is read)."""
    job, quiet_since, shown = _row(conn, export_id), time.monotonic(), -1
    while job["state"] not in FINISHED:
        if job["rows_written"] != shown:
            shown = job["rows_written"]
            print(f"  export {export_id}: {job['state']}, {shown:,} rows written", file=sys.stderr, flush=True)
        payload = feed.next(timeout=1.0)
        if payload is not None:
            job |= {k: payload[k] for k in ("state", "rows_written", "download_url", "error") if k in payload}
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= STALL_RECHECK_SECONDS:
            job, quiet_since = _row(conn, export_id), time.monotonic()
    return _row(conn, export_id)


def _export(args: argparse.Namespace) -> int:
    settings = get_settings()
    db_url = args.db_url or settings.db_url
    with connect(db_url, autocommit=True) as conn:
        try:
            created = export_service.create_export(conn, args.list, parse_filters(args.filter), sort=args.sort)
        except psycopg.errors.InvalidParameterValue as error:
            print(f"kamioi export: {error.diag.message_primary} ({error.diag.message_hint or ''})", file=sys.stderr)
            return 2
        export_id, queue_job_id = created["id"], created["queue_job_id"]
        print(f"export {export_id} queued (job {queue_job_id})", file=sys.stderr, flush=True)
        with open_job_progress(settings, db_url, topic=TOPIC, event=EVENT, job_id=export_id) as feed:
            run_here_unless_served(conn, db_url, queue_job_id, EXPORT_KIND, settings, wait=False)
            job = follow(conn, feed, export_id)
    if job["state"] != "succeeded":
        print(f"kamioi export: export {export_id} {job['state']}: {job['error'] or ''}", file=sys.stderr)
        return 1
    print(f"  {job['rows_written']:,} rows: {settings.exports_dir / job['file_name']}", file=sys.stderr)
    print(job["download_url"])
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "export", help="export an admin list (transactions, mappings, users) as CSV through the export job"
    )
    parser.add_argument("list", choices=["transactions", "mappings", "users"])
    parser.add_argument(
        "--filter",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a filter of the list, e.g. status=invested or email_prefix=ann (repeatable)",
    )
    parser.add_argument("--sort", default=None, help="mappings: newest | confidence_desc | confidence_asc")
    parser.add_argument("--db-url", default=None, help="default: DATABASE_URL (env or .env)")
    parser.set_defaults(func=_export)
