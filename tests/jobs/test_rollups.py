"""The chart rollups stay equal to a full recomputation: after a random mix of imports (old months
too), reviews, deletes, corrections and compactions, and when rebuilt by the backfill job while
writers keep changing old and new rows."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from kamioi.settings import Settings
from tests.jobs.conftest import unique_tag
from tests.jobs.investing import LISTED, insert_transactions, make_merchant, run_invest, run_queued_corrections
from tests.jobs.rollups import rollup_drift, run_backfill

pytestmark = pytest.mark.usefixtures("stack_worker_paused")

SOURCES = ("transactions", "allocations", "llm_mappings")


class Changes:
    """Random writes to a set of tagged merchants, as imports, reviews and corrections make them."""

    def __init__(self, conn: psycopg.Connection[Any], users: list[str], rng: random.Random) -> None:
        self.conn = conn
        self.users = users
        self.rng = rng
        self.prefix = f"roll {unique_tag()}"
        self.keys = [f"{self.prefix} {n}" for n in range(4)]
        for key in self.keys:
            make_merchant(conn, key, rng.choice(LISTED))

    def import_rows(self) -> None:
        """An import: mapped or pending purchases, dated up to 500 days back (late rows for old months)."""
        status = self.rng.choice(("mapped", "pending"))
        insert_transactions(self.conn, self.users, self.keys, self.rng.randint(5, 40), self.rng, status)

    def review(self) -> None:
        """An admin approves a new mapping for a merchant (another ticker, category) or rejects the one in force."""
        key = self.rng.choice(self.keys)
        if self.rng.random() < 0.5:
            row = self.conn.execute(
                "select m.id, m.created_at from public.merchants as mr join public.llm_mappings as m"
                " on m.id = mr.mapping_id and m.created_at = mr.mapping_created_at where mr.merchant_key = %s",
                (key,),
            ).fetchone()
            decision = "rejected"
            if row is None:  # its mapping was rejected already: nothing in force
                return
        else:
            row = self.conn.execute(
                "insert into public.llm_mappings (merchant_name, merchant_key, ticker, category)"
                " values (upper(%s), %s, %s, %s) returning id, created_at",
                (key, key, self.rng.choice((*LISTED, None)), self.rng.choice(("FOOD_AND_DRINK", "TRAVEL"))),
            ).fetchone()
            decision = "approved"
        assert row is not None
        self.conn.execute("select public.review_mapping(%s, %s, %s)", (row[0], row[1], decision))

    def delete_rows(self) -> None:
        """Rows deleted (never invested ones: those cannot be)."""
        self.conn.execute(
            "delete from public.transactions where merchant_key like %s || '%%' and allocation_lot = 0"
            " and random() < 0.2",
            (self.prefix,),
        )

    def correct_rows(self) -> None:
        """Corrections of amounts and dates (a row moves to another day, month and partition)."""
        self.conn.execute(
            "update public.transactions set amount = amount + 1, round_up = round((random() * 0.99)::numeric, 2),"
            " txn_date = txn_date - (random() * 90)::int"
            " where merchant_key like %s || '%%' and allocation_lot = 0 and random() < 0.3",
            (self.prefix,),
        )

    def link(self) -> None:
        for key in self.keys:
            self.conn.execute("select private.link_pending_transactions(%s, 100000)", (key,))

    def operations(self, db_url: str) -> list[Callable[[], object]]:
        return [
            self.import_rows,
            self.link,
            self.review,
            self.delete_rows,
            self.correct_rows,
            lambda: run_invest(db_url, self.conn, chunk_rows=self.rng.randint(5, 80)),
            lambda: run_queued_corrections(db_url, self.conn),
            lambda: self.conn.execute("select private.compact_rollups()"),
        ]


@pytest.mark.parametrize("seed", [1, 2])
def test_rollups_equal_a_recomputation_after_a_random_mix(
    settings: Settings, conn: psycopg.Connection[Any], make_user: Callable[[str], str], seed: int
) -> None:
    rng = random.Random(seed)
    changes = Changes(conn, [make_user("user") for _ in range(2)], rng)
    operations = changes.operations(settings.db_url)
    for step in range(25):
        operation = rng.choice(operations)
        operation()
        assert rollup_drift(conn) == {}, f"step {step}: {operation}"


def test_the_backfill_rebuilds_every_rollup_exactly_while_writers_change_rows(
    settings: Settings, conn: psycopg.Connection[Any], make_user: Callable[[str], str]
) -> None:
    rng = random.Random(14)
    changes = Changes(conn, [make_user("user") for _ in range(2)], rng)
    for _ in range(6):
        changes.import_rows()
    run_invest(settings.db_url, conn)
    highs = {s: conn.execute("select private.restart_rollup_backfill(%s)", (s,)).fetchone() for s in SOURCES}
    assert all(row is not None and row[0] > 0 for row in highs.values())
    assert rollup_drift(conn) != {}, "forgotten rollups differ until the backfill has run"

    # A run that stopped after two chunks: the job resumes at the coverage they committed.
    for _ in range(2):
        conn.execute("select private.backfill_rollups_chunk('transactions', 500)")

    stop = threading.Event()
    failures: list[BaseException] = []

    def write() -> None:
        with psycopg.connect(settings.db_url, autocommit=True) as writer_conn:
            writer = Changes(writer_conn, changes.users, random.Random(15))
            writer.prefix, writer.keys = changes.prefix, changes.keys
            writes = [writer.import_rows, writer.delete_rows, writer.correct_rows, writer.review]
            while not stop.is_set():
                try:
                    writer.rng.choice(writes)()
                except BaseException as exc:  # reported by the test thread
                    failures.append(exc)
                    return

    thread = threading.Thread(target=write)
    thread.start()
    try:
        chunk = max(1, max(int(row[0]) for row in highs.values() if row is not None) // 40)
        assert run_backfill(settings.db_url, conn, chunk) == "succeeded"
    finally:
        stop.set()
        thread.join(timeout=30)
    assert failures == []
    left = conn.execute("select source from private.rollup_backfills where covered_upto < high_water").fetchall()
    assert left == []
    assert rollup_drift(conn) == {}
    conn.execute("select private.compact_rollups()")
    assert rollup_drift(conn) == {}
