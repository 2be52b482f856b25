"""Job kind `allocations.invest`: invest every mapped round-up whose merchant's mapping in force is
approved, at a recorded price (the allocation engine migration has the rules).

Chunks of INVEST_CHUNK_ROWS transactions (payload "chunk_rows" overrides), each one statement
(private.invest_chunk) in its own transaction: allocations, transaction statuses, holdings, stats and
the users' `allocation_changed` broadcasts commit together or not at all. A chunk returns the tickers
it could not price; the provider is asked for those (once per run, and only once a ticker's hold is
due), the quotes are stored, and the same range runs again. What still has no price stays `mapped`
with its reason in private.price_holds; pg_cron queues this job again every minute while mapped
transactions exist, so they are retried without anyone watching.

Resumable and exactly-once: a killed run leaves its last chunk uncommitted and every committed
transaction `invested`, so the next run starts at the first still-mapped id; the unique lot
constraint refuses any second buy. Queued by a trigger whenever transactions become mapped.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from dataclasses import dataclass, fields
from decimal import Decimal
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import class_row

from jobs.context import JobContext
from jobs.errors import PermanentJobError
from jobs.registry import Outcome, job_handler
from kamioi.prices.base import PriceProvider
from kamioi.prices.configured import configured_price_provider
from kamioi.prices.store import HoldPolicy, record_answers, tickers_due
from kamioi.settings import Settings

INVEST_KIND = "allocations.invest"

INVEST_CHUNK = """
select last_id, scanned, invested, amount, nothing_to_invest, unlinked, held, unpriced_tickers
from private.invest_chunk(%s, %s, %s, make_interval(secs => %s))
"""


@dataclass
class ChunkResult:
    last_id: int | None
    scanned: int
    invested: int
    amount: Decimal
    nothing_to_invest: int
    unlinked: int
    held: int
    unpriced_tickers: list[str]


@dataclass
class InvestTotals:
    invested: int = 0
    amount: Decimal = Decimal(0)
    nothing_to_invest: int = 0
    unlinked: int = 0
    chunks: int = 0

    def add(self, chunk: ChunkResult) -> None:
        self.invested += chunk.invested
        self.amount += chunk.amount
        self.nothing_to_invest += chunk.nothing_to_invest
        self.unlinked += chunk.unlinked
        self.chunks += 1

    def line(self, job_id: int, held: int, elapsed_s: float) -> str:
        parts = ", ".join(f"{f.name.replace('_', ' ')} {getattr(self, f.name):,}" for f in fields(self))
        return f"invest job {job_id}: {parts}, {held:,} held for a price, {elapsed_s:.1f}s"


@job_handler(INVEST_KIND)
def invest(ctx: JobContext) -> Outcome:
    return asyncio.run(run_invest(ctx))


async def run_invest(ctx: JobContext) -> Outcome:
    settings = ctx.settings
    chunk_rows = ctx.job.payload.get("chunk_rows", settings.invest_chunk_rows)
    if not isinstance(chunk_rows, int) or isinstance(chunk_rows, bool) or chunk_rows < 1:
        raise PermanentJobError(f"chunk_rows must be a positive integer, got {chunk_rows!r}")
    started = time.monotonic()
    async with (
        await AsyncConnection.connect(ctx.db_url, prepare_threshold=None, autocommit=True) as conn,
        configured_price_provider(settings) as provider,
    ):
        run = InvestRun(conn, provider, settings, chunk_rows)
        outcome = await run.until_done(ctx)
        ctx.log.info(run.totals.line(ctx.job.id, run.held, time.monotonic() - started))
    return outcome


class InvestRun:
    def __init__(
        self, conn: AsyncConnection[Any], provider: PriceProvider, settings: Settings, chunk_rows: int
    ) -> None:
        self.conn = conn
        self.provider = provider
        self.settings = settings
        self.chunk_rows = chunk_rows
        self.policy = HoldPolicy(
            dt.timedelta(seconds=settings.price_max_age_s), settings.price_retry_base_s, settings.price_retry_max_s
        )
        self.totals = InvestTotals()
        self.held = 0
        self._asked: set[str] = set()

    async def until_done(self, ctx: JobContext) -> Outcome:
        after = 0
        while True:
            if (outcome := ctx.interruption(f"invest {ctx.job.id}")) is not None:
                return outcome
            chunk = await self.chunk(after)
            if chunk.last_id is None:
                return Outcome.SUCCEEDED
            self.totals.add(chunk)
            if await self.priced_now(chunk.unpriced_tickers):
                continue  # the same range again: its rows of those tickers can be invested now
            self.held += chunk.held
            after = chunk.last_id

    async def chunk(self, after: int) -> ChunkResult:
        async with self.conn.cursor(row_factory=class_row(ChunkResult)) as cur:
            await cur.execute(
                INVEST_CHUNK,
                (after, self.chunk_rows, self.settings.invest_fallback_ticker, self.settings.price_max_age_s),
            )
            row = await cur.fetchone()
        assert row is not None  # an aggregate row, even for an empty chunk
        return row

    async def priced_now(self, tickers: list[str]) -> bool:
        """Ask the provider for tickers not asked yet in this run whose hold is due; True if any got a price."""
        new = [ticker for ticker in tickers if ticker not in self._asked]
        self._asked.update(new)
        due = await tickers_due(self.conn, new) if new else []
        if not due:
            return False
        answers = await self.provider.quotes(due)
        return bool(await record_answers(self.conn, answers, self.policy))
