"""Prometheus metrics: what this process counts, plus facts read from the database at scrape time.

One registry per app, so several apps in one process (tests) never collide. Under several uvicorn
workers (`kamioi up` runs API_WORKERS) the stack sets PROMETHEUS_MULTIPROC_DIR: prometheus_client
then keeps every worker's counters in files there, and a scrape, whichever worker answers it, adds
them all up (MultiProcessCollector). The database facts are the same from any worker, so they are
read per scrape into metric families rather than kept in a process.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

MULTIPROC_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"

# Most requests are cache hits (~1 ms); the slow tail is analytics reads and uploads.
LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._request_children: dict[tuple[str, str, int], Histogram] = {}
        self._lookup_children: dict[tuple[str, str], Counter] = {}
        self.request_seconds = Histogram(
            "kamioi_api_request_seconds",
            "Request latency by route template, method and status.",
            ["route", "method", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.cache_lookups = Counter(
            "kamioi_api_cache_lookups",
            "Cache lookups by key family and outcome (replay, local_hit, hit, stale, miss, bypass).",
            ["key", "outcome"],
            registry=self.registry,
        )
        self.cache_computations = Counter(
            "kamioi_api_cache_computations",
            "Values computed from the database to fill the cache.",
            ["key"],
            registry=self.registry,
        )
        self.rate_limited = Counter(
            "kamioi_api_rate_limited",
            "Requests refused with 429, by limit.",
            ["limit"],
            registry=self.registry,
        )

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        child = self._request_children.get(key)
        if child is None:  # labels() validates and locks on every call; a request is only ~100 us
            child = self._request_children[key] = self.request_seconds.labels(route, method, str(status))
        child.observe(seconds)

    def count_lookup(self, family: str, outcome: str) -> None:
        key = (family, outcome)
        child = self._lookup_children.get(key)
        if child is None:
            child = self._lookup_children[key] = self.cache_lookups.labels(family, outcome)
        child.inc()

    def exposition(self, scraped: Iterable[Metric]) -> bytes:
        """The text exposition of this process's metrics (or every worker's) and `scraped` families."""
        registry = CollectorRegistry(auto_describe=False)
        if os.environ.get(MULTIPROC_DIR_ENV):
            MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        else:
            registry.register(_Registered(self.registry))
        registry.register(_Families(list(scraped)))
        return generate_latest(registry)


class _Registered(Collector):
    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry

    def collect(self) -> Iterable[Metric]:
        return self._registry.collect()


class _Families(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterable[Metric]:
        return self._families
