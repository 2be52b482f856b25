"""The map_merchants job against the local stack, with the offline provider (no LLM key set)."""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from typing import Any

import pytest
from psycopg import AsyncConnection

from jobs import queue
from jobs.context import JobContext
from jobs.inline import InlineRun
from jobs.map_merchants import MAP_MERCHANTS, map_merchants
from jobs.registry import Outcome
from kamioi.mapping.providers.offline import OfflineProvider
from kamioi.mapping.resolver import resolve_descriptors
from kamioi.settings import Settings, get_settings
from tests.mapping.support import DbSlice

USER_ID = "00000000-0000-4000-a000-000000000002"


def job_context(settings: Settings, payload: dict[str, Any]) -> JobContext:
    job = queue.Job(random.randint(10**12, 10**13), MAP_MERCHANTS, payload, 1, 5, uuid.uuid4())
    log = logging.getLogger("test.map_merchants")
    log.setLevel(logging.INFO)  # progress lines are INFO
    return JobContext(job, settings.db_url, get_settings(), log)


@pytest.fixture
async def imported(db_slice: DbSlice) -> int:
    """An 'import' of nine transactions over four merchants: catalog, near-catalog typo, unknown, catalog alias."""
    await db_slice.add_catalog("bravo coffee", "Bravo Coffee Co", "SBUX", "FOOD_AND_DRINK", aliases=["bravo cafe"])
    import_job_id = random.randint(10**12, 10**13)
    descriptors = [
        "bravo coffee #12 austin tx",
        "bravo coffee 555-123-4567",
        "bravo coffee store 77",
        "bravo cofee",
        "bravo cofee denver co",
        "lonely llama yarns",
        "lonely llama yarns",
        "bravo cafe",
        "bravo cafe",
    ]
    await db_slice.add_transactions(USER_ID, [db_slice.descriptor(d) for d in descriptors], import_job_id)
    return import_job_id


async def transaction_states(db_slice: DbSlice) -> dict[str, list[str]]:
    rows = await db_slice.rows(
        "select merchant_key, status, mapping_id is not null from public.transactions"
        " where merchant_key like %s order by merchant_key, id",
        db_slice.tag + "%",
    )
    states: dict[str, list[str]] = {}
    for key, status, linked in rows:
        assert linked == (status == "mapped")
        states.setdefault(key.removeprefix(db_slice.tag + " "), []).append(status)
    return states


EXPECTED_STATES = {
    "bravo cafe": ["mapped", "mapped"],
    "bravo coffee": ["mapped", "mapped", "mapped"],
    "bravo cofee": ["pending", "pending"],
    "lonely llama yarns": ["pending", "pending"],
}
EXPECTED_MAPPINGS = [
    ("bravo cafe", "catalog", "approved", "SBUX"),
    ("bravo cofee", "similarity", "pending", "SBUX"),
    ("bravo coffee", "catalog", "approved", "SBUX"),
    ("lonely llama yarns", "review", "pending", None),
]


async def mappings(db_slice: DbSlice) -> list[tuple[Any, ...]]:
    return [(row[0].removeprefix(db_slice.tag + " "), *row[1:]) for row in await db_slice.mappings()]


async def test_job_maps_every_merchant_and_links_approved_ones(
    settings: Settings, db_slice: DbSlice, imported: int, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="test.map_merchants"):
        outcome = await asyncio.to_thread(map_merchants, job_context(settings, {"import_job_id": imported}))

    assert outcome is Outcome.SUCCEEDED
    assert await transaction_states(db_slice) == EXPECTED_STATES
    assert await mappings(db_slice) == EXPECTED_MAPPINGS
    assert "4/4 merchants (2 approved, 2 pending review), 5 transactions linked" in caplog.messages[-1]


