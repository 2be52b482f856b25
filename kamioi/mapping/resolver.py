"""Merchant resolution in tiers, cheapest first; each tier is recorded on the mapping it produces.

For every distinct normalized merchant key (descriptors are deduplicated by key before anything runs):

1. approved  the mapping in force for the key (public.merchants.mapping_id). A key with any mapping
             at all, even a pending or rejected one, stops here: the resolver never sends a key to a
             provider twice (only kamioi.mapping.reask asks again, and only after a failed call).
             Upstash caches these answers (kamioi.mapping.cache); the database decides.
2. catalog   the merchant catalog, by key or alias.
3. similarity  the closest approved merchant or catalog entry by pg_trgm similarity, at or above the
             threshold measured on the evaluation set (`kamioi eval`).
4. llm       the configured provider (an OpenAI-compatible LLM, or the offline catalog matcher), in
             batches of many merchants per call.
5. review    what is left, pending for an admin.

Precision first: catalog answers and mappings in force are approved; similarity and provider answers
stay pending unless `ApprovalPolicy.min_confidence` is set, and even then only with a ticker from the
known-tickers list. An unverified ticker never reaches approved.

With save=True the keys that reach the provider are first claimed in one short transaction (a
pending 'review' row each, provider_state 'asking', attempt 1, under row locks on their registry
rows), so concurrent resolvers can never send a key twice; the answers then update those rows,
fenced by the attempt number. A batch the provider could not answer at all (it raised) is recorded
as failed: the placeholder stays pending, never approved, and kamioi.mapping.reask asks again
after a backoff, up to RetryPolicy.max_attempts sends; a claim whose asker crashed is due again
when its lease ends. With save=False nothing is written (the provider's calls still go to the LLM
ledger: the money is spent either way).

The connection passed in must be idle (not inside a transaction): the resolver commits its own
short transactions and holds none open while a provider answers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

from psycopg import AsyncConnection
from psycopg.rows import dict_row, tuple_row

from kamioi.mapping.cache import MappingCache, StoredMapping
from kamioi.mapping.catalog import known_tickers
from kamioi.mapping.normalizer import UNKNOWN_KEY, normalize
from kamioi.mapping.providers.base import MerchantQuery, MerchantSuggestion, Provider
from kamioi.mapping.providers.offline import OFFLINE_PROVIDER_NAME
from kamioi.mapping.trigram import SIMILARITY_THRESHOLD
from kamioi.settings import Settings

log = logging.getLogger(__name__)

Tier = Literal["approved", "catalog", "similarity", "llm", "review"]
Status = Literal["approved", "pending", "rejected"]

MAX_SAMPLES = 3
CATALOG_MODEL = "catalog"


@dataclass(frozen=True)
class ApprovalPolicy:
    """Which answers are approved without an admin. None: only catalog and mappings in force."""

    min_confidence: float | None = None

    def approves(self, tier: Tier, confidence: float | None, ticker: str | None, ticker_verified: bool) -> bool:
        if tier == "catalog":
            return True
        if self.min_confidence is None or tier not in ("similarity", "llm"):
            return False
        return ticker is not None and ticker_verified and confidence is not None and confidence >= self.min_confidence


@dataclass(frozen=True)
class RetryPolicy:
    """Keys the provider failed on: asked again after min(max_s, base_s * 2^(attempt-1)) (+-20%), at
    most max_attempts sends in all. lease_s must outlast the provider's answer to a whole claim (every
    batch, with its retries): a claim not settled by then is taken to be lost (a crashed asker) and is
    asked again."""

    max_attempts: int = 6
    base_s: float = 60.0
    max_s: float = 3600.0
    lease_s: float = 900.0

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        return cls(
            max_attempts=settings.mapping_retry_max_attempts,
            base_s=settings.mapping_retry_base_s,
            max_s=settings.mapping_retry_max_s,
            lease_s=settings.mapping_retry_lease_s,
        )


@dataclass(frozen=True)
class ResolverOptions:
    policy: ApprovalPolicy = ApprovalPolicy()
    similarity_threshold: float = SIMILARITY_THRESHOLD
    batch_size: int = 50
    # Tickers an answer may name; the database catalog's tickers are always added to these.
    known_tickers: frozenset[str] = field(default_factory=known_tickers)
    retry: RetryPolicy = RetryPolicy()

    @classmethod
    def from_settings(cls, settings: Settings) -> ResolverOptions:
        return cls(
            policy=ApprovalPolicy(settings.auto_approve_min_confidence),
            similarity_threshold=settings.mapping_similarity_threshold,
            batch_size=settings.llm_batch_size,
            retry=RetryPolicy.from_settings(settings),
        )


@dataclass(frozen=True)
class MerchantResolution:
    """Where one merchant key landed. ticker is only meaningful to invest in when status is approved."""

    merchant_key: str
    display_name: str
    company: str | None
    ticker: str | None
    category: str | None
    confidence: float | None
    tier: Tier
    status: Status
    mapping_id: int | None = None
    mapping_created_at: datetime | None = None


@dataclass(frozen=True)
class Resolution:
    descriptor: str
    processor: str | None
    merchant: MerchantResolution


@dataclass(frozen=True)
class Claim:
    """A key claimed for the provider: its placeholder row and the attempt number that fences it."""

    query: MerchantQuery
    mapping_id: int
    created_at: datetime
    attempt: int

    @property
    def row(self) -> tuple[int, datetime]:
        return self.mapping_id, self.created_at


@dataclass(frozen=True)
class _Proposal:
    """A new mapping the resolver would write to public.llm_mappings."""

    merchant_key: str
    display_name: str
    company: str | None
    ticker: str | None
    category: str | None
    confidence: float | None
    tier: Tier
    approved: bool
    source: str
    model: str | None
    prompt_version: str | None
    reason: str

    def resolution(self, mapping_id: int | None = None, created_at: datetime | None = None) -> MerchantResolution:
        return MerchantResolution(
            merchant_key=self.merchant_key,
            display_name=self.display_name,
            company=self.company,
            ticker=self.ticker,
            category=self.category,
            confidence=self.confidence,
            tier=self.tier,
            status="approved" if self.approved else "pending",
            mapping_id=mapping_id,
            mapping_created_at=created_at,
        )


async def resolve_descriptors(
    conn: AsyncConnection[Any],
    descriptors: Sequence[str],
    *,
    provider: Provider,
    save: bool,
    options: ResolverOptions | None = None,
    cache: MappingCache | None = None,
) -> list[Resolution]:
    """One Resolution per descriptor, in order; every distinct merchant key is resolved once."""
    normalized = [normalize(descriptor) for descriptor in descriptors]
    queries: dict[str, MerchantQuery] = {}
    for item in normalized:
        query = queries.setdefault(item.merchant_key, MerchantQuery(item.merchant_key, item.display_name, []))
        if len(query.sample_descriptors) < MAX_SAMPLES and item.raw not in query.sample_descriptors:
            query.sample_descriptors.append(item.raw)
    merchants = await resolve_merchants(
        conn, list(queries.values()), provider=provider, save=save, options=options, cache=cache
    )
    return [
        Resolution(
            descriptor=descriptor,
            processor=item.processor,
            merchant=merchants.get(item.merchant_key) or _unresolvable(item.merchant_key, item.display_name),
        )
        for descriptor, item in zip(descriptors, normalized, strict=True)
    ]


async def resolve_merchants(
    conn: AsyncConnection[Any],
    queries: Sequence[MerchantQuery],
    *,
    provider: Provider,
    save: bool,
    options: ResolverOptions | None = None,
    cache: MappingCache | None = None,
) -> dict[str, MerchantResolution]:
    """Resolve distinct merchants (by merchant_key); returns merchant_key -> resolution for each."""
    opts = options or ResolverOptions()
    # A descriptor with no letters or digits names no merchant: nothing to look up, ask or save.
    by_key = {query.merchant_key: query for query in queries if query.merchant_key not in ("", UNKNOWN_KEY)}
    resolved: dict[str, MerchantResolution] = {}

    if cache is not None:
        hits = await cache.get_many(list(by_key))
        resolved.update({key: _from_stored(by_key[key], stored) for key, stored in hits.items()})
    missing = [key for key in by_key if key not in resolved]
    async with conn.transaction():
        stored = await _stored_mappings(conn, missing)
    resolved.update({key: _from_stored(by_key[key], mapping) for key, mapping in stored.items()})
    fresh: dict[str, StoredMapping] = dict(stored)
    missing = sorted(key for key in missing if key not in resolved)

    if missing:
        found = await (_claim_and_resolve if save else _resolve_dry)(
            conn, [by_key[key] for key in missing], provider, opts
        )
        resolved.update(found)
        fresh.update({key: to_stored(res) for key, res in found.items() if res.mapping_id is not None})
    if cache is not None and fresh:
        await cache.put_many(fresh)
    return resolved


async def _resolve_dry(
    conn: AsyncConnection[Any], queries: list[MerchantQuery], provider: Provider, opts: ResolverOptions
) -> dict[str, MerchantResolution]:
    async with conn.transaction():
        trusted = opts.known_tickers | await _catalog_tickers(conn)
        proposals = await _cheap_tiers(conn, queries, opts, trusted)
    rest = [query for query in queries if query.merchant_key not in proposals]
    answers, _ = await _ask_provider(provider, rest, opts.batch_size)
    for query in rest:
        proposals[query.merchant_key] = _provider_proposal(
            query, answers.get(query.merchant_key), provider, opts, trusted
        )
    return {key: proposal.resolution() for key, proposal in proposals.items()}


async def _claim_and_resolve(
    conn: AsyncConnection[Any], queries: list[MerchantQuery], provider: Provider, opts: ResolverOptions
) -> dict[str, MerchantResolution]:
    resolved: dict[str, MerchantResolution] = {}
    async with conn.transaction():
        await _lock_registry(conn, queries)
        # Another resolver may have mapped some of these keys between our read and our lock.
        stored = await _stored_mappings(conn, [query.merchant_key for query in queries])
        resolved.update(
            {key: _from_stored(query, stored[key]) for query in queries if (key := query.merchant_key) in stored}
        )
        queries = [query for query in queries if query.merchant_key not in stored]
        trusted = await trusted_tickers(conn, opts)
        proposals = await _cheap_tiers(conn, queries, opts, trusted)
        asked = [query for query in queries if query.merchant_key not in proposals]
        placeholders = [_placeholder(query, provider) for query in asked]
        rows = await _insert_mappings(
            conn, [*proposals.values(), *placeholders], asking={query.merchant_key for query in asked}, opts=opts
        )
        await _put_in_force(conn, {key: rows[key] for key, proposal in proposals.items() if proposal.approved})
    resolved.update({key: proposal.resolution(*rows[key]) for key, proposal in proposals.items()})
    claims = [Claim(query, *rows[query.merchant_key], attempt=1) for query in asked]
    resolved.update((await settle_claims(conn, claims, provider, opts, trusted)).resolutions)
    return resolved


async def trusted_tickers(conn: AsyncConnection[Any], opts: ResolverOptions) -> frozenset[str]:
    """Tickers an answer may be approved with: the options' list and the database catalog's."""
    return opts.known_tickers | await _catalog_tickers(conn)


@dataclass(frozen=True)
class Settlement:
    resolutions: dict[str, MerchantResolution]
    failed: frozenset[str]  # keys of batches the provider could not answer


async def settle_claims(
    conn: AsyncConnection[Any],
    claims: Sequence[Claim],
    provider: Provider,
    opts: ResolverOptions,
    trusted: frozenset[str],
) -> Settlement:
    """Ask the provider about claimed keys and write what happened over their placeholders.

    Answers (or "no answer" from a batch that was answered) settle the claim under the approval
    policy; keys of batches that failed are scheduled again (or given up at the cap). Each write is
    fenced by the claim's attempt, so a claim an admin reviewed, or that a later asker took over
    after the lease ran out, keeps what happened there.
    """
    if not claims:
        return Settlement({}, frozenset())
    by_key = {claim.query.merchant_key: claim for claim in claims}
    answers, failures = await _ask_provider(provider, [claim.query for claim in claims], opts.batch_size)
    settled = {
        key: _provider_proposal(claim.query, answers.get(key), provider, opts, trusted)
        for key, claim in by_key.items()
        if key not in failures
    }
    async with conn.transaction():
        updated = await _settle_placeholders(conn, settled, by_key)
        await _put_in_force(conn, {key: by_key[key].row for key in updated if settled[key].approved})
        await _record_failures(conn, {key: by_key[key] for key in failures}, failures, provider, opts.retry)
        # Failed keys read back as their placeholder; overtaken ones as whatever overtook them.
        stored = await _stored_mappings(conn, [key for key in by_key if key not in updated])
    resolved = {key: settled[key].resolution(*by_key[key].row) for key in updated}
    resolved.update({key: _from_stored(by_key[key].query, mapping) for key, mapping in stored.items()})
    return Settlement(resolved, frozenset(failures))


# A user's suggestion is not an answer until an admin approves it (it is then the mapping in force):
# a key with only suggestions goes on to the catalog and the provider, and a suggestion never
# reports the tier it claims.
STORED_MAPPINGS = """
select w.key, m.id, m.created_at, m.company_name, m.ticker, m.category, m.confidence, m.status,
       case when m.source = 'user' and m.status <> 'approved' then 'review' else m.tier end
