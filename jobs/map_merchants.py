"""Job kind `map_merchants`: resolve every unmapped merchant of imported transactions, then link them.

Payload: {"import_job_id": N} maps the merchants of that import's pending transactions; {} maps the
merchants of every pending transaction. Optional "chunk_keys" (default 500) sets how many distinct
merchant keys one chunk resolves.

Each chunk: the next distinct merchant keys of pending transactions in key order (keyset, through
the partial index on pending transactions' merchant_key), resolved through every tier and saved
(kamioi.mapping.resolver), then one set-based UPDATE links the pending transactions of the chunk's
keys whose mapping in force is approved (mapping_id, status 'mapped'). Keys left pending for review
keep their transactions pending; when an admin approves such a mapping, the trigger on
public.merchants links them then.

Resumable: every chunk commits before the next starts, and a key resolved before is found in the
database without another provider call, so a restarted job (crash, SIGTERM hand-back, retry) simply
walks the keys again. Progress goes to the worker's log once per chunk; LLM calls land in
public.llm_calls tagged with the queue job's id.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import tuple_row

from jobs.context import JobContext
from jobs.errors import PermanentJobError
from jobs.registry import Outcome, job_handler
from kamioi.mapping.cache import UpstashMappingCache
from kamioi.mapping.normalizer import normalize
from kamioi.mapping.providers.base import MerchantQuery
from kamioi.mapping.providers.configured import configured_provider
from kamioi.mapping.resolver import ResolverOptions, resolve_merchants

MAP_MERCHANTS = "map_merchants"
DEFAULT_CHUNK_KEYS = 500
SAMPLES_PER_KEY = 3

NEXT_KEYS = """
select k.merchant_key, s.samples
from (
  select distinct t.merchant_key
  from public.transactions as t
  where t.status = 'pending' and t.merchant_key > %(after)s
    and (%(import_job_id)s::bigint is null or t.import_job_id = %(import_job_id)s::bigint)
  order by t.merchant_key
  limit %(limit)s
) as k
cross join lateral (
  select array_agg(d.descriptor) as samples
  from (
    select distinct t.descriptor from public.transactions as t
    where t.merchant_key = k.merchant_key and t.status = 'pending'
    limit %(samples)s
  ) as d
) as s
order by k.merchant_key
"""

COUNT_KEYS = """
select count(distinct t.merchant_key) from public.transactions as t
where t.status = 'pending' and t.merchant_key is not null
  and (%(import_job_id)s::bigint is null or t.import_job_id = %(import_job_id)s::bigint)
"""

PENDING_OF_KEYS = """
select count(*) from public.transactions as t where t.merchant_key = any(%(keys)s::text[]) and t.status = 'pending'
"""

LINK_APPROVED = """
update public.transactions as t
set mapping_id = mr.mapping_id, status = 'mapped'
from public.merchants as mr
join public.llm_mappings as m
  on m.id = mr.mapping_id and m.created_at = mr.mapping_created_at and m.status = 'approved'
where mr.merchant_key = any(%s::text[]) and t.merchant_key = mr.merchant_key and t.status = 'pending'
"""


@dataclass
class Progress:
    total_keys: int
    keys: int = 0
    approved: int = 0
    pending: int = 0
    linked: int = 0

    def line(self, job_id: int, elapsed_s: float) -> str:
        return (
            f"map_merchants job {job_id}: {self.keys}/{self.total_keys} merchants"
            f" ({self.approved} approved, {self.pending} pending review),"
            f" {self.linked} transactions linked, {elapsed_s:.1f}s"
        )


@job_handler(MAP_MERCHANTS)
def map_merchants(ctx: JobContext) -> Outcome:
    return asyncio.run(run_map_merchants(ctx))


async def run_map_merchants(ctx: JobContext) -> Outcome:
    payload = ctx.job.payload
    import_job_id = payload.get("import_job_id")
    chunk_keys = payload.get("chunk_keys", DEFAULT_CHUNK_KEYS)
    if import_job_id is not None and not isinstance(import_job_id, int):
        raise PermanentJobError(f"import_job_id must be an integer, got {import_job_id!r}")
    if not isinstance(chunk_keys, int) or chunk_keys < 1:
        raise PermanentJobError(f"chunk_keys must be a positive integer, got {chunk_keys!r}")
    settings = ctx.settings
    options = ResolverOptions.from_settings(settings)
    cache = UpstashMappingCache.from_settings(settings)
    started = time.monotonic()
    try:
        async with (
            await AsyncConnection.connect(ctx.db_url, prepare_threshold=None, autocommit=True) as conn,
            configured_provider(settings, conn, job_id=ctx.job.id) as provider,
        ):
            params: dict[str, Any] = {"import_job_id": import_job_id}
            progress = Progress(total_keys=await _scalar(conn, COUNT_KEYS, params))
            ctx.log.info(
                "map_merchants job %s: %s merchants to map with %s", ctx.job.id, progress.total_keys, provider.name
            )
            after = ""
            while True:
                if (outcome := ctx.interruption(f"map_merchants {ctx.job.id}")) is not None:
                    return outcome
                async with conn.cursor(row_factory=tuple_row) as cur:
                    await cur.execute(
                        NEXT_KEYS, {**params, "after": after, "limit": chunk_keys, "samples": SAMPLES_PER_KEY}
                    )
                    chunk: list[tuple[str, list[str]]] = await cur.fetchall()
                if not chunk:
                    break
                keys = [key for key, _ in chunk]
                pending_before = await _scalar(conn, PENDING_OF_KEYS, {"keys": keys})
                queries = [MerchantQuery(key, normalize(samples[0]).display_name, samples) for key, samples in chunk]
                resolved = await resolve_merchants(
                    conn, queries, provider=provider, save=True, options=options, cache=cache
                )
                async with conn.transaction():
                    await conn.execute(LINK_APPROVED, (keys,))
                # Counted, not taken from rowcount: approvals in force link most rows in their trigger.
                progress.linked += pending_before - await _scalar(conn, PENDING_OF_KEYS, {"keys": keys})
                progress.keys += len(chunk)
                progress.approved += sum(res.status == "approved" for res in resolved.values())
                progress.pending += sum(res.status != "approved" for res in resolved.values())
                ctx.log.info(progress.line(ctx.job.id, time.monotonic() - started))
                after = chunk[-1][0]
    finally:
        if cache is not None:
            await cache.aclose()
    return Outcome.SUCCEEDED


async def _scalar(conn: AsyncConnection[Any], query: str, params: dict[str, Any]) -> int:
    async with conn.cursor(row_factory=tuple_row) as cur:
        await cur.execute(query, params)
        row = await cur.fetchone()
    return int(row[0]) if row else 0
