"""The LLM ledger in Postgres: every provider attempt becomes one public.llm_calls row."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection

from kamioi.mapping.providers.base import CallRecord

INSERT_CALL = """
insert into public.llm_calls
  (provider, model, prompt_version, merchants, prompt_tokens, completion_tokens, cost_usd,
   latency_ms, outcome, error, attempt, job_id)
values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
"""


class DatabaseCallRecorder:
    """Writes each attempt at once on its own connection, so the spend is on record even when the
    caller's transaction rolls back (a dry run, a crash mid-batch)."""

    def __init__(self, conn: AsyncConnection[Any], job_id: int | None = None) -> None:
        if not conn.autocommit:
            raise ValueError("the ledger connection must be in autocommit mode")
        self._conn = conn
        self._job_id = job_id
        self.calls = 0

    async def record(self, rec: CallRecord) -> None:
        await self._conn.execute(
            INSERT_CALL,
            (
                rec.provider,
                rec.model,
                rec.prompt_version,
                rec.merchants,
                rec.prompt_tokens,
                rec.completion_tokens,
                rec.cost_usd,
                rec.latency_ms,
                rec.outcome,
                # The error text comes from a remote server: keep the ledger row small.
                rec.error[:1000] if rec.error else None,
                rec.attempt,
                self._job_id,
            ),
        )
        self.calls += 1
