"""The partial-name guard: a brand word inside someone else's name never gets the brand's ticker."""

from __future__ import annotations

from typing import Any

import pytest
from psycopg import AsyncConnection

from kamioi.mapping.guard import blocks_similarity, continues_name
from kamioi.mapping.normalizer import normalize, place_names
from kamioi.mapping.policy import check_answer
from kamioi.mapping.providers.offline import OfflineProvider
from kamioi.mapping.resolver import ResolverOptions, resolve_descriptors
from kamioi.mapping.trigram import SIMILARITY_THRESHOLD, similarity
from tests.mapping.support import DbSlice, ScriptedProvider

MATCHER = OfflineProvider.from_catalog(SIMILARITY_THRESHOLD)
PLACES = frozenset({"apple valley", "new york", "park city", "center"})


@pytest.mark.parametrize(
    ("alias", "rest", "continued"),
    [
        (["capital", "one"], ["arena"], True),
        (["american", "airlines"], ["center"], True),
        (["amc"], ["plus"], True),
        (["apple"], ["valley"], True),  # the alias starts a place name
        (["shell"], ["park", "city"], False),  # a town named with a venue word is where, not what
        (["target"], [], False),
        (["target"], ["plumbing"], False),  # not a continuation the guard knows: the location check decides
    ],
)
def test_continues_name(alias: list[str], rest: list[str], continued: bool) -> None:
    assert continues_name(alias, rest, PLACES) is continued


@pytest.mark.parametrize(
    ("key", "form", "blocked"),
    [
        ("target plumbing", "target", True),
        ("capital one arena", "capital one", True),
        ("new york bagel", "new york times", True),
        ("new york", "new york times", True),  # only the place
        ("chick fil", "chick fil a", False),  # cut short
        ("starbucks cof", "starbucks coffee", False),
        ("bravo cofee", "bravo coffee", False),  # one typo
        ("starbuks", "starbucks", False),
    ],
)
def test_blocks_similarity(key: str, form: str, blocked: bool) -> None:
    assert blocks_similarity(key, form, PLACES) is blocked


@pytest.mark.parametrize(
    "descriptor",
    [
        "CAPITAL ONE ARENA WASHINGTON DC",
        "AMERICAN AIRLINES CENTER DALLAS TX",
        "CHASE CENTER SAN FRANCISCO CA",
        "TARGET CENTER MINNEAPOLIS MN",
        "TARGET PLUMBING LLC MINNEAPOLIS MN",
        "APPLE VALLEY CA",
        "CHICK-FIL-A STADIUM",
    ],
)
def test_trap_descriptors_get_no_catalog_ticker(descriptor: str) -> None:
    key = normalize(descriptor).merchant_key
    found = MATCHER.match(key)

    assert found is None, (key, found)


def test_the_brand_itself_still_matches_with_its_location() -> None:
    for descriptor, ticker in [
        ("TARGET T-1234 PARK CITY UT", "TGT"),
        ("SHELL OIL 57444 LAKE FOREST CA", "SHEL"),
        ("AMC 1234 NEW YORK NY", "AMC"),
        ("AMC+ 888-555-0100 NY", "AMCX"),  # the streaming service is AMC Networks, not the cinemas
    ]:
        found = MATCHER.match(normalize(descriptor).merchant_key)
        assert found is not None and found.merchant.ticker == ticker


def test_places_include_states_and_towns() -> None:
    assert {"new york", "apple valley", "texas"} <= place_names()


async def test_guarded_similarity_goes_to_review_in_the_database_tier(
    aconn: AsyncConnection[Any], db_slice: DbSlice
) -> None:
    await db_slice.add_catalog("bravo coffee", "Bravo Coffee Co", "SBUX", "FOOD_AND_DRINK")
    assert similarity(db_slice.key("bravo coffee arena"), db_slice.key("bravo coffee")) >= SIMILARITY_THRESHOLD
    provider = ScriptedProvider()

    [res] = await resolve_descriptors(
        aconn,
        [db_slice.descriptor("bravo coffee arena")],
        provider=provider,
        save=False,
        options=ResolverOptions(known_tickers=frozenset({"SBUX"})),
    )

    assert (res.merchant.tier, res.merchant.ticker) == ("review", None)
    assert provider.batches == [[db_slice.key("bravo coffee arena")]]


@pytest.mark.parametrize(
    ("key", "ticker", "kept", "approvable"),
    [
        ("capital one arena", "COF", None, False),  # a venue: the ticker is struck
        ("amc plus", "AMC", None, False),  # a "+" service: AMC Theatres' ticker is struck
        ("amc plus", "AMCX", "AMCX", True),  # AMC Networks: not the brand inside
        ("target plumbing", "TGT", "TGT", False),  # another name: kept for an admin, never approved
        ("target plumbing", None, None, True),
        ("capital one arena", "MSGS", "MSGS", True),  # another company named: the guard has no say
        ("harbor deli", "SBUX", "SBUX", True),
    ],
)
def test_check_answer(key: str, ticker: str | None, kept: str | None, approvable: bool) -> None:
    checked = check_answer(key, ticker)

    assert (checked.ticker, checked.approvable) == (kept, approvable)
    assert (checked.note is None) == approvable
