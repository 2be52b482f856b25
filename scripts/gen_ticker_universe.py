"""Regenerate kamioi/mapping/data/us_tickers.csv, the ticker universe every mapping tier checks against.

Source: the SEC's company_tickers_exchange list (every SEC filer with a ticker and its exchange:
NYSE, Nasdaq, CBOE, OTC) as shipped in the edgartools package (edgar/reference/data/
company_tickers.parquet). The machine reaches PyPI, not sec.gov, so the maintained package is the
carrier. Run with pyarrow available, e.g.:

    .venv/bin/uv run --no-project --with pyarrow python scripts/gen_ticker_universe.py

SEC class-share tickers use a dash (BRK-B); the catalog and brokers print a dot (BRK.B).
"""

from __future__ import annotations

import csv
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pyarrow.parquet as pq  # type: ignore[import-not-found]

PACKAGE = "edgartools==5.62.1"
MEMBER = "edgar/reference/data/company_tickers.parquet"
OUT = Path(__file__).resolve().parent.parent / "kamioi" / "mapping" / "data" / "us_tickers.csv"
TICKER = re.compile(r"[A-Z][A-Z./]{0,4}")
EXCHANGES = {"NYSE", "Nasdaq", "CBOE", "OTC"}


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        subprocess.run([sys.executable, "-m", "pip", "download", PACKAGE, "--no-deps", "-q", "-d", scratch], check=True)
        wheel = next(Path(scratch).glob("edgartools-*.whl"))
        with zipfile.ZipFile(wheel) as archive:
            archive.extract(MEMBER, scratch)
        rows = pq.read_table(Path(scratch) / MEMBER).to_pylist()
    universe: dict[str, tuple[str, str]] = {}
    for row in rows:
        ticker = (row["ticker"] or "").upper().replace("-", ".")
        if row["exchange"] in EXCHANGES and TICKER.fullmatch(ticker):
            universe.setdefault(ticker, (row["exchange"], " ".join((row["name"] or "").split())))
    with OUT.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["ticker", "exchange", "name"])
        writer.writerows((ticker, *universe[ticker]) for ticker in sorted(universe))
    print(f"{len(universe)} tickers -> {OUT}")


if __name__ == "__main__":
    main()
