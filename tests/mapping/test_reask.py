"""Merchant keys asked while the LLM was down: marked failed (never approved, never lost), asked again
by the `mappings.reask` job once it is back, answered and linked like a first answer; given up at the
attempt cap; never asked by two askers at once. The real jobs, the fake LLM server, the local stack.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from psycopg import AsyncConnection

from jobs import queue
from jobs.context import JobContext
from jobs.map_merchants import MAP_MERCHANTS, map_merchants
from jobs.reask_merchants import REASK_KIND, reask_merchants
from jobs.registry import Outcome
from kamioi.mapping.cache import UpstashMappingCache
from kamioi.mapping.providers.base import MerchantQuery, MerchantSuggestion
from kamioi.mapping.reask import reask_due
from kamioi.mapping.resolver import ResolverOptions, RetryPolicy, resolve_descriptors
from kamioi.settings import Settings
from local_stack.standins.llm_server import FakeLLMControl
from tests.mapping.support import DbSlice, ScriptedProvider

# The cron-queued reask job must not be run by the stack's own worker (its provider is offline).
pytestmark = pytest.mark.usefixtures("stack_worker_paused")

USER_ID = "00000000-0000-4000-a000-000000000002"
# Merchants the fake LLM knows (two with tickers the catalog knows, so they are approved) and one
# it answers without a ticker (left pending with its answer).
SHOPS = {"starbucks roastery lounge": "SBUX", "netflix stream": "NFLX", "corner deli": None}


@pytest.fixture
def llm_settings(settings: Settings, fake_llm: FakeLLMControl, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The jobs' settings: the fake LLM, quick failures, confident known tickers approved, short backoff."""
    configured = settings.model_copy(
        update={
            "llm_api_key": "test-key",
            "llm_base_url": fake_llm.base_url,
            "llm_model": "fake-model",
            "llm_max_attempts": 2,
            "llm_timeout_s": 1.0,
            "auto_approve_min_confidence": 0.8,
            "mapping_retry_base_s": 0.2,
            "mapping_retry_max_s": 0.4,
        }
    )
    return configured


def job_context(settings: Settings, kind: str, payload: dict[str, Any]) -> JobContext:
    job = queue.Job(random.randint(10**12, 10**13), kind, payload, 1, 5, uuid.uuid4())
    return JobContext(job, settings.db_url, settings, logging.getLogger(f"test.{kind}"))


async def run_job(settings: Settings, kind: str, payload: dict[str, Any] | None = None) -> Outcome:
    handler = map_merchants if kind == MAP_MERCHANTS else reask_merchants
    return await asyncio.to_thread(handler, job_context(settings, kind, payload or {}))


@dataclass(frozen=True)
class Row:
    status: str
    tier: str | None
    ticker: str | None
    state: str | None
    attempts: int
    error: str | None
    scheduled: bool
    reason: str | None


async def rows_by_shop(db_slice: DbSlice) -> dict[str, list[Row]]:
    """Every mapping row of the slice's keys, per shop: one each means nothing was lost or duplicated."""
    found: dict[str, list[Row]] = {}
    for key, *fields in await db_slice.rows(
        "select merchant_key, status, tier, ticker, provider_state, provider_attempts, provider_error,"
        " next_attempt_at is not null, reason from public.llm_mappings where merchant_key like %s order by id",
        db_slice.tag + "%",
    ):
        found.setdefault(key.removeprefix(db_slice.tag + " "), []).append(Row(*fields))
    return found


async def transaction_states(db_slice: DbSlice) -> dict[str, set[str]]:
    states: dict[str, set[str]] = {}
    for key, status, linked_to_in_force in await db_slice.rows(
        "select t.merchant_key, t.status, t.mapping_id is not distinct from mr.mapping_id"
        " from public.transactions as t left join public.merchants as mr on mr.merchant_key = t.merchant_key"
        " where t.merchant_key like %s",
        db_slice.tag + "%",
    ):
        assert linked_to_in_force or status == "pending"
        states.setdefault(key.removeprefix(db_slice.tag + " "), set()).add(status)
    return states


async def wait_until_due(db_slice: DbSlice) -> None:
    """The backoff is short here (0.2 s doubling to 0.4 s, +-20%): wait it out rather than fake it."""
    for _ in range(100):
        [(waiting,)] = await db_slice.rows(
            "select count(*) from public.llm_mappings where merchant_key like %s and next_attempt_at > now()",
            db_slice.tag + "%",
        )
        if waiting == 0:
            return
        await asyncio.sleep(0.1)
    raise AssertionError("keys never fell due")


@pytest.fixture
async def imported(db_slice: DbSlice) -> int:
    import_job_id = random.randint(10**12, 10**13)
    descriptors = [db_slice.descriptor(f"{shop} #{n}") for shop in SHOPS for n in (1, 2)]
    await db_slice.add_transactions(USER_ID, descriptors, import_job_id)
    return import_job_id


