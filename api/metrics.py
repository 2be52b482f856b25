"""Prometheus metrics, one registry per app so several apps (tests, workers) never collide."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Most requests are cache hits (~1 ms); the slow tail is analytics reads and uploads.
LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.request_seconds = Histogram(
            "kamioi_api_request_seconds",
            "Request latency by route template, method and status.",
            ["route", "method", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.cache_lookups = Counter(
            "kamioi_api_cache_lookups",
            "Cache lookups by key family and outcome (hit, local_hit, stale, miss, bypass).",
            ["key", "outcome"],
            registry=self.registry,
        )
        self.cache_computations = Counter(
            "kamioi_api_cache_computations",
            "Values computed from the database to fill the cache.",
            ["key"],
            registry=self.registry,
        )
        self.job_queue_depth = Gauge(
            "kamioi_job_queue_depth",
            "Jobs in private.job_queue by kind and status, read at scrape time.",
            ["kind", "status"],
            registry=self.registry,
        )
        self.llm_calls = Gauge(
            "kamioi_llm_calls",
            "LLM calls in the last hour (public.llm_calls ledger) by provider and outcome, read at scrape time.",
            ["provider", "outcome"],
            registry=self.registry,
        )
        # Alert-worthy, read at scrape time: a backlog nobody works, jobs that gave up, no worker alive,
        # the database unreachable from this process.
        self.job_queue_oldest_seconds = Gauge(
            "kamioi_job_queue_oldest_seconds",
            "Age of the oldest due queued job, by kind (0 when none waits).",
            ["kind"],
            registry=self.registry,
        )
        self.jobs_failed = Gauge(
            "kamioi_jobs_failed_last_hour",
            "Jobs that ended failed in the last hour, by kind.",
            ["kind"],
            registry=self.registry,
        )
        self.job_workers = Gauge(
            "kamioi_job_workers",
            "Worker processes that heartbeated in the last minute.",
            registry=self.registry,
        )
        self.database_up = Gauge(
            "kamioi_database_up",
            "1 when this process's last scrape-time queries succeeded, else 0.",
            registry=self.registry,
        )
        self.rate_limited = Counter(
            "kamioi_api_rate_limited",
            "Requests refused with 429, by limit.",
            ["limit"],
            registry=self.registry,
        )
