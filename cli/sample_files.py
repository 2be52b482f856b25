"""Transactions CSV files from cli.generate, for the demo and the evaluation."""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

from cli.generate import TRANSACTION_COLUMNS, generate_transactions


def write_transactions_csv(path: Path, rows: int, *, users: int, seed: int = 0, end: date | None = None) -> None:
    """A realistic, skewed transactions file (Zipf-popular chains plus a long tail of local shops)."""
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(TRANSACTION_COLUMNS)
        writer.writerows(generate_transactions(rows, seed, users=users, end=end))