from unnest(%s::text[]) as w(key)
cross join lateral (
  select m.*, 0 as rank
  from public.merchants as mr
  join public.llm_mappings as m on m.id = mr.mapping_id and m.created_at = mr.mapping_created_at
  where mr.merchant_key = w.key
  union all
  select m.*, case m.status when 'pending' then 1 when 'approved' then 2 else 3 end
  from public.llm_mappings as m
  where m.merchant_key = w.key and m.source <> 'user'
  order by rank, created_at desc, id desc
  limit 1
) as m
"""


async def _stored_mappings(conn: AsyncConnection[Any], keys: Sequence[str]) -> dict[str, StoredMapping]:
    """The mapping that answers for each key: the one in force, else the newest pending, else any."""
    if not keys:
        return {}
    async with conn.cursor(row_factory=tuple_row) as cur:
        await cur.execute(STORED_MAPPINGS, (list(keys),))
        rows = await cur.fetchall()
    return {
        key: StoredMapping(
            mapping_id=mapping_id,
            created_at=created_at,
            company=company,
            ticker=ticker,
            category=category,
            confidence=float(confidence) if confidence is not None else None,
            status=status,
            tier=tier,
        )
        for key, mapping_id, created_at, company, ticker, category, confidence, status, tier in rows
    }


async def _catalog_tickers(conn: AsyncConnection[Any]) -> frozenset[str]:
    async with conn.cursor(row_factory=tuple_row) as cur:
        await cur.execute("select distinct ticker from public.merchant_catalog where ticker is not null")
        return frozenset(row[0] for row in await cur.fetchall())


CATALOG_MATCHES = """
select distinct on (w.key) w.key, c.canonical_name, c.ticker, c.category, c.merchant_key = w.key as exact
from unnest(%s::text[]) as w(key)
join public.merchant_catalog as c on c.merchant_key = w.key or w.key = any(c.aliases)
order by w.key, exact desc, c.merchant_key
"""


async def _cheap_tiers(
    conn: AsyncConnection[Any], queries: list[MerchantQuery], opts: ResolverOptions, trusted: frozenset[str]
) -> dict[str, _Proposal]:
    """Catalog, then similarity, for keys without any mapping; keys neither tier knows are absent."""
    by_key = {query.merchant_key: query for query in queries}
    proposals: dict[str, _Proposal] = {}
    if not by_key:
        return proposals
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(CATALOG_MATCHES, (list(by_key),))
        for row in await cur.fetchall():
            key = row["key"]
            proposals[key] = _Proposal(
                merchant_key=key,
                display_name=by_key[key].display_name,
                company=row["canonical_name"],
                ticker=row["ticker"],
                category=row["category"],
                confidence=1.0,
                tier="catalog",
                approved=True,
                source="catalog",
                model=CATALOG_MODEL,
                prompt_version=None,
                reason="catalog key" if row["exact"] else "catalog alias",
            )
        rest = [key for key in by_key if key not in proposals]
        if not rest:
            return proposals
        await cur.execute(
            "select * from private.similar_known_merchants(%s::text[], %s::real)", (rest, opts.similarity_threshold)
        )
        for row in await cur.fetchall():
            key, ticker, confidence = row["merchant_key"], row["ticker"], round(float(row["similarity"]), 4)
            verified = ticker is not None and (row["from_catalog"] or ticker in trusted)
            proposals[key] = _Proposal(
                merchant_key=key,
                display_name=by_key[key].display_name,
                company=row["company_name"],
                ticker=ticker,
                category=row["category"],
                confidence=confidence,
                tier="similarity",
                approved=opts.policy.approves("similarity", confidence, ticker, verified),
                source="catalog" if row["from_catalog"] else "llm",
                model=CATALOG_MODEL if row["from_catalog"] else None,
                prompt_version=None,
                reason=f"trigram similarity {confidence:.2f} to {row['matched_key']}",
            )
    return proposals


async def _ask_provider(
    provider: Provider, queries: Sequence[MerchantQuery], batch_size: int
) -> tuple[dict[str, MerchantSuggestion], dict[str, str]]:
    """Every batch concurrently (the provider caps requests in flight). Returns the answers, and for
    each key of a batch that failed (raised) the error, so the key can be asked again later."""
    batches = [queries[start : start + batch_size] for start in range(0, len(queries), batch_size)]
    results = await asyncio.gather(*(provider.suggest(batch) for batch in batches), return_exceptions=True)
    wanted = {query.merchant_key for query in queries}
    answers: dict[str, MerchantSuggestion] = {}
    failures: dict[str, str] = {}
    for batch, result in zip(batches, results, strict=True):
        if isinstance(result, BaseException):
            if not isinstance(result, Exception):
                raise result
            log.error("%s failed on a batch of %d merchants: %r", provider.name, len(batch), result)
            failures.update({query.merchant_key: f"{type(result).__name__}: {result}" for query in batch})
            continue
        for suggestion in result:
            if suggestion.merchant_key in wanted:
                answers.setdefault(suggestion.merchant_key, suggestion)
    return answers, failures


def _provider_proposal(
    query: MerchantQuery,
    suggestion: MerchantSuggestion | None,
    provider: Provider,
    opts: ResolverOptions,
    trusted: frozenset[str],
) -> _Proposal:
    source = "catalog" if provider.name == OFFLINE_PROVIDER_NAME else "llm"
    if suggestion is None:
        return replace(_placeholder(query, provider), reason=f"{provider.name} had no answer; left for review")
    # The resolver checks tickers itself, against the catalog and the known-tickers list.
    verified = suggestion.ticker is not None and suggestion.ticker in trusted
    reason = suggestion.reason if verified or suggestion.ticker is None else f"unverified ticker; {suggestion.reason}"
    return _Proposal(
        merchant_key=query.merchant_key,
        display_name=query.display_name,
        company=suggestion.company,
        ticker=suggestion.ticker,
        category=suggestion.category,
        confidence=round(suggestion.confidence, 4),
        tier="llm",
        approved=opts.policy.approves("llm", suggestion.confidence, suggestion.ticker, verified),
        source=source,
        model=provider.model,
        prompt_version=provider.prompt_version,
        reason=reason[:200],
    )


def _placeholder(query: MerchantQuery, provider: Provider) -> _Proposal:
    """The claim written before a provider is asked: pending for review until the answer lands."""
    return _Proposal(
        merchant_key=query.merchant_key,
        display_name=query.display_name,
        company=None,
        ticker=None,
        category=None,
        confidence=None,
        tier="review",
        approved=False,
        source="catalog" if provider.name == OFFLINE_PROVIDER_NAME else "llm",
        model=provider.model,
        prompt_version=provider.prompt_version,
        reason=f"sent to {provider.name}; awaiting its answer",
    )


async def _lock_registry(conn: AsyncConnection[Any], queries: Sequence[MerchantQuery]) -> None:
    """Create the keys' registry rows if missing and lock them, always in key order (no deadlocks)."""
    ordered = sorted(queries, key=lambda query: query.merchant_key)
    keys = [query.merchant_key for query in ordered]
    await conn.execute(
        "insert into public.merchants (merchant_key, display_name)"
        " select * from unnest(%s::text[], %s::text[]) on conflict (merchant_key) do nothing",
        (keys, [query.display_name for query in ordered]),
    )
    await conn.execute(
        "select 1 from public.merchants where merchant_key = any(%s::text[]) order by merchant_key for update",
        (keys,),
    )


