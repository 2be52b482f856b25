"""pg_trgm's similarity() in Python, so offline matching and the database tier agree on one threshold.

pg_trgm splits text into words of alphanumeric characters, lower-cases them, pads each word with two
spaces in front and one behind, and compares the sets of 3-character windows:
similarity = shared / (|a| + |b| - shared). tests/mapping/test_trigram.py checks this against the
database's own similarity() on the evaluation descriptors.
"""

from __future__ import annotations

import re
from functools import lru_cache

# The similarity tier's threshold, measured on the evaluation set by `kamioi eval` (BENCHMARKS.md,
# "Merchant mapping"): the lowest value at which every similarity match of the set is right.
SIMILARITY_THRESHOLD = 0.6

_WORD = re.compile(r"[^\W_]+")


@lru_cache(maxsize=65536)
def trigrams(text: str) -> frozenset[str]:
    grams: set[str] = set()
    for word in _WORD.findall(text.lower()):
        padded = f"  {word} "
        grams.update(padded[i : i + 3] for i in range(len(padded) - 2))
    return frozenset(grams)


def similarity(a: str, b: str) -> float:
    first, second = trigrams(a), trigrams(b)
    if not first or not second:
        return 0.0
    shared = len(first & second)
    return shared / (len(first) + len(second) - shared)
