"""The CSV generator: determinism, validity of good rows, the bad-row share, realism, the subcommand."""

from __future__ import annotations

import argparse
import csv
import io
import re
import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

import psycopg
import pytest

from cli.commands import generate as generate_command
from cli.generate import (
    HISTORY_DAYS,
    MAPPING_COLUMNS,
    SEEDED_USER_IDS,
    TRANSACTION_COLUMNS,
    generate_mappings,
    generate_transactions,
    user_pool,
)
from kamioi.mapping.catalog import CATEGORIES, load_catalog
from kamioi.mapping.normalizer import merchant_key

END = date(2026, 11, 22)
FIRST_DAY = END - timedelta(days=HISTORY_DAYS - 1)
# What the importer accepts (jobs/imports): the validators below mirror its rules.
AMOUNT = re.compile(r"\d+\.\d{2}")
TICKER = re.compile(r"[A-Z][A-Z0-9]{0,5}(?:[.-][A-Z0-9]{1,3})?")
MAX_TEXT = 500


def _valid_uuid(text: str) -> bool:
    try:
        return str(uuid.UUID(text)) == text
    except ValueError:
        return False


def _valid_day(text: str) -> bool:
    try:
        return FIRST_DAY <= date.fromisoformat(text) <= END and len(text) == 10
    except ValueError:
        return False


def _transaction_ok(row: list[str], users: set[str]) -> bool:
    if len(row) != len(TRANSACTION_COLUMNS):
        return False
    user, day, descriptor, amount = row
    return (
        user in users
        and _valid_uuid(user)
        and _valid_day(day)
        and 0 < len(descriptor.strip()) <= MAX_TEXT
        and AMOUNT.fullmatch(amount) is not None
        and 0 < float(amount) <= 1_000_000
    )


def _mapping_ok(row: list[str]) -> bool:
    if len(row) != len(MAPPING_COLUMNS):
        return False
    name, key, company, ticker, category, confidence, status, approved, source, model, created_at = row
    try:
        created = datetime.fromisoformat(created_at)
        score = float(confidence)
    except ValueError:
        return False
    return (
        0 < len(name.strip()) <= MAX_TEXT
        and key != ""
        and 0 < len(company) <= 200
        and (ticker == "" or TICKER.fullmatch(ticker) is not None)
        and category in CATEGORIES
        and re.fullmatch(r"\d\.\d{4}", confidence) is not None
        and 0 <= score <= 1
        and status in {"pending", "approved", "rejected"}
        and approved in {"true", "false"}
        and source in {"llm", "admin", "import", "catalog", "user"}
        and 0 < len(model) <= 200
        and FIRST_DAY <= created.date() <= END
    )


def test_same_seed_same_rows_other_seed_other_rows() -> None:
    first = list(generate_transactions(500, seed=3, bad_fraction=0.1, users=50, end=END))
    assert first == list(generate_transactions(500, seed=3, bad_fraction=0.1, users=50, end=END))
    assert first != list(generate_transactions(500, seed=4, bad_fraction=0.1, users=50, end=END))
    mappings = list(generate_mappings(500, seed=3, bad_fraction=0.1, end=END))
    assert mappings == list(generate_mappings(500, seed=3, bad_fraction=0.1, end=END))


def test_rows_stream_lazily() -> None:
    started = time.perf_counter()
    assert len(next(generate_transactions(10**12, seed=1, end=END))) == len(TRANSACTION_COLUMNS)
    assert len(next(generate_mappings(10**12, seed=1, end=END))) == len(MAPPING_COLUMNS)
    assert time.perf_counter() - started < 10


def test_user_pool_holds_the_seeded_users() -> None:
    pool = user_pool(100, seed=5)
    assert pool[:2] == list(SEEDED_USER_IDS)
    assert len(set(pool)) == 100
    assert all(_valid_uuid(user) and uuid.UUID(user).version == 4 for user in pool)
    assert pool == user_pool(100, seed=5) != user_pool(100, seed=6)
    assert user_pool(1, seed=5) == [SEEDED_USER_IDS[0]]


def test_good_transactions_are_all_valid() -> None:
    users = set(user_pool(200, seed=9))
    rows = list(generate_transactions(5_000, seed=9, users=200, end=END))
    assert [row for row in rows if not _transaction_ok(row, users)] == []
    assert set(SEEDED_USER_IDS) <= {row[0] for row in rows}


def test_good_mappings_are_all_valid_and_keyed_by_the_normalizer() -> None:
    rows = list(generate_mappings(5_000, seed=9, end=END))
    assert [row for row in rows if not _mapping_ok(row)] == []
    assert all(merchant_key(row[0]) == row[1] for row in rows[:1_000])
    catalog = load_catalog()
    for name, key, company, ticker, category, *_ in rows:
        if key in catalog and company == catalog[key].canonical_name:
            assert (ticker, category) == (catalog[key].ticker or "", catalog[key].category), name
    for *_, status, approved, _source, _model, _created in rows:
        assert approved == ("true" if status == "approved" else "false")


