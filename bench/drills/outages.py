"""The dependencies a drill takes away and gives back: `down()` breaks, `up()` restores."""

from __future__ import annotations

from typing import Protocol

from bench.drills.processes import UpstashProxyProcess
from bench.drills.tcp_proxy import TcpProxy
from local_stack.postgres import LocalPostgres
from local_stack.redis_server import LocalRedis


class Outage(Protocol):
    name: str

    def down(self) -> None: ...

    def up(self) -> None: ...


class CutDatabaseConnections:
    """Every connection through the relay dropped and new ones refused: a restart, as clients see it."""

    name = "database connections cut"

    def __init__(self, proxy: TcpProxy) -> None:
        self.proxy = proxy

    def down(self) -> None:
        self.proxy.cut()

    def up(self) -> None:
        self.proxy.restore()


class RestartPostgres:
    """The stack's real PostgreSQL: `pg_ctl stop -m fast` (sessions terminated), then started again."""

    name = "PostgreSQL restarted"

    def __init__(self, postgres: LocalPostgres) -> None:
        self.postgres = postgres

    def down(self) -> None:
        self.postgres.stop()

    def up(self) -> None:
        self.postgres.start()


class KillUpstashProxy:
    name = "Upstash endpoint killed (-9)"

    def __init__(self, proxy: UpstashProxyProcess) -> None:
        self.proxy = proxy

    def down(self) -> None:
        self.proxy.kill9()

    def up(self) -> None:
        self.proxy.start()


class StopRedis:
    """The stack's redis-server behind the Upstash endpoint: stopped, then started empty."""

    name = "redis-server stopped"

    def __init__(self, redis: LocalRedis) -> None:
        self.redis = redis

    def down(self) -> None:
        self.redis.stop()

    def up(self) -> None:
        self.redis.start()
