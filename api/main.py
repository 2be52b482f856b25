"""The app factory. Run: uvicorn api.main:app (see docs/architecture.md for the stack command)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.middleware.gzip import GZipMiddleware
from starlette.types import ASGIApp

from api.db import install_db_error_handlers
from api.docs import install_docs
from api.jsonlog import configure_logging
from api.metrics import Metrics
from api.middleware import BodyLimitMiddleware, RequestContextMiddleware, TimeoutMiddleware
from api.openapi import install_openapi
from api.problems import install_problem_handlers
from api.query_params import reject_unknown_query_params
from api.replay import ReplayMiddleware
from api.resources import open_resources
from api.routes import analytics, exports, health, imports, jobs, mappings, metrics, stats, transactions, users
from kamioi.settings import Settings, get_settings

GZIP_MIN_BYTES = 500
# JSON bodies are read whole before validation; the largest valid one (a 1000-id bulk review) is ~100 KB.
MAX_JSON_BODY_BYTES = 1024 * 1024
# Streamed uploads and Storage downloads get API_UPLOAD_TIMEOUT_S instead of the request timeout
# (their database statements keep the short statement_timeout).
LONG_PATHS = ("/v1/imports/upload", "/v1/imports")
# Admin aggregates that are the same for every admin, and the cache family each reads: their rendered
# responses are replayed for API_REPLAY_S (api.replay).
REPLAYED_PATHS = {
    "/v1/stats/dashboard": "dashboard_stats",
    "/v1/analytics/categories": "analytics_categories",
    "/v1/analytics/top-merchants": "analytics_top_merchants",
    "/v1/analytics/mapping-throughput": "analytics_mapping_throughput",
    "/v1/analytics/investing": "analytics_investing",
    "/v1/analytics/activity": "analytics_activity",
    "/v1/analytics/tickers": "analytics_tickers",
}
# Bodies streamed into Storage under API_UPLOAD_MAX_BYTES by api.uploads, never held in memory or on disk.
STREAMED_BODY_PATHS = ("/v1/imports/upload",)


class KamioiAPI(FastAPI):
    """FastAPI with api.replay in front of its whole middleware stack (error handling included):
    a replayed aggregate skips every layer, and is logged and timed by the replay itself."""

    def __init__(self, *, replay_max_age_s: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.replay_max_age_s = replay_max_age_s

    def build_middleware_stack(self) -> ASGIApp:
        return ReplayMiddleware(super().build_middleware_stack(), REPLAYED_PATHS, self.replay_max_age_s)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.api_log_level)
    app_metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_resources(settings, app_metrics) as resources:
            app.state.resources = resources
            yield

    app = KamioiAPI(
        # A replay renders the per-process cache layer: it never outlives it.
        replay_max_age_s=min(settings.api_replay_s, settings.api_local_cache_s),
        # Metrics are Prometheus (api.metrics); FastAPI's OpenTelemetry bridge would only cost a
        # provider lookup per request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
        title="Kamioi admin API",
        version="1.0.0",
        description=(
            "Privileged actions for Kamioi admins: imports, mapping review, cached dashboard "
            "aggregates. Authenticate with a Supabase access token of a user whose profile role is admin, or "
            "with the project's sb_secret_ key. Errors are application/problem+json."
        ),
        lifespan=lifespan,
        dependencies=[Depends(reject_unknown_query_params)],
        docs_url=None,  # api.docs serves them with local assets
        redoc_url=None,
    )
    install_problem_handlers(app)
    install_db_error_handlers(app)
    routers = (health, metrics, stats, analytics, imports, mappings, transactions, users, exports, jobs)
    for module in routers:
        app.include_router(module.router)
    install_openapi(app)
    install_docs(app)

    # Added innermost first: the request-context layer wraps everything, so even a timeout's 504
    # and a crash's 500 carry the request id and are logged and timed.
    app.add_middleware(BodyLimitMiddleware, max_bytes=MAX_JSON_BODY_BYTES, exempt_paths=STREAMED_BODY_PATHS)
    app.add_middleware(GZipMiddleware, minimum_size=GZIP_MIN_BYTES)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.api_cors_origins,
        allow_methods=["GET", "POST"],
        allow_headers=["authorization", "apikey", "content-type", "x-request-id"],
        expose_headers=["x-request-id", "x-cache", "retry-after"],
        max_age=600,
    )
    app.add_middleware(
        TimeoutMiddleware,
        timeout_s=settings.api_request_timeout_s,
        long_paths=dict.fromkeys(LONG_PATHS, settings.api_upload_timeout_s),
    )
    app.add_middleware(RequestContextMiddleware, metrics=app_metrics)
    return app


app = create_app()
