"""Prometheus scrape endpoint; queue depth and LLM calls are read from the database at scrape time."""

from __future__ import annotations

import logging

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from api.db import as_owner
from api.deps import Res
from api.resources import Resources

router = APIRouter(tags=["health"])
log = logging.getLogger("api.metrics")

SCRAPE_QUERY_TIMEOUT_S = 2.0
DATABASE_FACTS = {
    "depth": "select kind, state, count(*) as n from private.job_queue"
    " where state in ('queued', 'running') group by kind, state",
    "oldest": "select kind, extract(epoch from now() - min(run_at))::float8 as age from private.job_queue"
    " where state = 'queued' and run_at <= now() group by kind",
    "failed": "select kind, count(*) as n from private.job_queue"
    " where state = 'failed' and not bad_input and finished_at > now() - interval '1 hour' group by kind",
    "bad_input": "select kind, count(*) as n from private.job_queue"
    " where state = 'failed' and bad_input and finished_at > now() - interval '1 hour' group by kind",
    "workers": "select count(*) as n from private.job_workers where seen_at > now() - interval '1 minute'",
    "llm_calls": "select provider, outcome, count(*) as n from public.llm_calls"
    " where created_at > now() - interval '1 hour' group by provider, outcome",
}


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}}},
)
async def metrics(res: Res) -> Response:
    families = [*await _database_facts(res), *await _replica_facts(res)]
    return Response(res.metrics.exposition(families), media_type=CONTENT_TYPE_LATEST)


async def _replica_facts(res: Resources) -> list[Metric]:
    """The read replica as this scrape finds it (nothing when READ_REPLICA_URL is not set)."""
    health = await res.reads.check()
    if health is None:
        return []
    up = GaugeMetricFamily("kamioi_read_replica_up", "1 when the read replica answers as a standby, else 0.")
    lag = GaugeMetricFamily(
        "kamioi_read_replica_lag_seconds", "Replay lag of the read replica (0 when caught up; absent when down)."
    )
    serving = GaugeMetricFamily(
        "kamioi_read_replica_serving",
        "1 when routed reads go to the replica, 0 when they go to the primary (down or past READ_REPLICA_MAX_LAG_S).",
    )
    up.add_metric([], 1 if health.up else 0)
    if health.lag_s is not None:
        lag.add_metric([], health.lag_s)
    serving.add_metric([], 1 if res.reads.choice() == "replica" else 0)
    return [up, lag, serving]


async def _database_facts(res: Resources) -> list[Metric]:
    """Alert-worthy facts read at scrape time: a backlog nobody works, jobs that gave up, no worker
    alive, a failing LLM provider, the database unreachable from this process."""
    up = GaugeMetricFamily("kamioi_database_up", "1 when this scrape's database queries succeeded, else 0.")
    depth = GaugeMetricFamily(
        "kamioi_job_queue_depth", "Jobs in private.job_queue by kind and status.", labels=["kind", "status"]
    )
    oldest = GaugeMetricFamily(
        "kamioi_job_queue_oldest_seconds", "Age of the oldest due queued job, by kind.", labels=["kind"]
    )
    failed = GaugeMetricFamily(
        "kamioi_jobs_failed_last_hour",
        "Jobs that ended failed in the last hour, by kind (bad input not counted).",
        labels=["kind"],
    )
    bad_input = GaugeMetricFamily(
        "kamioi_jobs_bad_input_last_hour",
        "Jobs refused in the last hour because of their input (a file that is not the expected CSV), by kind.",
        labels=["kind"],
    )
    workers = GaugeMetricFamily("kamioi_job_workers", "Worker processes that heartbeated in the last minute.")
    llm_calls = GaugeMetricFamily(
        "kamioi_llm_calls",
        "LLM calls in the last hour (public.llm_calls ledger) by provider and outcome.",
        labels=["provider", "outcome"],
    )
    families: list[Metric] = [up, depth, oldest, failed, bad_input, workers, llm_calls]
    try:
        async with as_owner(res.pool, timeout_s=SCRAPE_QUERY_TIMEOUT_S) as cur:
            rows = {}
            for name, query in DATABASE_FACTS.items():
                await cur.execute(query)
                rows[name] = await cur.fetchall()
    except Exception as error:
        # A scrape must still answer with the in-process metrics when the database is away.
        log.warning("could not read the database facts", extra={"error": repr(error)})
        up.add_metric([], 0)
        return families
    up.add_metric([], 1)
    for row in rows["depth"]:
        depth.add_metric([row["kind"], row["state"]], row["n"])
    for row in rows["oldest"]:
        oldest.add_metric([row["kind"]], row["age"])
    for row in rows["failed"]:
        failed.add_metric([row["kind"]], row["n"])
    for row in rows["bad_input"]:
        bad_input.add_metric([row["kind"]], row["n"])
    workers.add_metric([], rows["workers"][0]["n"])
    for row in rows["llm_calls"]:
        llm_calls.add_metric([row["provider"], row["outcome"]], row["n"])
    return families
