"""The Python trigram similarity must agree with pg_trgm's, since one threshold serves both."""

from __future__ import annotations

import itertools
from typing import Any

import psycopg
from hypothesis import given
from hypothesis import strategies as st

from kamioi.mapping.catalog import load_catalog
from kamioi.mapping.trigram import similarity, trigrams


async def test_similarity_equals_pg_trgm_on_catalog_pairs(db: psycopg.Connection[Any]) -> None:
    keys = [*sorted(load_catalog())[:60], "starbuks", "wal mart supercenter", "mc donalds", "a", "7 eleven", "h m"]
    pairs = list(itertools.combinations(keys, 2))

    rows = db.execute(
        "select extensions.similarity(a, b) from unnest(%s::text[], %s::text[]) as p(a, b)",
        ([a for a, _ in pairs], [b for _, b in pairs]),
    ).fetchall()

    assert len(rows) == len(pairs)
    for (a, b), (expected,) in zip(pairs, rows, strict=True):
        assert abs(similarity(a, b) - expected) < 1e-6, (a, b)


@given(a=st.text(max_size=30), b=st.text(max_size=30))
def test_similarity_is_symmetric_and_bounded(a: str, b: str) -> None:
    score = similarity(a, b)
    assert score == similarity(b, a)
    assert 0.0 <= score <= 1.0
    assert (score == 1.0) == (bool(trigrams(a)) and trigrams(a) == trigrams(b))
