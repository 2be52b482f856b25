"""Runs commands on redis-server over a bounded pool of raw connections.

Commands go straight to the connection (no redis-py response callbacks), so replies keep the
shape Redis gave them: bytes, ints, nulls, nested arrays and errors.
"""

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from redis._parsers import _AsyncRESP2Parser
from redis.asyncio.connection import AbstractConnection, BlockingConnectionPool
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from local_stack.standins.upstash_proxy.commands import Command
from local_stack.standins.upstash_proxy.config import ProxyConfig
from local_stack.standins.upstash_proxy.replies import RedisReply
from local_stack.standins.upstash_proxy.scripts import ScriptRegistry


class RedisUnavailable(Exception):
    """redis-server cannot be reached or did not answer in time (answered with HTTP 503)."""


class TransactionAborted(Exception):
    """Redis discarded a MULTI/EXEC block because a command could not be queued (HTTP 400)."""


class VerbatimErrorParser(_AsyncRESP2Parser):
    """Keeps error replies whole ("ERR ...", "NOSCRIPT ..."): redis-py would strip known prefixes."""

    EXCEPTION_CLASSES = {}


class RedisRunner:
    def __init__(self, pool: BlockingConnectionPool) -> None:
        self._pool = pool
        self._scripts = ScriptRegistry()
        # Command name -> whether redis-server flags it read-only; only names it knows (~240) are kept.
        self._read_only: dict[bytes, bool] = {}

    @classmethod
    def from_config(cls, config: ProxyConfig) -> "RedisRunner":
        pool = BlockingConnectionPool.from_url(
            config.redis_url,
            max_connections=config.max_connections,
            timeout=config.pool_timeout,
            socket_connect_timeout=config.connect_timeout,
            socket_timeout=config.command_timeout,
            parser_class=VerbatimErrorParser,
        )
        return cls(pool)

    async def close(self) -> None:
        await self._pool.disconnect()

    async def pipeline(self, commands: Sequence[Command]) -> list[RedisReply]:
        """Sends all commands in one write and returns one reply (or error) per command."""
        if not commands:
            return []
        replies = await self._round_trip([self._scripts.prepare(command) for command in commands])
        return [self._scripts.present(c, r) for c, r in zip(commands, replies, strict=True)]

    async def transaction(self, commands: Sequence[Command]) -> list[RedisReply]:
        """Runs the commands atomically inside MULTI/EXEC; returns one reply per command."""
        if not commands:
            return []
        prepared = [self._scripts.prepare(command) for command in commands]
        replies = await self._round_trip([[b"MULTI"], *prepared, [b"EXEC"]])
        queued, outcome = replies[1:-1], replies[-1]
        if not isinstance(outcome, list):
            cause = next((reply for reply in queued if isinstance(reply, ResponseError)), None)
            reason = f"EXECABORT Transaction discarded because of: {cause}" if cause else str(outcome)
            raise TransactionAborted(reason)
        return [self._scripts.present(c, r) for c, r in zip(commands, outcome, strict=True)]

    async def writes_in(self, commands: Sequence[Command]) -> int:
        """How many of the commands may have written (redis-server's own ``readonly`` flag says which did not).

        Asked per command name with COMMAND INFO, once per name: the whole COMMAND table is ~200 KB, and
        parsing it when a restarted proxy took its first burst of requests delayed them by seconds.
        """
        unknown = sorted({command[0].lower() for command in commands} - self._read_only.keys())
        if unknown:
            (infos,) = await self._round_trip([[b"COMMAND", b"INFO", *unknown]])
            if isinstance(infos, list):
                for name, info in zip(unknown, infos, strict=False):
                    if isinstance(info, list):  # nil for a name redis-server does not know
                        self._read_only[name] = _read_only_flag(info)
        return sum(not self._read_only.get(command[0].lower(), False) for command in commands)

    async def _round_trip(self, commands: Sequence[Command]) -> list[RedisReply]:
        async with self._connection() as connection:
            await connection.send_packed_command(connection.pack_commands(commands))
            return [await _read_reply(connection) for _ in commands]

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[AbstractConnection]:
        try:
            connection = await self._pool.get_connection()  # type: ignore[no-untyped-call]  # untyped in redis-py
        except RedisError as error:
            raise RedisUnavailable(f"ERR redis unavailable: {error}") from error
        try:
            yield connection
        except (RedisConnectionError, RedisTimeoutError) as error:
            # redis-py already dropped the socket; the pool reconnects it on next use.
            raise RedisUnavailable(f"ERR redis unavailable: {error}") from error
        finally:
            await self._pool.release(connection)


async def _read_reply(connection: AbstractConnection) -> RedisReply:
    try:
        reply: RedisReply = await connection.read_response()
    except ResponseError as error:
        return error
    return reply


def _read_only_flag(entry: list[RedisReply]) -> bool:
    """An entry of COMMAND INFO is [name, arity, flags, ...]."""
    flags = entry[2] if len(entry) > 2 else None
    return isinstance(flags, list) and b"readonly" in flags
