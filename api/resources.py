"""Everything the app holds open for its lifetime, created and closed by the lifespan."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx

from api.auth import JwksKeys, TokenVerifier
from api.cache import AggregateCache, CachePolicy
from api.cursors import CursorSigner
from api.db import Pool, create_pool
from api.metrics import Metrics
from api.notify import StatsChangeListener
from api.ratelimit import RateLimits
from api.read_routing import ReadRouter
from api.roles import ProfileRoles, RoleChangeListener
from api.upstash import Upstash, create_redis
from kamioi.mapping.cache import UpstashMappingCache
from kamioi.settings import Settings

log = logging.getLogger("api.lifespan")

REPLICA_CONNECT_TIMEOUT_S = 1.0


@dataclass(frozen=True)
class Resources:
    settings: Settings
    metrics: Metrics
    pool: Pool
    # Reads that may go to the read replica (READ_REPLICA_URL): routes take them through api.deps.ReadDb.
    reads: ReadRouter
    http: httpx.AsyncClient
    upstash: Upstash
    cache: AggregateCache
    # The resolver's per-merchant cache, on the same Upstash client; reviews invalidate entries.
    mapping_cache: UpstashMappingCache
    limits: RateLimits
    verifier: TokenVerifier
    listener: StatsChangeListener
    cursors: CursorSigner
    # Profile roles: every admin request is checked against them (api.deps.require_admin, api.replay).
    roles: ProfileRoles


@asynccontextmanager
async def open_resources(settings: Settings, metrics: Metrics) -> AsyncIterator[Resources]:
    pool = create_pool(
        settings.db_url, name="primary", min_size=settings.api_db_pool_min, max_size=settings.api_db_pool_max
    )
    # Not waiting for connections: the process starts (liveness) even while the database is down;
    # /readyz reports it until it is back.
    await pool.open(wait=False)
    http = httpx.AsyncClient(timeout=httpx.Timeout(10.0), follow_redirects=False)
    upstash = Upstash(
        create_redis(settings.upstash_redis_rest_url, settings.upstash_redis_rest_token),
        timeout_s=settings.api_cache_op_timeout_s,
    )
    cache = AggregateCache(
        upstash,
        metrics,
        CachePolicy(
            ttl_s=settings.api_stats_ttl_s, stale_s=settings.api_stats_stale_s, local_s=settings.api_local_cache_s
        ),
    )
    keys = (
        JwksKeys(http=http, url=settings.supabase_jwks_url, path=settings.supabase_jwks_path)
        if settings.supabase_jwks_url or settings.supabase_jwks_path
        else None
    )
    verifier = TokenVerifier(
        keys=keys,
        jwt_secret=settings.supabase_jwt_secret,
        secret_api_key=settings.supabase_secret_key,
        audience=settings.jwt_audience,
        issuer=settings.jwt_issuer,
    )
    listener = StatsChangeListener(settings.api_listen_database_url or settings.db_url, cache)
    listener.start()
    roles = ProfileRoles(pool, ttl_s=settings.api_role_cache_s, timeout_s=settings.api_request_timeout_s)
    role_listener = RoleChangeListener(settings.api_listen_database_url or settings.db_url, roles)
    role_listener.start()
    reads = ReadRouter(
        pool,
        settings.read_replica_url,
        lambda: create_pool(
            settings.read_replica_url,
            name="replica",
            min_size=settings.api_db_pool_min,
            max_size=settings.api_db_pool_max,
            # A replica that is down must cost a read little time: it then goes to the primary.
            timeout_s=REPLICA_CONNECT_TIMEOUT_S,
            check=True,
        ),
        max_lag_s=settings.read_replica_max_lag_s,
        check_every_s=settings.read_replica_check_s,
    )
    await reads.open()
    try:
        yield Resources(
            settings=settings,
            metrics=metrics,
            pool=pool,
            reads=reads,
            http=http,
            upstash=upstash,
            cache=cache,
            mapping_cache=UpstashMappingCache(
                upstash.redis,
                ttl_s=settings.mapping_cache_ttl_s,
                pending_ttl_s=settings.mapping_cache_pending_ttl_s,
                op_timeout_s=settings.api_cache_op_timeout_s,
            ),
            limits=RateLimits(upstash, settings, metrics),
            verifier=verifier,
            listener=listener,
            cursors=CursorSigner.from_settings(settings),
            roles=roles,
        )
    finally:
        await reads.close()
        await listener.stop()
        await role_listener.stop()
        await cache.close()
        await upstash.redis.close()
        await http.aclose()
        await pool.close()
