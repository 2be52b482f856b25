"""Job kind `invest.sweep`: round-ups become broker orders, and fills become the users' shares.

Queued by pg_cron every minute while round-ups are ready or orders are open (private.enqueue_due_sweep).
One run:
1. refreshes the broker's asset list into private.broker_assets when older than BROKER_ASSETS_MAX_AGE_S
   (a mapping's ticker must be tradable and fractionable there, else the fallback fund);
2. sweeps: one transaction (private.sweep_round_ups, the migration has the rules) turns every ready
   round-up of users at their threshold into one order row per ticker, and records which round-ups
   each user's share holds (private.sweep_members), O(users x tickers) rows;
3. places every order the broker has not acknowledged, each once, PLACING_CONCURRENCY at a time: its
   client_order_id (the sweep, a random part, the ticker) is stored with the order before placing, and
   any doubtful answer is settled by asking the broker for that id (kamioi/broker.py), so a run killed
   between the broker's acceptance and our record finds the order;
4. consumes trade events from the stored cursor, whatever the stream has delivered (at most
   EVENT_BATCH) in one transaction with the allocations it produces and the cursor
   (private.apply_trade_events: duplicates are no-ops). When the stream goes quiet with orders
   still open, the orders are reconciled: the broker's view by client_order_id, and a replay of the
   stream from the oldest open order's creation (an event lost to a dropped or out-of-order stream
   comes again; the ones already consumed are skipped);
5. settles: the swept transactions become `invested` with their sweep_id, SETTLE_USERS users per
   transaction (private.settle_swept_round_ups), and each of those users hears of the sweep once.
   Off the money path on purpose: rewriting a million wide, indexed rows is most of a sweep's cost,
   and until it is done those rows are held (not ready again, not editable);
6. reconciles positions, when no order is open (an order in flight has fills the books may not hold
   yet): the broker's quantity per symbol against the sum of fill_allocations.shares, recorded by
   private.record_position_check with its breaks. A broker that does not answer skips the check (a log
   line): the next run checks again, and settling never waits for it.

Killed anywhere, a run leaves only committed steps behind and the next run continues from them.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from queue import Queue
from typing import Any, TypeVar

import psycopg
from alpaca.common.exceptions import APIError
from psycopg.types.json import Jsonb

from jobs.context import JobContext
from jobs.registry import Outcome, job_handler
from kamioi.broker import Broker, BrokerUnavailable, PlacedOrder
from kamioi.settings import Settings

SWEEP_KIND = "invest.sweep"
STREAM = "trades"
TERMINAL = ("filled", "canceled", "rejected")
SETTLE_USERS = 500  # ~50k transactions a transaction at 100 round-ups a user
PLACING_CONCURRENCY = 4  # orders in flight at once: a remote broker answers in tens of milliseconds each
EVENT_BATCH = 100  # trade events applied in one transaction at most
log = logging.getLogger("jobs.invest.sweep")

T = TypeVar("T")


@dataclass
class SweepReport:
    sweep_id: int | None = None
    placed: int = 0
    events: int = 0
    duplicates: int = 0
    open_orders: int = 0
    settled_users: int = 0
    sweep_s: float = 0.0
    place_s: float = 0.0
    events_s: float = 0.0
    settle_s: float = 0.0
    positions_s: float = 0.0
    position_check_id: int | None = None  # None: not reconciled this run
    position_breaks: int = 0

    def line(self) -> str:
        reconciled = ("positions not reconciled" if self.position_check_id is None else
                      f"positions check {self.position_check_id}: {self.position_breaks} breaks")  # fmt: skip
        return (f"sweep {self.sweep_id}: {self.placed} orders placed, {self.events} events applied "
                f"({self.duplicates} duplicates), {self.open_orders} orders open; sweep {self.sweep_s:.1f} s,"
                f" placing {self.place_s:.1f} s, events {self.events_s:.1f} s; {self.settled_users} users'"
                f" round-ups settled in {self.settle_s:.1f} s; {reconciled}")  # fmt: skip


@job_handler(SWEEP_KIND)
def sweep(ctx: JobContext) -> Outcome:
    with psycopg.connect(ctx.db_url, autocommit=True, prepare_threshold=None) as conn:
        run = SweepRun(conn, Broker(ctx.settings), ctx.settings)
        outcome = run.until_done(ctx)
    ctx.log.info("invest job %s: %s", ctx.job.id, run.report.line())
    return outcome


class SweepRun:
    def __init__(self, conn: psycopg.Connection[Any], broker: Broker, settings: Settings) -> None:
        self.conn = conn
        self.broker = broker
        self.settings = settings
        self.report = SweepReport()

    def until_done(self, ctx: JobContext | None = None, *, reconcile_rounds: int = 20) -> Outcome:
        started = time.monotonic()
        self.refresh_assets()
        self.report.sweep_id = self.sweep()
        self.report.sweep_s = time.monotonic() - started
        if ctx is not None and (outcome := ctx.interruption("sweep")) is not None:
            return outcome
        started = time.monotonic()
        self.place_open_orders()
        self.report.place_s = time.monotonic() - started
        started = time.monotonic()
        self.consume()
        for _ in range(reconcile_rounds):
            if not self.reconcile() or (ctx is not None and ctx.interruption("sweep events") is not None):
                break
            # From the cursor while that makes progress (a cut stream); else replay from the oldest open
            # order (an event the cursor passed, out of order, before a crash).
            if not self.consume():
                self.consume(since=min(created for _, _, created in self.open_orders()))
        self.report.open_orders = len(self.open_orders())
        self.report.events_s = time.monotonic() - started
        outcome = self.settle(ctx)
        if outcome is Outcome.SUCCEEDED and not self.open_orders():
            started = time.monotonic()
            self.check_positions()
            self.report.positions_s = time.monotonic() - started
        return outcome

    def settle(self, ctx: JobContext | None = None) -> Outcome:
        """Mark the swept round-ups invested, a batch of users per transaction (a killed run's too)."""
        started = time.monotonic()
        while (
            row := self.conn.execute("select private.settle_swept_round_ups(%s)", (SETTLE_USERS,)).fetchone()
        ) is not None and row[0]:
            self.report.settled_users += int(row[0])
            if ctx is not None and (outcome := ctx.interruption("settling")) is not None:
                return outcome
        self.report.settle_s += time.monotonic() - started
        return Outcome.SUCCEEDED

    def check_positions(self) -> None:
        """Record the broker's positions against the books; a broker failure only skips the check."""
        try:
            positions = self.broker.positions()
        except (BrokerUnavailable, APIError, ValueError) as error:  # ValueError: an answer the SDK cannot parse
            log.warning("positions not reconciled: the broker's positions are unavailable (%s)", error)
            return
        recorded = self.conn.execute(
            "select private.record_position_check(%s)",
            (Jsonb([{"symbol": p.symbol, "qty": str(p.qty)} for p in positions]),),
        ).fetchone()
        assert recorded is not None
        self.report.position_check_id = int(recorded[0])
        breaks = self.conn.execute(
            "select breaks from private.position_checks where id = %s", (self.report.position_check_id,)
        ).fetchone()
        self.report.position_breaks = int(breaks[0]) if breaks is not None else 0

    def refresh_assets(self) -> None:
        row = self.conn.execute("select min(fetched_at) from private.broker_assets").fetchone()
        max_age = dt.timedelta(seconds=self.settings.broker_assets_max_age_s)
        if row is not None and row[0] is not None and row[0] > dt.datetime.now(dt.UTC) - max_age:
            return
        assets = self.broker.assets()
        with self.conn.transaction(), self.conn.cursor() as cur:
            cur.execute("delete from private.broker_assets")
            cur.executemany(
                "insert into private.broker_assets (symbol, tradable, fractionable) values (%s, %s, %s)",
                [(a.symbol, a.tradable, a.fractionable) for a in assets],
            )
            # A ticker the broker now buys fractionally is no fallback any more.
            cur.execute(
                "delete from private.ticker_fallbacks as f using private.broker_assets as b"
                " where b.symbol = f.ticker and b.tradable and b.fractionable"
            )

    def sweep(self) -> int | None:
        ready = self.conn.execute(
            "select exists (select 1 from public.transactions where status = 'mapped')"
            " or exists (select 1 from private.sweep_carry)"
        ).fetchone()
        if ready is None or not ready[0]:
            return None
        row = self.conn.execute(
            "select private.sweep_round_ups(%s, %s)",
            (self.settings.invest_fallback_ticker, Decimal(str(self.settings.broker_min_notional))),
        ).fetchone()
        return int(row[0]) if row is not None else None

    def place_open_orders(self) -> None:
        rows = self.conn.execute(
            "select id, client_order_id, ticker, notional from public.broker_orders"
            " where submitted_at is null and status = 'new' order by id"
        ).fetchall()
        # Placed a few at a time (each one idempotent by its client_order_id), recorded here in order.
        with ThreadPoolExecutor(PLACING_CONCURRENCY, thread_name_prefix="broker-orders") as pool:
            answers = pool.map(lambda row: self.broker.place(row[1], row[2], row[3]), rows)
            for (order_id, _, _, _), placed in zip(rows, answers, strict=True):
                self.record_placed(order_id, placed)

    def record_placed(self, order_id: int, placed: PlacedOrder) -> None:
        self.conn.execute(
            "select private.record_order_submission(%s, %s, %s, %s)",
            (order_id, placed.broker_order_id or None, placed.status, placed.reject_reason),
        )
        if placed.status == "rejected" and not placed.broker_order_id:
            # Refused outright (no event will come): its users' notional waits for the next sweep.
            self.conn.execute("select private.carry_unfilled(%s)", (order_id,))
        self.report.placed += 1

    def reconcile(self) -> bool:
        """Compare open orders with the broker's; True if some are still open (the stream is replayed)."""
        self.place_open_orders()
        for order_id, client_order_id, _ in self.open_orders():
            if self.broker.find(client_order_id) is None:
                self.conn.execute("select private.cancel_unknown_order(%s)", (order_id,))
        return bool(self.open_orders())

    def open_orders(self) -> list[tuple[int, str, str]]:
        rows = self.conn.execute(
            "select id, client_order_id, to_char(created_at at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
            " from public.broker_orders where status in ('new', 'partially_filled') order by id"
        ).fetchall()
        return [(int(i), str(c), str(t)) for i, c, t in rows]

    def cursor(self) -> int:
        row = self.conn.execute(
            "select last_event_id from private.broker_event_cursor where stream = %s", (STREAM,)
        ).fetchone()
        return int(row[0]) if row is not None else 0

    def consume(self, *, since: str | None = None) -> int:
        """Apply events until the stream is quiet; stop early once no order is open. Returns how many were new."""
        applied = 0
        events = (self.broker.trade_events(since=since) if since is not None
                  else self.broker.trade_events(since_id=self.cursor()))  # fmt: skip
        for batch in delivered_batches(events, EVENT_BATCH):
            row = self.conn.execute("select private.apply_trade_events(%s, %s)", (STREAM, Jsonb(batch))).fetchone()
            outcomes: list[str] = row[0] if row is not None else []
            duplicates = outcomes.count("duplicate")
            self.report.duplicates += duplicates
            self.report.events += len(outcomes) - duplicates
            applied += len(outcomes) - duplicates
            ended = any((event.get("order") or {}).get("status") in TERMINAL for event in batch)
            if ended and not self.open_orders():
                break
        return applied


def delivered_batches(items: Iterator[T], most: int) -> Iterator[list[T]]:
    """What a blocking stream has delivered since the last batch (1 to `most` items), read on a thread so
    that the next items arrive while a batch is applied. Items read after the caller stops are dropped
    (the thread ends with the stream); a stream's error is raised here."""
    delivered: Queue[tuple[T, None] | tuple[None, BaseException | None]] = Queue()

    def read() -> None:
        try:
            for item in items:
                delivered.put((item, None))
        except BaseException as error:  # handed to the reading side, which raises it
            delivered.put((None, error))
            return
        delivered.put((None, None))

    threading.Thread(target=read, name="broker-events", daemon=True).start()
    while True:
        item, error = delivered.get()
        batch: list[T] = []
        while item is not None:
            batch.append(item)
            if len(batch) >= most or delivered.empty():
                break
            item, error = delivered.get()
        if batch:
            yield batch
        if item is None:
            if error is not None:
                raise error
            return
