"""A 20 MB line through the real import pipeline: rejected by line number, every good row around it
lands, and the worker never holds the line (it used to cost about five times its size)."""

from __future__ import annotations

import tracemalloc
from pathlib import Path
from typing import Any

import psycopg
import pytest

from jobs.imports.service import get_import
from kamioi.settings import Settings
from tests.jobs.conftest import USER_ID
from tests.jobs.support import imported_transactions, register, rejections, run_inline, transactions_csv

pytestmark = pytest.mark.usefixtures("stack_worker_paused")

LINE_BYTES = 20 << 20


def test_a_20_mb_line_is_rejected_without_the_worker_ever_holding_it(
    conn: psycopg.Connection[Any], settings: Settings, tmp_path: Path
) -> None:
    cap = Settings().import_max_row_bytes
    path = transactions_csv(tmp_path / "long-line.csv", 100)  # lines 2-101
    with path.open("ab") as out:
        out.write(f"{USER_ID},2026-03-01,".encode())
        for _ in range(20):
            out.write(b"D" * (LINE_BYTES // 20))
        out.write(b",1.00,x\n")  # line 102
        for n in range(100):  # lines 103-202
            out.write(f"{USER_ID},2026-03-02,AFTER THE LONG LINE {n},2.00,x\n".encode())
    job = register(conn, path)
    # A first import loads what every import needs once (modules, the normalizer's tables).
    assert run_inline(settings.db_url, register(conn, transactions_csv(tmp_path / "warm-up.csv", 5))) == "succeeded"

    tracemalloc.start()
    try:
        outcome = run_inline(settings.db_url, job)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert outcome == "succeeded"
    done = get_import(conn, job.id)
    assert done is not None
    assert (done.processed_rows, done.inserted_rows, done.rejected_rows) == (201, 200, 1)
    assert (done.checkpoint_offset, done.checkpoint_line) == (path.stat().st_size, 202)
    assert [r[0] for r in imported_transactions(conn, job.id)] == [*range(2, 102), *range(103, 203)]
    [(line, column, reason, raw)] = rejections(conn, job.id)
    assert (line, column, reason) == (102, None, f"row longer than {cap} bytes")
    assert raw.startswith(f"{USER_ID},2026-03-01,DDDD") and len(raw) == 1000
    assert peak < LINE_BYTES // 4, f"the import allocated {peak:,} bytes at its peak for a {LINE_BYTES:,}-byte line"
