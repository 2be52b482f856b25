"""The `mappings.bulk_review` job: every selected pending mapping reviewed, nothing else touched."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest

from jobs import queue
from jobs.bulk_review import BULK_REVIEW_KIND
from jobs.config import get_jobs_settings
from jobs.inline import InlineRun
from kamioi.settings import Settings

ADMIN_ID = "00000000-0000-4000-a000-000000000001"

pytestmark = pytest.mark.usefixtures("stack_worker_paused")


def test_bulk_review_by_filter_rejects_only_the_selected_pending_mappings(
    settings: Settings, conn: psycopg.Connection[Any]
) -> None:
    tag = uuid.uuid4().hex[:10]
    keys = [f"bulk-{tag}-{n}" for n in range(5)]
    for n, key in enumerate(keys):
        conn.execute(
            "insert into public.llm_mappings (merchant_name, merchant_key, company_name, category, confidence)"
            " values (%s, %s, 'Acme', 'FOOD_AND_DRINK', %s)",
            (key.upper(), key, 0.2 if n < 3 else 0.9),
        )
    try:
        # Only this test's first row may match: same filter shape the API sends, narrowed to its key.
        selection = {"filter": {"max_confidence": 0.5, "merchant_key": keys[0]}}
        job_id = queue.enqueue(
            conn, BULK_REVIEW_KIND, {"decision": "rejected", "reviewer": ADMIN_ID, "selection": selection}
        )
        assert InlineRun(settings.db_url, job_id, get_jobs_settings()).run() == "succeeded"
        statuses = dict(
            conn.execute(
                "select merchant_key, status from public.llm_mappings where merchant_key = any(%s)", (keys,)
            ).fetchall()
        )
        assert statuses == {keys[0]: "rejected", **{key: "pending" for key in keys[1:]}}
        reviewer = conn.execute(
            "select reviewer::text from public.llm_mappings where merchant_key = %s", (keys[0],)
        ).fetchone()
        assert reviewer == (ADMIN_ID,)
    finally:
        conn.execute("delete from public.merchants where merchant_key = any(%s)", (keys,))
        conn.execute("delete from public.llm_mappings where merchant_key = any(%s)", (keys,))


def test_bad_payload_fails_at_once(settings: Settings, conn: psycopg.Connection[Any]) -> None:
    job_id = queue.enqueue(conn, BULK_REVIEW_KIND, {"decision": "maybe", "selection": {}})
    assert InlineRun(settings.db_url, job_id, get_jobs_settings()).run() == "failed"
