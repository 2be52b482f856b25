"""Every user's transactions for admins: filtered keyset pages, each row with its allocations."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import ADMIN_ERRORS, CurrentAdmin, ReadLimit, Res
from api.models.transactions import AdminTransaction, TransactionListQuery
from api.pagination import Page
from api.queries.lists import call_list_rpc

router = APIRouter(prefix="/v1/transactions", tags=["transactions"])


@router.get(
    "",
    summary="All users' transactions, newest first, filtered (keyset pages of at most 100)",
    responses=ADMIN_ERRORS,
    dependencies=[ReadLimit],
)
async def list_transactions(
    res: Res, admin: CurrentAdmin, query: Annotated[TransactionListQuery, Query()]
) -> Page[AdminTransaction]:
    filters = query.filters()
    scope = query.scope("transactions")
    args: dict[str, object] = {**filters, "limit": query.limit}
    if query.cursor is not None:
        before_date, before_id = res.cursors.decode(scope, query.cursor, 2)
        args |= {"before_date": dt.date.fromisoformat(str(before_date)), "before_id": before_id}
    rows = await call_list_rpc(
        res.pool, admin, "admin_list_transactions", args, timeout_s=res.settings.api_request_timeout_s
    )
    items = [AdminTransaction.model_validate(row) for row in rows]
    last = items[-1] if len(items) == query.limit else None
    return Page[AdminTransaction](
        items=items, next_cursor=res.cursors.encode(scope, (last.txn_date, last.id)) if last else None
    )
