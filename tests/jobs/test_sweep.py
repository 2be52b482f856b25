"""Sweeps through the broker stand-in: users at their threshold are swept into one order per ticker,
fills are split exactly (users + house = the fill), events are consumed once under broker faults, and
an order is never placed twice."""

from __future__ import annotations

import random
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx
import psycopg
import pytest

from jobs.sweep import SweepRun
from kamioi.broker import Broker
from kamioi.settings import Settings
from tests.jobs.conftest import unique_tag
from tests.jobs.investing import make_merchant
from tests.jobs.support import jobs_settings

pytestmark = pytest.mark.usefixtures("stack_worker_paused")


def set_faults(root: str, mode: str, **options: Any) -> None:
    httpx.post(f"{root}/__mode", json={"mode": mode, **options}, timeout=5).raise_for_status()


def sweep_settings(root: str) -> Settings:
    return jobs_settings(BROKER_BASE_URL=root, BROKER_ASSETS_MAX_AGE_S="0.001", BROKER_EVENTS_IDLE_S="0.5")


def run_sweep(conn: psycopg.Connection[Any], root: str) -> SweepRun:
    settings = sweep_settings(root)
    run = SweepRun(conn, Broker(settings, sleep=lambda _: None), settings)
    run.until_done()
    return run


def add_round_ups(conn: psycopg.Connection[Any], user: str, keys: list[str], cents: list[int]) -> None:
    with conn.cursor() as cur:
        cur.executemany(
            "insert into public.transactions (user_id, txn_date, descriptor, merchant_key, amount, round_up, status,"
            " mapping_id) select %s, current_date, upper(%s), %s, 10 - %s / 100.0, %s / 100.0, 'mapped',"
            " (select mapping_id from public.merchants where merchant_key = %s)",
            [(user, keys[i % len(keys)], keys[i % len(keys)], c, c, keys[i % len(keys)]) for i, c in enumerate(cents)],
        )


def set_rules(conn: psycopg.Connection[Any], user: str, multiplier: int, threshold: str, paused: bool) -> None:
    conn.execute(
        "insert into public.investing_settings (user_id, multiplier, threshold_dollars, paused)"
        " values (%s, %s, %s, %s)",
        (user, multiplier, Decimal(threshold), paused),
    )


def split_problems(conn: psycopg.Connection[Any], sweep_id: int) -> list[tuple[Any, ...]]:
    """Orders of the sweep whose allocations (users + house) differ from their fills, to the share and cent."""
    return conn.execute(
        """
        select o.id, o.status, o.filled_qty, o.filled_amount, a.shares, a.amount
        from public.broker_orders as o
        left join (select broker_order_id, sum(shares) as shares, sum(amount) as amount
                   from public.fill_allocations group by broker_order_id) as a on a.broker_order_id = o.id
        where o.sweep_id = %s
          and (o.filled_qty <> coalesce(a.shares, 0) or o.filled_amount <> coalesce(a.amount, 0)
               or o.filled_qty <> (select coalesce(sum(e.qty), 0) from private.broker_events as e
                                   where e.order_id = o.id and e.event in ('fill', 'partial_fill'))
                                 - (select coalesce(sum(e.qty), 0) from private.broker_events as e
                                    where e.order_id = o.id and e.event = 'trade_bust'))
        """,
        (sweep_id,),
    ).fetchall()


def user_ledger(conn: psycopg.Connection[Any], users: list[str]) -> dict[tuple[str, str], tuple[Decimal, Decimal]]:
    rows = conn.execute(
        "select user_id::text, ticker, sum(shares), sum(amount) from public.fill_allocations"
        " where user_id = any(%s::uuid[]) group by 1, 2",
        (users,),
    ).fetchall()
    return {(u, t): (s, a) for u, t, s, a in rows}


def holdings_match_fills(conn: psycopg.Connection[Any], users: list[str]) -> bool:
    held = conn.execute(
        "select user_id::text, ticker, shares from public.holdings where user_id = any(%s::uuid[]) and shares <> 0",
        (users,),
    ).fetchall()
    return {(u, t): s for u, t, s in held} == {k: v[0] for k, v in user_ledger(conn, users).items() if v[0] != 0}


def make_world(conn: psycopg.Connection[Any], make_user: Callable[[str], str]) -> tuple[list[str], list[str]]:
    prefix = f"swp {unique_tag()}"
    keys = [f"{prefix} {t}" for t in ("SBUX", "AMZN", "private")]
    for key, ticker in zip(keys, ("SBUX", "AMZN", None), strict=True):
        make_merchant(conn, key, ticker)
    return [make_user("user") for _ in range(3)], keys


