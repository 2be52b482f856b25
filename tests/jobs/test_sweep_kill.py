"""Exactly once under kill -9: worker processes running the sweep job are killed at random points of
sweeping, placing and consuming, with broker faults on, while round-ups keep arriving. Afterwards the
ledger equals a recomputation from what the broker reported (every fill split once, pro rata, users +
house = the fill), every swept dollar is in an order or carried, and no order reached the broker twice.

`make test` kills 3 times; the full drill kills 10: `KAMIOI_SWEEP_KILLS=10 .venv/bin/pytest -q
tests/jobs/test_sweep_kill.py`."""

from __future__ import annotations

import datetime as dt
import os
import random
import time
from collections import defaultdict
from collections.abc import Callable
from decimal import ROUND_DOWN, Decimal
from functools import partial
from typing import Any

import httpx
import psycopg
import pytest

from jobs import queue
from jobs.sweep import SWEEP_KIND
from tests.jobs.conftest import Workers, queue_state, wait_until
from tests.jobs.test_invest import claimed_by
from tests.jobs.test_sweep import add_round_ups, holdings_match_fills, make_world, set_faults, set_rules

pytestmark = pytest.mark.usefixtures("stack_worker_paused")
KILLS = int(os.environ.get("KAMIOI_SWEEP_KILLS", "3"))
FAULTS = "partial_fills,duplicate_events,out_of_order,accept_then_error,bust,slow"


def recomputed_split_problems(conn: psycopg.Connection[Any], since: dt.datetime) -> list[str]:
    """Each fill event of the orders since `since`, split again here, against what the engine wrote."""
    problems: list[str] = []
    events = conn.execute(
        "select e.event_id, e.event, e.execution_id, e.qty, e.price, o.id, o.sweep_id, o.ticker"
        " from private.broker_events as e join public.broker_orders as o on o.id = e.order_id"
        " where o.created_at >= %s and e.event in ('fill', 'partial_fill')",
        (since,),
    ).fetchall()
    for event_id, _, execution_id, qty, price, order_id, sweep_id, ticker in events:
        positions = conn.execute(
            "select user_id::text, notional from private.sweep_positions where sweep_id = %s and ticker = %s",
            (sweep_id, ticker),
        ).fetchall()
        total = sum(n for _, n in positions)
        amount = (qty * price).quantize(Decimal("0.01"))
        want: dict[str | None, tuple[Decimal, Decimal]] = {
            u: ((qty * n / total).quantize(Decimal("1e-9"), ROUND_DOWN), (amount * n / total).quantize(
                Decimal("0.01"), ROUND_DOWN)) for u, n in positions}  # fmt: skip
        want[None] = (qty - sum(s for s, _ in want.values()), amount - sum(a for _, a in want.values()))
        got = {u: (s, a) for u, s, a in conn.execute(
            "select user_id::text, shares, amount from public.fill_allocations"
            " where event_id = %s and kind = 'buy'", (event_id,)).fetchall()}  # fmt: skip
        if got != want:
            problems.append(f"order {order_id} execution {execution_id}: {got} != {want}")
    return problems


def claimed_or_done(conn: psycopg.Connection[Any], job: int, pid: int) -> bool:
    return claimed_by(conn, job, pid) or queue_state(conn, job)["state"] == "succeeded"


def test_kill_9_at_random_points_never_places_twice_nor_allocates_twice(
    conn: psycopg.Connection[Any], workers: Workers, make_user: Callable[[str], str], broker_url: str
) -> None:
    rng = random.Random(20261207)
    started = conn.execute("select now()").fetchone()[0]  # type: ignore[index]
    users, keys = make_world(conn, make_user)
    for user in users:
        set_rules(conn, user, rng.randint(1, 10), "1", False)
    set_faults(broker_url, FAULTS, fail_first=3, retry_after_s=0, slow_s=0.3, drop_after=4)
    env = {"BROKER_BASE_URL": broker_url, "BROKER_EVENTS_IDLE_S": "0.3", "BROKER_ASSETS_MAX_AGE_S": "0.001"}
    expected: dict[str, Decimal] = defaultdict(Decimal)
    job = queue.enqueue(conn, SWEEP_KIND, max_attempts=50)
    for _ in range(KILLS):
        for user in users:  # purchases keep arriving between crashes
            cents = [rng.randint(1, 99) for _ in range(6)]
            add_round_ups(conn, user, keys, cents)
        if queue_state(conn, job)["state"] == "succeeded":
            job = queue.enqueue(conn, SWEEP_KIND, max_attempts=50)
        proc = workers.start(SWEEP_KIND, concurrency=1, env=env)
        # Claimed by this worker, or already done by it (a short run can end between two polls).
        wait_until(partial(claimed_or_done, conn, job, proc.pid), 30, "the claim")
        time.sleep(rng.uniform(0.0, 1.5))
        proc.kill()
        proc.wait(timeout=10)
    workers.start(SWEEP_KIND, concurrency=1, env=env)
    job = queue.enqueue(conn, SWEEP_KIND, max_attempts=50)
    wait_until(lambda: queue_state(conn, job)["state"] == "succeeded", 90, "a sweep after the last kill")

    for user, multiplier, round_ups in conn.execute(
        "select t.user_id::text, s.multiplier, sum(t.round_up) from public.transactions as t"
        " join public.investing_settings as s on s.user_id = t.user_id where t.user_id = any(%s::uuid[]) group by 1, 2",
        (users,),
    ).fetchall():
        expected[user] = round_ups * multiplier
    swept = dict(conn.execute(
        "select user_id::text, sum(n) from (select user_id, notional as n from private.sweep_positions"
        " union all select user_id, notional from private.sweep_carry) as x"
        " where user_id = any(%s::uuid[]) group by 1", (users,)).fetchall())  # fmt: skip
    assert swept == dict(expected), "every swept dollar is in exactly one order or carried"
    unfilled = conn.execute(
        "select count(*) from public.broker_orders where created_at >= %s and status <> 'filled'", (started,)
    ).fetchone()
    assert unfilled == (0,)
    assert recomputed_split_problems(conn, started) == []
    assert holdings_match_fills(conn, users)
    stats = httpx.get(f"{broker_url}/__stats", timeout=5).json()
    placed = conn.execute("select count(*) from public.broker_orders where created_at >= %s", (started,)).fetchone()
    assert placed == (stats["orders"],), "each order reached the broker once"
