"""The partial-name guard: a catalog spelling names its merchant only when the descriptor does not go on
into another proper name.

A brand word is often the start of someone else's name: an arena or stadium named after a bank or an
airline ("CAPITAL ONE ARENA", "AMERICAN AIRLINES CENTER"), a streaming service next to a cinema chain
("AMC+"), a plumber called Target ("TARGET PLUMBING"), a town ("APPLE VALLEY"), and a place printed in
the descriptor looks like a company named after it ("NEW YORK BAGEL" is not The New York Times). Each
of these is a wrong ticker, i.e. a user's money in the wrong company, so a guarded descriptor is never
matched: it falls through to review (the LLM tier sees it, and its answer passes the same guard).

Pure functions over normalized words (see kamioi.mapping.normalizer); place names are passed in so
this module needs neither the gazetteer nor the catalog.
"""

from __future__ import annotations

from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass

# Naming-rights and venue words: "<BRAND> <WORD>" is a place that carries the brand, not the brand.
VENUE_WORDS = frozenset(
    [
        "arena", "stadium", "center", "centre", "field", "park", "ballpark", "amphitheater", "amphitheatre",
        "pavilion", "coliseum", "colosseum", "dome", "bowl", "garden", "gardens", "speedway", "raceway",
        "auditorium", "fieldhouse", "ballfield", "ampitheater",
    ]
)  # fmt: skip
# What the normalizer makes of a "+" glued to a brand ("AMC+", "ESPN+"): another service of the name.
PLUS_WORD = "plus"


def continues_name(alias: Sequence[str], rest: Sequence[str], places: Container[str]) -> bool:
    """Whether the words after a matched catalog alias carry it into another proper name: a venue word,
    a "+" service, or the alias being the start of a place name ("apple" + "valley")."""
    if not rest:
        return False
    # "SHELL PARK CITY UT": a town whose name starts with a venue word is where, not what.
    if any(" ".join(rest[:words]) in places for words in range(2, min(3, len(rest)) + 1)):
        return False
    if rest[0] in VENUE_WORDS or rest[0] == PLUS_WORD:
        return True
    return any(" ".join([*alias, *rest[:words]]) in places for words in range(1, min(3, len(rest)) + 1))


def blocks_similarity(key: str, form: str, places: Container[str]) -> bool:
    """Whether a similarity match of `key` to the catalog spelling `form` must not stand.

    It must not when key and spelling share their first words and the key then goes on with a word of
    its own ("target plumbing" ~ "target", "new york bagel" ~ "new york times"), or stops there and
    those words are a place ("new york" ~ "new york times"). A key cut short ("chick fil" ~ "chick fil
    a", "starbucks cof" ~ "starbucks coffee") or a misspelt word ("starbuks", "bravo cofee") still match.
    """
    key_words, form_words = key.split(), form.split()
    shared = 0
    while shared < min(len(key_words), len(form_words)) and key_words[shared] == form_words[shared]:
        shared += 1
    if shared == 0:
        return False
    if shared == len(key_words):
        return key in places
    return shared == len(form_words) or not _same_word(key_words[shared], form_words[shared])


def _same_word(printed: str, spelling: str) -> bool:
    """A word cut short or mistyped (one edit: "cof"/"coffee", "cofee"/"coffee", "ross"/"cross")."""
    if spelling.startswith(printed):
        return True
    if abs(len(printed) - len(spelling)) > 1:
        return False
    previous = list(range(len(spelling) + 1))
    for i, a in enumerate(printed, 1):
        current = [i]
        for j, b in enumerate(spelling, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a != b)))
        previous = current
    return previous[-1] <= 1


@dataclass(frozen=True)
class Trap:
    """A key that starts with a catalog merchant's spelling and goes on into another name."""

    merchant_key: str  # the catalog merchant the key looks like
    certain: bool  # the continuation is a venue word, a "+" service or a place name


def trapped_brand(key: str, index: Mapping[str, str], places: Container[str]) -> Trap | None:
    """The catalog merchant (by `index`: spelling -> merchant key) whose longest spelling starts `key`
    as whole words with more words after it, or None."""
    words = key.split()
    for count in range(len(words) - 1, 0, -1):
        owner = index.get(" ".join(words[:count]))
        if owner is not None:
            return Trap(owner, continues_name(words[:count], words[count:], places))
    return None
