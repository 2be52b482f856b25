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
from dataclasses import dataclass, replace
from typing import Any

from psycopg import AsyncConnection

from kamioi.mapping.cache import MappingCache, StoredMapping
from kamioi.mapping.catalog import spellings_by_merchant
from kamioi.mapping.guard import blocks_similarity
from kamioi.mapping.normalizer import UNKNOWN_KEY, normalize, place_names
from kamioi.mapping.policy import ApprovalPolicy, ResolverOptions, RetryPolicy, Status, Tier, check_answer
from kamioi.mapping.providers.base import MerchantQuery, MerchantSuggestion, Provider
from kamioi.mapping.providers.offline import OFFLINE_PROVIDER_NAME
from kamioi.mapping.store import (
    Claim,
    MerchantResolution,
    Proposal,
    catalog_matches,
    catalog_tickers,
    insert_mappings,
    lock_registry,
    put_in_force,
    record_failures,
    settle_placeholders,
    similar_known,
    stored_mappings,
)

# Re-exported: callers import the policies and records from the resolver.
__all__ = [
    "ApprovalPolicy",
    "Claim",
    "MerchantResolution",
    "Resolution",
    "ResolverOptions",
    "RetryPolicy",
    "Settlement",
    "resolve_descriptors",
    "resolve_merchants",
    "settle_claims",
    "to_stored",
    "trusted_tickers",
]

log = logging.getLogger(__name__)

MAX_SAMPLES = 3
CATALOG_MODEL = "catalog"


@dataclass(frozen=True)
class Resolution:
    descriptor: str
    processor: str | None
    merchant: MerchantResolution


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
        stored = await stored_mappings(conn, missing)
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
        trusted = opts.known_tickers | await catalog_tickers(conn)
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
        await lock_registry(conn, queries)
        # Another resolver may have mapped some of these keys between our read and our lock.
        stored = await stored_mappings(conn, [query.merchant_key for query in queries])
        resolved.update(
            {key: _from_stored(query, stored[key]) for query in queries if (key := query.merchant_key) in stored}
        )
        queries = [query for query in queries if query.merchant_key not in stored]
        trusted = await trusted_tickers(conn, opts)
        proposals = await _cheap_tiers(conn, queries, opts, trusted)
        asked = [query for query in queries if query.merchant_key not in proposals]
        placeholders = [_placeholder(query, provider) for query in asked]
        rows = await insert_mappings(
            conn, [*proposals.values(), *placeholders], asking={query.merchant_key for query in asked}, retry=opts.retry
        )
        await put_in_force(conn, {key: rows[key] for key, proposal in proposals.items() if proposal.approved})
    resolved.update({key: proposal.resolution(*rows[key]) for key, proposal in proposals.items()})
    claims = [Claim(query, *rows[query.merchant_key], attempt=1) for query in asked]
    resolved.update((await settle_claims(conn, claims, provider, opts, trusted)).resolutions)
    return resolved


async def trusted_tickers(conn: AsyncConnection[Any], opts: ResolverOptions) -> frozenset[str]:
    """Tickers an answer may be approved with: the options' list and the database catalog's."""
    return opts.known_tickers | await catalog_tickers(conn)


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
        updated = await settle_placeholders(conn, settled, by_key)
        await put_in_force(conn, {key: by_key[key].row for key in updated if settled[key].approved})
        await record_failures(conn, {key: by_key[key] for key in failures}, failures, provider, opts.retry)
        # Failed keys read back as their placeholder; overtaken ones as whatever overtook them.
        stored = await stored_mappings(conn, [key for key in by_key if key not in updated])
    resolved = {key: settled[key].resolution(*by_key[key].row) for key in updated}
    resolved.update({key: _from_stored(by_key[key].query, mapping) for key, mapping in stored.items()})
    return Settlement(resolved, frozenset(failures))


async def _cheap_tiers(
    conn: AsyncConnection[Any], queries: list[MerchantQuery], opts: ResolverOptions, trusted: frozenset[str]
) -> dict[str, Proposal]:
    """Catalog, then similarity, for keys without any mapping; keys neither tier knows are absent."""
    by_key = {query.merchant_key: query for query in queries}
    proposals: dict[str, Proposal] = {}
    if not by_key:
        return proposals
    for row in await catalog_matches(conn, list(by_key)):
        key = row["key"]
        proposals[key] = Proposal(
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
    places = place_names()
    for row in await similar_known(conn, rest, opts.similarity_threshold):
        if _guarded(row["merchant_key"], row["matched_key"], places):
            continue  # left for the provider and review
        key, ticker, confidence = row["merchant_key"], row["ticker"], round(float(row["similarity"]), 4)
        verified = ticker is not None and (row["from_catalog"] or ticker in trusted)
        proposals[key] = Proposal(
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


def _guarded(key: str, matched_key: str, places: frozenset[str]) -> bool:
    """The partial-name guard over a similarity hit, against every known spelling of the merchant hit."""
    forms = (matched_key, *spellings_by_merchant().get(matched_key, ()))
    return any(blocks_similarity(key, form, places) for form in forms)


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
) -> Proposal:
    source = "catalog" if provider.name == OFFLINE_PROVIDER_NAME else "llm"
    if suggestion is None:
        return replace(_placeholder(query, provider), reason=f"{provider.name} had no answer; left for review")
    # The resolver checks tickers itself: the partial-name guard, then the ticker universe.
    checked = check_answer(query.merchant_key, suggestion.ticker)
    ticker = checked.ticker
    verified = ticker is not None and ticker in trusted
    reason = suggestion.reason if verified or ticker is None else f"unverified ticker; {suggestion.reason}"
    if checked.note:
        reason = f"{checked.note}; {reason}"
    return Proposal(
        merchant_key=query.merchant_key,
        display_name=query.display_name,
        company=suggestion.company,
        ticker=ticker,
        category=suggestion.category,
        confidence=round(suggestion.confidence, 4),
        tier="llm",
        approved=checked.approvable and opts.policy.approves("llm", suggestion.confidence, ticker, verified),
        source=source,
        model=provider.model,
        prompt_version=provider.prompt_version,
        reason=reason[:200],
    )


def _placeholder(query: MerchantQuery, provider: Provider) -> Proposal:
    """The claim written before a provider is asked: pending for review until the answer lands."""
    return Proposal(
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
