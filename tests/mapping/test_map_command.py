"""`kamioi map` as an operator runs it: a real subprocess against the local stack."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from pathlib import Path

from local_stack.standins.llm_server import FakeLLMControl
from tests.mapping.support import DbSlice

PROJECT_ROOT = Path(__file__).resolve().parents[2]
HEADER = ["descriptor", "merchant_key", "merchant", "ticker", "category", "confidence", "tier", "status"]


def kamioi_map(*args: str, stdin: str = "", env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", "map", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        env={**os.environ, **(env or {})},
        timeout=60,
    )


def parse(stdout: str) -> list[dict[str, str]]:
    reader = csv.DictReader(io.StringIO(stdout))
    assert reader.fieldnames == HEADER
    return list(reader)


def descriptors_csv(db_slice: DbSlice) -> str:
    rows = [
        ["id", "Descriptor"],
        ["1", "STARBUCKS STORE 12345 SEATTLE WA"],
        ["2", f"{db_slice.descriptor('bravo coffee')} #12, AUSTIN TX"],
        ["3", db_slice.descriptor("bravo cofee")],
        ["4", db_slice.descriptor("netflix binge lounge")],
        ["5", ""],
    ]
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue()


async def test_map_resolves_every_row_and_changes_nothing_without_save(db_slice: DbSlice) -> None:
    await db_slice.add_catalog("bravo coffee", "Bravo Coffee Co", "SBUX", "FOOD_AND_DRINK")

    result = kamioi_map(stdin=descriptors_csv(db_slice))

    assert result.returncode == 0, result.stderr
    rows = parse(result.stdout)
    assert [(r["merchant_key"], r["ticker"], r["tier"], r["status"]) for r in rows] == [
        ("starbucks", "SBUX", rows[0]["tier"], "approved"),
        (db_slice.key("bravo coffee"), "SBUX", "catalog", "approved"),
        (db_slice.key("bravo cofee"), "SBUX", "similarity", "pending"),
        (db_slice.key("netflix binge lounge"), "", "review", "pending"),
        (rows[4]["merchant_key"], "", "review", "pending"),
    ]
    assert rows[0]["tier"] in ("catalog", "approved")
    assert rows[1]["merchant"] == "Bravo Coffee Co" and rows[1]["confidence"] == "1"
    assert rows[1]["descriptor"].endswith("#12, AUSTIN TX")
    assert await db_slice.mappings() == []


async def test_map_saves_when_asked_from_a_file(db_slice: DbSlice, tmp_path: Path) -> None:
    await db_slice.add_catalog("bravo coffee", "Bravo Coffee Co", "SBUX", "FOOD_AND_DRINK")
    source = tmp_path / "descriptors.csv"
    source.write_text(descriptors_csv(db_slice), encoding="utf-8")

    result = kamioi_map(str(source), "--save")

    assert result.returncode == 0, result.stderr
    assert [(row[0].removeprefix(db_slice.tag + " "), *row[1:]) for row in await db_slice.mappings()] == [
        ("bravo cofee", "similarity", "pending", "SBUX"),
        ("bravo coffee", "catalog", "approved", "SBUX"),
        ("netflix binge lounge", "review", "pending", None),
    ]


async def test_map_uses_the_configured_llm_and_records_its_calls(db_slice: DbSlice, fake_llm: FakeLLMControl) -> None:
    model = f"fake-{db_slice.tag}"
    env = {"LLM_API_KEY": "test-key", "LLM_BASE_URL": fake_llm.base_url, "LLM_MODEL": model}

    result = kamioi_map(stdin=descriptors_csv(db_slice), env=env)

    assert result.returncode == 0, result.stderr
    netflix = parse(result.stdout)[3]
    assert (netflix["ticker"], netflix["tier"], netflix["status"]) == ("NFLX", "llm", "pending")
    assert await db_slice.rows("select outcome from public.llm_calls where model = %s", model) == [("ok",)]
    await db_slice.conn.execute("delete from public.llm_calls where model = %s", (model,))


def test_map_refuses_input_without_a_descriptor_column() -> None:
    result = kamioi_map(stdin="merchant,amount\nSTARBUCKS,1\n")

    assert result.returncode == 2
    assert "no `descriptor` column" in result.stderr
    assert result.stdout == ""


async def test_map_save_refuses_a_descriptor_over_the_import_limit(db_slice: DbSlice) -> None:
    """One limit for every entry point: `kamioi map --save` stores no key an import would refuse."""
    fits = db_slice.descriptor("long merchant") + " " + "x" * 10
    too_long = db_slice.descriptor("long merchant") + " " + "y" * 10_000
    source = io.StringIO()
    csv.writer(source).writerows([["descriptor"], [too_long], [fits]])

    result = kamioi_map("--save", stdin=source.getvalue())

    assert result.returncode == 0, result.stderr
    rows = parse(result.stdout)
    assert [(r["descriptor"] == too_long, r["merchant_key"], r["status"]) for r in rows] == [
        (True, "", "invalid"),
        (False, rows[1]["merchant_key"], "pending"),
    ]
    assert "row 1: descriptor longer than 500 characters" in result.stderr
    assert [len(row[0]) <= 500 for row in await db_slice.mappings()] == [True]
