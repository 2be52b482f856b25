"""Users' suggestions never answer for a merchant until an admin approves one: the resolver neither
reports the tier a suggestion claims nor stops at a key that only users have suggested."""

from __future__ import annotations

import json
from typing import Any

from psycopg import AsyncConnection

from kamioi.mapping.resolver import ResolverOptions, resolve_descriptors
from tests.mapping.support import DbSlice, ScriptedProvider

OPTIONS = ResolverOptions(known_tickers=frozenset({"TGT"}))


async def suggest(conn: AsyncConnection[Any], user_id: str, key: str, ticker: str) -> None:
    """A suggestion sent as the user through the Data API, then given a trusted tier and a perfect
    confidence behind the API's back (what a row written before the insert guard could carry)."""
    claims = json.dumps({"sub": user_id, "role": "authenticated", "aud": "authenticated", "user_role": "user"})
    async with conn.transaction():
        await conn.execute("select set_config('request.jwt.claims', %s, true)", (claims,))
        await conn.execute("set local role authenticated")
        await conn.execute(
            "insert into public.llm_mappings (merchant_name, merchant_key, company_name, ticker, source, submitted_by)"
            " values (%s, %s, 'GameStop', %s, 'user', %s)",
            (key.upper(), key, ticker, user_id),
        )
    await conn.execute(
        "update public.llm_mappings set tier = 'catalog', confidence = 1.0 where merchant_key = %s and source = 'user'",
        (key,),
    )


async def test_a_suggestion_does_not_stop_the_catalog(
    aconn: AsyncConnection[Any], db_slice: DbSlice, user_id: str
) -> None:
    key = await db_slice.add_catalog("target", "Target", "TGT", "GENERAL_MERCHANDISE")
    await suggest(aconn, user_id, key, "GME")

    for save in (False, True):
        [res] = await resolve_descriptors(
            aconn, [db_slice.descriptor("target")], provider=ScriptedProvider(), save=save, options=OPTIONS
        )
        assert (res.merchant.ticker, res.merchant.tier, res.merchant.status) == ("TGT", "catalog", "approved")
    [(in_force,)] = await db_slice.rows(
        "select m.ticker from public.merchants as mr join public.llm_mappings as m"
        " on m.id = mr.mapping_id and m.created_at = mr.mapping_created_at where mr.merchant_key = %s",
        key,
    )
    assert in_force == "TGT"


async def test_a_key_only_users_suggested_goes_to_the_provider(
    aconn: AsyncConnection[Any], db_slice: DbSlice, user_id: str
) -> None:
    key = db_slice.key("corner shop")
    await suggest(aconn, user_id, key, "GME")
    provider = ScriptedProvider(answers={})

    [res] = await resolve_descriptors(
        aconn, [db_slice.descriptor("corner shop")], provider=provider, save=True, options=OPTIONS
    )

    assert provider.asked == [key]
    assert res.merchant.ticker != "GME"
    assert res.merchant.tier not in ("catalog", "approved")


async def test_an_approved_suggestion_is_the_mapping_in_force(
    aconn: AsyncConnection[Any], db_slice: DbSlice, user_id: str
) -> None:
    key = db_slice.key("approved shop")
    await suggest(aconn, user_id, key, "TGT")
    await aconn.execute(
        "with m as (update public.llm_mappings set status = 'approved', admin_approved = true"
        " where merchant_key = %s returning id, created_at)"
        " insert into public.merchants (merchant_key, display_name, mapping_id, mapping_created_at)"
        " select %s, 'Approved Shop', id, created_at from m",
        (key, key),
    )
    provider = ScriptedProvider()

    [res] = await resolve_descriptors(
        aconn, [db_slice.descriptor("approved shop")], provider=provider, save=True, options=OPTIONS
    )

    assert (res.merchant.ticker, res.merchant.tier, res.merchant.status) == ("TGT", "approved", "approved")
    assert provider.asked == []
