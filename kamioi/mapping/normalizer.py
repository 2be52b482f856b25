"""Bank-card descriptor -> stable merchant key (the single source of truth for normalization).

`normalize("SQ *BLUE BOTTLE COFFEE San Francisco CA")` gives key "blue bottle", processor "square".
The same merchant printed by different banks, stores and cities gives one key; the key is lowercase
ASCII words joined by single spaces, never empty, and a fixed point (normalizing a key returns it).

Steps, in order:
1. Fold to upper-case ASCII. Strip bank rail prefixes ("POS DEBIT", "CHECKCARD 0314",
   "PURCHASE AUTHORIZED ON 03/14", "VISA DDA PUR AP 443106", "RECURRING", "ACH" ...) and payment
   processor prefixes ("SQ *", "TST*", "PAYPAL *", "APL*", "GOOGLE *", "SP *", "DD *", "UBER *EATS",
   "IC*", "AMZN Mktp US*" ...), remembering the first processor.
2. A domain that opens the name is the name ("NETFLIX.COM" -> NETFLIX). Other URLs and domains
   ("HELP.UBER.COM", "AMZN.COM/BILL"), masked cards ("XXXX 1234", "CARD 1234"), terminals ("T-1234")
   and a spaced dash ("TST* JOES PIZZA - BROOKLYN") become cut markers: what follows is location or
   reference noise. Phone numbers, dates, store and reference numbers need no pattern: any word with a
   digit after the first word ends the name too (step 6).
3. "BRAND*DETAIL" keeps BRAND (the card-network convention: the part before the star names the
   merchant, the part after is a product or order reference), unless BRAND is empty.
4. Punctuation goes ("MCDONALD'S" -> "mcdonalds", "H&M" -> "hm", "WAL-MART" -> "wal mart"); a leading
   "the" or "www" goes.
5. Catalog aliases (kamioi/mapping/data/catalog.csv) are matched on the leading words, longest first:
   the match stands only when the rest is location or store noise (store numbers, a city and state, a
   US place name, a country, "INC", a short store code before a number: "WHOLEFDS HAR 10155"), so
   "APPLE VALLEY DINER" and "DELTA DENTAL OF CA" are not Apple or Delta Air Lines.
6. Otherwise the name ends at the first cut marker or word with a digit after its first word (store,
   ZIP, reference id), and trailing state codes or names with their city (GeoNames, also when
   truncated: "SAN FRANCISC CA"), big cities without a state, country, company and billing words are
   dropped, keeping at least one word. A key that rules would still change is normalized again.

Aggregators (decision): DoorDash, Uber Eats, Instacart, Grubhub, PayPal, Amazon Pay and Google/Apple
billing are the merchant unless the descriptor names the paid merchant after the prefix:
"DD *CHIPOTLE" -> chipotle (processor doordash), "DOORDASH*DASHPASS" -> doordash, "PAYPAL *NETFLIX"
-> netflix (processor paypal), "AMZN Mktp US*2K1AB0C9Z" -> amazon. Pure card processors (Square,
Toast, Shopify, Stripe, Clover) fall back to their own key only when nothing else is printed.
Descriptors with no letters or digits at all map to "unknown".
"""

from __future__ import annotations

import csv
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources

from kamioi.mapping.guard import PLUS_WORD, continues_name

UNKNOWN_KEY = "unknown"
# The one length limit for a descriptor (or an imported merchant name) at every entry point: imports,
# the API, `kamioi map`; the database holds merchant keys to it too (20261207800000_merchant_key_length.sql).
MAX_DESCRIPTOR_CHARS = 500
MARKER = "|"

# Processor name -> the merchant key used when the descriptor names no other merchant.
PROCESSOR_KEYS: dict[str, str] = {
    "square": "square",
    "toast": "toast",
    "paypal": "paypal",
    "apple_pay": "apple",
    "google_pay": "google",
    "shopify": "shopify",
    "doordash": "doordash",
    "uber_eats": "uber eats",
    "instacart": "instacart",
    "grubhub": "grubhub",
    "stripe": "stripe",
    "amazon": "amazon",
    "clover": "clover",
}

