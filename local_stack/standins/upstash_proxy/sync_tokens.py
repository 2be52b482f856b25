"""``Upstash-Sync-Token``: read-your-writes, as Upstash offers it, over one redis-server.

Upstash answers every request with a sync token naming the primary's state after it; a request that
carries one is answered only once the member serving it has reached that state
(https://upstash.com/docs/redis/howto/readyourwrites). Here one redis-server is every member, so the state is the
number of writes this proxy has had acknowledged, and the token is ``<epoch>.<writes>``. The epoch names
this proxy process: a token from an earlier process names writes that redis-server acknowledged before
this process started, so it is satisfied at once.
"""

import asyncio
import secrets

HEADER = "Upstash-Sync-Token"


class SyncTokenError(ValueError):
    """A token this proxy never issued and cannot reach (answered with HTTP 400)."""


class WriteClock:
    def __init__(self, wait_timeout: float) -> None:
        self._epoch = secrets.token_hex(6)
        self._writes = 0
        self._advanced = asyncio.Condition()
        self._wait_timeout = wait_timeout

    @property
    def token(self) -> str:
        return f"{self._epoch}.{self._writes}"

    async def advance(self, writes: int) -> None:
        """Records writes redis-server has acknowledged."""
        if writes:
            async with self._advanced:
                self._writes += writes
                self._advanced.notify_all()

    async def reach(self, token: str) -> None:
        """Returns once the state is at least the token's; an empty token (a first request) waits for nothing."""
        if not token:
            return
        epoch, dot, writes = token.partition(".")
        if not dot or not writes.isdigit():
            raise SyncTokenError(f"ERR invalid {HEADER}")
        if epoch != self._epoch:
            return
        target = int(writes)
        async with self._advanced:
            try:
                await asyncio.wait_for(self._advanced.wait_for(lambda: self._writes >= target), self._wait_timeout)
            except TimeoutError:
                raise SyncTokenError(f"ERR {HEADER} is ahead of the server's state") from None
