"""Realistic CSV rows for import tests and benchmarks (`kamioi generate`).

Rows are produced lazily, so any count streams in constant memory. Descriptors come from a pool of
templates built once per seed: catalog merchants with Zipf-skewed popularity, printed the way US banks
print them (store numbers, city and state, Wells Fargo / Bank of America / Chase / Amex shapes,
processor prefixes), plus a long tail of local shops behind Square, Toast, Clover and PayPal. Each
template has at most one per-row slot (store number or reference id) that the normalizer ignores,
so a mapping row's merchant_key always equals `normalize(merchant_name)`.

With a bad-row fraction, that share of rows is broken in one of several ways the importer rejects
(bad date, amount, uuid, category, status, confidence, boolean, ticker, short row, empty or over-long
field); quoting stays valid CSV, so one row is one line and line numbers stay meaningful. Output is
deterministic for a given seed and end date.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from itertools import accumulate

from kamioi.mapping.catalog import CatalogEntry, load_catalog
from kamioi.mapping.normalizer import alias_form, merchant_key

TRANSACTION_COLUMNS = ("user_id", "date", "descriptor", "amount")
MAPPING_COLUMNS = (
    "merchant_name",
    "merchant_key",
    "company_name",
    "ticker",
    "category",
    "confidence",
    "status",
    "admin_approved",
    "source",
    "model",
    "created_at",
)
SEEDED_USER_IDS = ("00000000-0000-4000-a000-000000000001", "00000000-0000-4000-a000-000000000002")
HISTORY_DAYS = 548  # 18 months
OVERLONG_FIELD_CHARS = 1200  # the importer caps descriptors and names at 500 characters
LLM_MODELS = ("gpt-4o-mini", "gpt-4.1-mini", "claude-3-5-haiku", "llama-3.1-70b")
_BATCH = 4096
_ZIPF_EXPONENT = 1.07
_LOCAL_SHOP_SHARE = 0.3  # of all rows: the long tail of shops no catalog knows
_LOCAL_SHOPS = 3000
# Card purchases only: a card statement carries no loan payments or transfers.
_NOT_CARD_PURCHASES = frozenset({"LOAN_PAYMENTS", "TRANSFER_IN", "TRANSFER_OUT", "INCOME", "BANK_FEES"})

# The merchants people pay most often, most popular first; the rest of the catalog follows.
_POPULAR = (
    "amazon", "walmart", "starbucks", "mcdonalds", "target", "costco", "uber", "chick fil a", "doordash",
    "netflix", "shell", "kroger", "walgreens", "cvs", "home depot", "chipotle", "spotify", "apple",
    "dunkin", "taco bell", "7 eleven", "lyft", "wendys", "trader joes", "whole foods", "publix",
    "uber eats", "dollar general", "exxonmobil", "chevron", "lowes", "subway", "burger king", "instacart",
    "best buy", "aldi", "safeway", "heb", "wawa", "hulu",
)  # fmt: skip

_CENTS_BY_CATEGORY = {
    "FOOD_AND_DRINK": (300, 8_000),
    "GENERAL_MERCHANDISE": (500, 20_000),
    "TRANSPORTATION": (500, 9_000),
    "TRAVEL": (5_000, 90_000),
    "ENTERTAINMENT": (500, 3_000),
    "PERSONAL_CARE": (1_000, 15_000),
    "GENERAL_SERVICES": (500, 30_000),
    "HOME_IMPROVEMENT": (1_000, 50_000),
    "MEDICAL": (500, 20_000),
    "RENT_AND_UTILITIES": (3_000, 30_000),
    "LOAN_PAYMENTS": (5_000, 200_000),
    "TRANSFER_OUT": (1_000, 50_000),
    "TRANSFER_IN": (1_000, 50_000),
    "GOVERNMENT_AND_NON_PROFIT": (1_000, 50_000),
    "INCOME": (50_000, 500_000),
    "BANK_FEES": (100, 3_500),
}

_CITIES = (
    ("NEW YORK", "NY"), ("BROOKLYN", "NY"), ("LOS ANGELES", "CA"), ("SAN FRANCISCO", "CA"), ("OAKLAND", "CA"),
    ("SAN DIEGO", "CA"), ("SAN JOSE", "CA"), ("CHICAGO", "IL"), ("HOUSTON", "TX"), ("DALLAS", "TX"),
    ("AUSTIN", "TX"), ("SAN ANTONIO", "TX"), ("PHOENIX", "AZ"), ("SCOTTSDALE", "AZ"), ("PHILADELPHIA", "PA"),
    ("PITTSBURGH", "PA"), ("SEATTLE", "WA"), ("BELLEVUE", "WA"), ("PORTLAND", "OR"), ("DENVER", "CO"),
    ("BOULDER", "CO"), ("ATLANTA", "GA"), ("MIAMI", "FL"), ("ORLANDO", "FL"), ("TAMPA", "FL"),
    ("BOSTON", "MA"), ("CAMBRIDGE", "MA"), ("WASHINGTON", "DC"), ("ARLINGTON", "VA"), ("BALTIMORE", "MD"),
    ("CHARLOTTE", "NC"), ("RALEIGH", "NC"), ("NASHVILLE", "TN"), ("MEMPHIS", "TN"), ("DETROIT", "MI"),
    ("MINNEAPOLIS", "MN"), ("ST LOUIS", "MO"), ("KANSAS CITY", "MO"), ("COLUMBUS", "OH"), ("CLEVELAND", "OH"),
    ("INDIANAPOLIS", "IN"), ("MILWAUKEE", "WI"), ("SALT LAKE CITY", "UT"), ("LAS VEGAS", "NV"),
    ("ALBUQUERQUE", "NM"), ("NEW ORLEANS", "LA"), ("OMAHA", "NE"), ("BOISE", "ID"), ("ANCHORAGE", "AK"),
    ("HONOLULU", "HI"), ("PLEASANTON", "CA"), ("NAPERVILLE", "IL"), ("FRISCO", "TX"), ("ROCKVILLE", "MD"),
)  # fmt: skip

_SHOP_NAMES = (
    "JOE'S", "MARIA'S", "TONY'S", "LUCKY", "GOLDEN", "BLUE DOOR", "SUNRISE", "MAIN STREET", "CORNER",
    "FAMILY", "HAPPY", "GREEN LEAF", "RED ROOSTER", "OLD TOWN", "BIG SKY", "LITTLE ITALY", "ROSA'S",
    "ANNA'S", "KIM'S", "NGUYEN'S", "PATEL", "EL GALLO", "LA ESPERANZA", "SILVER SPOON", "IRON HORSE",
    "NORTH END", "HARBOR", "RIVERSIDE", "HILLTOP", "MAPLE", "CEDAR", "PINE STREET", "OAK", "WILLOW",
    "BRICK HOUSE", "STONE", "COPPER", "VELVET", "URBAN ROOTS", "SUNSET",
)  # fmt: skip
_SHOP_TYPES = (
    ("PIZZA", "FOOD_AND_DRINK"), ("DELI", "FOOD_AND_DRINK"), ("CAFE", "FOOD_AND_DRINK"),
    ("COFFEE", "FOOD_AND_DRINK"), ("TACOS", "FOOD_AND_DRINK"), ("BAKERY", "FOOD_AND_DRINK"),
    ("BBQ", "FOOD_AND_DRINK"), ("SUSHI", "FOOD_AND_DRINK"), ("NOODLE HOUSE", "FOOD_AND_DRINK"),
    ("DINER", "FOOD_AND_DRINK"), ("THAI KITCHEN", "FOOD_AND_DRINK"), ("PHO", "FOOD_AND_DRINK"),
    ("GRILL", "FOOD_AND_DRINK"), ("TAQUERIA", "FOOD_AND_DRINK"), ("ICE CREAM", "FOOD_AND_DRINK"),
    ("DONUTS", "FOOD_AND_DRINK"), ("BAGELS", "FOOD_AND_DRINK"), ("JUICE BAR", "FOOD_AND_DRINK"),
    ("WINE BAR", "FOOD_AND_DRINK"), ("BREWING", "FOOD_AND_DRINK"), ("MARKET", "FOOD_AND_DRINK"),
    ("LIQUORS", "FOOD_AND_DRINK"), ("NAILS", "PERSONAL_CARE"), ("BARBER SHOP", "PERSONAL_CARE"),
    ("SALON", "PERSONAL_CARE"), ("YOGA", "PERSONAL_CARE"), ("FITNESS", "PERSONAL_CARE"),
    ("DRY CLEANERS", "GENERAL_SERVICES"), ("AUTO REPAIR", "GENERAL_SERVICES"), ("CAR WASH", "GENERAL_SERVICES"),
    ("TAILOR", "GENERAL_SERVICES"), ("FLORIST", "GENERAL_MERCHANDISE"), ("BOOKS", "GENERAL_MERCHANDISE"),
    ("BOUTIQUE", "GENERAL_MERCHANDISE"), ("PET SUPPLY", "GENERAL_MERCHANDISE"), ("HARDWARE", "HOME_IMPROVEMENT"),
    ("PHARMACY", "MEDICAL"), ("DENTAL", "MEDICAL"), ("VET CLINIC", "MEDICAL"), ("PARKING", "TRANSPORTATION"),
)  # fmt: skip

# Bank shapes. Per-row slots: {store} number, {ref} long reference number, {order} id. Filled once per
# template: {name} {Name} {joined} {city} {City} {st} {mm} {dd} {mmdd} {card} {day3} {hour}.
_CHAIN_SHAPES = (
    "{name} #{store} {city} {st}",
    "{name} STORE {store} {city} {st}",
    "{name} {store} {city} {st}",
    "PURCHASE AUTHORIZED ON {mm}/{dd} {name} {city} {st} S{ref} CARD {card}",
    "CHECKCARD {mmdd} {name} {city} {st} {ref}",
    "POS DEBIT {name} {store} {city} {st}",
    "Card Purchase {mm}/{dd} {Name} {City} {st} Card {card}",
    "{name} 800-555-{card} {st}",
    "{name}*{order}",
)
_LOCAL_SHAPES = (
    "SQ *{name} {City} {st}",
    "TST* {name} - {city} {city} {st}",
    "{name} {city} {st}",
    "{name} {store} {city} {st}",
    "CLV*{name} {City} {st}",
    "PURCHASE AUTHORIZED ON {mm}/{dd} SQ *{name} {city} {st} S{ref} CARD {card}",
    "CHECKCARD {mmdd} {name} {city} {st} {ref}",
    "PAYPAL *{joined}",
)
_EXTRA_SHAPES = {
    "amazon": ("AMZN Mktp US*{order}", "AMAZON.COM*{order} AMZN.COM/BILL WA", "Amazon.com*{order} Amzn.com/bill WA"),
    "uber": ("UBER *TRIP HELP.UBER.COM CA", "UBER *TRIP {ref} CA"),
    "uber eats": ("UBER *EATS HELP.UBER.COM CA", "UBER EATS 800-592-{card} CA"),
    "lyft": ("LYFT *RIDE {day3} {hour}PM", "LYFT *1 RIDE {mm}-{dd}"),
    "netflix": ("NETFLIX.COM 866-579-7172 CA", "NETFLIX.COM"),
    "spotify": ("SPOTIFY USA 877-778-1161 NY", "Spotify USA"),
    "apple": ("APPLE.COM/BILL 866-712-7753 CA", "APL*ITUNES.COM/BILL 866-712-7753 CA"),
    "doordash": ("DOORDASH*DASHPASS", "DD *DOORDASH {order}"),
    "hulu": ("HLU*HULU {store}", "HULU 877-8244858 HULU.COM CA"),
}
_SLOTS: dict[str, Callable[[random.Random], str]] = {
    "store": lambda rng: f"{int(rng.random() * 10_000):04d}",
    "ref": lambda rng: f"{int(rng.random() * 1e15):015d}",
    "order": lambda rng: f"{int(rng.random() * 0xFFFFFFFFF):09X}",
}


@dataclass(frozen=True, slots=True)
class _Template:
    """One way one merchant shows up: a printed name with at most one per-row slot between two parts."""

    prefix: str
    slot: Callable[[random.Random], str] | None
    suffix: str
    key: str  # normalize() of the printed name, whatever the slot holds
    company: str
    ticker: str
    category: str
    min_cents: int
    span_cents: int
    in_catalog: bool


def user_pool(users: int, seed: int) -> list[str]:
    """The seeded admin and user ids, then (users - 2) uuids derived from the seed."""
    rng = random.Random(f"users:{seed}")
    derived = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(max(0, users - 2))]
    return [*SEEDED_USER_IDS[:users], *derived]


def _printed_names(entry: CatalogEntry) -> list[str]:
    """How banks spell the merchant: the aliases that are names (not processor prefixes, URLs or ids)."""
    names = [a for a in entry.aliases if alias_form(a) and not any(ch in a for ch in "*.#/")]
    return names or [entry.canonical_name.upper()]


_Filled = tuple[str, str | None, str]  # (text before the slot, slot name or None, text after)


def _fill(shape: str, rng: random.Random, name: str) -> _Filled:
    """Fill a shape but its slot: (text before the slot, slot name or None, text after)."""
    city, state = rng.choice(_CITIES)
    month, day = rng.randint(1, 12), rng.randint(1, 28)
    slot = next((slot for slot in _SLOTS if f"{{{slot}}}" in shape), None)
    text = shape.format(
        name=name,
        Name=name.title(),
        joined=name.replace(" ", "").replace("'", "")[:15],
        city=city,
        City=city.title(),
        st=state,
        mm=f"{month:02d}",
        dd=f"{day:02d}",
        mmdd=f"{month:02d}{day:02d}",
        card=f"{rng.randint(0, 9999):04d}",
        day3=rng.choice(("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")),
        hour=rng.randint(1, 12),
        **dict.fromkeys(_SLOTS, "\x00"),
    )
    prefix, _, suffix = text.partition("\x00")
    return prefix, slot, suffix


def _template(filled: _Filled, entry: CatalogEntry | None, category: str, company: str) -> _Template:
    prefix, slot_name, suffix = filled
    slot = _SLOTS[slot_name] if slot_name else None
    low, high = _CENTS_BY_CATEGORY[category]
    return _Template(
        prefix=prefix,
        slot=slot,
        suffix=suffix,
        key=merchant_key(prefix + (slot(random.Random(0)) if slot else "") + suffix),
        company=company,
        ticker=(entry.ticker or "") if entry else "",
        category=category,
        min_cents=low,
        span_cents=high - low,
        in_catalog=entry is not None,
    )


def _catalog_order(rng: random.Random, card_purchases_only: bool) -> list[CatalogEntry]:
    catalog = load_catalog()
    rest = [key for key in catalog if key not in _POPULAR]
    rng.shuffle(rest)
    entries = [catalog[key] for key in (*_POPULAR, *rest)]
    return [e for e in entries if not (card_purchases_only and e.category in _NOT_CARD_PURCHASES)]


def _build_pool(seed: int, card_purchases_only: bool) -> tuple[list[_Template], list[float]]:
    """Templates and their cumulative weights: Zipf over catalog merchants, a flatter local tail."""
    rng = random.Random(f"pool:{seed}")
    templates: list[_Template] = []
    weights: list[float] = []
    entries = _catalog_order(rng, card_purchases_only)
    merchant_weights = [1 / (rank + 1) ** _ZIPF_EXPONENT for rank in range(len(entries))]
    catalog_scale = (1 - _LOCAL_SHOP_SHARE) / sum(merchant_weights)
    for entry, weight in zip(entries, merchant_weights, strict=True):
        shapes = [*_EXTRA_SHAPES.get(entry.merchant_key, ())]
        # Popular merchants get more stores and cities, so more distinct descriptors.
        shapes += rng.choices(_CHAIN_SHAPES, k=2 + int(40 * weight))
        for shape in shapes:
            filled = _fill(shape, rng, rng.choice(_printed_names(entry)))
            templates.append(_template(filled, entry, entry.category, entry.canonical_name))
            weights.append(weight * catalog_scale / len(shapes))
    local_weights = [1 / (rank + 1) ** 0.6 for rank in range(_LOCAL_SHOPS)]
    local_scale = _LOCAL_SHOP_SHARE / sum(local_weights)
    for weight in local_weights:
        kind, category = rng.choice(_SHOP_TYPES)
        name = f"{rng.choice(_SHOP_NAMES)} {kind}"
        shapes = rng.sample(_LOCAL_SHAPES, k=rng.randint(1, 3))
        for shape in shapes:
            company = name.title().replace("'S", "'s")
            templates.append(_template(_fill(shape, rng, name), None, category, company))
            weights.append(weight * local_scale / len(shapes))
    return templates, list(accumulate(weights))


def _days(end: date | None) -> list[str]:
    last = end or date.today()
    return [(last - timedelta(days=offset)).isoformat() for offset in range(HISTORY_DAYS)]


def _picks(rng: random.Random, rows: int, pool: Sequence[_Template], cum: Sequence[float]) -> Iterator[_Template]:
    for start in range(0, rows, _BATCH):
        yield from rng.choices(pool, cum_weights=cum, k=min(_BATCH, rows - start))


def _printed(template: _Template, rng: random.Random) -> str:
    return template.prefix + template.slot(rng) + template.suffix if template.slot else template.prefix


def _amount(template: _Template, rng: random.Random) -> str:
    cents = template.min_cents + int(rng.random() * template.span_cents)
    return f"{cents // 100}.{cents % 100:02d}"


def _overlong(text: str) -> str:
    return (text + " ") * (OVERLONG_FIELD_CHARS // max(1, len(text)) + 1)


# Malformations: each takes a good row and the row's RNG and returns a row the importer rejects.
_BAD_DATES = ("2025-02-30", "2025-13-01", "14/31/2025", "yesterday", "2099-01-01", "1999-12-31", "2025-1-5x")
_BAD_AMOUNTS = ("12.3.4", "abc", "12.345", "0.00", "-0.00", "2500000.00", "-9999999.99", "1e5", "$")
_BAD_UUIDS = ("not-a-uuid", "00000000-0000-4000-a000-00000000000g", "12345", "00000000-0000-4000-a000")
_TRANSACTION_DEFECTS: tuple[Callable[[list[str], random.Random], list[str]], ...] = (
    lambda row, rng: [row[0], rng.choice(_BAD_DATES), row[2], row[3]],
    lambda row, rng: [row[0], row[1], row[2], rng.choice(_BAD_AMOUNTS)],
    lambda row, rng: [rng.choice(_BAD_UUIDS), row[1], row[2], row[3]],
    lambda row, rng: row[: rng.randint(1, 3)],
    lambda row, rng: [row[0], row[1], rng.choice(("", "   ")), row[3]],
    lambda row, rng: [row[0], row[1], _overlong(row[2]), row[3]],
)
_MAPPING_DEFECTS: tuple[Callable[[list[str], random.Random], list[str]], ...] = (
    lambda row, rng: [*row[:10], rng.choice(("2025-02-30T10:00:00Z", "last tuesday", "2099-01-01T00:00:00Z"))],
    lambda row, rng: [*row[:5], rng.choice(("1.2", "7", "high", "-0.5")), *row[6:]],
    lambda row, rng: [*row[:4], rng.choice(("SNACKS", "GROCERIES", "MISC")), *row[5:]],
    lambda row, rng: [*row[:6], rng.choice(("maybe", "done", "approve")), *row[7:]],
    lambda row, rng: [*row[:7], rng.choice(("perhaps", "2", "yes please")), *row[8:]],
    lambda row, rng: [*row[:3], rng.choice(("TOOLONGTICKER", "123", "$AAPL")), *row[4:]],
    lambda row, rng: [*row[:8], rng.choice(("robot", "guess")), *row[9:]],
    lambda row, rng: row[: rng.randint(1, 10)],
    lambda row, rng: [rng.choice(("", "   ")), *row[1:]],
    lambda row, rng: [_overlong(row[0]), *row[1:]],
)


def generate_transactions(
    rows: int,
    seed: int = 0,
    bad_fraction: float = 0.0,
    users: int = 1000,
    *,
    end: date | None = None,
    user_ids: Sequence[str] | None = None,
) -> Iterator[list[str]]:
    """Rows of TRANSACTION_COLUMNS (no header), dated within HISTORY_DAYS up to `end` (default today),
    owned by `user_ids` when given, else by user_pool(users, seed)."""
    pool, cum = _build_pool(seed, card_purchases_only=True)
    user_ids, days = (list(user_ids) if user_ids else user_pool(users, seed)), _days(end)
    rng = random.Random(f"transactions:{seed}")
    for template in _picks(rng, rows, pool, cum):
        row = [
            user_ids[int(rng.random() * len(user_ids))],
            days[int(rng.random() * HISTORY_DAYS)],
            _printed(template, rng),
            _amount(template, rng),
        ]
        if bad_fraction and rng.random() < bad_fraction:
            row = rng.choice(_TRANSACTION_DEFECTS)(row, rng)
        yield row


# Precomputed texts: formatting numbers per row would dominate the cost of a mapping row.
_CONFIDENCE_STEPS = 10_000
_CONFIDENCES = tuple(f"{step / _CONFIDENCE_STEPS:.4f}" for step in range(_CONFIDENCE_STEPS + 1))
_TIMES_OF_DAY = tuple(f"T{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}Z" for s in range(86_400))
_AUTO_APPROVE_STEP = 9_000  # confidence 0.9


def _review(template: _Template, rng: random.Random) -> tuple[str, str, str, str, str]:
    """(confidence, status, admin_approved, source, model) as the mapping pipeline leaves them."""
    # Catalog merchants score 0.85-1.0, local shops 0.35-0.95.
    step = 8_500 + int(rng.random() * 1_500) if template.in_catalog else 3_500 + int(rng.random() * 6_000)
    roll = rng.random()
    if step >= _AUTO_APPROVE_STEP:
        status = "approved" if roll < 0.6 else "pending"
    else:
        status = "pending" if roll < 0.7 else "rejected" if roll < 0.8 else "approved"
    roll = rng.random()
    if template.in_catalog and roll < 0.1:
        source, model = "catalog", "catalog"
    elif roll < 0.95:
        source, model = "llm", LLM_MODELS[int(rng.random() * len(LLM_MODELS))]
    else:
        source, model = "admin", "manual"
    return _CONFIDENCES[step], status, "true" if status == "approved" else "false", source, model


def generate_mappings(
    rows: int, seed: int = 0, bad_fraction: float = 0.0, *, end: date | None = None
) -> Iterator[list[str]]:
    """Rows of MAPPING_COLUMNS (no header), created within HISTORY_DAYS up to `end` (default today)."""
    pool, cum = _build_pool(seed, card_purchases_only=False)
    days = _days(end)
    rng = random.Random(f"mappings:{seed}")
    for template in _picks(rng, rows, pool, cum):
        confidence, status, approved, source, model = _review(template, rng)
        created_at = days[int(rng.random() * HISTORY_DAYS)] + _TIMES_OF_DAY[int(rng.random() * 86_400)]
        row = [
            _printed(template, rng),
            template.key,
            template.company,
            template.ticker,
            template.category,
            confidence,
            status,
            approved,
            source,
            model,
            created_at,
        ]
        if bad_fraction and rng.random() < bad_fraction:
            row = rng.choice(_MAPPING_DEFECTS)(row, rng)
        yield row
