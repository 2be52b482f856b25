"""Lanes: a user-facing job never waits behind background work, and corrections are coalesced.

The scene from issue 21: a 100,000-row mappings import moves hundreds of mappings in force away from
mappings that already bought lots, which queues correction work; a user's 200-row import queued right
then must start at once (it used to wait 20 s behind one correction job per mapping)."""

from __future__ import annotations

import csv
import io
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from jobs import queue
from jobs.correct_allocations import CORRECT_KIND
from kamioi.mapping.normalizer import merchant_key
from kamioi.settings import Settings
from tests.jobs.conftest import Workers, unique_tag, wait_until
from tests.jobs.investing import insert_transactions, make_merchant, run_invest
from tests.jobs.support import register, transactions_csv, wait_finished

pytestmark = pytest.mark.usefixtures("stack_worker_paused")

CHANGED = 340
MAPPING_ROWS = 100_000
CHUNK_ROWS = 10_000  # every change lands in the first chunk: one statement, many mappings
# The bound is about queue order, not speed: a job claimed ahead of the queued backlog starts within
# one claim round; waiting behind the backlog took 20 s.
START_WITHIN_S = 5.0


def letters(n: int) -> str:
    """n spelled in letters: merchant keys drop digits."""
    out = ""
    while True:
        n, digit = divmod(n, 26)
        out = chr(ord("A") + digit) + out
        if n == 0:
            return out


def mappings_file(path: Path, word: str, changed_names: list[str]) -> Path:
    """The changed merchants approved under a new ticker first, then new merchants' proposals."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["merchant_name", "company_name", "ticker", "category", "confidence", "status"])
    for name in changed_names:
        writer.writerow([name, "Moved Co", "AMZN", "FOOD_AND_DRINK", "0.9", "approved"])
    for n in range(MAPPING_ROWS - len(changed_names)):
        status = "approved" if n % 3 == 0 else "pending"
        writer.writerow(
            [f"{word}N{letters(n)} SHOP PORTLAND OR", f"New Co {n}", "SBUX", "FOOD_AND_DRINK", "0.8", status]
        )
    path.write_text(out.getvalue(), encoding="utf-8")
    return path


def scalar(conn: psycopg.Connection[Any], sql: str, params: tuple[Any, ...]) -> int:
    row = conn.execute(sql, params).fetchone()
    assert row is not None
    return int(row[0])


def start_delay(conn: psycopg.Connection[Any], queue_job_id: int) -> float:
    row = conn.execute(
        "select extract(epoch from started_at - created_at) from private.job_queue where id = %s", (queue_job_id,)
    ).fetchone()
    assert row is not None and row[0] is not None
    return float(row[0])


def test_a_user_import_starts_at_once_behind_a_mappings_import_that_queues_corrections(
    settings: Settings, conn: psycopg.Connection[Any], workers: Workers, tmp_path: Path,
    make_user: Callable[[str], str],
) -> None:  # fmt: skip
    # Merchants whose approved mappings bought lots (the names normalize to their keys, as an import's do).
    word = unique_tag().translate(str.maketrans("0123456789", "ghijklmnop")).upper()
    names = [f"{word}S{letters(n)} SHOP SEATTLE WA" for n in range(CHANGED)]
    keys = [merchant_key(name) for name in names]
    assert len(set(keys)) == CHANGED
    old_mappings = [make_merchant(conn, key, "SBUX") for key in keys]
    users = [make_user("user") for _ in range(2)]
    insert_transactions(conn, users, keys, CHANGED * 3, random.Random(21))
    assert run_invest(settings.db_url, conn) == "succeeded"
    lots_of = "select count(distinct mapping_id) from public.allocations where mapping_id = any(%s) and kind = %s"
    with_lots = scalar(conn, lots_of, (old_mappings, "buy"))
    assert with_lots >= CHANGED * 0.9
    first_correction = scalar(conn, "select coalesce(max(id), 0) + 1 from private.job_queue", ())

    workers.start(env={"KAMIOI_IMPORT_CHUNK_ROWS": str(CHUNK_ROWS)})
    mappings_import = register(conn, mappings_file(tmp_path / "mappings.csv", word, names), kind="mappings")

    def requested() -> int:
        return scalar(
            conn, "select count(*) from private.correction_requests where mapping_id = any(%s)", (old_mappings,)
        )

    # The first chunk committed: the moved mappings' corrections are queued, the import goes on.
    wait_until(requested, timeout=120, what="the mappings import to request corrections")
    user_import = register(conn, transactions_csv(tmp_path / "user.csv", 200))
    assert user_import.queue_job_id is not None
    assert wait_finished(conn, user_import.id, timeout=120).state == "succeeded"
    assert start_delay(conn, user_import.queue_job_id) < START_WITHIN_S

    assert wait_finished(conn, mappings_import.id, timeout=600).state == "succeeded"
    wait_until(lambda: requested() == 0, timeout=300, what="the corrections to be done")
    assert scalar(conn, lots_of, (old_mappings, "reversal")) == with_lots, "every moved mapping is corrected"
    corrections = scalar(
        conn, "select count(*) from private.job_queue where kind = %s and id >= %s", (CORRECT_KIND, first_correction)
    )
    assert 1 <= corrections <= 3, f"{corrections} correction jobs for {with_lots} mappings: not coalesced"


def test_a_claim_takes_queued_user_jobs_before_older_background_jobs(conn: psycopg.Connection[Any]) -> None:
    tag = unique_tag()
    background = [queue.enqueue(conn, "test.lanes_background", {"tag": tag}) for _ in range(3)]
    conn.execute("insert into private.job_lanes (kind, lane) values ('test.lanes_user', 'user') on conflict do nothing")
    user = [queue.enqueue(conn, "test.lanes_user", {"tag": tag})]
    kinds = ["test.lanes_background", "test.lanes_user"]
    try:
        first = queue.claim(conn, f"lanes-{tag}", kinds, 30, 1, only_ids=[*background, user[0]])
        assert [(job.id, job.lane) for job in first] == [(user[0], queue.USER_LANE)]
        rest = queue.claim(conn, f"lanes-{tag}", kinds, 30, 5, only_ids=background, lanes=[queue.USER_LANE])
        assert rest == [], "a claim for the user lane takes no background job"
    finally:
        conn.execute(
            "update private.job_queue set state = 'cancelled', lease_token = null, locked_by = null where id = any(%s)",
            ([*background, user[0]],),
        )
        conn.execute("delete from private.job_lanes where kind = 'test.lanes_user'")