def test_users_at_their_threshold_are_swept_and_fills_split_exactly(
    conn: psycopg.Connection[Any], make_user: Callable[[str], str], broker_url: str
) -> None:
    (ready, waiting, paused), keys = make_world(conn, make_user)
    set_rules(conn, ready, 3, "5", False)
    set_rules(conn, paused, 10, "1", True)
    add_round_ups(conn, ready, keys, [50, 75, 99, 10, 45, 20])  # $2.99 x3 = $8.97 >= $5
    add_round_ups(conn, waiting, keys, [50, 75, 99])  # $2.24 < $5 (defaults: x1, $5)
    add_round_ups(conn, paused, keys, [50, 75, 99])
    swept_after = conn.execute("select localtimestamp").fetchone()[0]  # type: ignore[index]

    run = run_sweep(conn, broker_url)

    assert run.report.sweep_id is not None
    statuses = dict(conn.execute(
        "select user_id::text, array_agg(distinct status) from public.transactions"
        " where user_id = any(%s::uuid[]) group by 1", ([ready, waiting, paused],)).fetchall())  # fmt: skip
    assert statuses == {ready: ["invested"], waiting: ["mapped"], paused: ["mapped"]}
    orders = conn.execute(
        "select ticker, status from public.broker_orders where sweep_id = %s", (run.report.sweep_id,)
    ).fetchall()
    assert {"SBUX", "AMZN", "VTI"} <= {t for t, _ in orders}
    assert {s for _, s in orders} == {"filled"}
    assert split_problems(conn, run.report.sweep_id) == []
    ledger = user_ledger(conn, [ready, waiting, paused])
    assert {t for (_, t) in ledger} == {"SBUX", "AMZN", "VTI"}
    assert sum(a for _, a in ledger.values()) <= Decimal("8.97")
    assert sum(a for _, a in ledger.values()) >= Decimal("8.97") - Decimal("0.03")  # a cent per order to the house
    assert holdings_match_fills(conn, [ready])
    # The users list's total invested follows the fills, like holdings (the house's cents are not theirs).
    invested = conn.execute("select invested from private.user_totals_of(array[%s]::uuid[])", (ready,)).fetchone()
    assert invested == (sum(a for _, a in ledger.values()),)
    messages = conn.execute(
        "select topic, event, payload ->> 'sweep_id' from realtime.messages"
        " where topic = any(%s) and inserted_at >= %s",
        ([f"user:{u}:transactions" for u in (ready, waiting, paused)], swept_after),
    ).fetchall()
    # One message per swept user per sweep: not one per purchase, and no transaction_changed beside it.
    assert messages == [(f"user:{ready}:transactions", "round_ups_swept", str(run.report.sweep_id))]


@pytest.mark.parametrize(
    "faults",
    [
        "partial_fills,duplicate_events,out_of_order",
        "accept_then_error,rate_limit",
        "server_error,drop_stream,bust",
        "correct,slow",
    ],
)
def test_faults_change_nothing_an_order_is_placed_once_and_events_consumed_once(
    conn: psycopg.Connection[Any], make_user: Callable[[str], str], broker_url: str, faults: str
) -> None:
    users, keys = make_world(conn, make_user)
    rng = random.Random(faults)
    for user in users:
        set_rules(conn, user, rng.randint(1, 10), "1", False)
        add_round_ups(conn, user, keys, [rng.randint(1, 99) for _ in range(12)])
    set_faults(broker_url, faults, fail_first=2, retry_after_s=0, slow_s=0.2, drop_after=2)

    run = run_sweep(conn, broker_url)

    assert run.report.sweep_id is not None
    assert run.report.open_orders == 0
    assert split_problems(conn, run.report.sweep_id) == []
    assert holdings_match_fills(conn, users)
    stats = httpx.get(f"{broker_url}/__stats", timeout=5).json()
    placed = conn.execute("select count(*) from public.broker_orders where sweep_id = %s",
                          (run.report.sweep_id,)).fetchone()  # fmt: skip
    assert placed is not None and stats["orders"] == placed[0]  # each client_order_id reached the broker once
    if "correct" in faults:
        prices = conn.execute(
            "select distinct a.price from public.fill_allocations as a join public.broker_orders as o"
            " on o.id = a.broker_order_id where o.sweep_id = %s and o.ticker = 'SBUX' and a.kind = 'buy'",
            (run.report.sweep_id,),
        ).fetchall()
        assert len(prices) == 2  # the fill, then its correction at the corrected price


def test_a_ticker_the_broker_cannot_buy_fractionally_goes_to_the_fallback_fund(
    conn: psycopg.Connection[Any], make_user: Callable[[str], str], broker_url: str
) -> None:
    (user, _, _), keys = make_world(conn, make_user)
    set_rules(conn, user, 1, "1", False)
    add_round_ups(conn, user, keys[:1], [90, 90, 90])  # SBUX only
    set_faults(broker_url, "good", unfractionable=["SBUX"])

    run_sweep(conn, broker_url)

    assert {t for (_, t) in user_ledger(conn, [user])} == {"VTI"}
    reason = conn.execute("select reason from private.ticker_fallbacks where ticker = 'SBUX'").fetchone()
    assert reason == ("not_fractionable",)
