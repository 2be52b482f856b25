"""Who is an admin right now: the profile's role, never the token's claim.

An access token's `user_role` claim is what the role was when the token was issued (it lives an
hour); public.profiles.role is the authority (private.is_admin() and the access token hook read it).
Every admin request checks the profile, cached answers included (api.deps.require_admin, and
api.replay before replaying a rendered aggregate). Lookups are remembered per process for at most
`ttl_s` (API_ROLE_CACHE_S, at most 5 s), and forgotten at once when the database announces a role
change: a trigger on profiles sends NOTIFY on ROLE_CHANNEL with the user's id (migration
20261207200100_profile_role_notify.sql), heard by RoleChangeListener on its own session connection.
While the listener is away the TTL alone bounds how long a demoted admin is still answered.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import psycopg

from api.db import Pool, as_owner
from api.notify import ChannelListener

ROLE_CHANNEL = "kamioi_profile_role"
MAX_ENTRIES = 10_000


class ProfileRoles:
    def __init__(self, pool: Pool, *, ttl_s: float, timeout_s: float) -> None:
        self._pool = pool
        self._ttl_s = ttl_s
        self._timeout_s = timeout_s
        self._roles: dict[str, tuple[float, str | None]] = {}
        self._inflight: dict[str, asyncio.Future[str | None]] = {}
        # Bumped by every forget: a lookup that started before it must not store its (older) answer.
        self._epoch = 0

    def cached(self, user_id: str) -> str | None:
        """The user's role if it was read less than ttl_s ago, else None (ask role())."""
        entry = self._roles.get(user_id)
        if entry is None or time.monotonic() - entry[0] >= self._ttl_s:
            return None
        return entry[1]

    async def role(self, user_id: str) -> str | None:
        """The user's profile role ('admin', 'user'), None for a user without a profile."""
        entry = self._roles.get(user_id)
        if entry is not None and time.monotonic() - entry[0] < self._ttl_s:
            return entry[1]
        inflight = self._inflight.get(user_id)
        if inflight is not None:
            try:
                return await asyncio.shield(inflight)
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise
                return await self._read(user_id)  # the leader's client went away: read on our own
        future: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self._inflight[user_id] = future
        try:
            epoch, read_at = self._epoch, time.monotonic()
            role = await self._read(user_id)
            if epoch == self._epoch:
                if len(self._roles) >= MAX_ENTRIES:
                    self._roles.clear()
                self._roles[user_id] = (read_at, role)
            future.set_result(role)
            return role
        except Exception as error:
            future.set_exception(error)
            future.exception()  # retrieved: followers re-raise it, nobody else has to
            raise
        except BaseException:
            future.cancel()
            raise
        finally:
            del self._inflight[user_id]

    def forget(self, user_id: str | None = None) -> None:
        """Drop one user's role (a change was announced), or every role (None: changes may have been missed)."""
        self._epoch += 1
        if user_id is None:
            self._roles.clear()
        else:
            self._roles.pop(user_id, None)

    async def _read(self, user_id: str) -> str | None:
        async with as_owner(self._pool, timeout_s=self._timeout_s) as cur:
            await cur.execute("select role from public.profiles where id = %s::uuid", (user_id,))
            row = await cur.fetchone()
        return None if row is None else str(row["role"])


class RoleChangeListener(ChannelListener):
    """LISTEN on ROLE_CHANNEL: each notification forgets that user's role in `roles`."""

    channel, name = ROLE_CHANNEL, "role-change-listener"

    def __init__(self, url: str, roles: ProfileRoles) -> None:
        super().__init__(url)
        self._roles = roles

    async def consume(self, conn: psycopg.AsyncConnection[Any]) -> None:
        async for notify in conn.notifies():
            self._roles.forget(notify.payload or None)

    async def caught_up(self) -> None:
        self._roles.forget()  # roles may have changed while we were away
