"""Asking the provider again about merchant keys whose call failed (the `mappings.reask` job).

A round claims the due keys (private.claim_due_reasks: oldest first, SKIP LOCKED, each under a
lease and fenced by its attempt number, so two askers never ask the same key at once), asks the
provider with a few of each key's pending descriptors as evidence, and settles them through the
resolver exactly as a first answer would be: the approval policy applies, an approval puts the
mapping in force and the registry trigger links the key's pending transactions; a failure is
scheduled again with backoff, or given up at the cap and left for review. The keys' cache entries
are then refreshed so nobody keeps reading the old placeholder.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import tuple_row

from kamioi.mapping.cache import MappingCache
from kamioi.mapping.providers.base import MerchantQuery, Provider
from kamioi.mapping.resolver import Claim, ResolverOptions, settle_claims, to_stored, trusted_tickers

SAMPLES_PER_KEY = 3

CLAIM_DUE = "select * from private.claim_due_reasks(%s, %s, %s)"

SAMPLES = """
select w.key, s.samples
from unnest(%s::text[]) as w(key)
cross join lateral (
  select array_agg(d.descriptor) as samples
  from (
    select distinct t.descriptor from public.transactions as t
    where t.merchant_key = w.key and t.status = 'pending'
    limit %s
  ) as d
) as s
"""


@dataclass(frozen=True)
class ReaskRound:
    """What one round did. taken == 0: nothing was due."""

    taken: int  # due rows the claim took, asked or settled on the way
    asked: int
    answered: int  # with the provider's answer: approved, or pending review
    approved: int
    failed: int  # failed again: scheduled once more, or given up at the cap

    @property
    def provider_down(self) -> bool:
        return self.asked > 0 and self.failed == self.asked


async def reask_due(
    conn: AsyncConnection[Any],
    provider: Provider,
    options: ResolverOptions,
    *,
    limit: int,
    cache: MappingCache | None = None,
) -> ReaskRound:
    """One round over at most `limit` due keys. The connection must be idle (autocommit)."""
    retry = options.retry
    async with conn.transaction(), conn.cursor(row_factory=tuple_row) as cur:
        await cur.execute(CLAIM_DUE, (limit, retry.lease_s, retry.max_attempts))
        taken: list[tuple[int, Any, str, str, int, bool]] = await cur.fetchall()
        claimed = [row for row in taken if row[5]]
        await cur.execute(SAMPLES, ([row[2] for row in claimed], SAMPLES_PER_KEY))
        samples: dict[str, list[str] | None] = dict(await cur.fetchall())
        trusted = await trusted_tickers(conn, options)
    claims = [
        Claim(MerchantQuery(key, name, samples.get(key) or [name]), mapping_id, created_at, attempt)
        for mapping_id, created_at, key, name, attempt, _ in claimed
    ]
    settlement = await settle_claims(conn, claims, provider, options, trusted)
    resolved = settlement.resolutions
    if cache is not None:
        await cache.put_many({key: to_stored(res) for key, res in resolved.items() if res.mapping_id is not None})
    answered = [res for res in resolved.values() if res.tier == "llm"]
    return ReaskRound(
        taken=len(taken),
        asked=len(claims),
        answered=len(answered),
        approved=sum(res.status == "approved" for res in answered),
        failed=len(settlement.failed),
    )
