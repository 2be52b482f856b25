"""The OpenAI-compatible provider against the fake LLM server over real HTTP, mode by mode."""

from __future__ import annotations

import socket
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from kamioi.mapping.prompt import MAX_SAMPLE_CHARS, MAX_SAMPLES, SYSTEM_PROMPT, build_messages, extract_batch
from kamioi.mapping.providers.base import CallRecord, MerchantQuery, MerchantSuggestion, ProviderUnavailable
from kamioi.mapping.providers.openai_compatible import OpenAICompatibleProvider, _retry_after_s, backoff_s
from local_stack.standins.llm_server import (
    KNOWN_MERCHANTS,
    MADE_UP_TICKER,
    UNASKED_KEY,
    FakeLLMControl,
    serve_in_thread,
)

MakeProvider = Callable[..., OpenAICompatibleProvider]

# Every fake-table ticker but NFLX: a real, correct ticker that the catalog does not know must stay
# unverified just like a made-up one.
KNOWN_TICKERS = frozenset(ticker for _, ticker, _ in KNOWN_MERCHANTS.values()) - {"NFLX"}
PRICE_PER_1K_PROMPT = 0.15
PRICE_PER_1K_COMPLETION = 0.6

QUERIES = [
    MerchantQuery("starbucks", "Starbucks", ["STARBUCKS STORE 01234 SEATTLE WA", "SQ *STARBUCKS #5521"]),
    MerchantQuery("amazon", "Amazon", ["AMZN Mktp US*2K4JL0XY1", "AMAZON.COM*MK1AB2CD3 AMZN.COM/BILL"]),
    MerchantQuery("joes-coffee", "Joe's Coffee", ["SQ *JOES COFFEE BROOKLYN NY"]),
    MerchantQuery("netflix", "Netflix", ["NETFLIX.COM 866-579-7172 CA"]),
    MerchantQuery("berkshire", "Berkshire Hathaway", ["BERKSHIRE HATHAWAY HOMESTATE"]),
    MerchantQuery("home-depot", "The Home Depot", ["THE HOME DEPOT #6543 AUSTIN TX"]),
    MerchantQuery("corner-deli", "Corner Deli", ["CORNER DELI 22 NEW YORK NY"]),
    MerchantQuery("uber", "Uber", ["UBER *TRIP HELP.UBER.COM"]),
]
KEYS = [query.merchant_key for query in QUERIES]


@dataclass
class ListRecorder:
    records: list[CallRecord] = field(default_factory=list)

    async def record(self, rec: CallRecord) -> None:
        self.records.append(rec)


@pytest.fixture
def recorder() -> ListRecorder:
    return ListRecorder()


@pytest.fixture
async def make_provider(fake_llm: FakeLLMControl, recorder: ListRecorder) -> AsyncIterator[MakeProvider]:
    """Builds providers against the fake server with tiny backoffs; closes them afterwards."""
    made: list[OpenAICompatibleProvider] = []

    def make(**overrides: Any) -> OpenAICompatibleProvider:
        options: dict[str, Any] = {
            "base_url": fake_llm.base_url,
            "api_key": "test-key",
            "model": "fake-model",
            "known_tickers": KNOWN_TICKERS,
            "timeout_s": 5.0,
            "backoff_base_s": 0.001,
            "backoff_max_s": 0.01,
            "price_per_1k_prompt": PRICE_PER_1K_PROMPT,
            "price_per_1k_completion": PRICE_PER_1K_COMPLETION,
            "recorder": recorder,
        }
        provider = OpenAICompatibleProvider(**(options | overrides))
        made.append(provider)
        return provider

    yield make
    for provider in made:
        await provider.aclose()


async def assert_sound(
    results: Sequence[MerchantSuggestion],
    queries: Sequence[MerchantQuery],
    recorder: ListRecorder,
    fake_llm: FakeLLMControl,
) -> None:
    """What must hold in every mode: only asked keys, at most once each, no unearned verification,
    and one ledger record per HTTP attempt the server saw, numbered 1..n."""
    keys = [suggestion.merchant_key for suggestion in results]
    assert len(keys) == len(set(keys))
    assert set(keys) <= {query.merchant_key for query in queries}
    for suggestion in results:
        assert suggestion.ticker_verified == (suggestion.ticker in KNOWN_TICKERS)
    stats = await fake_llm.stats()
    assert len(recorder.records) == stats["requests"]
    assert [rec.attempt for rec in recorder.records] == list(range(1, stats["requests"] + 1))
    for rec in recorder.records:
        assert (rec.provider, rec.model, rec.prompt_version) == (
            "openai_compatible",
            "fake-model",
            "merchant-map-v2",
        )
        assert rec.merchants == len(queries)
        assert rec.latency_ms >= 0


