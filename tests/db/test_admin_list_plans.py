"""The admin lists' common filter combinations are served by an index that yields their order: with
sequential scans and sorts priced out, the plan of each page query (logged by auto_explain as the
page function runs it) has neither a Seq Scan nor a Sort, and an equality filter is an index
condition (seeking), not a filter over the date walk. A filter without such an index would keep a
scan of every row (a partition read, every match sorted, or every row filtered), whatever the size."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from kamioi.db import connect, postgrest_preamble
from kamioi.settings import Settings

# (rpc, arguments, columns one of which must be an index condition of every scan of the list's table)
COMBINATIONS: list[tuple[str, str, tuple[str, ...]]] = [
    ("admin_list_transactions", "", ()),
    ("admin_list_transactions", "p_status => 'failed'", ("status",)),
    ("admin_list_transactions", "p_user_id => '00000000-0000-4000-a000-000000000002'", ("user_id",)),
    ("admin_list_transactions", "p_merchant_key => 'starbucks'", ("merchant_key",)),
    ("admin_list_transactions", "p_mapping_id => 1", ("mapping_id",)),
    ("admin_list_transactions", "p_import_job_id => 1", ("import_job_id",)),
    ("admin_list_transactions", "p_date_from => '2026-01-01', p_date_to => '2026-03-31'", ("txn_date",)),
    ("admin_list_transactions", "p_status => 'mapped', p_date_from => '2026-01-01'", ("status",)),
    ("admin_list_transactions", "p_user_id => gen_random_uuid(), p_status => 'invested'", ("user_id", "status")),
    ("admin_list_transactions", "p_amount_min => 10, p_amount_max => 20", ()),
    ("admin_list_transactions", "p_before_date => '2026-02-01', p_before_id => 1000", ("txn_date",)),
    ("admin_list_mappings", "", ()),
    ("admin_list_mappings", "p_status => 'approved'", ("status",)),
    ("admin_list_mappings", "p_category => 'TRAVEL'", ("category",)),
    ("admin_list_mappings", "p_source => 'admin'", ("source",)),
    ("admin_list_mappings", "p_status => 'rejected', p_category => 'TRAVEL'", ("status", "category")),
    ("admin_list_mappings", "p_sort => 'confidence_desc'", ()),
    ("admin_list_mappings", "p_sort => 'confidence_asc', p_after_confidence => 0.5, p_after_id => 10", ("confidence",)),
    ("admin_list_mappings", "p_after_created_at => now(), p_after_id => 10", ("created_at",)),
    ("admin_list_users", "", ()),
    ("admin_list_users", "p_email_prefix => 'user'", ("email",)),
    (
        "admin_list_users",
        "p_email_prefix => 'user', p_after_email => 'user-5', p_after_id => gen_random_uuid()",
        ("email",),
    ),
]
# What identifies the statement a page function runs for its page, and its table's partitions.
PAGE_QUERY = {
    "admin_list_transactions": ("from public.transactions as t", "transactions"),
    "admin_list_mappings": ("from public.llm_mappings as m", "llm_mappings"),
    "admin_list_users": ("from public.profiles as p where", "profiles"),
}


@pytest.fixture
def explained(settings: Settings, admin_id: str) -> Iterator[psycopg.Connection[Any]]:
    with connect(settings.superuser_db_url, autocommit=True) as conn:
        conn.execute("load 'auto_explain'")
        for name, value in {
            "auto_explain.log_min_duration": "0",
            "auto_explain.log_nested_statements": "on",
            "auto_explain.log_level": "notice",
            "auto_explain.log_format": "json",
            "enable_seqscan": "off",
            "enable_sort": "off",
        }.items():
            conn.execute(f"set {name} = '{value}'")
        yield conn


def nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from nodes(child)


def page_plans(notices: list[str], rpc: str) -> list[dict[str, Any]]:
    """The plan of the page query (its CTE when the statement also gathers what the page carries)."""
    marker, _ = PAGE_QUERY[rpc]
    plans = []
    for text in notices:
        logged = json.loads(text[text.index("{") :])
        if marker in logged["Query Text"]:
            root = logged["Plan"]
            plans += [n for n in nodes(root) if n.get("Subplan Name") == "CTE page"] or [root]
    return plans


@pytest.mark.parametrize(("rpc", "args", "index_columns"), COMBINATIONS)
def test_an_index_serves_filter_and_order(
    explained: psycopg.Connection[Any], admin_id: str, rpc: str, args: str, index_columns: tuple[str, ...]
) -> None:
    notices: list[str] = []
    explained.add_notice_handler(lambda diag: notices.append(diag.message_primary or ""))
    with explained.transaction():
        postgrest_preamble(explained, "authenticated", {"sub": admin_id, "user_role": "admin"})
        explained.execute(f"select * from public.{rpc}({args})").fetchall()
    plans = page_plans([n for n in notices if '"Plan"' in n], rpc)
    assert plans, f"no page query logged for {rpc}({args})"
    for plan in plans:
        found = {n["Node Type"] for n in nodes(plan) if n["Node Type"] in ("Seq Scan", "Sort")}
        assert not found, f"{rpc}({args}): {sorted(found)}"
        scans = [n for n in nodes(plan) if n.get("Relation Name", "").startswith(PAGE_QUERY[rpc][1])]
        assert scans, f"{rpc}({args}): no scan of the list's table"
        # Tiny partitions may tie on cost, so one seeking scan proves the index serves the filter.
        seeks = [s for s in scans if any(re.search(rf"\b{c}\b", s.get("Index Cond", "")) for c in index_columns)]
        assert not index_columns or seeks, (
            f"{rpc}({args}): every scan filters instead of seeking: {scans[0].get('Filter')}"
        )