# A placeholder is claimed as attempt 1 under a lease: if its asker dies, it is due when the lease ends.
INSERT_MAPPINGS = """
insert into public.llm_mappings
  (merchant_name, merchant_key, company_name, ticker, category, confidence, status, admin_approved,
   source, tier, model, prompt_version, reason, provider_state, provider_attempts, next_attempt_at)
select u.merchant_name, u.merchant_key, u.company_name, u.ticker, u.category, u.confidence, u.status, false,
       u.source, u.tier, u.model, u.prompt_version, u.reason,
       case when u.asking then 'asking' end, case when u.asking then 1 else 0 end,
       case when u.asking then clock_timestamp() + make_interval(secs => %s) end
from unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::numeric[], %s::text[],
            %s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::boolean[])
  as u(merchant_name, merchant_key, company_name, ticker, category, confidence, status,
       source, tier, model, prompt_version, reason, asking)
returning merchant_key, id, created_at
"""


async def _insert_mappings(
    conn: AsyncConnection[Any], proposals: Sequence[_Proposal], *, asking: set[str], opts: ResolverOptions
) -> dict[str, tuple[int, datetime]]:
    """Write proposals; those whose key is in `asking` are placeholders claimed for the provider."""
    if not proposals:
        return {}
    columns = _columns(
        proposals,
        lambda p: (
            p.display_name,
            p.merchant_key,
            p.company,
            p.ticker,
            p.category,
            p.confidence,
            "approved" if p.approved else "pending",
            p.source,
            p.tier,
            p.model,
            p.prompt_version,
            p.reason,
            p.merchant_key in asking,
        ),
    )
    async with conn.cursor(row_factory=tuple_row) as cur:
        await cur.execute(INSERT_MAPPINGS, (opts.retry.lease_s, *columns))
        return {key: (mapping_id, created_at) for key, mapping_id, created_at in await cur.fetchall()}


