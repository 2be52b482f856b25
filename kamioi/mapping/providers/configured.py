"""The provider the settings ask for: the OpenAI-compatible LLM when a key is set, else offline."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import tuple_row

from kamioi.mapping.catalog import known_tickers
from kamioi.mapping.ledger import DatabaseCallRecorder
from kamioi.mapping.providers.base import Provider
from kamioi.mapping.providers.offline import OfflineProvider
from kamioi.mapping.providers.openai_compatible import OpenAICompatibleProvider
from kamioi.settings import Settings


def llm_configured(settings: Settings) -> bool:
    return bool(settings.llm_api_key)


@asynccontextmanager
async def configured_provider(
    settings: Settings, conn: AsyncConnection[Any], *, job_id: int | None = None, offline: bool | None = None
) -> AsyncIterator[Provider]:
    """Yields the provider; an LLM's every attempt goes to public.llm_calls (tagged with job_id).

    offline=None follows the settings (no LLM key -> offline); True/False forces the choice.
    """
    if (not llm_configured(settings)) if offline is None else offline:
        yield await OfflineProvider.from_database(conn, settings.mapping_similarity_threshold)
        return
    async with conn.transaction(), conn.cursor(row_factory=tuple_row) as cur:
        await cur.execute("select distinct ticker from public.merchant_catalog where ticker is not null")
        trusted = known_tickers() | {row[0] for row in await cur.fetchall()}
    ledger = await AsyncConnection.connect(settings.db_url, autocommit=True, prepare_threshold=None)
    async with ledger:
        provider = OpenAICompatibleProvider(
            settings.llm_base_url,
            settings.llm_api_key,
            settings.llm_model,
            known_tickers=frozenset(trusted),
            max_concurrency=settings.llm_max_concurrency,
            timeout_s=settings.llm_timeout_s,
            max_attempts=settings.llm_max_attempts,
            price_per_1k_prompt=settings.llm_price_per_1k_prompt,
            price_per_1k_completion=settings.llm_price_per_1k_completion,
            recorder=DatabaseCallRecorder(ledger, job_id),
        )
        async with provider:
            yield provider
