"""`kamioi map [FILE] [--save]`: descriptors CSV in (stdin or FILE), resolved mappings CSV out (stdout).

The input needs a `descriptor` column (matched case-insensitively); other columns are ignored. The
output has one row per input row: descriptor, merchant_key, merchant, ticker, category, confidence,
tier, status (an empty ticker means none; only an approved row's ticker is invested in; a descriptor
longer than MAX_DESCRIPTOR_CHARS, the limit imports and the API apply, is not resolved: status
`invalid`, and a note on stderr). The whole
resolution pipeline runs against the database with the configured provider (offline without an LLM
key). Nothing is written unless --save: then new mappings are stored (catalog answers approved, the
rest pending review) and an LLM's calls are recorded in the ledger, which records them either way.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import sys
from collections.abc import Iterator
from itertools import islice
from typing import Any, TextIO

from psycopg import AsyncConnection

from kamioi.mapping.cache import UpstashMappingCache
from kamioi.mapping.normalizer import MAX_DESCRIPTOR_CHARS
from kamioi.mapping.providers.configured import configured_provider
from kamioi.mapping.resolver import Resolution, ResolverOptions, resolve_descriptors
from kamioi.settings import get_settings

OUTPUT_COLUMNS = ("descriptor", "merchant_key", "merchant", "ticker", "category", "confidence", "tier", "status")
# Rows resolved per round trip: bounds memory on big files, still one provider batch per 50 new keys.
CHUNK_ROWS = 5000


class InputError(Exception):
    pass


def read_descriptors(handle: TextIO) -> Iterator[str]:
    """Checks the header at once (before any output), then yields the descriptor of each row."""
    reader = csv.reader(handle)
    header = next(reader, None)
    if header is None:
        raise InputError("the input is empty; expected a CSV with a `descriptor` column")
    names = [name.lstrip("\ufeff").strip().lower() for name in header]
    if "descriptor" not in names:
        raise InputError(f"the input has no `descriptor` column (columns: {', '.join(header)})")
    column = names.index("descriptor")
    return (row[column] if column < len(row) else "" for row in reader)


def output_row(res: Resolution) -> list[str]:
    merchant = res.merchant
    return [
        res.descriptor,
        merchant.merchant_key,
        merchant.company or merchant.display_name,
        merchant.ticker or "",
        merchant.category or "",
        "" if merchant.confidence is None else f"{merchant.confidence:.4f}".rstrip("0").rstrip("."),
        merchant.tier,
        merchant.status,
    ]


def invalid_row(descriptor: str) -> list[str]:
    return [descriptor, "", "", "", "", "", "", "invalid"]


async def map_csv(source: TextIO, sink: TextIO, *, save: bool, db_url: str | None = None) -> int:
    """Stream source to sink through the resolver; returns the number of rows written."""
    descriptors = read_descriptors(source)
    settings = get_settings()
    options = ResolverOptions.from_settings(settings)
    cache = UpstashMappingCache.from_settings(settings)
    writer = csv.writer(sink, lineterminator="\n")
    writer.writerow(OUTPUT_COLUMNS)
    written = 0
    try:
        async with (
            await AsyncConnection.connect(db_url or settings.db_url, prepare_threshold=None, autocommit=True) as conn,
            configured_provider(settings, conn) as provider,
        ):
            while chunk := list(islice(descriptors, CHUNK_ROWS)):
                fitting = [d for d in chunk if len(d) <= MAX_DESCRIPTOR_CHARS]
                resolutions = iter(
                    await resolve_descriptors(conn, fitting, provider=provider, save=save, options=options, cache=cache)
                )
                for number, descriptor in enumerate(chunk, start=written + 1):
                    if len(descriptor) > MAX_DESCRIPTOR_CHARS:
                        print(
                            f"kamioi map: row {number}: descriptor longer than {MAX_DESCRIPTOR_CHARS} characters,"
                            " not resolved",
                            file=sys.stderr,
                        )
                        writer.writerow(invalid_row(descriptor))
                    else:
                        writer.writerow(output_row(next(resolutions)))
                written += len(chunk)
    finally:
        if cache is not None:
            await cache.aclose()
    return written


def _map(args: argparse.Namespace) -> int:
    try:
        if args.file is None:
            asyncio.run(map_csv(sys.stdin, sys.stdout, save=args.save, db_url=args.db_url))
        else:
            with open(args.file, encoding="utf-8-sig", newline="") as handle:
                asyncio.run(map_csv(handle, sys.stdout, save=args.save, db_url=args.db_url))
    except (InputError, OSError) as err:
        print(f"kamioi map: {err}", file=sys.stderr)
        return 2
    return 0


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "map", help="resolve a CSV of descriptors to merchants/tickers (stdin or FILE -> stdout)"
    )
    parser.add_argument("file", nargs="?", help="CSV with a `descriptor` column (default: stdin)")
    parser.add_argument("--save", action="store_true", help="store new mappings (default: change nothing)")
    parser.add_argument("--db-url", default=None, help="default: DATABASE_URL (env or .env)")
    parser.set_defaults(func=_map)
