"""The offline provider: the catalog and trigram similarity, deterministic, no network, no key.

It answers only for merchants it can tie to a catalog entry (its key or an alias, exactly or at or
above the similarity threshold, unless the partial-name guard blocks the similar spelling) and then
proposes that entry's company and ticker. A merchant it does not know gets no answer at all, so it
goes to admin review: it never invents a ticker.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import tuple_row

from kamioi.mapping.catalog import alias_forms, load_catalog
from kamioi.mapping.guard import blocks_similarity
from kamioi.mapping.normalizer import place_names
from kamioi.mapping.providers.base import CATEGORIES, MerchantQuery, MerchantSuggestion
from kamioi.mapping.trigram import trigrams

OFFLINE_PROVIDER_NAME = "offline"
OFFLINE_PROMPT_VERSION = "offline-v1"


@dataclass(frozen=True)
class KnownMerchant:
    merchant_key: str
    company: str
    ticker: str | None
    category: str
    forms: tuple[str, ...]  # normalized spellings: the key first, then the aliases


@dataclass(frozen=True)
class OfflineMatch:
    merchant: KnownMerchant
    similarity: float
    form: str


class OfflineProvider:
    def __init__(self, merchants: Iterable[KnownMerchant], similarity_threshold: float) -> None:
        if not 0 < similarity_threshold <= 1:
            raise ValueError("similarity_threshold must be in (0, 1]")
        self.name = OFFLINE_PROVIDER_NAME
        self.prompt_version = OFFLINE_PROMPT_VERSION
        self._threshold = similarity_threshold
        # Sorted so ties always go the same way, whatever order the catalog was read in.
        self._merchants = sorted((m for m in merchants if m.category in CATEGORIES), key=lambda m: m.merchant_key)
        self._exact: dict[str, KnownMerchant] = {}
        self._merchant_by_key = {merchant.merchant_key: merchant for merchant in self._merchants}
        self._by_trigram: dict[str, list[tuple[KnownMerchant, str]]] = {}
        # The same spellings by number, for match(): counting small ints is what makes it fast.
        self._spellings: list[tuple[KnownMerchant, str, int]] = []  # merchant, form, trigram count
        self._postings: dict[str, list[int]] = {}
        for merchant in self._merchants:
            for form in merchant.forms:
                self._exact.setdefault(form, merchant)
                grams = trigrams(form)
                for gram in grams:
                    self._by_trigram.setdefault(gram, []).append((merchant, form))
                    self._postings.setdefault(gram, []).append(len(self._spellings))
                self._spellings.append((merchant, form, len(grams)))
        digest = hashlib.sha256(repr([(m.merchant_key, m.ticker, m.forms) for m in self._merchants]).encode())
        # The model name says which catalog answered, so mappings from different catalogs differ.
        self.model = f"catalog-{digest.hexdigest()[:10]}"

    @classmethod
    def from_catalog(cls, similarity_threshold: float) -> OfflineProvider:
        """From the bundled catalog (kamioi/mapping/data/catalog.csv)."""
        return cls(
            (
                KnownMerchant(
                    entry.merchant_key, entry.canonical_name, entry.ticker, entry.category, tuple(alias_forms(entry))
                )
                for entry in load_catalog().values()
            ),
            similarity_threshold,
        )

    @classmethod
    async def from_database(cls, conn: AsyncConnection[Any], similarity_threshold: float) -> OfflineProvider:
        """From public.merchant_catalog, which admins may have edited since the seed."""
        async with conn.transaction(), conn.cursor(row_factory=tuple_row) as cur:
            await cur.execute(
                "select merchant_key, canonical_name, ticker, category, aliases from public.merchant_catalog"
            )
            rows = await cur.fetchall()
        return cls(
            (
                KnownMerchant(key, name, ticker, category, (key, *aliases))
                for key, name, ticker, category, aliases in rows
            ),
            similarity_threshold,
        )

    def match(self, merchant_key: str) -> OfflineMatch | None:
        """The catalog entry for a normalized key: exact spelling first, else the most similar one."""
        exact = self._exact.get(merchant_key)
        if exact is not None:
            return OfflineMatch(exact, 1.0, merchant_key)
        grams = trigrams(merchant_key)
        if not grams:
            return None
        counts = Counter(chain.from_iterable(self._postings.get(gram, ()) for gram in grams))
        # similarity >= threshold needs shared >= threshold * |grams| (the union is at least |grams|).
        need = self._threshold * len(grams)
        candidates = sorted(
            (merchant.merchant_key, form, count, size)
            for spelling, count in counts.items()
            if count >= need
            for merchant, form, size in (self._spellings[spelling],)
        )
        best: OfflineMatch | None = None
        places = place_names()
        for key, form, count, size in candidates:
            score = count / (len(grams) + size - count)
            if score < self._threshold or (best is not None and score <= best.similarity):
                continue
            if not blocks_similarity(merchant_key, form, places):
                best = OfflineMatch(self._merchant_by_key[key], score, form)
        return best

    def closest_distinct_merchants(self) -> float:
        """The highest similarity between spellings of two different merchants (how crowded the catalog is)."""
        closest = 0.0
        for merchant in self._merchants:
            for form in merchant.forms:
                shared: Counter[str] = Counter()
                for gram in trigrams(form):
                    for other, other_form in self._by_trigram[gram]:
                        if other.merchant_key != merchant.merchant_key:
                            shared[other_form] += 1
                for other_form, count in shared.items():
                    score = count / (len(trigrams(form)) + len(trigrams(other_form)) - count)
                    closest = max(closest, score)
        return closest

    async def suggest(self, batch: Sequence[MerchantQuery]) -> list[MerchantSuggestion]:
        suggestions = []
        for query in batch:
            found = self.match(query.merchant_key)
            if found is None:
                continue
            merchant = found.merchant
            how = "catalog spelling" if found.similarity == 1.0 else f"similarity {found.similarity:.2f} to"
            suggestions.append(
                MerchantSuggestion.model_validate(
                    {
                        "merchant_key": query.merchant_key,
                        "company": merchant.company,
                        "ticker": merchant.ticker,
                        "category": merchant.category,
                        "confidence": round(found.similarity, 4),
                        "reason": f"{how} {found.form!r} ({merchant.merchant_key})"[:200],
                        # Catalog tickers are the known list's core.
                        "ticker_verified": merchant.ticker is not None,
                    }
                )
            )
        return suggestions
