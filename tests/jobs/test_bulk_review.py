"""The `mappings.bulk_review` job: every selected pending mapping reviewed, nothing else touched, and
the resolver's cache forgets the reviewed merchants at once (or lives out its TTL when Upstash is away)."""

from __future__ import annotations

import asyncio
import random
import socket
import string
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import AsyncConnection

from jobs import queue
from jobs.bulk_review import BULK_REVIEW_KIND
from jobs.inline import InlineRun
from kamioi.mapping.cache import UpstashMappingCache
from kamioi.mapping.providers.offline import OfflineProvider
from kamioi.mapping.resolver import Resolution, resolve_descriptors
from kamioi.settings import Settings, get_settings

ADMIN_ID = "00000000-0000-4000-a000-000000000001"

pytestmark = pytest.mark.usefixtures("stack_worker_paused")


def test_bulk_review_by_filter_rejects_only_the_selected_pending_mappings(
    settings: Settings, conn: psycopg.Connection[Any]
) -> None:
    tag = uuid.uuid4().hex[:10]
    keys = [f"bulk-{tag}-{n}" for n in range(5)]
    for n, key in enumerate(keys):
        conn.execute(
            "insert into public.llm_mappings (merchant_name, merchant_key, company_name, category, confidence)"
            " values (%s, %s, 'Acme', 'FOOD_AND_DRINK', %s)",
            (key.upper(), key, 0.2 if n < 3 else 0.9),
        )
    try:
        # Only this test's first row may match: same filter shape the API sends, narrowed to its key.
        selection = {"filter": {"max_confidence": 0.5, "merchant_key": keys[0]}}
        job_id = queue.enqueue(
            conn, BULK_REVIEW_KIND, {"decision": "rejected", "reviewer": ADMIN_ID, "selection": selection}
        )
        assert InlineRun(settings.db_url, job_id, settings).run() == "succeeded"
        statuses = dict(
            conn.execute(
                "select merchant_key, status from public.llm_mappings where merchant_key = any(%s)", (keys,)
            ).fetchall()
        )
        assert statuses == {keys[0]: "rejected", **{key: "pending" for key in keys[1:]}}
        reviewer = conn.execute(
            "select reviewer::text from public.llm_mappings where merchant_key = %s", (keys[0],)
        ).fetchone()
        assert reviewer == (ADMIN_ID,)
    finally:
        conn.execute("delete from public.merchants where merchant_key = any(%s)", (keys,))
        conn.execute("delete from public.llm_mappings where merchant_key = any(%s)", (keys,))


def test_bad_payload_fails_at_once(settings: Settings, conn: psycopg.Connection[Any]) -> None:
    job_id = queue.enqueue(conn, BULK_REVIEW_KIND, {"decision": "maybe", "selection": {}})
    assert InlineRun(settings.db_url, job_id, get_settings()).run() == "failed"


async def resolve_saved(settings: Settings, descriptors: list[str]) -> list[Resolution]:
    """What map_merchants and POST /v1/mappings/resolve do: the resolver with the Upstash cache."""
    cache = UpstashMappingCache.from_settings(settings)
    assert cache is not None
    provider = OfflineProvider.from_catalog(settings.mapping_similarity_threshold)
    try:
        async with await AsyncConnection.connect(settings.db_url, autocommit=True, prepare_threshold=None) as conn:
            return await resolve_descriptors(conn, descriptors, provider=provider, save=True, cache=cache)
    finally:
        await cache.aclose()


@pytest.fixture
def unknown_shops(settings: Settings, conn: psycopg.Connection[Any]) -> Iterator[list[Resolution]]:
    """Two merchants nobody knows, resolved and saved: pending for review, and cached as such."""
    tag = "zqbulk" + "".join(random.choices(string.ascii_lowercase, k=6))
    resolved = asyncio.run(resolve_saved(settings, [f"{tag} {name}".upper() for name in ("alpha", "beta")]))
    assert [r.merchant.status for r in resolved] == ["pending", "pending"]
    yield resolved
    conn.execute("delete from public.merchants where merchant_key like %s", (tag + "%",))
    conn.execute("delete from public.llm_mappings where merchant_key like %s", (tag + "%",))


def review_in_bulk(settings: Settings, conn: psycopg.Connection[Any], resolved: list[Resolution]) -> None:
    ids = []
    for r in resolved:
        assert r.merchant.mapping_created_at is not None
        ids.append([r.merchant.mapping_id, r.merchant.mapping_created_at.isoformat()])
    job_id = queue.enqueue(
        conn, BULK_REVIEW_KIND, {"decision": "approved", "reviewer": ADMIN_ID, "selection": {"ids": ids}}
    )
    assert InlineRun(settings.db_url, job_id, settings).run() == "succeeded"


def test_bulk_review_is_seen_by_the_next_resolve_at_once(
    settings: Settings, conn: psycopg.Connection[Any], unknown_shops: list[Resolution]
) -> None:
    review_in_bulk(settings, conn, unknown_shops)

    again = asyncio.run(resolve_saved(settings, [r.descriptor for r in unknown_shops]))
    assert [(r.merchant.status, r.merchant.mapping_id) for r in again] == [
        ("approved", r.merchant.mapping_id) for r in unknown_shops
    ]


def test_bulk_review_goes_on_with_upstash_down(
    settings: Settings,
    conn: psycopg.Connection[Any],
    unknown_shops: list[Resolution],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:  # a port nobody listens on once closed
        dead_url = f"http://127.0.0.1:{probe.getsockname()[1]}"
    review_in_bulk(settings.model_copy(update={"upstash_redis_rest_url": dead_url}), conn, unknown_shops)

    keys = [r.merchant.merchant_key for r in unknown_shops]
    statuses = conn.execute("select status from public.llm_mappings where merchant_key = any(%s)", (keys,)).fetchall()
    assert statuses == [("approved",), ("approved",)]
