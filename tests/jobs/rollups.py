"""Every chart rollup compared with the same aggregate recomputed from the base tables (the
`private.analytics_*_scan` references), over a window that holds every row the tests write."""

from __future__ import annotations

from typing import Any

import psycopg

from jobs import queue
from jobs.backfill_rollups import BACKFILL_KIND
from jobs.inline import InlineRun
from tests.jobs.support import jobs_settings

# insert_transactions dates rows up to 500 days back; mappings are created now.
WINDOW = "current_date - 800, current_date + 1"

# (chart, rollup query, scan query): each pair must return the same rows.
CHARTS = (
    ("category months", f"select * from private.analytics_category_months({WINDOW})",
     f"select * from private.analytics_category_months_scan({WINDOW})"),
    ("category months, a window cutting months", "select * from private.analytics_category_months("
     "current_date - 95, current_date - 3)", "select * from private.analytics_category_months_scan("
     "current_date - 95, current_date - 3)"),
    ("top merchants", f"select * from private.analytics_top_merchants({WINDOW}, 100)",
     f"select * from private.analytics_top_merchants_scan({WINDOW}, 100)"),
    ("activity per day", f"select * from private.analytics_activity({WINDOW}, 'day')",
     f"select * from private.analytics_activity_scan({WINDOW}, 'day')"),
    ("activity per month", f"select * from private.analytics_activity({WINDOW}, 'month')",
     f"select * from private.analytics_activity_scan({WINDOW}, 'month')"),
    ("ticker months", f"select * from private.analytics_ticker_months({WINDOW})",
     f"select * from private.analytics_ticker_months_scan({WINDOW})"),
    ("mapping throughput", "select day, created, auto_approved, admin_approved, rejected, pending"
     f" from private.analytics_mapping_throughput({WINDOW}) where created <> 0",
     f"select * from private.analytics_mapping_throughput_scan({WINDOW})"),
    ("reviews per day", f"select day, reviewed from private.analytics_mapping_throughput({WINDOW})"
     " where reviewed <> 0",
     "select (reviewed_at at time zone 'UTC')::date, count(*) from public.llm_mappings"
     " where reviewed_at >= (current_date - 800)::timestamp at time zone 'UTC' group by 1"),
)  # fmt: skip


def rollup_drift(conn: psycopg.Connection[Any]) -> dict[str, list[tuple[Any, ...]]]:
    """Per chart, the rows that only the rollup or only the recomputation returns (empty: exact).
    Both run in one repeatable-read snapshot, so concurrent writers cannot make them differ."""
    drift: dict[str, list[tuple[Any, ...]]] = {}
    with conn.transaction():
        conn.execute("set transaction isolation level repeatable read")
        for chart, rollup, scan in CHARTS:
            rows = conn.execute(
                f"(({rollup}) except all ({scan})) union all (({scan}) except all ({rollup}))"
            ).fetchall()
            if rows:
                drift[chart] = rows
    return drift


def run_backfill(db_url: str, conn: psycopg.Connection[Any], chunk_ids: int) -> str | None:
    job = queue.enqueue(conn, BACKFILL_KIND, {"chunk_ids": chunk_ids})
    return InlineRun(db_url, job, jobs_settings()).run()
