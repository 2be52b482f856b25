"""The whole pipeline against the fake OpenAI-protocol server, failure mode by failure mode: the
resolver with the OpenAI-compatible provider and the database ledger, saving into the real database.

Whatever the server does: nothing crashes, every merchant ends approved or pending (none lost), an
approval only ever carries a known ticker, a key is never sent twice, and public.llm_calls holds one
row per HTTP attempt the server saw.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from typing import Any

import pytest
from psycopg import AsyncConnection

from kamioi.mapping.catalog import known_tickers
from kamioi.mapping.ledger import DatabaseCallRecorder
from kamioi.mapping.providers.openai_compatible import OpenAICompatibleProvider
from kamioi.mapping.resolver import ApprovalPolicy, Resolution, ResolverOptions, resolve_descriptors
from kamioi.settings import Settings
from local_stack.standins.llm_server import MADE_UP_TICKER, TRAP_DESCRIPTORS, FakeLLMControl, Mode
from tests.mapping.support import DbSlice

# Confident answers with a known ticker may be approved, so the tests can tell a good answer from a
# bad one by what got approved.
TRUSTING = ResolverOptions(policy=ApprovalPolicy(min_confidence=0.8))
# Words the fake server recognises; the tag in front keeps the keys out of the catalog.
WORDS = ("starbucks roastery lounge", "netflix stream", "taco bell kiosk", "corner deli", "uber trip")
MAX_ATTEMPTS = 3


@pytest.fixture
async def ledger(settings: Settings) -> AsyncIterator[DatabaseCallRecorder]:
    """Ledger rows under a job id of this test's own."""
    async with await AsyncConnection.connect(settings.db_url, autocommit=True, prepare_threshold=None) as conn:
        job_id = random.randint(10**12, 10**13)
        yield DatabaseCallRecorder(conn, job_id)
        await conn.execute("delete from public.llm_calls where job_id = %s", (job_id,))


@pytest.fixture
async def provider(fake_llm: FakeLLMControl, ledger: DatabaseCallRecorder) -> AsyncIterator[OpenAICompatibleProvider]:
    async with OpenAICompatibleProvider(
        fake_llm.base_url,
        "test-key",
        "fake-model",
        known_tickers=known_tickers(),
        timeout_s=0.5,
        max_attempts=MAX_ATTEMPTS,
        backoff_base_s=0.01,
        backoff_max_s=0.05,
        recorder=ledger,
    ) as made:
        yield made


async def ledger_outcomes(conn: AsyncConnection[Any], recorder: DatabaseCallRecorder) -> list[str]:
    async with conn.cursor() as cur:
        await cur.execute(
            "select outcome, model, prompt_version, merchants from public.llm_calls where job_id = %s order by id",
            (recorder._job_id,),
        )
        rows = await cur.fetchall()
    assert all(row[1:] == ("fake-model", "merchant-map-v2", len(WORDS)) for row in rows)
    return [row[0] for row in rows]


async def run_pipeline(
    aconn: AsyncConnection[Any], db_slice: DbSlice, provider: OpenAICompatibleProvider
) -> list[Resolution]:
    descriptors = [db_slice.descriptor(words) for words in WORDS]
    results = await resolve_descriptors(aconn, descriptors, provider=provider, save=True, options=TRUSTING)
    trusted = known_tickers()
    for res in results:
        assert res.merchant.status in ("approved", "pending")
        if res.merchant.status == "approved":
            assert res.merchant.tier in ("llm", "approved")
            assert res.merchant.ticker in trusted
    # Every merchant has exactly one mapping row: mapped or waiting for review, none lost.
    rows = await db_slice.mappings()
    assert sorted(row[0] for row in rows) == sorted(db_slice.key(words) for words in WORDS)
    return results


def summary(results: list[Resolution]) -> dict[str, tuple[str, str, str | None]]:
    return {
        res.merchant.merchant_key.split(" ", 1)[1]: (res.merchant.tier, res.merchant.status, res.merchant.ticker)
        for res in results
    }


