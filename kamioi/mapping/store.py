"""The resolver's SQL: reading mappings in force and catalog matches, claiming keys, writing answers.

Every function runs inside the caller's transaction (kamioi.mapping.resolver decides where they start
and end); none commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row, tuple_row

from kamioi.mapping.cache import StoredMapping
from kamioi.mapping.policy import RetryPolicy, Status, Tier
from kamioi.mapping.providers.base import MerchantQuery, Provider


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
class Proposal:
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


async def stored_mappings(conn: AsyncConnection[Any], keys: Sequence[str]) -> dict[str, StoredMapping]:
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


async def catalog_tickers(conn: AsyncConnection[Any]) -> frozenset[str]:
    async with conn.cursor(row_factory=tuple_row) as cur:
        await cur.execute("select distinct ticker from public.merchant_catalog where ticker is not null")
        return frozenset(row[0] for row in await cur.fetchall())


CATALOG_MATCHES = """
select distinct on (w.key) w.key, c.canonical_name, c.ticker, c.category, c.merchant_key = w.key as exact
from unnest(%s::text[]) as w(key)
join public.merchant_catalog as c on c.merchant_key = w.key or w.key = any(c.aliases)
order by w.key, exact desc, c.merchant_key
"""


async def catalog_matches(conn: AsyncConnection[Any], keys: Sequence[str]) -> list[dict[str, Any]]:
    """Catalog rows whose key or an alias is one of `keys` (one per key, its own key first)."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(CATALOG_MATCHES, (list(keys),))
        return await cur.fetchall()


async def similar_known(conn: AsyncConnection[Any], keys: Sequence[str], threshold: float) -> list[dict[str, Any]]:
    """The closest approved merchant or catalog entry of each key, at or above `threshold`."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "select * from private.similar_known_merchants(%s::text[], %s::real)", (list(keys), threshold)
        )
        return await cur.fetchall()


async def lock_registry(conn: AsyncConnection[Any], queries: Sequence[MerchantQuery]) -> None:
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


async def insert_mappings(
    conn: AsyncConnection[Any], proposals: Sequence[Proposal], *, asking: set[str], retry: RetryPolicy
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
        await cur.execute(INSERT_MAPPINGS, (retry.lease_s, *columns))
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


async def settle_placeholders(
    conn: AsyncConnection[Any], settled: dict[str, Proposal], claims: dict[str, Claim]
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


async def put_in_force(conn: AsyncConnection[Any], approved: dict[str, tuple[int, datetime]]) -> None:
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


async def record_failures(
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


def _columns(proposals: Sequence[Proposal], row: Any) -> tuple[list[Any], ...]:
    """Transpose rows into one list per column, for unnest()."""
    rows = [row(proposal) for proposal in proposals]
    return tuple(list(column) for column in zip(*rows, strict=True))