def outcomes(recorder: ListRecorder) -> list[str]:
    return [rec.outcome for rec in recorder.records]


async def test_good_maps_every_merchant_in_one_request(
    fake_llm: FakeLLMControl, make_provider: MakeProvider, recorder: ListRecorder
) -> None:
    results = await make_provider().suggest(QUERIES)

    await assert_sound(results, QUERIES, recorder, fake_llm)
    by_key = {suggestion.merchant_key: suggestion for suggestion in results}
    assert sorted(by_key) == sorted(KEYS)
    starbucks = by_key["starbucks"]
    assert (starbucks.ticker, starbucks.category, starbucks.ticker_verified) == (
        "SBUX",
        "FOOD_AND_DRINK",
        True,
    )
    assert (by_key["berkshire"].ticker, by_key["berkshire"].ticker_verified) == ("BRK.B", True)
    assert (by_key["joes-coffee"].ticker, by_key["joes-coffee"].confidence) == (None, 0.3)
    assert not by_key["joes-coffee"].ticker_verified
    # A genuine ticker outside the known set is still unverified.
    assert (by_key["netflix"].ticker, by_key["netflix"].ticker_verified) == ("NFLX", False)

    [rec] = recorder.records
    assert (rec.outcome, rec.error, rec.attempt) == ("ok", None, 1)
    assert rec.prompt_tokens > 0 and rec.completion_tokens > 0
    expected_cost = (rec.prompt_tokens * PRICE_PER_1K_PROMPT + rec.completion_tokens * PRICE_PER_1K_COMPLETION) / 1000
    assert rec.cost_usd == pytest.approx(expected_cost)


async def test_request_speaks_openai_json_mode(fake_llm: FakeLLMControl, make_provider: MakeProvider) -> None:
    await make_provider().suggest(QUERIES[:2])

    stats = await fake_llm.stats()
    body = stats["last_body"]
    assert stats["last_authorization"] == "Bearer test-key"
    assert body["model"] == "fake-model"
    assert body["temperature"] == 0
    assert body["response_format"] == {"type": "json_object"}
    assert [message["role"] for message in body["messages"]] == ["system", "user"]


async def test_without_known_tickers_nothing_is_verified(fake_llm: FakeLLMControl, make_provider: MakeProvider) -> None:
    results = await make_provider(known_tickers=None).suggest(QUERIES)

    assert len(results) == len(QUERIES)
    assert not any(suggestion.ticker_verified for suggestion in results)


async def test_malformed_json_is_retried_once_then_reported_unavailable(
    fake_llm: FakeLLMControl, make_provider: MakeProvider, recorder: ListRecorder
) -> None:
    await fake_llm.set_mode("malformed_json")

    with pytest.raises(ProviderUnavailable, match="invalid_output after 2 attempt"):
        await make_provider().suggest(QUERIES)

    await assert_sound([], QUERIES, recorder, fake_llm)
    assert outcomes(recorder) == ["invalid_output", "invalid_output"]
    # The tokens were spent all the same, so the ledger charges for them.
    assert all(rec.prompt_tokens > 0 and rec.cost_usd > 0 for rec in recorder.records)


async def test_rate_limit_then_ok_retries_until_answered(
    fake_llm: FakeLLMControl, make_provider: MakeProvider, recorder: ListRecorder
) -> None:
    await fake_llm.set_mode("rate_limit_then_ok", fail_first=2)

    results = await make_provider().suggest(QUERIES)

    assert sorted(s.merchant_key for s in results) == sorted(KEYS)
    await assert_sound(results, QUERIES, recorder, fake_llm)
    assert outcomes(recorder) == ["rate_limited", "rate_limited", "ok"]
    assert (await fake_llm.stats())["statuses"] == {"429": 2, "200": 1}


async def test_retry_after_is_honoured(
    fake_llm: FakeLLMControl, make_provider: MakeProvider, recorder: ListRecorder
) -> None:
    await fake_llm.set_mode("rate_limit_then_ok", fail_first=1, retry_after_s=1)

    started = time.monotonic()
    results = await make_provider(backoff_max_s=5.0).suggest(QUERIES[:1])

    assert time.monotonic() - started >= 1.0
    assert len(results) == 1
    assert outcomes(recorder) == ["rate_limited", "ok"]


async def test_retry_after_is_capped_at_the_longest_backoff(
    fake_llm: FakeLLMControl, make_provider: MakeProvider, recorder: ListRecorder
) -> None:
    await fake_llm.set_mode("rate_limit_then_ok", fail_first=1, retry_after_s=30)

    started = time.monotonic()
    results = await make_provider(backoff_max_s=0.2).suggest(QUERIES[:1])

    assert time.monotonic() - started < 5.0
    assert len(results) == 1
    assert outcomes(recorder) == ["rate_limited", "ok"]


