"""Prometheus scrape endpoint; queue depth and LLM calls are read from the database at scrape time."""

from __future__ import annotations

import logging

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.db import as_owner
from api.deps import Res
from api.resources import Resources

router = APIRouter(tags=["health"])
log = logging.getLogger("api.metrics")

SCRAPE_QUERY_TIMEOUT_S = 2.0


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}}},
)
async def metrics(res: Res) -> Response:
    await _refresh_database_gauges(res)
    return Response(generate_latest(res.metrics.registry), media_type=CONTENT_TYPE_LATEST)


async def _refresh_database_gauges(res: Resources) -> None:
    try:
        async with as_owner(res.pool, timeout_s=SCRAPE_QUERY_TIMEOUT_S) as cur:
            await cur.execute(
                "select kind, state, count(*) as n from private.job_queue"
                " where state in ('queued', 'running') group by kind, state"
            )
            depth = await cur.fetchall()
            await cur.execute(
                "select provider, outcome, count(*) as n from public.llm_calls"
                " where created_at > now() - interval '1 hour' group by provider, outcome"
            )
            llm_calls = await cur.fetchall()
            await cur.execute(
                "select kind, extract(epoch from now() - min(run_at))::float8 as age from private.job_queue"
                " where state = 'queued' and run_at <= now() group by kind"
            )
            waiting = await cur.fetchall()
            await cur.execute(
                "select kind, count(*) as n from private.job_queue"
                " where state = 'failed' and finished_at > now() - interval '1 hour' group by kind"
            )
            failed = await cur.fetchall()
            await cur.execute(
                "select count(*) as n from private.job_workers where seen_at > now() - interval '1 minute'"
            )
            workers = await cur.fetchone()
    except Exception as error:
        # A scrape must still answer with the in-process metrics when the database is away.
        log.warning("could not read queue depth / LLM calls", extra={"error": repr(error)})
        res.metrics.database_up.set(0)
        return
    res.metrics.database_up.set(1)
    res.metrics.job_queue_oldest_seconds.clear()
    for row in waiting:
        res.metrics.job_queue_oldest_seconds.labels(row["kind"]).set(row["age"])
    res.metrics.jobs_failed.clear()
    for row in failed:
        res.metrics.jobs_failed.labels(row["kind"]).set(row["n"])
    res.metrics.job_workers.set(workers["n"] if workers else 0)
    res.metrics.job_queue_depth.clear()
    for row in depth:
        res.metrics.job_queue_depth.labels(row["kind"], row["state"]).set(row["n"])
    res.metrics.llm_calls.clear()
    for row in llm_calls:
        res.metrics.llm_calls.labels(row["provider"], row["outcome"]).set(row["n"])
