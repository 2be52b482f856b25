"""The `transactions.link` job: the backlog a bounded review left pending is linked in chunks, once."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest

from jobs import link_transactions, queue
from jobs.inline import InlineRun
from kamioi.settings import Settings, get_settings

pytestmark = pytest.mark.usefixtures("stack_worker_paused")


def approve_with_backlog(conn: psycopg.Connection[Any], user_id: str, backlog: int, inline_rows: int) -> str:
    """A merchant with `backlog` pending purchases whose mapping an admin approves with a small bound."""
    key = f"link-{uuid.uuid4().hex[:10]}"
    conn.execute(
        "insert into public.transactions (user_id, txn_date, descriptor, merchant_key, amount, status)"
        " select %s, current_date - (g %% 60), 'LINK ' || g, %s, 10, 'pending' from generate_series(1, %s) as g",
        (user_id, key, backlog),
    )
    with conn.transaction():
        conn.execute("select set_config('kamioi.link_inline_rows', %s, true)", (str(inline_rows),))
        conn.execute(
            "with m as (insert into public.llm_mappings (merchant_name, merchant_key, company_name, status,"
            " admin_approved) values (%s, %s, 'Link Co', 'approved', true) returning id, created_at)"
            " insert into public.merchants (merchant_key, display_name, mapping_id, mapping_created_at)"
            " select %s, 'Link Co', id, created_at from m",
            (key.upper(), key, key),
        )
    return key


def statuses(conn: psycopg.Connection[Any], key: str) -> dict[str, int]:
    rows = conn.execute(
        "select status, count(*) from public.transactions where merchant_key = %s group by status", (key,)
    ).fetchall()
    return {status: int(n) for status, n in rows}


def link_job_ids(conn: psycopg.Connection[Any], key: str) -> list[int]:
    rows = conn.execute(
        "select id from private.job_queue where kind = %s and payload ->> 'merchant_key' = %s",
        (link_transactions.LINK_KIND, key),
    ).fetchall()
    return [int(row[0]) for row in rows]


def test_the_job_links_the_rest_of_the_backlog_in_chunks(
    settings: Settings, conn: psycopg.Connection[Any], user_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = approve_with_backlog(conn, user_id, backlog=12, inline_rows=5)
    assert statuses(conn, key) == {"mapped": 5, "pending": 7}
    [job_id] = link_job_ids(conn, key)

    monkeypatch.setattr(link_transactions, "CHUNK_ROWS", 3)
    assert InlineRun(settings.db_url, job_id, get_settings()).run() == "succeeded"
    assert statuses(conn, key) == {"mapped": 12}

    # Run again (as after a crash past the last chunk): nothing left, nothing changed.
    again = queue.enqueue(conn, link_transactions.LINK_KIND, {"merchant_key": key})
    assert InlineRun(settings.db_url, again, get_settings()).run() == "succeeded"
    assert statuses(conn, key) == {"mapped": 12}


def test_a_backlog_within_the_bound_queues_no_job(conn: psycopg.Connection[Any], user_id: str) -> None:
    key = approve_with_backlog(conn, user_id, backlog=4, inline_rows=5)
    assert statuses(conn, key) == {"mapped": 4}
    assert link_job_ids(conn, key) == []


def test_a_payload_without_a_merchant_key_fails_at_once(settings: Settings, conn: psycopg.Connection[Any]) -> None:
    job_id = queue.enqueue(conn, link_transactions.LINK_KIND, {"merchant": "typo"})
    assert InlineRun(settings.db_url, job_id, get_settings()).run() == "failed"
