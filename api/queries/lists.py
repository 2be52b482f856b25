"""The admin lists' RPCs, run as the calling admin (PostgREST's way), so their checks and RLS apply."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from api.auth import Principal
from api.db import Pool, as_caller

ListRpc = Literal["admin_list_transactions", "admin_list_mappings", "admin_list_users"]


async def call_list_rpc(
    pool: Pool, caller: Principal, rpc: ListRpc, args: Mapping[str, object], *, timeout_s: float
) -> list[dict[str, Any]]:
    """`select * from public.<rpc>(p_name => value, ...)`: one statement, the page and what it carries."""
    named = ", ".join(f"p_{name} => %({name})s" for name in args)
    async with as_caller(pool, caller, read_only=True, timeout_s=timeout_s, path=f"/rpc/{rpc}") as cur:
        await cur.execute(f"select * from public.{rpc}({named})", dict(args))
        return await cur.fetchall()
