"""Review of merchant mappings: the pending queue, single reviews, and bulk reviews as a job."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Path, Query, status

from api.cursors import SIGNED_CURSOR_PATTERN
from api.deps import ADMIN_ERRORS, READ_SOURCE, CurrentAdmin, ReadDb, ReadLimit, Res, ReviewLimit, WriteLimit
from api.models.mappings import (
    BulkReviewRequest,
    JobAccepted,
    Mapping,
    MappingListQuery,
    ResolvedDescriptor,
    ResolveRequest,
    ResolveResponse,
    ReviewRequest,
)
from api.pagination import Page
from api.problems import problem_responses
from api.queries import mappings as queries
from api.queries.lists import call_list_rpc
from api.queries.resolve import resolve as resolve_descriptors

router = APIRouter(prefix="/v1/mappings", tags=["mappings"])

MappingId = Annotated[int, Path(ge=1, le=2**63 - 1)]


@router.get(
    "",
    summary="The LLM Center: all mappings filtered, newest first or by confidence (keyset pages of at most 50)",
    responses={**ADMIN_ERRORS, 200: {"headers": READ_SOURCE}},
    dependencies=[ReadLimit],
)
async def list_mappings(
    res: Res, admin: CurrentAdmin, read: ReadDb, query: Annotated[MappingListQuery, Query()]
) -> Page[Mapping]:
    filters = query.filters()  # sort included: a cursor continues one order only
    scope = query.scope("mappings")
    args: dict[str, object] = {**filters, "limit": query.limit}
    if query.cursor is not None:
        after, after_id = res.cursors.decode(scope, query.cursor, 2)
        args["after_id"] = after_id
        if query.sort == "newest":
            args["after_created_at"] = dt.datetime.fromisoformat(str(after))
        else:
            args["after_confidence"] = Decimal(str(after))
    rows = await read.run(
        lambda pool: call_list_rpc(
            pool, admin, "admin_list_mappings", args, timeout_s=res.settings.api_request_timeout_s
        )
    )
    items = [Mapping.model_validate(row) for row in rows]
    next_cursor = None
    if len(items) == query.limit:
        last = items[-1]
        confidence = -1 if last.confidence is None else last.confidence  # the RPC's coalesce(confidence, -1)
        sort_key = last.created_at if query.sort == "newest" else f"{confidence:.4f}"
        next_cursor = res.cursors.encode(scope, (sort_key, last.id))
    return Page[Mapping](items=items, next_cursor=next_cursor)


@router.get(
    "/pending",
    summary="The review queue, newest first (keyset pages of at most 50)",
    responses=ADMIN_ERRORS,
    dependencies=[ReadLimit],
)
async def list_pending(
    res: Res,
    admin: CurrentAdmin,
    cursor: Annotated[
        str | None, Query(pattern=SIGNED_CURSOR_PATTERN, description="next_cursor of the previous page")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=50)] = 50,
) -> Page[Mapping]:
    after = res.cursors.decode_timestamp_id("pending", cursor) if cursor is not None else None
    rows = await queries.list_pending(res.pool, admin, after, limit, timeout_s=res.settings.api_request_timeout_s)
    items = [Mapping.model_validate(row) for row in rows]
    last = items[-1] if len(items) == limit else None
    next_cursor = res.cursors.encode("pending", (last.created_at, last.id)) if last else None
    return Page[Mapping](items=items, next_cursor=next_cursor)


@router.post(
    "/{mapping_id}/review",
    summary="Approve (and put in force for its merchant) or reject one mapping",
    responses={**ADMIN_ERRORS, **problem_responses(404)},
    dependencies=[ReviewLimit],
)
async def review(res: Res, admin: CurrentAdmin, mapping_id: MappingId, body: ReviewRequest) -> Mapping:
    row = await queries.review(
        res.pool, admin, mapping_id, body.created_at, body.decision, timeout_s=res.settings.api_request_timeout_s
    )
    # The review has committed. The database announces it too (NOTIFY, debounced), but this admin's
    # next read must see it, and the resolver must not serve the old answer from its cache. Both
    # invalidations are best effort: with Upstash away the entries live out their TTL. Independent,
    # so one round trip's wait rather than two.
    await asyncio.gather(res.cache.invalidate(), res.mapping_cache.invalidate([row["merchant_key"]]))
    return Mapping.model_validate(row)


@router.post(
    "/bulk-review",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Approve or reject many pending mappings, by ids or by filter, as a background job",
    responses=ADMIN_ERRORS,
    dependencies=[ReviewLimit],
)
async def bulk_review(res: Res, admin: CurrentAdmin, body: BulkReviewRequest) -> JobAccepted:
    selection = (
        {"ids": [[key.id, key.created_at.isoformat()] for key in body.ids]}
        if body.ids is not None
        else {"filter": body.filter.model_dump(mode="json", exclude_none=True) if body.filter else {}}
    )
    job_id = await queries.enqueue_bulk_review(
        res.pool, admin, body.decision, selection, timeout_s=res.settings.api_request_timeout_s
    )
    return JobAccepted(job_id=job_id, kind=queries.BULK_REVIEW_KIND, status_url=f"/v1/jobs/{job_id}")


@router.post(
    "/resolve",
    summary="Map a batch of descriptors to company/ticker/category (approved, catalog, similarity, LLM)",
    responses=ADMIN_ERRORS,
    dependencies=[WriteLimit],
)
async def resolve(res: Res, _: CurrentAdmin, body: ResolveRequest) -> ResolveResponse:
    resolutions = await resolve_descriptors(res.settings, body.descriptors, save=body.save, cache=res.mapping_cache)
    return ResolveResponse(
        results=[
            ResolvedDescriptor.model_validate(
                {"descriptor": r.descriptor, "processor": r.processor, "merchant": dataclasses.asdict(r.merchant)}
            )
            for r in resolutions
        ]
    )
