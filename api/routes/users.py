"""Users for admins, with their transaction count and amount invested (maintained, never counted)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import ADMIN_ERRORS, CurrentAdmin, ReadLimit, Res
from api.models.users import AdminUser, UserListQuery
from api.pagination import Page
from api.queries.lists import call_list_rpc

router = APIRouter(prefix="/v1/users", tags=["users"])


@router.get(
    "",
    summary="Users newest first, or by email for an email prefix (keyset pages of at most 100)",
    responses=ADMIN_ERRORS,
    dependencies=[ReadLimit],
)
async def list_users(res: Res, admin: CurrentAdmin, query: Annotated[UserListQuery, Query()]) -> Page[AdminUser]:
    filters = query.filters()
    scope = query.scope("users")
    by_email = query.email_prefix is not None
    args: dict[str, object] = {**filters, "limit": query.limit}
    if query.cursor is not None:
        after, after_id = res.cursors.decode(scope, query.cursor, 2)
        args["after_id"] = after_id
        if by_email:
            args["after_email"] = after
        else:
            args["after_created_at"] = dt.datetime.fromisoformat(str(after))
    rows = await call_list_rpc(res.pool, admin, "admin_list_users", args, timeout_s=res.settings.api_request_timeout_s)
    items = [AdminUser.model_validate(row) for row in rows]
    next_cursor = None
    if len(items) == query.limit:
        last = items[-1]
        next_cursor = res.cursors.encode(scope, ((last.email or "").lower() if by_email else last.created_at, last.id))
    return Page[AdminUser](items=items, next_cursor=next_cursor)
