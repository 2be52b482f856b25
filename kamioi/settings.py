"""The one Settings object: read from the environment and the git-ignored `.env` that `kamioi up` writes."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from kamioi.mapping.trigram import SIMILARITY_THRESHOLD

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# A second local stack (another checkout, a parallel test run) points this at its own file.
ENV_FILE = Path(os.environ.get("KAMIOI_ENV_FILE", PROJECT_ROOT / ".env"))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=ENV_FILE, env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    # Local stack layout (kamioi up). Ports follow `supabase start` where Supabase has one.
    state_dir: Path = Field(default=PROJECT_ROOT / ".local", alias="KAMIOI_STATE_DIR")
    db_host: str = Field(default="127.0.0.1", alias="KAMIOI_DB_HOST")
    db_port: int = Field(default=54322, alias="KAMIOI_DB_PORT")
    redis_port: int = Field(default=54379, alias="KAMIOI_REDIS_PORT")
    upstash_port: int = Field(default=54380, alias="KAMIOI_UPSTASH_PORT")
    api_host: str = Field(default="127.0.0.1", alias="KAMIOI_API_HOST")
    api_port: int = Field(default=8000, alias="KAMIOI_API_PORT")
    # The local streaming hot standby of the cluster (kamioi up), which READ_REPLICA_URL points at.
    replica_port: int = Field(default=54332, alias="KAMIOI_REPLICA_PORT")
    # The local stand-ins of Supabase services the stack has no server for: Storage, and the SMTP
    # catcher (`supabase start` runs one for Auth's mails on 54324/54325).
    storage_port: int = Field(default=54390, alias="KAMIOI_STORAGE_PORT")
    smtp_catcher_port: int = Field(default=54325, alias="KAMIOI_SMTP_PORT")
    # The broker stand-in (local_stack/standins/broker_server.py), the offline default broker.
    broker_port: int = Field(default=54391, alias="KAMIOI_BROKER_PORT")
    # uvicorn worker processes `kamioi up` runs for the API (one per core is the usual start).
    api_workers: int = Field(default=2, ge=1, alias="API_WORKERS")

    # Connections. Empty means "the local stack's": see the properties below.
    database_url: str = Field(default="", alias="DATABASE_URL")
    superuser_database_url: str = Field(default="", alias="SUPERUSER_DATABASE_URL")
    read_replica_url: str = Field(default="", alias="READ_REPLICA_URL")
    # Reads routed to the replica (api/read_routing.py) go to the primary while it lags more than this.
    read_replica_max_lag_s: float = Field(default=10.0, gt=0, alias="READ_REPLICA_MAX_LAG_S")
    # How often each API process checks the replica's health and lag.
    read_replica_check_s: float = Field(default=1.0, gt=0, alias="READ_REPLICA_CHECK_S")
    upstash_redis_rest_url: str = Field(default="", alias="UPSTASH_REDIS_REST_URL")
    upstash_redis_rest_token: str = Field(default="", alias="UPSTASH_REDIS_REST_TOKEN")

    # Supabase Auth: asymmetric keys via JWKS (preferred), legacy HS256 secret when set.
    supabase_url: str = Field(default="http://127.0.0.1:54321", alias="SUPABASE_URL")
    supabase_jwt_secret: str = Field(default="", alias="SUPABASE_JWT_SECRET")
    supabase_jwks_url: str = Field(default="", alias="SUPABASE_JWKS_URL")
    supabase_jwks_path: str = Field(default="", alias="SUPABASE_JWKS_PATH")
    supabase_secret_key: str = Field(default="", alias="SUPABASE_SECRET_KEY")
    jwt_audience: str = Field(default="authenticated", alias="JWT_AUDIENCE")

    # LLM provider (OpenAI-compatible). No key means the offline provider.
    llm_base_url: str = Field(default="https://api.openai.com/v1", alias="LLM_BASE_URL")
    llm_api_key: str = Field(default="", alias="LLM_API_KEY")
    llm_model: str = Field(default="gpt-4o-mini", alias="LLM_MODEL")
    llm_batch_size: int = Field(default=50, alias="LLM_BATCH_SIZE")  # merchants per call
    llm_max_concurrency: int = Field(default=4, alias="LLM_MAX_CONCURRENCY")
    llm_timeout_s: float = Field(default=30.0, alias="LLM_TIMEOUT_S")
    llm_max_attempts: int = Field(default=5, alias="LLM_MAX_ATTEMPTS")
    llm_price_per_1k_prompt: float = Field(default=0.0, alias="LLM_PRICE_PER_1K_PROMPT")
    llm_price_per_1k_completion: float = Field(default=0.0, alias="LLM_PRICE_PER_1K_COMPLETION")

    # Merchant mapping. Precision first: by default only catalog and exact approved matches are
    # approved automatically; set a confidence to also approve verified-ticker similarity/LLM answers.
    auto_approve_min_confidence: float | None = Field(default=None, alias="AUTO_APPROVE_MIN_CONFIDENCE")
    mapping_similarity_threshold: float = Field(
        default=SIMILARITY_THRESHOLD, gt=0, le=1, alias="MAPPING_SIMILARITY_THRESHOLD"
    )
    mapping_cache_ttl_s: int = Field(default=3600, alias="MAPPING_CACHE_TTL_S")
    mapping_cache_pending_ttl_s: int = Field(default=300, alias="MAPPING_CACHE_PENDING_TTL_S")
    # Keys the provider failed on are asked again (job `mappings.reask`) after base * 2^(n-1) seconds,
    # at most max, up to max_attempts sends in all; a claim not answered within the lease is due again.
    mapping_retry_max_attempts: int = Field(default=6, ge=1, alias="MAPPING_RETRY_MAX_ATTEMPTS")
    mapping_retry_base_s: float = Field(default=60.0, gt=0, alias="MAPPING_RETRY_BASE_S")
    mapping_retry_max_s: float = Field(default=3600.0, gt=0, alias="MAPPING_RETRY_MAX_S")
    mapping_retry_lease_s: float = Field(default=900.0, gt=0, alias="MAPPING_RETRY_LEASE_S")

    # Investing round-ups (jobs/invest.py). Prices: Finnhub's quote API when PRICE_API_KEY is set, else
    # the labelled sample prices. A quote older than PRICE_MAX_AGE_S is stale (4 days: a long weekend's
    # last close is still the price to buy at); a ticker that could not be priced is asked again after
    # base * 2^(n-1) seconds, at most max. Merchants without a ticker are invested in the fallback fund
    # (empty: they stay mapped until their mapping has a ticker).
    price_api_base_url: str = Field(default="https://finnhub.io/api/v1", alias="PRICE_API_BASE_URL")
    price_api_key: str = Field(default="", alias="PRICE_API_KEY")
    price_timeout_s: float = Field(default=10.0, gt=0, alias="PRICE_TIMEOUT_S")
    price_max_attempts: int = Field(default=3, ge=1, alias="PRICE_MAX_ATTEMPTS")
    price_max_concurrency: int = Field(default=4, ge=1, alias="PRICE_MAX_CONCURRENCY")
    price_max_age_s: float = Field(default=4 * 86400.0, gt=0, alias="PRICE_MAX_AGE_S")
    price_retry_base_s: float = Field(default=300.0, gt=0, alias="PRICE_RETRY_BASE_S")
    price_retry_max_s: float = Field(default=6 * 3600.0, gt=0, alias="PRICE_RETRY_MAX_S")
    invest_fallback_ticker: str = Field(
        default="VTI", pattern=r"^([A-Z][A-Z0-9.-]{0,9})?$", alias="INVEST_FALLBACK_TICKER"
    )
    invest_chunk_rows: int = Field(default=20_000, ge=1, alias="INVEST_CHUNK_ROWS")

    # The broker (jobs/sweep.py through alpaca-py's BrokerClient; one omnibus account). With broker keys
    # in .env and no BROKER_BASE_URL: the broker's sandbox; without keys: the local stand-in on
    # KAMIOI_BROKER_PORT, whose own keys these defaults are. BROKER_BASE_URL points the SDK anywhere.
    broker_base_url: str = Field(default="", alias="BROKER_BASE_URL")
    broker_api_key: str = Field(default="", alias="BROKER_API_KEY")
    broker_secret_key: str = Field(default="", alias="BROKER_SECRET_KEY")
    broker_account_id: str = Field(default="b0b0b0b0-0000-4000-8000-00000000ca5e", alias="BROKER_ACCOUNT_ID")
    broker_min_notional: float = Field(default=1.0, gt=0, alias="BROKER_MIN_NOTIONAL")
    broker_timeout_s: float = Field(default=10.0, gt=0, alias="BROKER_TIMEOUT_S")
    broker_max_attempts: int = Field(default=5, ge=1, alias="BROKER_MAX_ATTEMPTS")
    # How long the event stream may stay quiet before the job reconciles open orders with the broker.
    broker_events_idle_s: float = Field(default=2.0, gt=0, alias="BROKER_EVENTS_IDLE_S")
    broker_assets_max_age_s: float = Field(default=3600.0, gt=0, alias="BROKER_ASSETS_MAX_AGE_S")

    # Admin API (api/). Limits follow the product brief: stats cached 5 min, uploads 5 per hour.
    api_cors_origins: list[str] = Field(
        default=["http://127.0.0.1:3000", "http://localhost:3000"], alias="API_CORS_ORIGINS"
    )
    api_request_timeout_s: float = Field(default=30.0, alias="API_REQUEST_TIMEOUT_S")
    api_upload_timeout_s: float = Field(default=900.0, alias="API_UPLOAD_TIMEOUT_S")
    # Signs the admin lists' cursors; empty: derived from SUPABASE_JWT_SECRET and SUPABASE_SECRET_KEY.
    api_cursor_secret: str = Field(default="", alias="API_CURSOR_SECRET")
    # The private Storage bucket imported files are uploaded to (signed uploads, the multipart route,
    # `kamioi import`); the workers stream them from there. Declared in supabase/config.toml.
    import_bucket: str = Field(default="imports", pattern=r"^[A-Za-z0-9._-]{1,100}$", alias="IMPORT_BUCKET")
    # CSV exports: written by the worker, downloaded through the API (both read this directory).
    export_dir: str = Field(default="", alias="EXPORT_DIR")  # empty: <state_dir>/exports
    # Finished exports are uploaded here and linked with a signed URL; empty: only the API serves them.
    export_bucket: str = Field(default="exports", alias="EXPORT_BUCKET")  # empty: <state_dir>/uploads
    # How long a signed export download link works; signed anew each time its admin reads the export.
    export_link_ttl_s: int = Field(default=300, ge=10, le=3600, alias="EXPORT_LINK_TTL_S")
    api_upload_max_bytes: int = Field(default=512 * 1024 * 1024, alias="API_UPLOAD_MAX_BYTES")
    api_db_pool_min: int = Field(default=1, alias="API_DB_POOL_MIN")
    api_db_pool_max: int = Field(default=10, alias="API_DB_POOL_MAX")
    api_stats_ttl_s: int = Field(default=300, alias="API_STATS_TTL_S")
    api_stats_stale_s: int = Field(default=300, alias="API_STATS_STALE_S")
    api_local_cache_s: float = Field(default=1.0, alias="API_LOCAL_CACHE_S")
    # How long a rendered admin aggregate is replayed per process (api.replay); 0 turns replay off.
    api_replay_s: float = Field(default=1.0, alias="API_REPLAY_S")
    api_cache_op_timeout_s: float = Field(default=0.5, alias="API_CACHE_OP_TIMEOUT_S")
    # How long a user's profile role is remembered per process (api.roles); a role change clears it at once.
    api_role_cache_s: float = Field(default=5.0, ge=0, le=5, alias="API_ROLE_CACHE_S")
    api_rate_uploads_per_hour: int = Field(default=5, alias="API_RATE_UPLOADS_PER_HOUR")
    api_rate_writes_per_minute: int = Field(default=60, alias="API_RATE_WRITES_PER_MINUTE")
    api_rate_reads_per_minute: int = Field(default=600, alias="API_RATE_READS_PER_MINUTE")
    api_log_level: str = Field(default="INFO", alias="API_LOG_LEVEL")
    # LISTEN needs a session: on hosted Supabase the direct or session-mode URL, never port 6543.
    api_listen_database_url: str = Field(default="", alias="API_LISTEN_DATABASE_URL")
    # Supabase Storage's REST root (imports from a bucket, exports); empty: <SUPABASE_URL>/storage/v1.
    supabase_storage_url: str = Field(default="", alias="SUPABASE_STORAGE_URL")
    # Supabase Realtime's URL for progress bars (`kamioi import`); empty: LISTEN on the database.
    supabase_realtime_url: str = Field(default="", alias="SUPABASE_REALTIME_URL")

    # Mails about finished jobs (jobs/mail.py), sent by the worker over SMTP. Locally the stack's
    # SMTP catcher. A failed send is tried again after base * 2^(n-1) seconds (at most max), up to
    # max_attempts sends; then the mail is dead (kept in private.mail_outbox with its last error).
    smtp_host: str = Field(default="127.0.0.1", alias="SMTP_HOST")
    smtp_port: int = Field(default=54325, alias="SMTP_PORT")
    smtp_username: str = Field(default="", alias="SMTP_USERNAME")
    smtp_password: str = Field(default="", alias="SMTP_PASSWORD")
    smtp_starttls: bool = Field(default=False, alias="SMTP_STARTTLS")
    smtp_timeout_s: float = Field(default=10.0, gt=0, alias="SMTP_TIMEOUT_S")
    mail_from: str = Field(default="Kamioi <no-reply@kamioi.local>", alias="MAIL_FROM")
    mail_max_attempts: int = Field(default=6, ge=1, alias="MAIL_MAX_ATTEMPTS")
    mail_retry_base_s: float = Field(default=30.0, gt=0, alias="MAIL_RETRY_BASE_S")
    mail_retry_max_s: float = Field(default=3600.0, gt=0, alias="MAIL_RETRY_MAX_S")
    # Where a link in a mail that is a path (/v1/imports/7) points; empty: the admin API's local URL.
    mail_link_base_url: str = Field(default="", alias="MAIL_LINK_BASE_URL")

    # The worker and its jobs.
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

    @property
    def db_url(self) -> str:
        return self.database_url or (f"postgresql://postgres:postgres@{self.db_host}:{self.db_port}/postgres")

    @property
    def superuser_db_url(self) -> str:
        return self.superuser_database_url or (
            f"postgresql://supabase_admin:postgres@{self.db_host}:{self.db_port}/postgres"
        )

    @property
    def local_replica_url(self) -> str:
        """The local stack's standby, as the role the API connects with."""
        return f"postgresql://postgres:postgres@{self.db_host}:{self.replica_port}/postgres"

    @property
    def api_url(self) -> str:
        return f"http://{self.api_host}:{self.api_port}"

    @property
    def jwt_issuer(self) -> str:
        return f"{self.supabase_url.rstrip('/')}/auth/v1"

    @property
    def keys_dir(self) -> Path:
        return self.state_dir / "keys"

    @property
    def exports_dir(self) -> Path:
        return Path(self.export_dir) if self.export_dir else self.state_dir / "exports"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