async def test_keys_asked_while_the_llm_was_down_are_answered_and_linked_once_it_is_back(
    llm_settings: Settings, fake_llm: FakeLLMControl, db_slice: DbSlice, imported: int
) -> None:
    await fake_llm.set_mode("server_error")
    assert await run_job(llm_settings, MAP_MERCHANTS, {"import_job_id": imported}) is Outcome.SUCCEEDED

    down = await rows_by_shop(db_slice)
    assert sorted(down) == sorted(SHOPS)
    for [row] in down.values():  # exactly one row per key: none lost, none doubled
        assert (row.status, row.tier, row.state, row.attempts) == ("pending", "review", "failed", 1)
        assert row.scheduled
        assert row.error is not None and "HTTP 500" in row.error
    assert await transaction_states(db_slice) == {shop: {"pending"} for shop in SHOPS}

    # Still down at the first re-ask: a second failed attempt, backed off again.
    await wait_until_due(db_slice)
    assert await run_job(llm_settings, REASK_KIND) is Outcome.SUCCEEDED
    assert {shop: (r.state, r.attempts) for shop, [r] in (await rows_by_shop(db_slice)).items()} == {
        shop: ("failed", 2) for shop in SHOPS
    }

    await fake_llm.set_mode("good")
    await wait_until_due(db_slice)
    assert await run_job(llm_settings, REASK_KIND) is Outcome.SUCCEEDED

    back = await rows_by_shop(db_slice)
    assert {shop: (r.status, r.tier, r.ticker) for shop, [r] in back.items()} == {
        shop: ("approved" if ticker else "pending", "llm", ticker) for shop, ticker in SHOPS.items()
    }
    assert all((r.state, r.attempts, r.error, r.scheduled) == ("answered", 3, None, False) for [r] in back.values())
    assert await transaction_states(db_slice) == {
        shop: {"mapped" if ticker else "pending"} for shop, ticker in SHOPS.items()
    }
    # The placeholders the map run cached as pending were refreshed: the next resolve sees the answer.
    cache = UpstashMappingCache.from_settings(llm_settings)
    assert cache is not None
    try:
        cached = await cache.get_many([db_slice.key(shop) for shop in SHOPS])
    finally:
        await cache.aclose()
    assert {key.split(" ", 1)[1]: m.status for key, m in cached.items()} == {
        shop: "approved" if ticker else "pending" for shop, ticker in SHOPS.items()
    }


async def test_a_key_that_keeps_failing_is_given_up_at_the_cap_and_left_for_review(
    llm_settings: Settings,
    fake_llm: FakeLLMControl,
    db_slice: DbSlice,
    imported: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    capped = llm_settings.model_copy(update={"mapping_retry_max_attempts": 2})
    await fake_llm.set_mode("server_error")
    await run_job(capped, MAP_MERCHANTS, {"import_job_id": imported})
    await wait_until_due(db_slice)
    await run_job(capped, REASK_KIND)

    gave_up = await rows_by_shop(db_slice)
    for [row] in gave_up.values():
        assert (row.status, row.state, row.attempts, row.scheduled) == ("pending", "gave_up", 2, False)
        assert row.reason == "openai_compatible failed 2 times; gave up, left for review"

    await fake_llm.set_mode("good")
    assert await run_job(capped, REASK_KIND) is Outcome.SUCCEEDED
    assert await rows_by_shop(db_slice) == gave_up  # never asked again: no third attempt
    assert await transaction_states(db_slice) == {shop: {"pending"} for shop in SHOPS}


class Crash(BaseException):
    """The asker dies mid-call (a kill, an OOM): nothing of the call is written back."""


@dataclass
class SlowProvider(ScriptedProvider):
    """Takes its time, so concurrent askers overlap; or crashes instead of answering."""

    delay_s: float = 0.5
    crash: bool = False

    async def suggest(self, batch: Sequence[MerchantQuery]) -> list[MerchantSuggestion]:
        await asyncio.sleep(self.delay_s)
        if self.crash:
            raise Crash
        return await super().suggest(batch)


def answer(company: str) -> dict[str, Any]:
    return {"company": company, "ticker": None, "category": "GENERAL_MERCHANDISE", "confidence": 0.5, "reason": "r"}


async def test_two_askers_never_ask_the_same_key_and_a_dead_askers_keys_come_back(
    settings: Settings, aconn: AsyncConnection[Any], db_slice: DbSlice
) -> None:
    # The lease outlasts a call (0.5 s) with room to spare, and runs out soon after the crash.
    options = ResolverOptions(retry=RetryPolicy(lease_s=2.0))
    keys = [db_slice.key(f"shop {letter}") for letter in "abcdefgh"]
    # The first asker dies after claiming every key.
    with pytest.raises(Crash):
        await resolve_descriptors(
            aconn, [key.upper() for key in keys], provider=SlowProvider(crash=True), save=True, options=options
        )
    [(asking,)] = await db_slice.rows(
        "select count(*) from public.llm_mappings where merchant_key like %s and provider_state = 'asking'",
        db_slice.tag + "%",
    )
    assert asking == len(keys)
    await wait_until_due(db_slice)  # the lease ran out

    providers = [SlowProvider({key: answer(f"Shop {n}") for n, key in enumerate(keys)}) for _ in range(3)]

    async def ask(provider: SlowProvider) -> None:
        async with await AsyncConnection.connect(settings.db_url, autocommit=True, prepare_threshold=None) as conn:
            while (await reask_due(conn, provider, options, limit=3)).taken:
                pass

    await asyncio.gather(*(ask(provider) for provider in providers))

    asked = [key for provider in providers for key in provider.asked if key.startswith(db_slice.tag)]
    assert sorted(asked) == sorted(keys)  # every key once, by one asker
    assert sum(bool(provider.asked) for provider in providers) >= 2  # and they did ask side by side
    rows = await rows_by_shop(db_slice)
    assert {shop: (r.state, r.attempts, r.tier) for shop, [r] in rows.items()} == {
        key.split(" ", 1)[1]: ("answered", 2, "llm") for key in keys
    }
