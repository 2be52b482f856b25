"""The rejected-rows report of an import as CSV (line_number, column, reason, raw), streamed by COPY.

Cells that a spreadsheet would run as a formula (starting with = + - @, tab or carriage return)
are prefixed with a single quote (jobs.spreadsheet, the rule the exports follow too): the raw lines
come from an uploaded file and are untrusted.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import psycopg

from jobs.spreadsheet import inert_sql

REPORT_COPY = (
    "copy (select line_number, "
    + f'{inert_sql("column_name")} as "column", {inert_sql("reason")} as reason, {inert_sql("raw_line")} as raw'
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
