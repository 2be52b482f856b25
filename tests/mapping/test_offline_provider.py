"""The offline provider: deterministic catalog matching that never invents a ticker."""

from __future__ import annotations

import string

from hypothesis import given, settings
from hypothesis import strategies as st

from kamioi.mapping.catalog import alias_forms, load_catalog
from kamioi.mapping.providers.base import MerchantQuery
from kamioi.mapping.providers.offline import KnownMerchant, OfflineProvider
from kamioi.mapping.trigram import SIMILARITY_THRESHOLD, similarity

PROVIDER = OfflineProvider.from_catalog(SIMILARITY_THRESHOLD)
CATALOG = load_catalog()
CATALOG_TICKERS = {entry.ticker for entry in CATALOG.values() if entry.ticker}

words = st.text(alphabet=string.ascii_lowercase, min_size=1, max_size=12)
keys = st.lists(words, min_size=1, max_size=4).map(" ".join)


async def test_every_catalog_spelling_maps_to_its_own_entry() -> None:
    queries = [MerchantQuery(form, form, [form]) for entry in CATALOG.values() for form in alias_forms(entry)]

    suggestions = await PROVIDER.suggest(queries)

    owner = {form: entry for entry in CATALOG.values() for form in alias_forms(entry)}
    assert len(suggestions) == len(queries)
    for suggestion in suggestions:
        entry = owner[suggestion.merchant_key]
        assert (suggestion.company, suggestion.ticker, suggestion.category) == (
            entry.canonical_name,
            entry.ticker,
            entry.category,
        )
        assert suggestion.confidence == 1.0
        assert suggestion.ticker_verified == (entry.ticker is not None)


async def test_unknown_merchants_get_no_answer() -> None:
    unknown = ("lonely llama yarns", "joes corner deli", "x")
    queries = [MerchantQuery(key, key.title(), [key.upper()]) for key in unknown]

    assert await PROVIDER.suggest(queries) == []


@settings(max_examples=300, deadline=None)
@given(key=keys)
def test_any_answer_is_a_catalog_entry_at_or_above_the_threshold(key: str) -> None:
    found = PROVIDER.match(key)
    if found is None:
        return
    assert found.merchant.ticker is None or found.merchant.ticker in CATALOG_TICKERS
    assert found.form in found.merchant.forms
    assert found.similarity >= SIMILARITY_THRESHOLD
    assert found.similarity == similarity(key, found.form)


REVERSED = OfflineProvider(
    reversed(
        [
            KnownMerchant(e.merchant_key, e.canonical_name, e.ticker, e.category, tuple(alias_forms(e)))
            for e in CATALOG.values()
        ]
    ),
    SIMILARITY_THRESHOLD,
)


@given(key=keys)
def test_matching_is_deterministic_whatever_the_catalog_order(key: str) -> None:
    assert REVERSED.model == PROVIDER.model
    assert REVERSED.match(key) == PROVIDER.match(key)


async def test_typo_of_a_catalog_merchant_is_proposed_with_its_similarity() -> None:
    [suggestion] = await PROVIDER.suggest([MerchantQuery("starbuck", "Starbuck", ["STARBUCK 1234"])])

    assert (suggestion.ticker, suggestion.ticker_verified) == ("SBUX", True)
    assert suggestion.confidence == round(similarity("starbuck", "starbucks"), 4)
    assert "starbucks" in suggestion.reason


def test_model_names_the_catalog_version() -> None:
    trimmed = OfflineProvider(
        [KnownMerchant("starbucks", "Starbucks", "SBUX", "FOOD_AND_DRINK", ("starbucks",))], SIMILARITY_THRESHOLD
    )

    assert PROVIDER.model.startswith("catalog-")
    assert trimmed.model != PROVIDER.model
    assert PROVIDER.name == "offline"