# A spelled-out processor name without a star must end the word ("DOORDASH.COM" is a brand domain).
_END = r"(?![A-Z0-9.])"
_PROCESSOR_PATTERNS: dict[str, str] = {
    "square": r"SQU?\s*\*|SQUARE\s*\*|GOSQ(?:\.COM)?\s*\*",
    "toast": r"TST\s*\*",
    "paypal": r"PAYPAL\s*\*|PP\s*\*",
    "apple_pay": rf"APL\s*\*|APPLE\s+PAY{_END}\s*\*?",
    "google_pay": rf"GOOGLE\s*\*|GOOGLE\s+PAY{_END}\s*\*?|GPAY\s*\*",
    "shopify": r"SP\s*\*|SHOPIFY\s*\*",
    "doordash": rf"DD\s*\*|(?:DD\s+)?DOORDASH{_END}\s*\*?",
    "uber_eats": rf"UBER\s*\*?\s*EATS{_END}\s*\*?|UBEREATS{_END}\s*\*?",
    "instacart": rf"IC\s*\*|INSTACART{_END}\s*\*?",
    "grubhub": rf"GRUBHUB\s*\*|GRUBHUBFOOD{_END}",
    "stripe": r"STRIPE\s*\*",
    "amazon": rf"AMZ\s*\*|AMAZON\s+PAY{_END}\s*\*?|AMZN\s+MKTP(?:\s+US)?{_END}\s*\*?"
    rf"|AMAZON\s+(?:MKTPL?|MKTPLACE|MARKETPLACE){_END}\s*\*?",
    "clover": r"CLV\s*\*|CLOVER\s*\*",
}

# How banks open a card line; a date, masked card or reference number printed right after is eaten too
# (a dash date only with two-digit parts: "7-11" after a rail is the store, not July 11th).
_RAIL_PATTERN = r"""
    (?:(?:RECURRING\s+)?(?:PAYMENT|PURCHASE)(?:\s+RETURN)?\s+AUTHORI[SZ]ED\s+ON
      | RECURRING(?:\s+(?:PAYMENT|PMT|CHARGE|DEBIT))?
      | POS(?:\s+(?:DEBIT|PURCHASE|PUR|WITHDRAWAL|WD|REFUND|TRANSACTION))?
      | POINT\s+OF\s+SALE(?:\s+(?:DEBIT|PURCHASE))?
      | DEBIT\s+CARD(?:\s+(?:PURCHASE|DEBIT|PMT|PAYMENT|TRANSACTION))?
      | DEBIT\s+(?:PURCHASE|PUR)(?:\s*-\s*VISA|\s+VISA)?
      | DBT\s+(?:CRD|CARD|PURCHASE|PUR)
      | (?:VISA\s+)?CARD\s+PURCHASE(?:\s+WITH\s+PIN|\s+RETURN)?
      | CHECK\s?CARD(?:\s+PURCHASE)?
      | VISA\s+(?:DDA\s+PUR(?:CHASE)?(?:\s+AP)?|PURCHASE|DEBIT|POS)
      | DDA\s+(?:PURCHASE|PUR|DEBIT)
      | (?:MC|MASTERCARD)\s+(?:PURCHASE|DEBIT)
      | ACH(?:\s+(?:DEBIT|WITHDRAWAL|PMT|PAYMENT|TRANSACTION|TRANS))?
      | ELECTRONIC\s+(?:PAYMENT|WITHDRAWAL|PMT)
      | PRE-?AUTHORI[SZ]ED\s+(?:DEBIT|PAYMENT|PMT)
      | ONLINE\s+(?:PAYMENT|PMT|PURCHASE)
      | PURCHASE(?:\s+INTL)?
      | WITHDRAWAL
      | \d{1,2}/\d{1,2}(?:/\d{2,4})?                          # a bare leading date
    )(?![A-Z0-9])
    (?:\s*[-:\#]?\s*(?:\d{1,2}/\d{1,2}(?:/\d{2,4})?|\d{2}-\d{2}(?:-\d{2,4})?|\d{4,}|[X*]{2,}\d{2,4})(?![A-Z0-9]))*
"""

