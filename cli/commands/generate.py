"""`kamioi generate --kind mappings|transactions --rows N`: stream a realistic CSV to stdout."""

from __future__ import annotations

import argparse
import csv
import os
import sys
from collections.abc import Iterable, Sequence
from datetime import date
from typing import TextIO

import psycopg

from cli.generate import (
    MAPPING_COLUMNS,
    SEEDED_USER_IDS,
    TRANSACTION_COLUMNS,
    generate_mappings,
    generate_transactions,
)
from kamioi.db import connect
from kamioi.settings import get_settings

# Rows spread over at most this many of the database's users (the oldest first: seeded users lead).
EXISTING_USERS_LIMIT = 1000


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be zero or more")
    return value


def _users(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError("must be between 0 and 1")
    return value


def existing_user_ids(db_url: str, limit: int = EXISTING_USERS_LIMIT) -> list[str]:
    """Ids of users the database has, oldest first: an import rejects a row whose user is unknown."""
    with connect(db_url, connect_timeout=5) as conn:
        rows = conn.execute(
            "select id::text from public.profiles order by created_at, id limit %s", (limit,)
        ).fetchall()
    return [row[0] for row in rows]


def _default_users() -> list[str]:
    """The database's users; the stack's seeded ones (with a note) when it cannot be reached."""
    try:
        users = existing_user_ids(get_settings().db_url)
    except psycopg.Error as exc:
        print(
            f"kamioi generate: database not reachable ({exc.__class__.__name__}); rows go to the"
            " two seeded users (--users N for a synthetic pool)",
            file=sys.stderr,
        )
        return list(SEEDED_USER_IDS)
    return users or list(SEEDED_USER_IDS)


def write_csv(header: Sequence[str], rows: Iterable[Sequence[str]], out: TextIO) -> None:
    """Header and rows as CSV: minimal quoting, \\n line ends."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)


def _generate(args: argparse.Namespace) -> int:
    header: Sequence[str]
    if args.kind == "transactions":
        header = TRANSACTION_COLUMNS
        if args.users is None:
            rows = generate_transactions(
                args.rows, args.seed, args.bad_rows, end=args.end_date, user_ids=_default_users()
            )
        else:
            rows = generate_transactions(args.rows, args.seed, args.bad_rows, args.users, end=args.end_date)
    else:
        header = MAPPING_COLUMNS
        rows = generate_mappings(args.rows, args.seed, args.bad_rows, end=args.end_date)
    try:
        write_csv(header, rows, sys.stdout)
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader stopped early (`| head`): not an error. Point stdout at /dev/null so the
        # interpreter's final flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "generate",
        help="stream a realistic mappings or transactions CSV to stdout",
        description="Stream a realistic CSV (header first) to stdout; deterministic for a seed and end date.",
    )
    parser.add_argument("--kind", choices=["mappings", "transactions"], required=True)
    parser.add_argument("--rows", type=_count, required=True, help="data rows to write")
    parser.add_argument(
        "--bad-rows", type=_fraction, default=0.0, metavar="FRACTION", help="share of malformed rows (0-1)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--users",
        type=_users,
        default=None,
        metavar="N",
        help="a synthetic pool of N users: the two seeded ones, then ids derived from the seed, which the"
        " database must have for the rows to import (default: the users the database has, up to"
        f" {EXISTING_USERS_LIMIT})",
    )
    parser.add_argument(
        "--end-date",
        type=date.fromisoformat,
        default=None,
        metavar="YYYY-MM-DD",
        help="last day of the 18-month window (default: today)",
    )
    parser.set_defaults(func=_generate)