async def test_rate_limit_gives_up_after_max_attempts(
    fake_llm: FakeLLMControl, make_provider: MakeProvider, recorder: ListRecorder
) -> None:
    await fake_llm.set_mode("rate_limit_then_ok", fail_first=100)

    with pytest.raises(ProviderUnavailable, match="rate_limited after 3 attempt"):
        await make_provider(max_attempts=3).suggest(QUERIES)

    await assert_sound([], QUERIES, recorder, fake_llm)
    assert outcomes(recorder) == ["rate_limited"] * 3


async def test_server_error_retries_every_allowed_attempt(
    fake_llm: FakeLLMControl, make_provider: MakeProvider, recorder: ListRecorder
) -> None:
    await fake_llm.set_mode("server_error")

    with pytest.raises(ProviderUnavailable, match="HTTP 500"):
        await make_provider(max_attempts=4).suggest(QUERIES)

    await assert_sound([], QUERIES, recorder, fake_llm)
    assert outcomes(recorder) == ["http_error"] * 4
    assert all((rec.error or "").startswith("HTTP 500") for rec in recorder.records)


async def test_server_error_then_ok_recovers(
    fake_llm: FakeLLMControl, make_provider: MakeProvider, recorder: ListRecorder
) -> None:
    await fake_llm.set_mode("server_error_then_ok", fail_first=2)

    results = await make_provider().suggest(QUERIES)

    assert len(results) == len(QUERIES)
    await assert_sound(results, QUERIES, recorder, fake_llm)
    assert outcomes(recorder) == ["http_error", "http_error", "ok"]


async def test_client_error_is_not_retried(
    fake_llm: FakeLLMControl, make_provider: MakeProvider, recorder: ListRecorder
) -> None:
    await fake_llm.set_mode("bad_request")

    with pytest.raises(ProviderUnavailable, match="HTTP 400"):
        await make_provider().suggest(QUERIES)

    await assert_sound([], QUERIES, recorder, fake_llm)
    assert outcomes(recorder) == ["http_error"]


async def test_slow_server_times_out_and_retries(
    fake_llm: FakeLLMControl, make_provider: MakeProvider, recorder: ListRecorder
) -> None:
    await fake_llm.set_mode("slow", slow_s=2.0)

    with pytest.raises(ProviderUnavailable, match="timeout after 2 attempt"):
        await make_provider(timeout_s=0.2, max_attempts=2).suggest(QUERIES)

    await assert_sound([], QUERIES, recorder, fake_llm)
    assert outcomes(recorder) == ["timeout", "timeout"]
    assert all(rec.latency_ms >= 200 for rec in recorder.records)


async def test_hallucinated_tickers_are_kept_but_never_verified(
    fake_llm: FakeLLMControl, make_provider: MakeProvider, recorder: ListRecorder
) -> None:
    await fake_llm.set_mode("hallucinate")

    results = await make_provider().suggest(QUERIES)

    assert len(results) == len(QUERIES)
    await assert_sound(results, QUERIES, recorder, fake_llm)
    # The server claims ticker_verified=true on every item; only the provider may set it.
    assert all(s.ticker == MADE_UP_TICKER and not s.ticker_verified for s in results)
    assert outcomes(recorder) == ["ok"]


async def test_partial_reply_keeps_answered_keys_and_drops_unasked(
    fake_llm: FakeLLMControl, make_provider: MakeProvider, recorder: ListRecorder
) -> None:
    await fake_llm.set_mode("partial")

    results = await make_provider().suggest(QUERIES)

    assert sorted(s.merchant_key for s in results) == sorted(KEYS[::2])
    assert UNASKED_KEY not in {s.merchant_key for s in results}
    await assert_sound(results, QUERIES, recorder, fake_llm)
    [rec] = recorder.records
    assert (rec.outcome, rec.error) == ("ok", "dropped 0 invalid and 1 unrequested items")


async def test_schema_invalid_items_are_dropped_one_by_one(
    fake_llm: FakeLLMControl, make_provider: MakeProvider, recorder: ListRecorder
) -> None:
    await fake_llm.set_mode("invalid_items")

    results = await make_provider().suggest(QUERIES)

    assert sorted(s.merchant_key for s in results) == sorted(KEYS[::2])
    await assert_sound(results, QUERIES, recorder, fake_llm)
    [rec] = recorder.records
    assert (rec.outcome, rec.error) == ("ok", f"dropped {len(KEYS) // 2} invalid and 0 unrequested items")


async def test_connection_refused_is_retried_as_http_error(recorder: ListRecorder) -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    provider = OpenAICompatibleProvider(
        f"http://127.0.0.1:{port}/v1",
        "k",
        "fake-model",
        max_attempts=3,
        backoff_base_s=0.001,
        recorder=recorder,
    )
    async with provider:
        with pytest.raises(ProviderUnavailable, match="ConnectError"):
            await provider.suggest(QUERIES)

    assert outcomes(recorder) == ["http_error"] * 3
    assert all((rec.error or "").startswith("ConnectError") for rec in recorder.records)


