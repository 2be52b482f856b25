"""The CSV columns each import kind accepts, matched to the file's header by name.

Header names are compared case-insensitively, ignoring surrounding spaces, a UTF-8 BOM, and the
difference between spaces, dashes and underscores ("Txn Date" = "txn_date"). Columns a kind does not
know are ignored and listed in import_jobs.columns. See README.md for what each column accepts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from jobs.errors import BadInputError


@dataclass(frozen=True)
class Column:
    name: str
    required: bool = False
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class ImportKind:
    name: str
    columns: tuple[Column, ...]
    descriptor_column: str  # normalized into merchant_key in Python (one LRU-cached call per distinct text)

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.required)


MAPPINGS = ImportKind(
    name="mappings",
    columns=(
        Column("merchant_name", required=True, aliases=("merchant", "descriptor")),
        Column("company_name", required=True, aliases=("company",)),
        Column("ticker", aliases=("symbol",)),
        Column("category"),
        Column("confidence"),
        Column("status"),
        Column("admin_approved"),
        Column("source"),
        Column("tier"),
        Column("model"),
        Column("prompt_version"),
        Column("reason"),
        Column("created_at"),
        Column("reviewer"),
        Column("reviewed_at"),
    ),
    descriptor_column="merchant_name",
)

TRANSACTIONS = ImportKind(
    name="transactions",
    columns=(
        Column("user_id", required=True, aliases=("user",)),
        Column("txn_date", required=True, aliases=("date", "transaction_date")),
        Column("descriptor", required=True, aliases=("description", "merchant", "merchant_name")),
        Column("amount", required=True),
    ),
    descriptor_column="descriptor",
)

KINDS = {kind.name: kind for kind in (MAPPINGS, TRANSACTIONS)}


def header_key(name: str) -> str:
    return re.sub(r"[\s\-_]+", "_", name.lstrip("\ufeff").strip().lower())


@dataclass(frozen=True)
class HeaderMap:
    """Where each known column sits in the file's records."""

    positions: dict[str, int]  # column name -> field index
    width: int  # fields per record
    ignored: tuple[str, ...]  # header names the kind does not use

    def describe(self) -> dict[str, list[str]]:
        return {"used": list(self.positions), "ignored": list(self.ignored)}


def map_header(kind: ImportKind, header: list[str]) -> HeaderMap:
    """Match a header row to the kind's columns; a missing required column fails the job."""
    wanted = {header_key(alias): col.name for col in kind.columns for alias in (col.name, *col.aliases)}
    positions: dict[str, int] = {}
    ignored: list[str] = []
    for index, raw in enumerate(header):
        name = wanted.get(header_key(raw))
        if name is None or name in positions:
            ignored.append(raw.strip())
        else:
            positions[name] = index
    missing = [name for name in kind.required if name not in positions]
    if missing:
        raise BadInputError(_missing_message(kind, missing, header))
    ordered = {col.name: positions[col.name] for col in kind.columns if col.name in positions}
    return HeaderMap(ordered, len(header), tuple(ignored))


_DELIMITERS = {";": "semicolons (a spreadsheet's CSV in some locales)", "\t": "tabs", "|": "bars"}


def _missing_message(kind: ImportKind, missing: list[str], header: list[str]) -> str:
    if len(header) == 1:
        for delimiter, named in _DELIMITERS.items():
            if delimiter in header[0]:
                return (
                    f"the header is separated by {named}, not commas: save the file comma-separated"
                    f" (CSV UTF-8) and import it again (found: {header[0].strip()[:200]})"
                )
    message = (
        f"the header lacks required column(s) for a {kind.name} import: {', '.join(missing)}"
        f" (found: {', '.join(h.strip() for h in header) or 'nothing'})"
    )
    for other in KINDS.values():
        if other is not kind and _has_required(other, header):
            message += f"; this looks like a {other.name} file"
    return message


def _has_required(kind: ImportKind, header: list[str]) -> bool:
    names = {header_key(h) for h in header}
    return all(
        any(header_key(alias) in names for alias in (col.name, *col.aliases)) for col in kind.columns if col.required
    )
