"""Job kind `mappings.reask`: ask the provider again about merchant keys whose call failed.

Queued by pg_cron every minute while a key is due and no such job is queued or running
(private.enqueue_due_reasks, migration 20261122160000); payload {}. Each round claims up to
LLM_BATCH_SIZE * LLM_MAX_CONCURRENCY due keys, so one round's batches are all in flight at once
and its claims' lease (MAPPING_RETRY_LEASE_S) only has to outlast one call with its retries; see
kamioi.mapping.reask for what a round does. Rounds run until nothing is due, or until a round in
which every ask failed: the provider is still down, and the keys not yet claimed keep their attempts
for the next run a minute later.

Stops between rounds on cancel, SIGTERM (handed back) or a lost lease; keys claimed by a run that
died are due again when their lease ends. LLM calls land in public.llm_calls under the job's id.
"""

from __future__ import annotations

import asyncio

from psycopg import AsyncConnection

from jobs.context import JobContext
from jobs.registry import Outcome, job_handler
from kamioi.mapping.cache import UpstashMappingCache
from kamioi.mapping.providers.configured import configured_provider
from kamioi.mapping.reask import reask_due
from kamioi.mapping.resolver import ResolverOptions

REASK_KIND = "mappings.reask"


@job_handler(REASK_KIND)
def reask_merchants(ctx: JobContext) -> Outcome:
    return asyncio.run(run_reask(ctx))


async def run_reask(ctx: JobContext) -> Outcome:
    settings = ctx.settings
    options = ResolverOptions.from_settings(settings)
    cache = UpstashMappingCache.from_settings(settings)
    limit = settings.llm_batch_size * settings.llm_max_concurrency
    asked = answered = failed = 0
    try:
        async with (
            await AsyncConnection.connect(ctx.db_url, prepare_threshold=None, autocommit=True) as conn,
            configured_provider(settings, conn, job_id=ctx.job.id) as provider,
        ):
            while True:
                if (outcome := ctx.interruption(f"reask {ctx.job.id}")) is not None:
                    return outcome
                round_ = await reask_due(conn, provider, options, limit=limit, cache=cache)
                asked, answered, failed = asked + round_.asked, answered + round_.answered, failed + round_.failed
                if round_.taken == 0:
                    break
                if round_.provider_down:
                    ctx.log.warning("reask job %s: %s still failing; the rest waits", ctx.job.id, provider.name)
                    break
    finally:
        if cache is not None:
            await cache.aclose()
    ctx.log.info("reask job %s: %s merchants asked again, %s answered, %s failed", ctx.job.id, asked, answered, failed)
    return Outcome.SUCCEEDED
