"""The rejected-rows report of an import as CSV (line_number, column, reason, raw), streamed by COPY.

Cells that a spreadsheet would run as a formula (starting with = + - @, tab or carriage return)
are prefixed with a single quote: the raw lines come from an uploaded file and are untrusted.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import psycopg


def _safe(column: str) -> str:
    return f"case when {column} ~ '^[=+\\-@\\t\\r]' then '''' || {column} else {column} end"


REPORT_COPY = (
    "copy (select line_number, "
    + f'{_safe("column_name")} as "column", {_safe("reason")} as reason, {_safe("raw_line")} as raw'
    + " from public.import_rejections where import_job_id = %s order by line_number, id)"
    + " to stdout (format csv, header)"
)


def iter_rejections_csv(conn: psycopg.Connection[Any], import_job_id: int) -> Iterator[bytes]:
    with conn.cursor() as cur, cur.copy(REPORT_COPY, (import_job_id,)) as copy:
        for data in copy:
            yield bytes(data)


async def aiter_rejections_csv(conn: psycopg.AsyncConnection[Any], import_job_id: int) -> AsyncIterator[bytes]:
    async with conn.cursor() as cur, cur.copy(REPORT_COPY, (import_job_id,)) as copy:
        async for data in copy:
            yield bytes(data)