@pytest.mark.parametrize("fraction", [0.02, 0.25])
def test_bad_row_share(fraction: float) -> None:
    rows = 12_000
    users = set(user_pool(100, seed=2))
    bad_transactions = sum(
        not _transaction_ok(row, users)
        for row in generate_transactions(rows, seed=2, bad_fraction=fraction, users=100, end=END)
    )
    bad_mappings = sum(not _mapping_ok(row) for row in generate_mappings(rows, seed=2, bad_fraction=fraction, end=END))
    tolerance = 4 * (fraction * (1 - fraction) / rows) ** 0.5  # four standard deviations
    assert abs(bad_transactions / rows - fraction) < tolerance
    assert abs(bad_mappings / rows - fraction) < tolerance


def test_every_row_is_one_csv_line() -> None:
    rows = list(generate_transactions(3_000, seed=4, bad_fraction=0.3, users=20, end=END))
    out = io.StringIO()
    generate_command.write_csv(TRANSACTION_COLUMNS, rows, out)
    text = out.getvalue()
    assert text.count("\n") == len(rows) + 1
    assert list(csv.reader(io.StringIO(text)))[1:] == rows


def test_popularity_is_skewed_with_a_long_tail() -> None:
    keys = Counter(merchant_key(row[2]) for row in generate_transactions(20_000, seed=8, users=10, end=END))
    top_ten = sum(n for _, n in keys.most_common(10))
    assert top_ten / 20_000 > 0.2
    assert len(keys) > 1_000
    local = sum(n for key, n in keys.items() if key not in load_catalog())
    assert 0.2 < local / 20_000 < 0.45


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="kamioi")
    generate_command.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


def test_command_streams_header_and_rows(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["generate", "--kind", "mappings", "--rows", "40", "--seed", "3", "--end-date", END.isoformat()]
    assert _run(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == ",".join(MAPPING_COLUMNS)
    assert len(lines) == 41
    expected = io.StringIO()
    generate_command.write_csv(MAPPING_COLUMNS, generate_mappings(40, seed=3, end=END), expected)
    assert "\n".join(lines) + "\n" == expected.getvalue()


def test_command_passes_bad_rows_and_users(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["generate", "--kind", "transactions", "--rows", "300", "--bad-rows", "0.5", "--users", "7"]
    assert _run([*argv, "--seed", "11", "--end-date", END.isoformat()]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))[1:]
    assert rows == list(generate_transactions(300, seed=11, bad_fraction=0.5, users=7, end=END))


@pytest.mark.parametrize(
    "bad_argument", [["--bad-rows", "1.5"], ["--rows", "-1"], ["--users", "0"], ["--kind", "users"]]
)
def test_command_rejects_bad_arguments(bad_argument: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["generate", "--kind", "transactions", "--rows", "5", *bad_argument]
    with pytest.raises(SystemExit):
        _run(argv)
    assert "error" in capsys.readouterr().err


def test_generation_speed_floor() -> None:
    """A coarse guard (measured ~240k transaction rows/s and ~180k mapping rows/s of CPU, CSV included)."""
    started = time.perf_counter()
    out = io.StringIO()
    generate_command.write_csv(TRANSACTION_COLUMNS, generate_transactions(60_000, seed=1, end=END), out)
    assert 60_000 / (time.perf_counter() - started) > 15_000


def test_command_defaults_to_users_the_database_has(
    capsys: pytest.CaptureFixture[str], db: psycopg.Connection[Any], make_user: Callable[[str], str]
) -> None:
    """Without --users every row belongs to a user that exists, so an import rejects none as unknown."""
    make_user("user")
    assert _run(["generate", "--kind", "transactions", "--rows", "400", "--end-date", END.isoformat()]) == 0
    owners = {row[0] for row in list(csv.reader(io.StringIO(capsys.readouterr().out)))[1:]}
    known = {r[0] for r in db.execute("select id::text from public.profiles where id::text = any(%s)", (list(owners),))}
    assert owners == known
    assert set(SEEDED_USER_IDS) <= owners and len(owners) > 2


def test_command_falls_back_to_the_seeded_users_without_a_database(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def unreachable(db_url: str, limit: int = 0) -> list[str]:
        raise psycopg.OperationalError("connection refused")

    monkeypatch.setattr(generate_command, "existing_user_ids", unreachable)
    assert _run(["generate", "--kind", "transactions", "--rows", "50", "--end-date", END.isoformat()]) == 0
    captured = capsys.readouterr()
    assert {row[0] for row in list(csv.reader(io.StringIO(captured.out)))[1:]} == set(SEEDED_USER_IDS)
    assert "seeded users" in captured.err
