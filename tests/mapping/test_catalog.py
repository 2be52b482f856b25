"""Catalog integrity, the known-ticker list, the checked-in seed and the labelled evaluation set."""

from __future__ import annotations

import csv
from collections import Counter, defaultdict
from importlib import resources
from pathlib import Path

from kamioi.mapping.catalog import (
    CATEGORIES,
    KEY_PATTERN,
    TICKER_PATTERN,
    alias_forms,
    alias_index,
    catalog_seed_sql,
    known_tickers,
    load_catalog,
    load_eval_set,
    ticker_universe,
)
from kamioi.mapping.normalizer import merchant_key

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def _csv_rows(name: str) -> list[dict[str, str]]:
    text = (resources.files("kamioi.mapping") / "data" / name).read_text(encoding="utf-8")
    return list(csv.DictReader(text.splitlines()))


def test_catalog_is_big_with_unique_keys() -> None:
    keys = [row["merchant_key"] for row in _csv_rows("catalog.csv")]
    assert len(keys) >= 1500
    assert [key for key, n in Counter(keys).items() if n > 1] == []
    assert list(load_catalog()) == keys


def test_entries_are_well_formed() -> None:
    for key, entry in load_catalog().items():
        assert KEY_PATTERN.fullmatch(key), key
        assert entry.canonical_name.strip() == entry.canonical_name != "", key
        assert entry.category in CATEGORIES, key
        assert entry.ticker is None or TICKER_PATTERN.fullmatch(entry.ticker), key


def test_every_key_and_alias_normalizes_to_its_merchant() -> None:
    wrong = [
        (spelling, merchant_key(spelling), key)
        for key, entry in load_catalog().items()
        for spelling in (key, *entry.aliases)
        if merchant_key(spelling) != key
    ]
    assert wrong == []


def test_alias_index_covers_every_form_once() -> None:
    index = alias_index()
    for key, entry in load_catalog().items():
        assert index[key] == key
        assert all(index[form] == key for form in alias_forms(entry))


def test_well_known_tickers() -> None:
    catalog = load_catalog()
    expected = {
        "starbucks": "SBUX", "mcdonalds": "MCD", "chipotle": "CMG", "amazon": "AMZN", "walmart": "WMT",
        "target": "TGT", "costco": "COST", "home depot": "HD", "lowes": "LOW", "netflix": "NFLX",
        "spotify": "SPOT", "apple": "AAPL", "uber": "UBER", "lyft": "LYFT", "doordash": "DASH",
        "google": "GOOGL", "microsoft": "MSFT", "kroger": "KR", "cvs": "CVS", "square": "XYZ",
        "discover": "COF", "gap": "GAP", "dairy queen": "BRK.B",
    }  # fmt: skip
    assert {key: catalog[key].ticker for key in expected} == expected


def test_every_brand_names_its_owner_and_source() -> None:
    missing = [key for key, e in load_catalog().items() if not e.owner.strip() or not e.source.strip()]
    assert missing == []


def test_owners_after_2024_2025_deals_and_foreign_owners_adrs() -> None:
    catalog = load_catalog()
    expected = {
        "hawaiian airlines": "ALK", "mattress firm": "SGI", "aesop": "LRLCY", "zara": "IDEXY", "7 eleven": "SVNDY",
        "amc plus": "AMCX", "amc theatres": "AMC", "tracfone": "VZ", "cefco": "CASY",
        "travelcenters of america": "BP", "benihana": "STKS", "tidal": "XYZ", "pandora": "SIRI",
        "pandora jewelry": "PANDY", "foot locker": None, "electronic arts": None, "nyseg": None,
    }  # fmt: skip
    assert {key: catalog[key].ticker if key in catalog else None for key in expected} == expected


def test_government_and_non_profit_payees_never_have_a_ticker() -> None:
    listed = [k for k, e in load_catalog().items() if e.category == "GOVERNMENT_AND_NON_PROFIT" and e.ticker]
    assert listed == []


def test_private_or_recently_delisted_companies_have_no_ticker() -> None:
    catalog = load_catalog()
    private = [
        "trader joes", "chick fil a", "in n out", "publix", "heb", "wawa", "sheetz", "aldi", "ikea",
        "walgreens", "nordstrom", "skechers", "family dollar", "subway", "dunkin",
    ]  # fmt: skip
    assert {key: catalog[key].ticker for key in private} == dict.fromkeys(private)


def test_every_catalog_ticker_is_in_the_ticker_universe() -> None:
    universe = ticker_universe()
    stale = sorted((key, e.ticker) for key, e in load_catalog().items() if e.ticker and e.ticker not in universe)
    assert stale == []
    assert known_tickers() == universe


def test_the_universe_is_the_maintained_list_of_us_listings() -> None:
    universe = ticker_universe()
    assert len(universe) > 9000
    assert {"KO", "PEP", "NVDA", "BRK.B", "XYZ", "QSR", "SHEL"} <= universe
    assert all(TICKER_PATTERN.fullmatch(ticker) for ticker in universe)
    # Gone before the list was taken: take-privates, acquisitions, renamed symbols.
    assert {"WBA", "SKX", "JWN", "SQ", "DFS", "FL"}.isdisjoint(universe)


def test_checked_in_seed_is_the_rendered_catalog() -> None:
    seed = (PROJECT_ROOT / "supabase" / "seed_catalog.sql").read_text(encoding="utf-8")
    assert seed == catalog_seed_sql(), "regenerate: python -m kamioi.mapping.catalog > supabase/seed_catalog.sql"


def test_seed_quotes_text_and_stores_normalized_aliases() -> None:
    seed = catalog_seed_sql()
    assert "('mcdonalds', 'McDonald''s', 'MCD', 'FOOD_AND_DRINK', array['mc donalds'" in seed
    assert "('trader joes', 'Trader Joe''s', null, 'FOOD_AND_DRINK'" in seed
    assert seed.count("\n  (") == len(load_catalog())


def test_eval_set_shape() -> None:
    rows = load_eval_set()
    catalog = load_catalog()
    assert len(rows) >= 220
    for row in rows:
        assert row.in_catalog == (row.expected_key in catalog), row
        if row.in_catalog:
            assert row.expected_ticker == catalog[row.expected_key].ticker, row
        assert row.expected_ticker is None or row.expected_ticker in known_tickers(), row
    per_key = Counter(row.expected_key for row in rows)
    assert sum(1 for n in per_key.values() if n >= 3) >= 30  # many stores and banks per merchant
    assert sum(1 for row in rows if not row.in_catalog) >= 40  # local shops and uncatalogued brands
    assert sum(1 for row in rows if row.in_catalog and row.expected_ticker is None) >= 20  # private chains


def test_eval_set_normalization_accuracy() -> None:
    """Measured: 342/346 exact (98.8%); 343/346 (99.1%) agree with their merchant's majority key."""
    rows = load_eval_set()
    keys_by_merchant: defaultdict[str, list[str]] = defaultdict(list)
    exact = 0
    for row in rows:
        key = merchant_key(row.descriptor)
        keys_by_merchant[row.expected_key].append(key)
        exact += key == row.expected_key
    consistent = sum(Counter(keys).most_common(1)[0][1] for keys in keys_by_merchant.values())
    assert exact / len(rows) >= 0.988
    assert consistent / len(rows) >= 0.99


GENERIC_WORDS = {"inc", "llc", "co", "subscription", "membership", "payment", "order", "online", "store", "purchase"}


def test_no_alias_reduces_to_a_generic_word() -> None:
    """An alias that normalizes to a generic word would make every descriptor with that word an exact match."""
    assert GENERIC_WORDS.isdisjoint(alias_index())
