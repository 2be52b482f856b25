"""Bulk approval by filter (what an admin's "approve everything above 0.99" sends) never approves a
user's suggestion, whatever confidence or tier the row carries; by id an admin still can."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest

from jobs import queue
from jobs.bulk_review import BULK_REVIEW_KIND
from jobs.inline import InlineRun
from kamioi.settings import Settings

pytestmark = pytest.mark.usefixtures("stack_worker_paused")


def test_bulk_approval_by_confidence_skips_users_suggestions(
    settings: Settings, conn: psycopg.Connection[Any], admin_id: str, user_id: str
) -> None:
    key = f"target-{uuid.uuid4().hex[:10]}"
    # The row: a user's GME for Target claiming tier catalog and confidence 1.0, beside an
    # LLM proposal of the same confidence that the same filter does approve.
    conn.execute(
        "insert into public.llm_mappings (merchant_name, merchant_key, ticker, tier, confidence, source, submitted_by)"
        " values ('TARGET', %s, 'GME', 'catalog', 1.0, 'user', %s), ('TARGET', %s, 'TGT', 'llm', 0.995, 'llm', null)",
        (key, user_id, key),
    )
    try:
        for selection in (
            {"filter": {"merchant_key": key, "min_confidence": 0.99}},
            {"filter": {"merchant_key": key, "source": "user"}},
        ):
            job_id = queue.enqueue(
                conn, BULK_REVIEW_KIND, {"decision": "approved", "reviewer": admin_id, "selection": selection}
            )
            assert InlineRun(settings.db_url, job_id, settings).run() == "succeeded"
        statuses = dict(
            conn.execute("select ticker, status from public.llm_mappings where merchant_key = %s", (key,)).fetchall()
        )
        assert statuses == {"GME": "pending", "TGT": "approved"}
        in_force = conn.execute(
            "select m.ticker from public.merchants as mr join public.llm_mappings as m"
            " on m.id = mr.mapping_id and m.created_at = mr.mapping_created_at where mr.merchant_key = %s",
            (key,),
        ).fetchone()
        assert in_force == ("TGT",)

        [(mapping_id, created_at)] = conn.execute(
            "select id, created_at from public.llm_mappings where merchant_key = %s and source = 'user'", (key,)
        ).fetchall()
        selection_ids = {"ids": [[mapping_id, created_at.isoformat()]]}
        job_id = queue.enqueue(
            conn, BULK_REVIEW_KIND, {"decision": "approved", "reviewer": admin_id, "selection": selection_ids}
        )
        assert InlineRun(settings.db_url, job_id, settings).run() == "succeeded"
        status = conn.execute("select status from public.llm_mappings where id = %s", (mapping_id,)).fetchone()
        assert status == ("approved",)
    finally:
        conn.execute("delete from public.merchants where merchant_key = %s", (key,))
        conn.execute("delete from public.llm_mappings where merchant_key = %s", (key,))
