"""Resolve descriptors with the mapping engineers' resolver (kamioi.mapping.resolver)."""

from __future__ import annotations

from collections.abc import Sequence

from psycopg import AsyncConnection

from kamioi.mapping.cache import MappingCache
from kamioi.mapping.providers.configured import configured_provider
from kamioi.mapping.resolver import Resolution, ResolverOptions, resolve_descriptors
from kamioi.settings import Settings


async def resolve(
    settings: Settings, descriptors: Sequence[str], *, save: bool, cache: MappingCache
) -> list[Resolution]:
    """On its own connection: the resolver commits its own short transactions and expects tuple rows."""
    connect = AsyncConnection.connect(settings.db_url, autocommit=True, prepare_threshold=None)
    async with await connect as conn, configured_provider(settings, conn) as provider:
        return await resolve_descriptors(
            conn,
            descriptors,
            provider=provider,
            save=save,
            options=ResolverOptions.from_settings(settings),
            cache=cache,
        )
