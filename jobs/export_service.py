"""The export API shared by the admin API, `kamioi export` and `kamioi demo`: queue, cancel, read.

Each operation is one call of a SQL function (private.create_export_job / cancel_export_job) or a row
read, built once by the functions below and run by `run` (psycopg connections: the CLI) or on the
admin API's async cursor, so no caller writes the SQL again. The export jobs migration has the contract.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

COLUMNS = (
    "id, list, filters, sort, state, queue_job_id, rows_written, bytes_written, file_name, file_sha256,"
    " download_url, attempts, error, cancel_requested, created_at, started_at, finished_at, storage_bucket,"
    " storage_path"
)


@dataclass(frozen=True)
class ExportCall:
    """One statement returning at most one export_jobs row."""

    sql: str
    params: tuple[Any, ...]


def create_call(
    list_name: str, filters: dict[str, Any], *, sort: str | None = None, requested_by: UUID | None = None
) -> ExportCall:
    """Queue an export of an admin list. Filters the list does not take raise InvalidParameterValue."""
    return ExportCall(
        f"select {COLUMNS} from private.create_export_job(%s, %s, %s, %s)",
        (list_name, Jsonb(filters), sort, requested_by),
    )


def cancel_call(export_id: int) -> ExportCall:
    """Queued: cancelled now; running: stops after its chunk. An unknown id raises NoDataFound."""
    return ExportCall(f"select {COLUMNS} from private.cancel_export_job(%s)", (export_id,))


def get_call(export_id: int) -> ExportCall:
    return ExportCall(f"select {COLUMNS} from public.export_jobs where id = %s", (export_id,))


def run(conn: psycopg.Connection[Any], call: ExportCall) -> dict[str, Any] | None:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(call.sql, call.params).fetchone()


def create_export(
    conn: psycopg.Connection[Any], list_name: str, filters: dict[str, Any], *, sort: str | None = None
) -> dict[str, Any]:
    row = run(conn, create_call(list_name, filters, sort=sort))
    assert row is not None  # the SQL function returns the row or raises
    return row