_HEAD = re.compile(
    r"[\s\-*:.,]*(?:(?P<rail>"
    + _RAIL_PATTERN
    + r")(?=[\s\-*:.,\#]*[A-Z0-9])|"
    + "|".join(f"(?P<{name}>{pattern})" for name, pattern in _PROCESSOR_PATTERNS.items())
    + ")",
    re.VERBOSE,
)

_TLD = r"(?:COM|NET|ORG|CO|IO|TV|US|APP|AI|GOV|EDU|BIZ|INFO|ME|LY|GG|FM)"
# A bare domain (no subdomain but www) that opens the name is the name.
_LEADING_DOMAIN = re.compile(rf"^\s*(?:HTTPS?://)?(?:WWW\d?\.)?([A-Z0-9][A-Z0-9-]*)\.{_TLD}(?![A-Z0-9])(?:/\S*)?")
# Noise that words alone do not show: each pattern runs only when its trigger substring is present.
# (Numbers need no pattern: any word with a digit after the first word ends the name.)
_GUARDED_NOISE = (
    (".", re.compile(rf"(?:HTTPS?://)?(?:[A-Z0-9-]+\.)+{_TLD}(?![A-Z0-9])(?:/\S*)?")),  # "HELP.UBER.COM"
    ("**", re.compile(r"\*{2,}[\s-]*\d{0,4}")),  # "****1234" before the star split
    ("XX", re.compile(r"\bX{2,}(?:[\s-]*\d{2,4})?\b")),  # "XXXX 1234", not "XXL"
    ("CARD", re.compile(r"\bCARD\s*(?:ENDING\s*(?:IN\s*)?)?(?:NO\.?|\#)?\s*[X*]*\s*\d{4}(?!\d)")),
    ("T-", re.compile(r"\bT-\d{3,}")),  # Target-style terminal
    ("INSTACAR", re.compile(r"\bBY\s+INSTACAR\w*")),  # "IC* COSTCO BY INSTACAR"
    (" -", re.compile(r"\s-+\s")),  # "TST* JOES PIZZA - BROOKLYN": a location follows
)
# "AMC+", "ESPN+": a "+" glued to a name is another service of that name (kamioi.mapping.guard).
_GLUED_PLUS = re.compile(r"(?<=[A-Z0-9])\+")
# "air0017012345678" -> "air", "0017012345678": a reference glued to a word.
_AMAZON_ORDER = re.compile(r"(?=[a-z]*\d)[a-z0-9]{9,10}")
_GLUED_NUMBER = re.compile(r"([a-z]{3,})(\d{4,})")

_PUNCTUATION = str.maketrans(
    {
        **{chr(c): " " for c in range(128) if not chr(c).isalnum()},
        "'": None,
        "`": None,
        "&": None,
        MARKER: f" {MARKER} ",
    }
)

