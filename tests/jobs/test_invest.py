"""The allocation engine's jobs: investing mapped round-ups exactly once (also under kill -9 at random
points), holding what cannot be priced and retrying it, corrections, and the ledger staying equal to
a full recomputation after a random mix of imports, reviews, corrections and crashes."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import psycopg
import pytest

from jobs import queue
from jobs.invest import INVEST_KIND
from kamioi.prices.sample import sample_prices
from kamioi.settings import Settings
from tests.jobs.conftest import Workers, queue_state, unique_tag, wait_until
from tests.jobs.investing import (
    LISTED,
    dashboard_vs_recount,
    holdings_drift,
    insert_transactions,
    ledger_problems,
    make_merchant,
    run_invest,
    run_queued_corrections,
)

pytestmark = pytest.mark.usefixtures("stack_worker_paused")


def statuses(conn: psycopg.Connection[Any], prefix: str) -> dict[str, int]:
    rows = conn.execute(
        "select status, count(*) from public.transactions where merchant_key like %s || '%%' group by status",
        (prefix,),
    ).fetchall()
    return {status: int(n) for status, n in rows}


def test_the_job_invests_every_mapped_round_up_once(
    settings: Settings, conn: psycopg.Connection[Any], make_user: Callable[[str], str]
) -> None:
    rng = random.Random(7)
    users = [make_user("user") for _ in range(3)]
    prefix = f"inv {unique_tag()}"
    keys = [f"{prefix} {ticker or 'private'}" for ticker in (*LISTED, None)]
    for key, ticker in zip(keys, (*LISTED, None), strict=True):
        make_merchant(conn, key, ticker)
    insert_transactions(conn, users, keys, 600, rng)

    assert run_invest(settings.db_url, conn, chunk_rows=64) == "succeeded"

    assert statuses(conn, prefix) == {"invested": 600}
    assert ledger_problems(conn, prefix) == []
    assert holdings_drift(conn, users) == []
    tickers = {row[0] for row in conn.execute(
        "select distinct a.ticker from public.allocations as a join public.transactions as t"
        " on t.id = a.transaction_id and t.txn_date = a.txn_date where t.merchant_key like %s || '%%'",
        (prefix,),
    )}  # fmt: skip
    assert tickers == {*LISTED, settings.invest_fallback_ticker}, "the private merchant buys the fallback fund"
    assert run_invest(settings.db_url, conn) == "succeeded"
    assert ledger_problems(conn, prefix) == [], "a second run invests nothing twice"


def test_a_bad_payload_fails_for_good(conn: psycopg.Connection[Any], settings: Settings) -> None:
    job = queue.enqueue(conn, INVEST_KIND, {"chunk_rows": "many"})
    assert run_inline_queue_job(settings, job) == "failed"
    assert "chunk_rows must be a positive integer" in queue_state(conn, job)["last_error"]


def run_inline_queue_job(settings: Settings, job_id: int) -> str | None:
    from jobs.inline import InlineRun
    from tests.jobs.support import jobs_settings

    return InlineRun(settings.db_url, job_id, jobs_settings()).run()


def unpriced_sample_ticker(conn: psycopg.Connection[Any]) -> str:
    """A ticker the sample prices know that has no quote stored yet, so only the provider can price it."""
    stored = {row[0] for row in conn.execute("select distinct ticker from public.prices")}
    free = sorted(set(sample_prices()) - stored)
    assert free, "every sample ticker has a stored quote already"
    return free[0]


def test_a_failing_price_provider_holds_the_ticker_and_a_later_run_invests(
    settings: Settings, conn: psycopg.Connection[Any], workers: Workers, make_user: Callable[[str], str]
) -> None:
    ticker = unpriced_sample_ticker(conn)
    conn.execute("delete from private.price_holds where ticker = %s", (ticker,))  # an interrupted earlier run's
    user = make_user("user")
    prefix = f"inv {unique_tag()}"
    make_merchant(conn, prefix, ticker)
    insert_transactions(conn, [user], [prefix], 20, random.Random(3))
    # Finnhub configured, but nothing listens there: every ask fails after its retries.
    dead_feed = {"PRICE_API_KEY": "k", "PRICE_API_BASE_URL": "http://127.0.0.1:9/api/v1", "PRICE_MAX_ATTEMPTS": "2",
                 "PRICE_RETRY_BASE_S": "1"}  # fmt: skip
    job = queue.enqueue(conn, INVEST_KIND)
    # The insert's trigger queued a run of its own: left beside this one, it could ask the feed again
    # later (a second failure doubles the hold's retry time) or be killed mid-way.
    conn.execute(
        "select private.cancel_job(id) from private.job_queue where kind = %s and state = 'queued' and id <> %s",
        (INVEST_KIND, job),
    )
    workers.start(INVEST_KIND, concurrency=1, env=dead_feed)
    wait_until(lambda: queue_state(conn, job)["state"] == "succeeded", 30, "the invest job")
    workers.kill_all()
    waiting = conn.execute(
        "select status, count(*) from public.transactions where merchant_key = %s and round_up > 0 group by 1",
        (prefix,),
    ).fetchall()
    assert [status for status, _ in waiting] == ["mapped"], "nothing is invested without a price, nothing is lost"
    hold = conn.execute("select reason, attempts from private.price_holds where ticker = %s", (ticker,)).fetchone()
    # pg_cron may still queue a run within the test (every minute): at least one failed ask is recorded.
    assert hold is not None and hold[0] == "provider_error" and hold[1] >= 1
    backlog = dict((r, n) for r, n, _ in conn.execute("select * from public.investing_backlog(%s)", ("VTI",)))
    assert backlog.get("provider_error", 0) >= sum(n for _, n in waiting), "the backlog names the reason"

    time.sleep(1.1)  # the hold's retry time passes; the sample prices answer this time
    assert run_invest(settings.db_url, conn) == "succeeded"
    assert statuses(conn, prefix) == {"invested": 20}
    assert conn.execute("select 1 from private.price_holds where ticker = %s", (ticker,)).fetchone() is None
    assert ledger_problems(conn, prefix) == []


def claimed_by(conn: psycopg.Connection[Any], job_id: int, pid: int) -> bool:
    return f":{pid}:" in (queue_state(conn, job_id)["locked_by"] or "")


def test_kill_9_at_random_points_never_invests_twice_or_skips(
    settings: Settings, conn: psycopg.Connection[Any], workers: Workers, make_user: Callable[[str], str]
) -> None:
    rng = random.Random(20261203)
    users = [make_user("user") for _ in range(4)]
    prefix = f"inv {unique_tag()}"
    keys = [f"{prefix} {ticker}" for ticker in LISTED]
    for key, ticker in zip(keys, LISTED, strict=True):
        make_merchant(conn, key, ticker)
    job = queue.enqueue(conn, INVEST_KIND, {"chunk_rows": 25}, max_attempts=50)
    kills = 0
    for _ in range(10):
        insert_transactions(conn, users, keys, 300, rng)  # purchases keep arriving between crashes
        if queue_state(conn, job)["state"] == "succeeded":
            job = queue.enqueue(conn, INVEST_KIND, {"chunk_rows": 25}, max_attempts=50)
        proc = workers.start(INVEST_KIND, concurrency=1)
        wait_until(partial(claimed_by, conn, job, proc.pid), 20, "the claim")
        time.sleep(rng.uniform(0.0, 0.4))
        proc.kill()
        proc.wait(timeout=10)
        kills += 1
    workers.start(INVEST_KIND, concurrency=1)
    wait_until(lambda: statuses(conn, prefix) == {"invested": 3000}, 60, "every round-up invested")
    assert kills == 10
    assert ledger_problems(conn, prefix) == [], "no transaction invested twice or skipped"
    assert holdings_drift(conn, users) == []


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_ledger_equals_a_recomputation_after_a_random_mix(
    settings: Settings, conn: psycopg.Connection[Any], superuser_db: psycopg.Connection[Any],
    make_user: Callable[[str], str], seed: int,
) -> None:  # fmt: skip
    rng = random.Random(seed)
    users = [make_user("user") for _ in range(3)]
    prefix = f"inv {unique_tag()}"
    keys = [f"{prefix} {n}" for n in range(4)]
    for key in keys:
        make_merchant(conn, key, rng.choice(LISTED))

    def new_mapping(key: str, decision: str) -> None:
        """An admin approves a new mapping for the merchant, or rejects the one in force."""
        if decision == "rejected":
            row = conn.execute(
                "select m.id, m.created_at from public.merchants as mr join public.llm_mappings as m"
                " on m.id = mr.mapping_id and m.created_at = mr.mapping_created_at where mr.merchant_key = %s",
                (key,),
            ).fetchone()
            if row is None:
                return
        else:
            row = conn.execute(
                "insert into public.llm_mappings (merchant_name, merchant_key, ticker, category)"
                " values (upper(%s), %s, %s, 'FOOD_AND_DRINK') returning id, created_at",
                (key, key, rng.choice((*LISTED, None))),
            ).fetchone()
            assert row is not None
        conn.execute("select public.review_mapping(%s, %s, %s)", (row[0], row[1], decision))

    def crash_mid_chunk() -> None:
        """A chunk whose session dies before it commits (a killed worker): nothing of it may remain."""
        with psycopg.connect(settings.db_url, autocommit=True) as victim:
            pid = victim.info.backend_pid
            victim.execute("begin")
            victim.execute("select * from private.invest_chunk(0, 50, 'VTI', interval '1 day')")
            superuser_db.execute("select pg_terminate_backend(%s)", (pid,))
            with pytest.raises(psycopg.OperationalError):
                victim.execute("commit")

    operations: list[Callable[[], object]] = [
        lambda: insert_transactions(conn, users, keys, rng.randint(10, 60), rng),
        lambda: [conn.execute("select private.link_pending_transactions(%s, 100000)", (k,)) for k in keys],
        lambda: new_mapping(rng.choice(keys), "approved"),
        lambda: new_mapping(rng.choice(keys), "rejected"),
        lambda: run_invest(settings.db_url, conn, chunk_rows=rng.randint(5, 80)),
        lambda: run_queued_corrections(settings.db_url, conn),
        crash_mid_chunk,
    ]
    for _ in range(30):
        rng.choice(operations)()
        assert ledger_problems(conn, prefix) == []
        assert holdings_drift(conn, users) == []
        dashboard, recount = dashboard_vs_recount(conn)
        assert dashboard == recount

    # Quiesce: corrections, then investing, until nothing moves; every approved merchant's round-ups are invested.
    for _ in range(3):
        run_queued_corrections(settings.db_url, conn)
        run_invest(settings.db_url, conn)
    left = conn.execute(
        "select count(*) from public.transactions as t join public.merchants as mr on mr.merchant_key = t.merchant_key"
        " join public.llm_mappings as m on m.id = mr.mapping_id and m.created_at = mr.mapping_created_at"
        " and m.status = 'approved' where t.merchant_key like %s || '%%' and t.status = 'mapped'",
        (prefix,),
    ).fetchone()
    assert left == (0,)
    assert ledger_problems(conn, prefix) == []
    assert holdings_drift(conn, users) == []
