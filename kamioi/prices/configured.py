"""The price provider the settings ask for: Finnhub when PRICE_API_KEY is set, else the sample prices."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from kamioi.prices.base import PriceProvider
from kamioi.prices.finnhub import FinnhubProvider
from kamioi.prices.sample import SampleProvider
from kamioi.settings import Settings


def price_feed_configured(settings: Settings) -> bool:
    return bool(settings.price_api_key)


@asynccontextmanager
async def configured_price_provider(settings: Settings) -> AsyncIterator[PriceProvider]:
    if not price_feed_configured(settings):
        yield SampleProvider()
        return
    async with FinnhubProvider(
        settings.price_api_base_url,
        settings.price_api_key,
        timeout_s=settings.price_timeout_s,
        max_attempts=settings.price_max_attempts,
        max_concurrency=settings.price_max_concurrency,
    ) as provider:
        yield provider