STATE_CODES = frozenset(
    [
        "al", "ak", "az", "ar", "ca", "co", "ct", "de", "dc", "fl", "ga", "hi", "id", "il", "in", "ia", "ks",
        "ky", "la", "me", "md", "ma", "mi", "mn", "ms", "mo", "mt", "ne", "nv", "nh", "nj", "nm", "ny", "nc",
        "nd", "oh", "ok", "or", "pa", "ri", "sc", "sd", "tn", "tx", "ut", "vt", "va", "wa", "wv", "wi", "wy",
        "pr",
    ]
)  # fmt: skip
STATE_NAMES = {
    "alabama": "al", "alaska": "ak", "arizona": "az", "arkansas": "ar", "california": "ca", "colorado": "co",
    "connecticut": "ct", "delaware": "de", "florida": "fl", "georgia": "ga", "hawaii": "hi", "idaho": "id",
    "illinois": "il", "indiana": "in", "iowa": "ia", "kansas": "ks", "kentucky": "ky", "louisiana": "la",
    "maine": "me", "maryland": "md", "massachusetts": "ma", "michigan": "mi", "minnesota": "mn",
    "mississippi": "ms", "missouri": "mo", "montana": "mt", "nebraska": "ne", "nevada": "nv",
    "new hampshire": "nh", "new jersey": "nj", "new mexico": "nm", "new york": "ny", "north carolina": "nc",
    "north dakota": "nd", "ohio": "oh", "oklahoma": "ok", "oregon": "or", "pennsylvania": "pa",
    "rhode island": "ri", "south carolina": "sc", "south dakota": "sd", "tennessee": "tn", "texas": "tx",
    "utah": "ut", "vermont": "vt", "virginia": "va", "washington": "wa", "west virginia": "wv",
    "wisconsin": "wi", "wyoming": "wy", "puerto rico": "pr",
}  # fmt: skip
# Trailing words that never tell merchants apart: company suffixes, countries, channel words.
_NOISE_WORDS = frozenset(
    [
        "inc", "llc", "co", "corp", "corporation", "company", "ltd", "usa", "us", "store", "stores", "online",
        "purchase", "pending", "recurring", "payment", "pmt", "debit", "credit", "pos", "sale", "intl", "www",
        "com", "subscription", "monthly", "membership", "autopay", "str", "sto", "unit", "loc", "location",
        "terminal", "term", "trm", "reg", "register", "no", "num", "of", "ach", "epayment", "rebill", "fee",
        "fees",
    ]
)  # fmt: skip
_LEADING_FILLER = frozenset({"the", "www"})
_MIN_TRUNCATED_CITY = 8
_MAX_CITY_WORDS = 3
_MAX_STORE_CODE_LEN = 3
_REF_ID_MIN_LEN = 6
_LONG_NUMBER_MIN_LEN = 4
_SETTLE_ROUNDS = 8


@dataclass(frozen=True, slots=True)
class NormalizedDescriptor:
    merchant_key: str
    display_name: str
    processor: str | None
    raw: str


@dataclass(frozen=True, slots=True)
class _Gazetteer:
    cities: dict[str, frozenset[str]]  # state -> city names
    truncated: dict[str, frozenset[str]]  # state -> city-name prefixes a fixed-width column leaves
    stateless: frozenset[str]  # big cities banks print without a state
    anywhere: frozenset[str]  # every place name, any state (neighborhoods often share one)


@cache
def _gazetteer() -> _Gazetteer:
    by_state: dict[str, set[str]] = {}
    truncated: dict[str, set[str]] = {}
    stateless: set[str] = set()
    source = resources.files("kamioi.mapping") / "data" / "us_cities.csv"
    for row in csv.DictReader(source.read_text(encoding="utf-8").splitlines()):
        state, city = row["state"].lower(), row["city"]
        by_state.setdefault(state, set()).add(city)
        prefixes = truncated.setdefault(state, set())
        prefixes.update(city[:n].rstrip() for n in range(_MIN_TRUNCATED_CITY, len(city)))
        if row["stateless"] == "1":
            stateless.add(city)
    return _Gazetteer(
        cities={state: frozenset(names) for state, names in by_state.items()},
        truncated={state: frozenset(names) for state, names in truncated.items()},
        stateless=frozenset(stateless),
        anywhere=frozenset(city for names in by_state.values() for city in names),
    )


@cache
def place_names() -> frozenset[str]:
    """Every US place and state name (normalized words): where a purchase was, never what it bought."""
    return _gazetteer().anywhere | frozenset(STATE_NAMES)


