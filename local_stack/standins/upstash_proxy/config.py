"""Runtime settings of the proxy, filled from the command line."""

from dataclasses import dataclass


@dataclass(frozen=True)
class ProxyConfig:
    redis_url: str
    token: str
    max_connections: int = 64
    # Seconds a request may wait for a free pooled connection before it gets a 503.
    pool_timeout: float = 5.0
    # Short, so a stopped redis-server turns into a quick 503 instead of a hung request.
    connect_timeout: float = 1.0
    # Upper bound for one round trip; also caps blocking commands such as BLPOP.
    command_timeout: float = 10.0
    # Longest wait for the state an Upstash-Sync-Token names; only a token this proxy never issued waits it out.
    sync_wait_timeout: float = 5.0
