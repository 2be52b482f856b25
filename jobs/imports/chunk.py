"""One chunk, one transaction: stage, check, de-duplicate, merge, record rejections, move the checkpoint.

The checkpoint update is a compare-and-set on the checkpoint the chunk started from and on the
worker's lease token, inside the same transaction as the rows: a chunk is committed exactly once,
whichever worker dies or stalls where.

The staging tables are TEMP tables (ON COMMIT DROP): like unlogged tables they write no WAL, and
each session has its own, so concurrent chunks and imports never share one. The transaction runs in
two phases on a non-autocommit connection: `prepare` (staging, checks, claiming identities) can
overlap the previous chunk's `commit` on another connection; `commit` runs strictly in file order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

import psycopg
from psycopg import sql

from jobs.imports.columns import ImportKind
from jobs.imports.kind_sql import KindSql
from jobs.imports.reader import Chunk, Rejection


class CheckpointMoved(Exception):
    """Another worker committed this chunk first (or the lease was lost): nothing was written."""


@dataclass(frozen=True)
class ChunkPosition:
    import_job_id: int
    queue_job_id: int
    lease_token: UUID
    start_offset: int


@dataclass(frozen=True)
class ChunkResult:
    inserted: int
    updated: int
    rejected: int
    processed_total: int
    cancel_requested: bool


class ChunkWriter:
    def __init__(self, kind: ImportKind, kind_sql: KindSql, present: list[str], seen_table: str) -> None:
        stage_columns = ["line_number bigint not null", *(f"{c.name} text" for c in kind.columns), "merchant_key text"]
        self._create = (
            f"create temp table import_stage ({', '.join(stage_columns)}) on commit drop;"
            " create temp table import_problems (line_number bigint not null, column_name text,"
            " reason text not null) on commit drop"
        )
        self._copy = sql.SQL("copy pg_temp.import_stage ({}) from stdin (format csv)").format(
            sql.SQL(", ").join(sql.Identifier(n) for n in ["line_number", *present, "merchant_key"])
        )
        # Clean, type and check each row once, and hash its identity; later statements read the result.
        self._clean = f"""
            create temp table import_clean on commit drop as
            select s.line_number, s.merchant_key, c.*, {kind_sql.problems} as problems,
                   hashtextextended({kind_sql.identity}, 0) as row_key
              from pg_temp.import_stage as s
              cross join lateral (select {kind_sql.cleaned} offset 0) as c
        """
        self._check = """
            insert into pg_temp.import_problems (line_number, column_name, reason)
            select c.line_number, split_part(p.problem, e'\\t', 1), split_part(p.problem, e'\\t', 2)
              from pg_temp.import_clean as c
              cross join lateral unnest(c.problems) as p (problem)
             where cardinality(c.problems) > 0
        """
        # Duplicates: the first line with an identity wins, across the whole file. The per-job seen
        # table maps the 64-bit identity hash to its first line. Claiming goes in line order, so ON
        # CONFLICT DO NOTHING also skips a key claimed earlier in the same statement; a key the
        # previous, still uncommitted chunk claimed makes this statement wait for that commit.
        # The next statement (a new snapshot) names the line each duplicate repeats.
        self._claim = f"""
            create temp table import_claimed on commit drop as
            with claimed as (
              insert into {seen_table} (row_key, line_number)
              select row_key, line_number from pg_temp.import_clean
               where cardinality(problems) = 0
               order by line_number
              on conflict (row_key) do nothing
              returning line_number
            )
            select line_number from claimed
        """
        self._duplicates = f"""
            insert into pg_temp.import_problems (line_number, column_name, reason)
            select c.line_number, null, 'duplicate of line '
                   || (select seen.line_number from {seen_table} as seen where seen.row_key = c.row_key)
              from pg_temp.import_clean as c
             where cardinality(c.problems) = 0
               and not exists (select 1 from pg_temp.import_claimed as k where k.line_number = c.line_number)
        """
        self._merge = kind_sql.merge

    def prepare(self, conn: psycopg.Connection[Any], chunk: Chunk) -> None:
        """Phase 1, in a transaction it leaves open: stage the rows, clean, type, check and claim their
        identities. Runs while the previous chunk commits on another connection; it writes nothing
        shared but the seen table, in file order (phase 1s run one after another)."""
        if not chunk.copy_data:
            return
        self._stage(conn, chunk)
        conn.execute(self._check)
        conn.execute(self._claim)
        conn.execute(self._duplicates)

    def replay_claims(self, conn: psycopg.Connection[Any], chunk: Chunk) -> None:
        """Claim the identities of a chunk committed in an earlier run (rebuilding a retried job's
        seen table), inside the caller's transaction: stage, clean, claim, drop the staging tables."""
        if not chunk.copy_data:
            return
        self._stage(conn, chunk)
        conn.execute(self._claim)
        conn.execute(
            "drop table pg_temp.import_stage, pg_temp.import_problems, pg_temp.import_clean, pg_temp.import_claimed"
        )

    def _stage(self, conn: psycopg.Connection[Any], chunk: Chunk) -> None:
        """COPY the chunk into the staging tables and clean/type it."""
        conn.execute(self._create)
        with conn.cursor().copy(self._copy) as copy:
            copy.write(chunk.copy_data)
        conn.execute(self._clean)

    def commit(
        self, conn: psycopg.Connection[Any], chunk: Chunk, at: ChunkPosition, rows_per_second: float
    ) -> ChunkResult:
        """Phase 2, after the previous chunk committed: merge, record rejections, move the checkpoint,
        COMMIT. On any error the caller rolls the whole chunk back."""
        inserted = updated = 0
        problems: list[tuple[int, str | None, str]] = []
        if chunk.copy_data:
            counts = conn.execute(self._merge, {"job": at.import_job_id}).fetchone()
            assert counts is not None
            inserted, updated = int(counts[0]), int(counts[1])
            problems = conn.execute(
                "select line_number, column_name, reason from pg_temp.import_problems"
                " order by line_number, column_name nulls first"
            ).fetchall()
        rejections = chunk.rejections + [
            Rejection(line, column, reason, chunk.raw.raw(line)) for line, column, reason in problems
        ]
        if rejections:
            with conn.cursor().copy(
                "copy public.import_rejections (import_job_id, line_number, column_name, reason, raw_line) from stdin"
            ) as copy:
                for r in sorted(rejections, key=lambda r: r.line_number):
                    copy.write_row((at.import_job_id, r.line_number, r.column_name, r.reason, r.raw))
        rejected = len({r.line_number for r in rejections})
        row = conn.execute(
            _ADVANCE,
            {
                "id": at.import_job_id,
                "queue_id": at.queue_job_id,
                "token": at.lease_token,
                "start": at.start_offset,
                "end": chunk.end_offset,
                "end_line": chunk.end_line,
                "rows": chunk.rows,
                "inserted": inserted,
                "updated": updated,
                "rejected": rejected,
                "last": chunk.last,
                "rps": rows_per_second,
            },
        ).fetchone()
        if row is None:
            raise CheckpointMoved
        conn.commit()
        return ChunkResult(inserted, updated, rejected, int(row[1]), bool(row[0]))