async def test_suggest_all_splits_batches_under_the_concurrency_cap(
    fake_llm: FakeLLMControl, make_provider: MakeProvider, recorder: ListRecorder
) -> None:
    await fake_llm.set_mode("slow", slow_s=0.2)
    queries = [MerchantQuery(f"shop-{n}", f"Shop {n}", [f"SHOP {n} ANYTOWN"]) for n in range(20)]

    results = await make_provider(max_concurrency=3).suggest_all(queries, batch_size=2)

    assert sorted(s.merchant_key for s in results) == sorted(q.merchant_key for q in queries)
    stats = await fake_llm.stats()
    assert stats["requests"] == 10
    assert stats["max_in_flight"] == 3
    assert [(rec.outcome, rec.merchants, rec.attempt) for rec in recorder.records] == [("ok", 2, 1)] * 10


async def test_empty_batch_makes_no_request(fake_llm: FakeLLMControl, make_provider: MakeProvider) -> None:
    assert await make_provider().suggest([]) == []
    assert (await fake_llm.stats())["requests"] == 0


async def test_in_process_server_answers(recorder: ListRecorder) -> None:
    with serve_in_thread("good") as base_url:
        async with OpenAICompatibleProvider(base_url, "k", "fake-model", recorder=recorder) as provider:
            results = await provider.suggest(QUERIES[:1])

    assert [(s.merchant_key, s.ticker) for s in results] == [("starbucks", "SBUX")]
    assert outcomes(recorder) == ["ok"]


def test_prompt_round_trips_and_caps_samples() -> None:
    noisy = MerchantQuery("noisy", "Noisy", ["X" * 500] * 10)
    system, user = build_messages([noisy, QUERIES[0]])

    assert "JSON" in system["content"]  # OpenAI's json_object mode refuses prompts that never say JSON
    assert system["content"] == SYSTEM_PROMPT
    first, second = extract_batch(user["content"])
    assert first["samples"] == ["X" * MAX_SAMPLE_CHARS] * MAX_SAMPLES
    assert second == {
        "merchant_key": "starbucks",
        "display_name": "Starbucks",
        "samples": QUERIES[0].sample_descriptors,
    }
    with pytest.raises(ValueError):
        extract_batch("no batch here")


@pytest.mark.parametrize("ticker", ["SBUX", "BRK.B", "T", None])
def test_suggestion_accepts_listed_tickers(ticker: str | None) -> None:
    suggestion = MerchantSuggestion(
        merchant_key="k", company="C", ticker=ticker, category="TRAVEL", confidence=1, reason=""
    )
    assert suggestion.ticker == ticker and not suggestion.ticker_verified


@pytest.mark.parametrize(
    "override",
    [
        {"ticker": "sbux"},
        {"ticker": "TOOLONG"},
        {"ticker": ".AB"},
        {"ticker": "AB1"},
        {"ticker": ""},
        {"category": "SHOPPING"},
        {"confidence": 1.01},
        {"confidence": -0.1},
        {"reason": "x" * 201},
        {"company": ""},
    ],
)
def test_suggestion_rejects_out_of_schema_values(override: dict[str, object]) -> None:
    fields: dict[str, object] = {
        "merchant_key": "k",
        "company": "C",
        "ticker": "SBUX",
        "category": "TRAVEL",
        "confidence": 0.5,
        "reason": "ok",
    }
    with pytest.raises(ValidationError):
        MerchantSuggestion.model_validate({**fields, **override})


def test_retry_after_reads_seconds_and_http_dates() -> None:
    def retry_after(value: str) -> float | None:
        return _retry_after_s(httpx.Response(429, headers={"Retry-After": value}))

    assert retry_after("3") == 3.0
    assert retry_after("garbage") is None
    in_ten_s = format_datetime(datetime.now(UTC) + timedelta(seconds=10), usegmt=True)
    assert 8.0 <= (retry_after(in_ten_s) or 0.0) <= 10.0
    assert _retry_after_s(httpx.Response(429)) is None


@given(attempt_no=st.integers(1, 30), retry_after=st.one_of(st.none(), st.floats(0, 100)))
def test_backoff_is_jittered_capped_and_respects_retry_after(attempt_no: int, retry_after: float | None) -> None:
    delay = backoff_s(attempt_no, retry_after, base_s=0.5, max_s=20)

    ceiling = min(20.0, 0.5 * 2 ** (attempt_no - 1))
    honoured = min(retry_after or 0.0, 20.0)
    assert honoured <= delay <= max(ceiling, honoured)