SETTLE_PLACEHOLDERS = """
update public.llm_mappings as m
set company_name = u.company_name, ticker = u.ticker, category = u.category, confidence = u.confidence,
    status = u.status, tier = u.tier, reason = u.reason,
    provider_state = 'answered', provider_error = null, next_attempt_at = null
from unnest(%s::bigint[], %s::timestamptz[], %s::integer[], %s::text[], %s::text[], %s::text[], %s::numeric[],
            %s::text[], %s::text[], %s::text[])
  as u(id, created_at, attempt, company_name, ticker, category, confidence, status, tier, reason)
where m.id = u.id and m.created_at = u.created_at and m.status = 'pending' and m.reviewed_at is null
  and m.provider_state = 'asking' and m.provider_attempts = u.attempt
returning m.merchant_key
"""


async def _settle_placeholders(
    conn: AsyncConnection[Any], settled: dict[str, _Proposal], claims: dict[str, Claim]
) -> set[str]:
    """Write the provider's answers over the claims; returns the keys whose claim was still ours."""
    if not settled:
        return set()
    proposals = list(settled.values())
    columns = _columns(
        proposals,
        lambda p: (
            claims[p.merchant_key].mapping_id,
            claims[p.merchant_key].created_at,
            claims[p.merchant_key].attempt,
            p.company,
            p.ticker,
            p.category,
            p.confidence,
            "approved" if p.approved else "pending",
            p.tier,
            p.reason,
        ),
    )
    async with conn.cursor(row_factory=tuple_row) as cur:
        await cur.execute(SETTLE_PLACEHOLDERS, columns)
        return {row[0] for row in await cur.fetchall()}