async def test_job_links_merchants_whose_mapping_was_approved_before_the_import(
    settings: Settings, aconn: AsyncConnection[Any], db_slice: DbSlice
) -> None:
    await db_slice.add_catalog("bravo coffee", "Bravo Coffee Co", "SBUX", "FOOD_AND_DRINK")
    provider = OfflineProvider.from_catalog(settings.mapping_similarity_threshold)
    [res] = await resolve_descriptors(aconn, [db_slice.descriptor("bravo coffee")], provider=provider, save=True)
    import_job_id = random.randint(10**12, 10**13)
    # The registry pointer was set before these transactions existed, so no trigger links them.
    await db_slice.add_transactions(USER_ID, [db_slice.descriptor("bravo coffee #9")] * 3, import_job_id)
    assert (await transaction_states(db_slice))["bravo coffee"] == ["pending"] * 3

    await asyncio.to_thread(map_merchants, job_context(settings, {"import_job_id": import_job_id}))

    assert (await transaction_states(db_slice))["bravo coffee"] == ["mapped"] * 3
    [(mapping_id,)] = await db_slice.rows(
        "select distinct mapping_id from public.transactions where merchant_key = %s", db_slice.key("bravo coffee")
    )
    assert mapping_id == res.merchant.mapping_id


async def test_job_only_touches_its_import(settings: Settings, db_slice: DbSlice, imported: int) -> None:
    await asyncio.to_thread(map_merchants, job_context(settings, {"import_job_id": imported + 1}))

    assert await db_slice.mappings() == []
    assert all(set(states) == {"pending"} for states in (await transaction_states(db_slice)).values())


class StopAfterFirstChunk(logging.Handler):
    def __init__(self, ctx: JobContext) -> None:
        super().__init__()
        self.ctx = ctx

    def emit(self, record: logging.LogRecord) -> None:
        if "transactions linked" in record.getMessage():
            self.ctx.request_stop()


async def test_stopped_job_hands_back_and_a_rerun_finishes_the_same(
    settings: Settings, db_slice: DbSlice, imported: int
) -> None:
    first = job_context(settings, {"import_job_id": imported, "chunk_keys": 1})
    stopper = StopAfterFirstChunk(first)
    first.log.addHandler(stopper)
    try:
        assert await asyncio.to_thread(map_merchants, first) is Outcome.HANDED_BACK
    finally:
        first.log.removeHandler(stopper)
    assert len(await db_slice.mappings()) == 1

    rerun = job_context(settings, {"import_job_id": imported, "chunk_keys": 1})
    assert await asyncio.to_thread(map_merchants, rerun) is Outcome.SUCCEEDED
    assert await transaction_states(db_slice) == EXPECTED_STATES
    assert await mappings(db_slice) == EXPECTED_MAPPINGS


async def test_cancelled_job_stops_before_the_next_chunk(settings: Settings, db_slice: DbSlice, imported: int) -> None:
    ctx = job_context(settings, {"import_job_id": imported})
    ctx.mark_cancel_requested()

    assert await asyncio.to_thread(map_merchants, ctx) is Outcome.CANCELLED
    assert await db_slice.mappings() == []


async def test_bad_payload_fails_permanently(settings: Settings) -> None:
    from jobs.errors import PermanentJobError

    with pytest.raises(PermanentJobError):
        await asyncio.to_thread(map_merchants, job_context(settings, {"import_job_id": "seven"}))


@pytest.mark.usefixtures("stack_worker_paused")  # the stack's own worker would claim the job first
async def test_job_runs_through_the_queue(settings: Settings, db_slice: DbSlice, imported: int) -> None:
    import psycopg

    with psycopg.connect(settings.db_url, autocommit=True) as conn:
        queue_job_id = queue.enqueue(conn, MAP_MERCHANTS, {"import_job_id": imported})

    state = await asyncio.to_thread(InlineRun(settings.db_url, queue_job_id, get_settings()).run)

    assert state == "succeeded"
    assert await transaction_states(db_slice) == EXPECTED_STATES
