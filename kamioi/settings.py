"""The one Settings object: read from the environment and the git-ignored `.env` that `kamioi up` writes."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

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

    # Connections. Empty means "the local stack's": see the properties below.
    database_url: str = Field(default="", alias="DATABASE_URL")
    superuser_database_url: str = Field(default="", alias="SUPERUSER_DATABASE_URL")
    read_replica_url: str = Field(default="", alias="READ_REPLICA_URL")
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

    @property
    def db_url(self) -> str:
        return self.database_url or (
            f"postgresql://postgres:postgres@{self.db_host}:{self.db_port}/postgres"
        )

    @property
    def superuser_db_url(self) -> str:
        return self.superuser_database_url or (
            f"postgresql://supabase_admin:postgres@{self.db_host}:{self.db_port}/postgres"
        )

    @property
    def jwt_issuer(self) -> str:
        return f"{self.supabase_url.rstrip('/')}/auth/v1"

    @property
    def keys_dir(self) -> Path:
        return self.state_dir / "keys"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