async def _put_in_force(conn: AsyncConnection[Any], approved: dict[str, tuple[int, datetime]]) -> None:
    """Point the registry at newly approved mappings (its trigger links pending transactions). A
    mapping put in force meanwhile by someone else (an admin, an import) stays in force."""
    if not approved:
        return
    keys = sorted(approved)
    await conn.execute(
        "update public.merchants as mr set mapping_id = u.id, mapping_created_at = u.created_at"
        " from unnest(%s::text[], %s::bigint[], %s::timestamptz[]) as u(key, id, created_at)"
        " where mr.merchant_key = u.key and mr.mapping_id is null",
        (keys, [approved[key][0] for key in keys], [approved[key][1] for key in keys]),
    )


async def _record_failures(
    conn: AsyncConnection[Any], claims: dict[str, Claim], errors: dict[str, str], provider: Provider, retry: RetryPolicy
) -> None:
    """Schedule failed claims again with backoff, or give them up at the cap (fenced like answers)."""
    if not claims:
        return
    keys = sorted(claims)
    await conn.execute(
        "select count(*) from private.record_provider_failures("
        "%s::bigint[], %s::timestamptz[], %s::integer[], %s::text[], %s, %s, %s, %s)",
        (
            [claims[key].mapping_id for key in keys],
            [claims[key].created_at for key in keys],
            [claims[key].attempt for key in keys],
            [errors[key] for key in keys],
            provider.name,
            retry.max_attempts,
            retry.base_s,
            retry.max_s,
        ),
    )


