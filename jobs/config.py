"""Tuning knobs of the worker and the import pipeline (env or the stack's `.env`)."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from kamioi.settings import ENV_FILE


class JobsSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=ENV_FILE, env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    # A worker that stops heartbeating loses its jobs after this long; heartbeats run 3x per lease.
    lease_seconds: float = Field(default=30.0, gt=0, alias="KAMIOI_JOBS_LEASE_SECONDS")
    # Idle workers wake on NOTIFY; this poll only covers a lost notification or a dropped LISTEN.
    poll_seconds: float = Field(default=30.0, gt=0, alias="KAMIOI_JOBS_POLL_SECONDS")
    # Retry n waits min(cap, base * 2**(n-1)) seconds, plus up to 25% jitter.
    backoff_base_seconds: float = Field(default=5.0, ge=0, alias="KAMIOI_JOBS_BACKOFF_BASE_SECONDS")
    backoff_cap_seconds: float = Field(default=600.0, ge=0, alias="KAMIOI_JOBS_BACKOFF_CAP_SECONDS")
    max_attempts: int = Field(default=5, ge=1, alias="KAMIOI_JOBS_MAX_ATTEMPTS")

    # Rows per import chunk: one transaction, one checkpoint, one progress message each.
    import_chunk_rows: int = Field(default=50_000, ge=1, alias="KAMIOI_IMPORT_CHUNK_ROWS")
    # A CSV field longer than this rejects its row.
    import_max_field_chars: int = Field(default=100_000, ge=1000, alias="KAMIOI_IMPORT_MAX_FIELD_CHARS")
    # A record longer than this (bytes, line breaks included) rejects its row unread: it bounds the
    # worker's memory whatever a file holds. Real rows are well under 1 KB.
    import_max_row_bytes: int = Field(default=64 * 1024, ge=1024, alias="KAMIOI_IMPORT_MAX_ROW_BYTES")

    # Rows per export chunk: one page call, one write and one checkpoint each; memory is one chunk.
    export_chunk_rows: int = Field(default=5000, ge=1, le=100_000, alias="KAMIOI_EXPORT_CHUNK_ROWS")

    @property
    def heartbeat_seconds(self) -> float:
        return self.lease_seconds / 3


@lru_cache(maxsize=1)
def get_jobs_settings() -> JobsSettings:
    return JobsSettings()
