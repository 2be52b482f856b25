"""The merchant catalog, the known-ticker list and the labelled evaluation set (all in ./data).

- data/catalog.csv: merchant_key, canonical_name (the brand), ticker (the owner's primary US symbol;
  empty = private, government, non-profit, foreign-only or unsure), category (a Plaid primary
  category), aliases (pipe-separated descriptor spellings), owner (the company that owns the brand)
  and source (where the owner and ticker come from). One row per brand.
- data/us_tickers.csv: the ticker universe, every US-listed symbol (NYSE, Nasdaq, CBOE, OTC) of an SEC
  filer, from the SEC list shipped in the edgartools package (scripts/gen_ticker_universe.py).
- data/known_tickers.txt: US symbols that list lacks (OTC ADRs of foreign owners that do not file
  with the SEC, a listing it missed), one per line, # comments, each with its source.
- data/eval_set.csv: hand-labelled bank descriptors (see `load_eval_set`).
- data/hard_eval_set.csv: hard descriptors (venues, look-alike names, parents with other names, deals,
  foreign owners, processors, private and public payees), each labelled with its source
  (see `load_hard_set`).

Tickers reflect US listings as known when the catalog was written; companies with an announced
take-private or merger still pending then were left without a ticker (precision over coverage).

`python -m kamioi.mapping.catalog > supabase/seed_catalog.sql` regenerates the checked-in seed.
"""

from __future__ import annotations

import csv
import re
import sys
from dataclasses import dataclass
from functools import cache
from importlib import resources

from kamioi.mapping.normalizer import alias_form
from kamioi.mapping.providers.base import CATEGORIES as CATEGORIES  # re-exported: the catalog validates against it

TICKER_PATTERN = re.compile(r"[A-Z][A-Z./]{0,4}")
KEY_PATTERN = re.compile(r"[a-z0-9]+(?: [a-z0-9]+)*")


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    merchant_key: str
    canonical_name: str
    ticker: str | None
    category: str
    aliases: tuple[str, ...]
    owner: str
    source: str


@dataclass(frozen=True, slots=True)
class EvalRow:
    descriptor: str
    expected_key: str
    expected_ticker: str | None  # None: private, local or unknown company
    in_catalog: bool


def _data_text(name: str) -> str:
    return (resources.files("kamioi.mapping") / "data" / name).read_text(encoding="utf-8")


def _entry(row: dict[str, str]) -> CatalogEntry:
    key, ticker, category = row["merchant_key"], row["ticker"], row["category"]
    if not KEY_PATTERN.fullmatch(key):
        raise ValueError(f"catalog key {key!r} is not lowercase words")
    if ticker and not TICKER_PATTERN.fullmatch(ticker):
        raise ValueError(f"catalog ticker {ticker!r} of {key!r} is malformed")
    if category not in CATEGORIES:
        raise ValueError(f"catalog category {category!r} of {key!r} is not a Plaid primary category")
    aliases = tuple(alias for alias in row["aliases"].split("|") if alias)
    return CatalogEntry(key, row["canonical_name"], ticker or None, category, aliases, row["owner"], row["source"])


@cache
def load_catalog() -> dict[str, CatalogEntry]:
    """merchant_key -> entry, in file order. Shared and cached: do not mutate."""
    catalog: dict[str, CatalogEntry] = {}
    for row in csv.DictReader(_data_text("catalog.csv").splitlines()):
        entry = _entry(row)
        if entry.merchant_key in catalog:
            raise ValueError(f"catalog key {entry.merchant_key!r} is listed twice")
        catalog[entry.merchant_key] = entry
    return catalog


def alias_forms(entry: CatalogEntry) -> list[str]:
    """The normalized words of the entry's key and aliases, deduplicated, key first."""
    forms = dict.fromkeys([entry.merchant_key, *(alias_form(alias) for alias in entry.aliases)])
    return [form for form in forms if form]


@cache
def alias_index() -> dict[str, str]:
    """Normalized alias -> merchant_key; raises if two merchants claim the same alias."""
    index: dict[str, str] = {}
    for key, entry in load_catalog().items():
        for form in alias_forms(entry):
            owner = index.setdefault(form, key)
            if owner != key:
                raise ValueError(f"alias {form!r} belongs to both {owner!r} and {key!r}")
    return index