def _columns(proposals: Sequence[_Proposal], row: Any) -> tuple[list[Any], ...]:
    """Transpose rows into one list per column, for unnest()."""
    rows = [row(proposal) for proposal in proposals]
    return tuple(list(column) for column in zip(*rows, strict=True))


def _from_stored(query: MerchantQuery, stored: StoredMapping) -> MerchantResolution:
    if stored.status == "rejected":
        # An admin said no: nothing of that proposal stands, and the key is not proposed again.
        return MerchantResolution(
            query.merchant_key,
            query.display_name,
            None,
            None,
            None,
            None,
            "review",
            "rejected",
            stored.mapping_id,
            stored.created_at,
        )
    status: Status = "approved" if stored.status == "approved" else "pending"
    tier: Tier = "approved" if status == "approved" else _tier(stored.tier)
    return MerchantResolution(
        merchant_key=query.merchant_key,
        display_name=query.display_name,
        company=stored.company,
        ticker=stored.ticker,
        category=stored.category,
        confidence=stored.confidence,
        tier=tier,
        status=status,
        mapping_id=stored.mapping_id,
        mapping_created_at=stored.created_at,
    )


def to_stored(res: MerchantResolution) -> StoredMapping:
    """The cache's form of a saved resolution."""
    assert res.mapping_id is not None and res.mapping_created_at is not None
    return StoredMapping(
        mapping_id=res.mapping_id,
        created_at=res.mapping_created_at,
        company=res.company,
        ticker=res.ticker,
        category=res.category,
        confidence=res.confidence,
        status=res.status,
        tier=res.tier,
    )


_TIERS: dict[str | None, Tier] = {
    "approved": "approved",
    "catalog": "catalog",
    "similarity": "similarity",
    "llm": "llm",
}


def _tier(value: str | None) -> Tier:
    return _TIERS.get(value, "review")


def _unresolvable(key: str, display_name: str) -> MerchantResolution:
    """A descriptor that names no merchant: pending review, never saved."""
    return MerchantResolution(key, display_name, None, None, None, None, "review", "pending")