# Totals are estimated from the share of bytes read until the last chunk makes them exact.
_ADVANCE = """
    update public.import_jobs as j
       set checkpoint_offset = %(end)s,
           checkpoint_line = %(end_line)s,
           processed_rows = j.processed_rows + %(rows)s,
           inserted_rows = j.inserted_rows + %(inserted)s,
           updated_rows = j.updated_rows + %(updated)s,
           rejected_rows = j.rejected_rows + %(rejected)s,
           total_rows = case when %(last)s then j.processed_rows + %(rows)s
                             else greatest(j.processed_rows + %(rows)s,
                                           round((j.processed_rows + %(rows)s)::numeric * j.file_size
                                                 / greatest(%(end)s, 1))) end,
           total_rows_exact = %(last)s,
           rows_per_second = round(%(rps)s::numeric, 1),
           eta_seconds = case when %(last)s or %(rps)s <= 0 then 0
                              else round(greatest(j.file_size - %(end)s, 0)::numeric
                                         / greatest(%(end)s, 1) * (j.processed_rows + %(rows)s)
                                         / %(rps)s::numeric, 1) end
     where j.id = %(id)s
       and j.checkpoint_offset = %(start)s
       and exists (select 1 from private.job_queue as q
                    where q.id = %(queue_id)s and q.lease_token = %(token)s and q.state = 'running')
    returning j.cancel_requested, j.processed_rows
"""
