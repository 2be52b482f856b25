"""The resolver's tiers against the real database of the local stack, with an in-process provider."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from psycopg import AsyncConnection

from kamioi.mapping.cache import StoredMapping, UpstashMappingCache
from kamioi.mapping.normalizer import merchant_key
from kamioi.mapping.resolver import ApprovalPolicy, ResolverOptions, resolve_descriptors
from kamioi.mapping.trigram import similarity
from kamioi.settings import Settings
from tests.mapping.support import DbSlice, ScriptedProvider

USER_ID = "00000000-0000-4000-a000-000000000002"
ADMIN_ID = "00000000-0000-4000-a000-000000000001"
OPTIONS = ResolverOptions(known_tickers=frozenset({"SBUX", "MCD"}))
TRUSTING = ResolverOptions(policy=ApprovalPolicy(min_confidence=0.8), known_tickers=frozenset({"SBUX", "MCD"}))


def answer(company: str, ticker: str | None, confidence: float = 0.95) -> dict[str, Any]:
    return {"company": company, "ticker": ticker, "category": "FOOD_AND_DRINK", "confidence": confidence, "reason": "r"}


async def test_descriptors_of_one_merchant_make_one_key_and_one_provider_query(
    aconn: AsyncConnection[Any], db_slice: DbSlice
) -> None:
    formats = ["{} BAKERY #1234 AUSTIN TX", "SQ *{} BAKERY", "POS DEBIT {} BAKERY 512-555-0199", "{} bakery"]
    descriptors = [fmt.format(db_slice.tag.upper()) for fmt in formats] * 3
    provider = ScriptedProvider()

    results = await resolve_descriptors(aconn, descriptors, provider=provider, save=False, options=OPTIONS)

    assert {res.merchant.merchant_key for res in results} == {db_slice.key("bakery")}
    assert provider.batches == [[db_slice.key("bakery")]]
    assert [res.descriptor for res in results] == descriptors
    assert results[1].processor == "square"


async def test_catalog_tier_is_approved_and_then_answered_from_the_mapping_in_force(
    aconn: AsyncConnection[Any], db_slice: DbSlice
) -> None:
    key = await db_slice.add_catalog("bravo coffee", "Bravo Coffee Co", "SBUX", "FOOD_AND_DRINK")
    provider = ScriptedProvider()

    [first] = await resolve_descriptors(
        aconn, [db_slice.descriptor("bravo coffee #0042 denver co")], provider=provider, save=True, options=OPTIONS
    )
    [again] = await resolve_descriptors(
        aconn, [db_slice.descriptor("bravo coffee")], provider=provider, save=True, options=OPTIONS
    )

    assert (first.merchant.merchant_key, first.merchant.tier, first.merchant.status) == (key, "catalog", "approved")
    assert (first.merchant.company, first.merchant.ticker, first.merchant.confidence) == (
        "Bravo Coffee Co",
        "SBUX",
        1.0,
    )
    assert (again.merchant.tier, again.merchant.status, again.merchant.mapping_id) == (
        "approved",
        "approved",
        first.merchant.mapping_id,
    )
    assert provider.batches == []
    assert await db_slice.mappings() == [(key, "catalog", "approved", "SBUX")]
    [(pointer,)] = await db_slice.rows("select mapping_id from public.merchants where merchant_key = %s", key)
    assert pointer == first.merchant.mapping_id


async def test_catalog_alias_resolves_to_its_entry(aconn: AsyncConnection[Any], db_slice: DbSlice) -> None:
    await db_slice.add_catalog("golden arches", "McDonald's", "MCD", "FOOD_AND_DRINK", aliases=["mickey ds"])

    [res] = await resolve_descriptors(
        aconn, [db_slice.descriptor("mickey ds")], provider=ScriptedProvider(), save=False, options=OPTIONS
    )

    assert (res.merchant.merchant_key, res.merchant.tier, res.merchant.ticker) == (
        db_slice.key("mickey ds"),
        "catalog",
        "MCD",
    )


async def test_similarity_tier_proposes_but_does_not_approve_by_default(
    aconn: AsyncConnection[Any], db_slice: DbSlice
) -> None:
    key = await db_slice.add_catalog("bravo coffee", "Bravo Coffee Co", "SBUX", "FOOD_AND_DRINK")
    typo = db_slice.key("bravo cofee")
    score = similarity(typo, key)
    assert score >= OPTIONS.similarity_threshold
    provider = ScriptedProvider()

    [res] = await resolve_descriptors(
        aconn, [db_slice.descriptor("bravo cofee")], provider=provider, save=True, options=OPTIONS
    )

    assert (res.merchant.tier, res.merchant.status, res.merchant.ticker) == ("similarity", "pending", "SBUX")
    assert res.merchant.confidence == pytest.approx(score, abs=1e-4)
    assert provider.batches == []
    assert await db_slice.mappings() == [(typo, "similarity", "pending", "SBUX")]
    [(pointer,)] = await db_slice.rows("select mapping_id from public.merchants where merchant_key = %s", typo)
    assert pointer is None


async def test_similarity_tier_is_approved_when_the_policy_allows(
    aconn: AsyncConnection[Any], db_slice: DbSlice
) -> None:
    await db_slice.add_catalog("bravo coffee", "Bravo Coffee Co", "SBUX", "FOOD_AND_DRINK")
    low_bar = ResolverOptions(policy=ApprovalPolicy(min_confidence=0.5))

    [res] = await resolve_descriptors(
        aconn, [db_slice.descriptor("bravo cofee")], provider=ScriptedProvider(), save=True, options=low_bar
    )

    assert (res.merchant.tier, res.merchant.status) == ("similarity", "approved")


async def test_similarity_reaches_approved_mappings_outside_the_catalog(
    aconn: AsyncConnection[Any], db_slice: DbSlice
) -> None:
    provider = ScriptedProvider({db_slice.key("harbor deli"): answer("Harbor Deli LLC", None)})
    # An admin approves the provider's proposal for one merchant ...
    [first] = await resolve_descriptors(
        aconn, [db_slice.descriptor("harbor deli")], provider=provider, save=True, options=OPTIONS
    )
    await aconn.execute(
        "update public.llm_mappings set status = 'approved', admin_approved = true where id = %s",
        (first.merchant.mapping_id,),
    )
    await aconn.execute(
        "update public.merchants set mapping_id = %s, mapping_created_at = %s where merchant_key = %s",
        (first.merchant.mapping_id, first.merchant.mapping_created_at, db_slice.key("harbor deli")),
    )

    # ... and a close spelling of it is proposed from that approved mapping, without the provider.
    [res] = await resolve_descriptors(
        aconn, [db_slice.descriptor("harbor delis")], provider=provider, save=False, options=OPTIONS
    )

    assert (res.merchant.tier, res.merchant.status, res.merchant.company) == (
        "similarity",
        "pending",
        "Harbor Deli LLC",
    )
    assert provider.asked == [db_slice.key("harbor deli")]


async def test_provider_tier_is_pending_and_a_key_is_never_sent_twice(
    aconn: AsyncConnection[Any], db_slice: DbSlice
) -> None:
    keys = [db_slice.key(words) for words in ("sunrise espresso", "moonlight ramen")]
    provider = ScriptedProvider({keys[0]: answer("Sunrise Espresso", None, 0.4)})
    descriptors = [db_slice.descriptor("sunrise espresso"), db_slice.descriptor("moonlight ramen")]

    first = await resolve_descriptors(aconn, descriptors, provider=provider, save=True, options=OPTIONS)
    second = await resolve_descriptors(aconn, descriptors, provider=provider, save=True, options=OPTIONS)

    assert provider.batches == [sorted(keys)]
    assert [(r.merchant.tier, r.merchant.status, r.merchant.company) for r in first] == [
        ("llm", "pending", "Sunrise Espresso"),
        ("review", "pending", None),
    ]
    assert [(r.merchant.tier, r.merchant.status, r.merchant.mapping_id) for r in second] == [
        (r.merchant.tier, r.merchant.status, r.merchant.mapping_id) for r in first
    ]
    assert await db_slice.mappings() == [(keys[1], "review", "pending", None), (keys[0], "llm", "pending", None)]
    [(model, prompt_version, source)] = await db_slice.rows(
        "select distinct model, prompt_version, source from public.llm_mappings where merchant_key = any(%s)", keys
    )
    assert (model, prompt_version, source) == ("scripted-1", "test-v1", "llm")


async def test_verified_confident_answer_is_approved_only_when_the_policy_allows(
    aconn: AsyncConnection[Any], db_slice: DbSlice
) -> None:
    key = db_slice.key("reserve roastery")
    provider = ScriptedProvider({key: answer("Starbucks", "SBUX", 0.95)})

    [default] = await resolve_descriptors(
        aconn, [db_slice.descriptor("reserve roastery")], provider=provider, save=False, options=OPTIONS
    )
    [trusting] = await resolve_descriptors(
        aconn, [db_slice.descriptor("reserve roastery")], provider=provider, save=True, options=TRUSTING
    )

    assert (default.merchant.tier, default.merchant.status) == ("llm", "pending")
    assert (trusting.merchant.tier, trusting.merchant.status, trusting.merchant.ticker) == ("llm", "approved", "SBUX")
    [(pointer,)] = await db_slice.rows("select mapping_id from public.merchants where merchant_key = %s", key)
    assert pointer == trusting.merchant.mapping_id


@pytest.mark.parametrize(
    "ticker, confidence",
    [("ZZQX", 0.99), ("SBUX", 0.5), (None, 0.99)],
    ids=["unknown-ticker", "low-confidence", "no-ticker"],
)
async def test_unverified_or_unsure_answers_are_never_approved(
    aconn: AsyncConnection[Any], db_slice: DbSlice, ticker: str | None, confidence: float
) -> None:
    key = db_slice.key("mystery mart")
    provider = ScriptedProvider({key: answer("Mystery Mart", ticker, confidence)})

    [res] = await resolve_descriptors(
        aconn, [db_slice.descriptor("mystery mart")], provider=provider, save=True, options=TRUSTING
    )

    assert (res.merchant.tier, res.merchant.status, res.merchant.ticker) == ("llm", "pending", ticker)
    assert await db_slice.mappings() == [(key, "llm", "pending", ticker)]


async def test_a_failing_provider_leaves_keys_pending_and_scheduled_not_asked_again_by_the_resolver(
    aconn: AsyncConnection[Any], db_slice: DbSlice
) -> None:
    provider = ScriptedProvider(fail=True)
    descriptors = [db_slice.descriptor("broken bistro")]

    [res] = await resolve_descriptors(aconn, descriptors, provider=provider, save=True, options=OPTIONS)
    await resolve_descriptors(aconn, descriptors, provider=provider, save=True, options=OPTIONS)

    assert (res.merchant.tier, res.merchant.status) == ("review", "pending")
    assert len(provider.batches) == 1  # re-asking is the reask job's, after a backoff
    [(state, attempts, error, due_in_s, reason)] = await db_slice.rows(
        "select provider_state, provider_attempts, provider_error,"
        " extract(epoch from next_attempt_at - now()), reason"
        " from public.llm_mappings where merchant_key = %s",
        db_slice.key("broken bistro"),
    )
    assert (state, attempts, error) == ("failed", 1, "RuntimeError: provider exploded")
    assert 0.8 * OPTIONS.retry.base_s - 1 <= due_in_s <= 1.2 * OPTIONS.retry.base_s
    assert reason == "scripted failed (attempt 1 of 6); will be asked again"


async def test_a_provider_answering_without_a_merchant_is_an_answer_not_a_failure(
    aconn: AsyncConnection[Any], db_slice: DbSlice
) -> None:
    [res] = await resolve_descriptors(
        aconn, [db_slice.descriptor("silent shop")], provider=ScriptedProvider(), save=True, options=OPTIONS
    )

    assert (res.merchant.tier, res.merchant.status) == ("review", "pending")
    [(state, scheduled, reason)] = await db_slice.rows(
        "select provider_state, next_attempt_at is not null, reason from public.llm_mappings where merchant_key = %s",
        db_slice.key("silent shop"),
    )
    assert (state, scheduled, reason) == ("answered", False, "scripted had no answer; left for review")


async def test_descriptors_naming_no_merchant_are_never_asked_about_or_saved(aconn: AsyncConnection[Any]) -> None:
    provider = ScriptedProvider()

    results = await resolve_descriptors(
        aconn, ["", "   ", "*** --- ###"], provider=provider, save=True, options=OPTIONS
    )

    assert {(r.merchant.merchant_key, r.merchant.tier, r.merchant.status, r.merchant.mapping_id) for r in results} == {
        ("unknown", "review", "pending", None)
    }
    assert provider.batches == []
    async with aconn.cursor() as cur:
        await cur.execute("select count(*) from public.llm_mappings where merchant_key = 'unknown'")
        assert await cur.fetchone() == (0,)


async def test_dry_run_changes_nothing(aconn: AsyncConnection[Any], db_slice: DbSlice) -> None:
    await db_slice.add_catalog("bravo coffee", "Bravo Coffee Co", "SBUX", "FOOD_AND_DRINK")
    provider = ScriptedProvider({db_slice.key("quiet cafe"): answer("Quiet Cafe", None)})
    descriptors = [db_slice.descriptor(w) for w in ("bravo coffee", "bravo cofee", "quiet cafe", "nobody knows")]

    results = await resolve_descriptors(aconn, descriptors, provider=provider, save=False, options=OPTIONS)

    assert [r.merchant.tier for r in results] == ["catalog", "similarity", "llm", "review"]
    assert all(r.merchant.mapping_id is None for r in results)
    assert await db_slice.mappings() == []
    assert await db_slice.rows("select 1 from public.merchants where merchant_key like %s", db_slice.tag + "%") == []


async def test_concurrent_resolvers_send_each_key_once(settings: Settings, db_slice: DbSlice) -> None:
    keys = [db_slice.key(f"stall {name}") for name in ("alpha", "bravo", "charlie", "delta")]
    provider = ScriptedProvider({key: answer(key.title(), None) for key in keys})
    descriptors = [db_slice.descriptor(f"stall {name}") for name in ("alpha", "bravo", "charlie", "delta")]

    async def run(order: list[str]) -> list[str]:
        async with await AsyncConnection.connect(settings.db_url, autocommit=True, prepare_threshold=None) as conn:
            return [
                r.merchant.status
                for r in await resolve_descriptors(conn, order, provider=provider, save=True, options=OPTIONS)
            ]

    await asyncio.gather(*(run(descriptors[::step]) for step in (1, -1, 1, -1)))

    assert sorted(provider.asked) == sorted(keys)
    assert [row[0] for row in await db_slice.mappings()] == sorted(keys)


async def test_rejected_mapping_stands_and_is_not_proposed_again(
    aconn: AsyncConnection[Any], db_slice: DbSlice
) -> None:
    key = db_slice.key("shady shop")
    provider = ScriptedProvider({key: answer("Shady Corp", "SBUX", 0.6)})
    [first] = await resolve_descriptors(
        aconn, [db_slice.descriptor("shady shop")], provider=provider, save=True, options=OPTIONS
    )
    await aconn.execute(
        "update public.llm_mappings set status = 'rejected' where id = %s", (first.merchant.mapping_id,)
    )

    [res] = await resolve_descriptors(
        aconn, [db_slice.descriptor("shady shop")], provider=provider, save=True, options=OPTIONS
    )

    assert (res.merchant.status, res.merchant.ticker, res.merchant.company) == ("rejected", None, None)
    assert len(provider.batches) == 1


async def test_transactions_are_linked_when_their_mapping_is_approved(
    aconn: AsyncConnection[Any], db_slice: DbSlice
) -> None:
    await db_slice.add_catalog("bravo coffee", "Bravo Coffee Co", "SBUX", "FOOD_AND_DRINK")
    provider = ScriptedProvider({db_slice.key("quiet cafe"): answer("Quiet Cafe", None)})
    descriptors = [db_slice.descriptor("bravo coffee #12"), db_slice.descriptor("quiet cafe austin tx")]
    await db_slice.add_transactions(USER_ID, descriptors * 2)

    results = await resolve_descriptors(aconn, descriptors, provider=provider, save=True, options=OPTIONS)

    statuses = "select merchant_key, status, mapping_id from public.transactions where merchant_key like %s order by 1"
    rows = await db_slice.rows(statuses, db_slice.tag + "%")
    coffee, cafe = results[0].merchant, results[1].merchant
    assert rows == [(coffee.merchant_key, "mapped", coffee.mapping_id)] * 2 + [(cafe.merchant_key, "pending", None)] * 2

    # An admin approves the pending one through the review RPC: its transactions follow.
    async with aconn.transaction():
        await aconn.execute("set local role authenticated")
        await aconn.execute(
            "select set_config('request.jwt.claims', %s, true)",
            (f'{{"sub": "{ADMIN_ID}", "role": "authenticated", "user_role": "admin"}}',),
        )
        await aconn.execute(
            "select public.review_mapping(%s, %s, 'approved')", (cafe.mapping_id, cafe.mapping_created_at)
        )
    rows = await db_slice.rows(statuses, db_slice.tag + "%")
    assert rows[2:] == [(cafe.merchant_key, "mapped", cafe.mapping_id)] * 2


async def test_upstash_cache_answers_repeat_keys_and_invalidation_goes_back_to_the_database(
    aconn: AsyncConnection[Any], db_slice: DbSlice, settings: Settings
) -> None:
    cache = UpstashMappingCache.from_settings(settings)
    assert cache is not None, "the local stack writes UPSTASH_REDIS_REST_URL/TOKEN into its .env"
    key = await db_slice.add_catalog("bravo coffee", "Bravo Coffee Co", "SBUX", "FOOD_AND_DRINK")
    descriptor = [db_slice.descriptor("bravo coffee")]
    try:
        [saved] = await resolve_descriptors(
            aconn, descriptor, provider=ScriptedProvider(), save=True, options=OPTIONS, cache=cache
        )
        cached = await cache.get_many([key])
        assert cached[key].mapping_id == saved.merchant.mapping_id

        # Prove the next answer comes from the cache: plant a different entry and read it back.
        assert saved.merchant.mapping_created_at is not None
        planted = StoredMapping(
            -1, saved.merchant.mapping_created_at, "Planted", "MCD", None, None, "approved", "catalog"
        )
        await cache.put_many({key: planted})
        [hit] = await resolve_descriptors(
            aconn, descriptor, provider=ScriptedProvider(), save=True, options=OPTIONS, cache=cache
        )
        assert (hit.merchant.company, hit.merchant.mapping_id) == ("Planted", -1)

        await cache.invalidate([key])
        [fresh] = await resolve_descriptors(
            aconn, descriptor, provider=ScriptedProvider(), save=True, options=OPTIONS, cache=cache
        )
        assert (fresh.merchant.company, fresh.merchant.mapping_id) == ("Bravo Coffee Co", saved.merchant.mapping_id)
    finally:
        await cache.invalidate([key])
        await cache.aclose()


async def test_a_dead_cache_is_a_miss_not_an_error(aconn: AsyncConnection[Any], db_slice: DbSlice) -> None:
    from upstash_redis.asyncio import Redis

    dead = UpstashMappingCache(
        Redis("http://127.0.0.1:9", "token", rest_retries=0, allow_telemetry=False), ttl_s=60, pending_ttl_s=60
    )
    key = await db_slice.add_catalog("bravo coffee", "Bravo Coffee Co", "SBUX", "FOOD_AND_DRINK")
    try:
        [res] = await resolve_descriptors(
            aconn,
            [db_slice.descriptor("bravo coffee")],
            provider=ScriptedProvider(),
            save=True,
            options=OPTIONS,
            cache=dead,
        )
    finally:
        await dead.aclose()

    assert (res.merchant.merchant_key, res.merchant.tier) == (key, "catalog")


def test_keys_used_by_these_tests_come_out_of_the_normalizer_unchanged() -> None:
    # The tests above rely on "<TAG> WORDS" normalizing to "<tag> words".
    assert merchant_key("ZQABCDEFGH BRAVO COFFEE #0042 DENVER CO") == "zqabcdefgh bravo coffee"
    assert merchant_key("ZQABCDEFGH QUIET CAFE AUSTIN TX") == "zqabcdefgh quiet cafe"
