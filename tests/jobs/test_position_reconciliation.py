"""Position reconciliation after a sweep: the broker stand-in's positions (from its executions) against the
books (fill_allocations, users + house). The stand-in is fresh for each test while the database keeps
earlier tests' fills, so each test first gives the stand-in the books as its opening positions."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx
import psycopg
import pytest

from jobs.registry import Outcome
from jobs.sweep import SweepRun
from kamioi.broker import Broker, BrokerPosition, BrokerUnavailable
from tests.jobs.test_sweep import add_round_ups, make_world, run_sweep, set_faults, set_rules, sweep_settings

pytestmark = pytest.mark.usefixtures("stack_worker_paused")


def books(conn: psycopg.Connection[Any]) -> dict[str, Decimal]:
    rows = conn.execute("select ticker, sum(shares) from public.fill_allocations group by ticker").fetchall()
    return {t: q for t, q in rows if q != 0}


def open_the_account_at_the_books(conn: psycopg.Connection[Any], root: str) -> None:
    opening = {ticker: str(qty) for ticker, qty in books(conn).items()}
    httpx.post(f"{root}/__positions", json=opening, timeout=5).raise_for_status()


def sweep_ready_round_ups(conn: psycopg.Connection[Any], make_user: Callable[[str], str]) -> list[str]:
    users, keys = make_world(conn, make_user)
    for user in users:
        set_rules(conn, user, 2, "1", False)
        add_round_ups(conn, user, keys, [35, 60, 85, 10])
    return users


def break_rows(
    conn: psycopg.Connection[Any], check_id: int
) -> dict[str, tuple[Decimal | None, Decimal | None, Decimal]]:
    rows = conn.execute(
        "select ticker, broker_qty, book_qty, difference from private.position_breaks where check_id = %s",
        (check_id,),
    ).fetchall()
    return {t: (b, k, d) for t, b, k, d in rows}


def test_a_clean_sweep_reconciles_without_breaks(
    conn: psycopg.Connection[Any], make_user: Callable[[str], str], broker_url: str
) -> None:
    sweep_ready_round_ups(conn, make_user)
    open_the_account_at_the_books(conn, broker_url)

    run = run_sweep(conn, broker_url)

    assert run.report.sweep_id is not None and run.report.open_orders == 0
    assert run.report.position_check_id is not None
    check = conn.execute(
        "select tickers, breaks from private.position_checks where id = %s", (run.report.position_check_id,)
    ).fetchone()
    assert check == (len(books(conn)), 0)
    assert run.report.position_breaks == 0


def test_positions_the_events_never_reported_are_breaks_with_both_quantities(
    conn: psycopg.Connection[Any], make_user: Callable[[str], str], broker_url: str
) -> None:
    sweep_ready_round_ups(conn, make_user)
    open_the_account_at_the_books(conn, broker_url)
    set_faults(broker_url, "drift", drift_qty="0.001")

    run = run_sweep(conn, broker_url)

    assert run.report.sweep_id is not None and run.report.position_check_id is not None
    orders = dict(conn.execute(
        "select ticker, count(*) from public.broker_orders where sweep_id = %s and status = 'filled' group by ticker",
        (run.report.sweep_id,)).fetchall())  # fmt: skip
    assert {"SBUX", "AMZN", "VTI"} <= set(orders)
    booked = books(conn)
    # Each order carries one execution of 0.001 shares that the stream never reported.
    expected = {t: (booked[t] + Decimal("0.001") * n, booked[t], Decimal("0.001") * n) for t, n in orders.items()}
    assert break_rows(conn, run.report.position_check_id) == expected
    assert run.report.position_breaks == len(orders)
    overview = conn.execute("select public.investing_overview() -> 'reconciliation'").fetchone()
    assert overview is not None
    shown = overview[0]
    assert shown["breaks"] == len(orders)
    assert {r["ticker"]: Decimal(str(r["difference"])) for r in shown["break_rows"]} == {
        t: d for t, (_, _, d) in expected.items()
    }


def test_an_unavailable_broker_skips_the_check_and_the_sweep_still_settles(
    conn: psycopg.Connection[Any], make_user: Callable[[str], str], broker_url: str
) -> None:
    users = sweep_ready_round_ups(conn, make_user)
    settings = sweep_settings(broker_url)
    broker = Broker(settings, sleep=lambda _: None)

    def unavailable() -> list[BrokerPosition]:
        raise BrokerUnavailable("positions: connection refused")

    broker.positions = unavailable  # type: ignore[method-assign]
    run = SweepRun(conn, broker, settings)
    assert run.until_done() is Outcome.SUCCEEDED

    assert run.report.position_check_id is None
    statuses = conn.execute(
        "select distinct status from public.transactions where user_id = any(%s::uuid[])", (users,)
    ).fetchall()
    assert statuses == [("invested",)]