@cache
def _aliases() -> tuple[dict[str, str], frozenset[str], int]:
    """(alias form -> key, first words of all forms, most words in a form)."""
    # Imported here: the catalog normalizes its aliases with this module.
    from kamioi.mapping.catalog import alias_index

    index = alias_index()
    return index, frozenset(form.split(" ", 1)[0] for form in index), max(len(f.split()) for f in index)


@cache
def _display_names() -> dict[str, str]:
    from kamioi.mapping.catalog import load_catalog

    return {key: entry.canonical_name for key, entry in load_catalog().items()}


def _has_cut(token: str) -> bool:
    """A marker or any word with a digit ends a merchant name (tokens are [a-z0-9] or the marker)."""
    return not token.isalpha()


def _is_reference(token: str) -> bool:
    """A leading order or reference id ("2k1ab0c9z", "443106"); short numbers like "7" or "76" stay."""
    if token.isdigit():
        return len(token) >= _LONG_NUMBER_MIN_LEN
    return len(token) >= _REF_ID_MIN_LEN and not token.isalpha()


def _soft_tokens(descriptor: str) -> tuple[str | None, list[str]]:
    """Rule-based cleanup up to the words: (first processor, lowercase words and cut markers)."""
    text = descriptor.replace(MARKER, " ")
    if not text.isascii():
        text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    text = text.upper()
    processor: str | None = None
    while match := _HEAD.match(text):
        if processor is None and match.lastgroup != "rail":
            processor = match.lastgroup
        text = text[match.end() :]
    if "." in text:
        text = _LEADING_DOMAIN.sub(r"\1", text, count=1)
    for trigger, pattern in _GUARDED_NOISE:
        if trigger in text:
            text = pattern.sub(f" {MARKER} ", text)
    if "+" in text:
        text = _GLUED_PLUS.sub(f" {PLUS_WORD.upper()} ", text)
    brand, star, detail = text.partition("*")
    if star:
        text = brand if any(ch.isalnum() for ch in brand) else detail
    tokens: list[str] = []
    for word in text.translate(_PUNCTUATION).lower().split():
        # An Amazon order id ("CBAE44223") opens the text after the prefix: a reference, not a name.
        order_id = processor == "amazon" and not tokens and _AMAZON_ORDER.fullmatch(word)
        glued = None if order_id or word.isalpha() or word.isdigit() else _GLUED_NUMBER.fullmatch(word)
        if glued:
            tokens.extend(glued.groups())
        else:
            tokens.append(word)
    start = 0
    while start < len(tokens) and tokens[start] == MARKER:
        start += 1
    while start + 1 < len(tokens) and tokens[start] in _LEADING_FILLER:
        start += 1
    return processor, tokens[start:]


def alias_form(text: str) -> str:
    """The words a catalog alias is matched on ("" when the text is only a processor prefix)."""
    return " ".join(_soft_tokens(text)[1])


def _city_length(tokens: Sequence[str], state: str | None) -> int:
    """How many trailing words name a city (of `state`, or a big city when state is None); 0 if none."""
    gazetteer = _gazetteer()
    for words in range(min(_MAX_CITY_WORDS, len(tokens)), 0, -1):
        candidate = " ".join(tokens[-words:])
        if state is None:
            if candidate in gazetteer.stateless:
                return words
        elif candidate in gazetteer.cities.get(state, ()) or (
            len(candidate) >= _MIN_TRUNCATED_CITY and candidate in gazetteer.truncated.get(state, ())
        ):
            return words
    return 0


def _trailing_state(tokens: Sequence[str]) -> tuple[str | None, int]:
    """(state code, words) of a trailing state code or name ("CA", "CALIFORNIA", "NEW YORK")."""
    last = tokens[-1]
    if last in STATE_CODES:
        return last, 1
    if len(tokens) > 1 and (code := STATE_NAMES.get(f"{tokens[-2]} {last}")):
        return code, 2
    return STATE_NAMES.get(last), 1


