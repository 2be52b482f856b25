"""Test helpers for the mapping suites: a tagged slice of the database and a scripted provider."""

from __future__ import annotations

import random
import string
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from psycopg import AsyncConnection

from kamioi.mapping.normalizer import merchant_key
from kamioi.mapping.providers.base import MerchantQuery, MerchantSuggestion


def _tag() -> str:
    # Letters only: a digit would end the merchant name in the normalizer.
    return "zq" + "".join(random.choices(string.ascii_lowercase, k=5))


@dataclass
class DbSlice:
    """Merchant keys that start with `tag` belong to one test; everything under it is deleted after."""

    conn: AsyncConnection[Any]
    tag: str = field(default_factory=_tag)

    def key(self, words: str) -> str:
        return f"{self.tag} {words}"

    def descriptor(self, words: str) -> str:
        return f"{self.tag} {words}".upper()

    async def add_catalog(
        self, words: str, company: str, ticker: str | None, category: str, aliases: Sequence[str] = ()
    ) -> str:
        key = self.key(words)
        await self.conn.execute(
            "insert into public.merchant_catalog (merchant_key, canonical_name, ticker, category, aliases)"
            " values (%s, %s, %s, %s, %s)",
            (key, company, ticker, category, [self.key(alias) for alias in aliases]),
        )
        return key

    async def add_transactions(
        self, user_id: str, descriptors: Sequence[str], import_job_id: int | None = None
    ) -> None:
        await self.conn.execute(
            "insert into public.transactions"
            " (user_id, txn_date, descriptor, merchant_key, amount, round_up, import_job_id)"
            " select %s, current_date, d, k, 4.25, 0.75, %s from unnest(%s::text[], %s::text[]) as u(d, k)",
            (user_id, import_job_id, list(descriptors), [merchant_key(d) for d in descriptors]),
        )

    async def rows(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        async with self.conn.cursor() as cur:
            await cur.execute(query, params)
            return await cur.fetchall()

    async def mappings(self) -> list[tuple[Any, ...]]:
        """(merchant_key, tier, status, ticker) of every mapping under the tag, by key then id."""
        return await self.rows(
            "select merchant_key, tier, status, ticker from public.llm_mappings"
            " where merchant_key like %s order by merchant_key, id",
            self.tag + "%",
        )

    async def cleanup(self) -> None:
        like = self.tag + "%"
        async with self.conn.transaction():
            await self.conn.execute("delete from public.transactions where merchant_key like %s", (like,))
            await self.conn.execute("delete from public.merchants where merchant_key like %s", (like,))
            await self.conn.execute("delete from public.llm_mappings where merchant_key like %s", (like,))
            await self.conn.execute("delete from public.merchant_catalog where merchant_key like %s", (like,))


@dataclass
class ScriptedProvider:
    """An in-process provider answering from a table, recording every batch it is asked."""

    answers: dict[str, dict[str, Any]] = field(default_factory=dict)
    fail: bool = False
    name: str = "scripted"
    model: str = "scripted-1"
    prompt_version: str = "test-v1"
    batches: list[list[str]] = field(default_factory=list)

    @property
    def asked(self) -> list[str]:
        return [key for batch in self.batches for key in batch]

    async def suggest(self, batch: Sequence[MerchantQuery]) -> list[MerchantSuggestion]:
        self.batches.append([query.merchant_key for query in batch])
        if self.fail:
            raise RuntimeError("provider exploded")
        return [
            MerchantSuggestion.model_validate({"merchant_key": query.merchant_key, **self.answers[query.merchant_key]})
            for query in batch
            if query.merchant_key in self.answers
        ]