GOOD = {
    "starbucks roastery lounge": ("llm", "approved", "SBUX"),
    "netflix stream": ("llm", "approved", "NFLX"),
    "taco bell kiosk": ("llm", "approved", "YUM"),
    "corner deli": ("llm", "pending", None),
    "uber trip": ("llm", "approved", "UBER"),
}
ALL_REVIEW = {words: ("review", "pending", None) for words in WORDS}


@pytest.mark.parametrize(
    "mode, options, expected, outcomes",
    [
        ("good", {}, GOOD, ["ok"]),
        ("rate_limit_then_ok", {"fail_first": 2}, GOOD, ["rate_limited", "rate_limited", "ok"]),
        ("server_error_then_ok", {"fail_first": 1}, GOOD, ["http_error", "ok"]),
        ("malformed_json", {}, ALL_REVIEW, ["invalid_output", "invalid_output"]),
        ("server_error", {}, ALL_REVIEW, ["http_error"] * MAX_ATTEMPTS),
        ("slow", {"slow_s": 2.0}, ALL_REVIEW, ["timeout"] * MAX_ATTEMPTS),
        (
            "hallucinate",
            {},
            {words: ("llm", "pending", MADE_UP_TICKER) for words in WORDS},
            ["ok"],
        ),
    ],
)
async def test_every_failure_mode_ends_mapped_or_pending_with_a_full_ledger(
    aconn: AsyncConnection[Any],
    db_slice: DbSlice,
    fake_llm: FakeLLMControl,
    provider: OpenAICompatibleProvider,
    ledger: DatabaseCallRecorder,
    mode: Mode,
    options: dict[str, float],
    expected: dict[str, tuple[str, str, str | None]],
    outcomes: list[str],
) -> None:
    await fake_llm.set_mode(mode, **options)

    results = await run_pipeline(aconn, db_slice, provider)

    assert summary(results) == expected
    assert await ledger_outcomes(aconn, ledger) == outcomes
    assert (await fake_llm.stats())["requests"] == len(outcomes)

    # The keys now have mappings (answers or review claims): asking again costs no LLM call.
    await fake_llm.set_mode("good")
    again = await run_pipeline(aconn, db_slice, provider)
    assert (await fake_llm.stats())["requests"] == 0
    assert [r.merchant.mapping_id for r in again] == [r.merchant.mapping_id for r in results]


async def test_partial_and_invalid_items_leave_the_rest_for_review(
    aconn: AsyncConnection[Any], db_slice: DbSlice, fake_llm: FakeLLMControl, provider: OpenAICompatibleProvider
) -> None:
    await fake_llm.set_mode("partial")

    results = await run_pipeline(aconn, db_slice, provider)

    # The server answers every other merchant (and one nobody asked about, which is dropped).
    answered = {words for words, (tier, _, _) in summary(results).items() if tier == "llm"}
    assert answered == set(sorted(WORDS)[::2])


async def test_a_careless_models_brand_inside_a_longer_name_never_gets_approved(
    aconn: AsyncConnection[Any], fake_llm: FakeLLMControl, provider: OpenAICompatibleProvider
) -> None:
    # Dry run: these keys are global (no tag), so nothing is saved and a used stack answers the same.
    descriptors = [descriptor for descriptor, _, _ in TRAP_DESCRIPTORS]

    results = await resolve_descriptors(aconn, descriptors, provider=provider, save=False, options=TRUSTING)

    assert (await fake_llm.stats())["requests"] == 1  # the model was asked, and named the brands
    for res, (descriptor, brand_ticker, struck) in zip(results, TRAP_DESCRIPTORS, strict=True):
        merchant = res.merchant
        assert (merchant.tier, merchant.status) == ("llm", "pending"), descriptor
        assert merchant.ticker == (None if struck else brand_ticker), descriptor