@cache
def spellings_by_merchant() -> dict[str, tuple[str, ...]]:
    """merchant_key -> its normalized spellings (the inverse of `alias_index`)."""
    spellings: dict[str, list[str]] = {}
    for form, key in alias_index().items():
        spellings.setdefault(key, []).append(form)
    return {key: tuple(forms) for key, forms in spellings.items()}


@cache
def ticker_universe() -> frozenset[str]:
    """Every ticker an answer of any tier may name: data/us_tickers.csv plus data/known_tickers.txt."""
    listed = (line.split("#", 1)[0].strip() for line in _data_text("known_tickers.txt").splitlines())
    extra = {ticker for ticker in listed if ticker}
    sec = {row["ticker"] for row in csv.DictReader(_data_text("us_tickers.csv").splitlines())}
    malformed = sorted(ticker for ticker in extra | sec if not TICKER_PATTERN.fullmatch(ticker))
    if malformed:
        raise ValueError(f"ticker universe has malformed tickers: {malformed[:10]}")
    return frozenset(sec | extra)


@cache
def known_tickers() -> frozenset[str]:
    """The ticker universe; the catalog's tickers are in it (tests/mapping/test_catalog.py checks)."""
    return ticker_universe() | {entry.ticker for entry in load_catalog().values() if entry.ticker}


def load_eval_set() -> list[EvalRow]:
    rows = csv.DictReader(_data_text("eval_set.csv").splitlines())
    return [
        EvalRow(
            descriptor=row["descriptor"],
            expected_key=row["expected_key"],
            expected_ticker=row["expected_ticker"] or None,
            in_catalog={"true": True, "false": False}[row["in_catalog"]],
        )
        for row in rows
    ]


@dataclass(frozen=True, slots=True)
class HardRow:
    descriptor: str
    merchant: str  # a label shared by the descriptors of one merchant (for consistency)
    expected_ticker: str | None  # None: private, local, government, non-profit or unsure
    kind: str  # venue, lookalike, plus, place, parent, deal, adr, processor, private, government, nonprofit
    source: str

    def as_eval_row(self) -> EvalRow:
        """Scored like the main set; coverage counts the rows of public companies."""
        return EvalRow(self.descriptor, self.merchant, self.expected_ticker, self.expected_ticker is not None)


def load_hard_set() -> list[HardRow]:
    rows = csv.DictReader(_data_text("hard_eval_set.csv").splitlines())
    return [
        HardRow(row["descriptor"], row["merchant"], row["expected_ticker"] or None, row["kind"], row["source"])
        for row in rows
    ]


def _sql_text(value: str | None) -> str:
    return "null" if value is None else "'" + value.replace("'", "''") + "'"


def catalog_seed_sql() -> str:
    """Idempotent upsert of the whole catalog; aliases are stored normalized (what keys are matched on)."""
    values = []
    for entry in load_catalog().values():
        aliases = [form for form in alias_forms(entry) if form != entry.merchant_key]
        array = "array[" + ", ".join(_sql_text(a) for a in aliases) + "]::text[]" if aliases else "'{}'::text[]"
        fields = (entry.merchant_key, entry.canonical_name, entry.ticker, entry.category)
        values.append("  (" + ", ".join(_sql_text(field) for field in fields) + f", {array})")
    columns = ("canonical_name", "ticker", "category", "aliases")
    return (
        "-- Generated by kamioi.mapping.catalog.catalog_seed_sql() from kamioi/mapping/data/catalog.csv.\n"
        "-- Do not edit: python -m kamioi.mapping.catalog > supabase/seed_catalog.sql\n"
        "insert into public.merchant_catalog (merchant_key, canonical_name, ticker, category, aliases)\n"
        "values\n" + ",\n".join(values) + "\n"
        "on conflict (merchant_key) do update set\n  "
        + ", ".join(f"{c} = excluded.{c}" for c in columns)
        + "\nwhere ("
        + ", ".join(f"merchant_catalog.{c}" for c in columns)
        + ")\n  is distinct from ("
        + ", ".join(f"excluded.{c}" for c in columns)
        + ");\n"
    )


if __name__ == "__main__":
    sys.stdout.write(catalog_seed_sql())