def _strip_location(tokens: Sequence[str], keep_one: bool) -> list[str]:
    """Drop trailing states (with their city), big cities, countries and company or billing words."""
    kept = list(tokens)
    while kept:
        state, state_words = _trailing_state(kept)
        if kept[-1] in _NOISE_WORDS:
            drop = 1
        elif state is not None:
            drop = state_words + _city_length(kept[:-state_words], state)
            if keep_one and drop >= len(kept) > state_words:
                drop = state_words
        else:
            drop = _city_length(kept, None)
        if drop == 0 or (keep_one and drop >= len(kept)):
            break
        del kept[-drop:]
    return kept


def _until_cut(tokens: Sequence[str], start: int) -> list[str]:
    for index in range(start, len(tokens)):
        if _has_cut(tokens[index]):
            return list(tokens[:index])
    return list(tokens)


def _is_location_tail(rest: Sequence[str]) -> bool:
    """Whether the words after a catalog alias only say where and which store, not another name."""
    name_part = _until_cut(rest, 0)
    kept = _strip_location(name_part, keep_one=False)
    if not kept:
        return True
    if " ".join(kept) in _gazetteer().anywhere:  # "SWEETGREEN WILLIAMSBURG BROOKLYN NY"
        return True
    # "WHOLEFDS HAR 10155": a short store code right before the store number
    return len(name_part) < len(rest) and len(kept) == 1 and len(kept[0]) <= _MAX_STORE_CODE_LEN


def _catalog_match(tokens: Sequence[str]) -> str | None:
    index, first_words, longest = _aliases()
    if not tokens or tokens[0] not in first_words:
        return None
    for words in range(min(longest, len(tokens)), 0, -1):
        key = index.get(" ".join(tokens[:words]))
        if key is None:
            continue
        rest = tokens[words:]
        if continues_name(tokens[:words], _until_cut(rest, 0), place_names()):
            return None  # the alias is the start of someone else's name: no shorter alias of it either
        if _is_location_tail(rest):
            return key
    return None


def _first_word(descriptor: str) -> str:
    """Fallback when cleanup leaves no name ("XXXX1234", "03/14"): the first plain word printed."""
    words = descriptor.encode("ascii", "ignore").decode("ascii").translate(_PUNCTUATION).lower().split()
    return next((word for word in words if word != MARKER), UNKNOWN_KEY)


def _derive(descriptor: str) -> tuple[str, str | None, bool]:
    """(key, processor, key came from the catalog or a processor: a known fixed point)."""
    processor, tokens = _soft_tokens(descriptor)
    if tokens and (key := _catalog_match(tokens)):
        return key, processor, True
    start = 0
    while start < len(tokens) and (tokens[start] == MARKER or _is_reference(tokens[start])):
        start += 1
    tokens = tokens[start:]
    if start and tokens and (key := _catalog_match(tokens)):
        return key, processor, True
    if processor is not None and not _strip_location(_until_cut(tokens, 0), keep_one=False):
        return PROCESSOR_KEYS[processor], processor, True
    name = _until_cut(tokens, 1)
    if not name:
        return _first_word(descriptor), processor, False
    return " ".join(_strip_location(name, keep_one=True)), processor, False


@lru_cache(maxsize=65_536)
def _settle(key: str) -> str:
    """Re-normalize a rule-derived key until it is a fixed point (rules can peel one more layer)."""
    for _ in range(_SETTLE_ROUNDS):
        again, _, known = _derive(key)
        if again == key or known:
            return again
        key = again
    return key


def normalize(descriptor: str) -> NormalizedDescriptor:
    key, processor, known = _derive(descriptor)
    if not known:
        key = _settle(key)
    display_name = _display_names().get(key) or key.title()
    return NormalizedDescriptor(merchant_key=key, display_name=display_name, processor=processor, raw=descriptor)


def merchant_key(descriptor: str) -> str:
    return normalize(descriptor).merchant_key
