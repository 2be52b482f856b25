"""Checks of every service the product depends on, each saying what is wrong and which setting fixes it.

`kamioi doctor` runs them against the environment it is given (the local `.env`, or a production one
through `--env-file`). Product code only: nothing here knows the local stack, so the same checks
judge a hosted project. A check answers ok, warn (works, but not as deployed products should) or
fail (the product would break); the command exits non-zero on any failure.
"""

from __future__ import annotations

import re
import smtplib
import socket
import ssl
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import httpx
import psycopg
from storage3.exceptions import StorageApiError
from supabase import SupabaseStorageClient
from upstash_redis import Redis

from kamioi.replication import REPLICA_LAG_SQL
from kamioi.settings import PROJECT_ROOT, Settings
from kamioi.storage import storage_url

Status = Literal["ok", "warn", "fail"]
MIGRATIONS_DIR = PROJECT_ROOT / "supabase" / "migrations"
CONNECT_TIMEOUT_S = 5
HTTP_TIMEOUT = httpx.Timeout(10.0)
REQUIRED_EXTENSIONS = ("pg_trgm", "pgcrypto", "pg_cron")
CRON_JOB = re.compile(r"cron\.schedule\(\s*'([^']+)'")
MIGRATION_VERSION = re.compile(r"^(\d{14})_.+\.sql$")


@dataclass(frozen=True)
class Finding:
    check: str
    status: Status
    detail: str
    fix: str = ""  # the setting (or step) that fixes it


class CheckFailed(Exception):
    def __init__(self, detail: str, fix: str, status: Status = "fail") -> None:
        super().__init__(detail)
        self.detail, self.fix, self.status = detail, fix, status


def _connect(url: str, setting: str) -> psycopg.Connection[Any]:
    try:
        return psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT_S, autocommit=True, prepare_threshold=None)
    except psycopg.Error as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CheckFailed(f"cannot connect: {first_line}", setting) from error


def _redacted(url: str) -> str:
    return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", url)


# Database ------------------------------------------------------------------------------------------
def database(settings: Settings) -> str:
    with _connect(settings.db_url, "DATABASE_URL") as conn:
        row = conn.execute("select current_setting('server_version'), current_user").fetchone()
    assert row is not None
    return f"{_redacted(settings.db_url)}: PostgreSQL {row[0]} as {row[1]}"


def database_listen(settings: Settings) -> str:
    """LISTEN needs a session (the API's listener, every worker): a direct or session-mode connection."""
    url, setting = (
        (settings.api_listen_database_url, "API_LISTEN_DATABASE_URL")
        if settings.api_listen_database_url
        else (settings.db_url, "DATABASE_URL")
    )
    channel = f"kamioi_doctor_{uuid.uuid4().hex[:12]}"
    with _connect(url, setting) as conn:
        conn.execute(f"listen {channel}")
        conn.execute("select pg_notify(%s, 'ping')", (channel,))
        received = next(conn.notifies(timeout=5, stop_after=1), None)
    if received is None:
        raise CheckFailed(
            f"{_redacted(url)} did not deliver a NOTIFY to its own LISTEN (a transaction-mode pooler, port 6543?)",
            f"{setting}: the direct or session-mode (port 5432) connection string",
        )
    return f"{_redacted(url)}: LISTEN/NOTIFY round trip"


def replica(settings: Settings) -> str:
    if not settings.read_replica_url:
        raise CheckFailed("no read replica: analytics read the primary", "READ_REPLICA_URL (optional)", "warn")
    with _connect(settings.read_replica_url, "READ_REPLICA_URL") as conn:
        row = conn.execute(REPLICA_LAG_SQL).fetchone()
    assert row is not None
    in_recovery, lag_s = row
    if not in_recovery:
        raise CheckFailed("READ_REPLICA_URL is not a standby (not in recovery)", "READ_REPLICA_URL: the replica's URL")
    if lag_s > settings.read_replica_max_lag_s:
        raise CheckFailed(
            f"lagging {lag_s:.1f}s (reads go to the primary past {settings.read_replica_max_lag_s:g}s)",
            "the replica's health, or READ_REPLICA_MAX_LAG_S",
            "warn",
        )
    return f"{_redacted(settings.read_replica_url)}: standby, lag {lag_s:.1f}s"


def extensions(settings: Settings) -> str:
    with _connect(settings.db_url, "DATABASE_URL") as conn:
        present = {name for (name,) in conn.execute("select extname from pg_extension").fetchall()}
    missing = [name for name in REQUIRED_EXTENSIONS if name not in present]
    if missing:
        raise CheckFailed(
            f"missing extensions: {', '.join(missing)}", "enable them (Database > Extensions), then `supabase db push`"
        )
    return ", ".join(REQUIRED_EXTENSIONS)


def migrations(settings: Settings, migrations_dir: Path = MIGRATIONS_DIR) -> str:
    wanted = sorted(m[1] for p in migrations_dir.glob("*.sql") if (m := MIGRATION_VERSION.match(p.name)))
    if not wanted:
        raise CheckFailed(f"no migrations in {migrations_dir}", "run doctor from the repository", "warn")
    with _connect(settings.db_url, "DATABASE_URL") as conn:
        try:
            rows = conn.execute("select version from supabase_migrations.schema_migrations").fetchall()
        except psycopg.errors.UndefinedTable as error:
            raise CheckFailed("no migration history (never pushed)", "`supabase db push`") from error
    applied = {version for (version,) in rows}
    missing = [version for version in wanted if version not in applied]
    if missing:
        raise CheckFailed(
            f"{len(missing)} of {len(wanted)} migrations not applied (first: {missing[0]})", "`supabase db push`"
        )
    return f"all {len(wanted)} applied (latest {wanted[-1]})"


def access_token_hook(settings: Settings) -> str:
    """The hook exists, Auth's role may run it, and it puts user_role into a token's claims."""
    with _connect(settings.db_url, "DATABASE_URL") as conn:
        try:
            row = conn.execute(
                "select has_function_privilege('supabase_auth_admin', 'public.custom_access_token_hook(jsonb)',"
                " 'execute'), public.custom_access_token_hook(jsonb_build_object('user_id', %s::text,"
                " 'claims', '{}'::jsonb)) -> 'claims' ->> 'user_role'",
                (str(uuid.uuid4()),),
            ).fetchone()
        except psycopg.Error as error:
            raise CheckFailed("public.custom_access_token_hook is missing", "`supabase db push`") from error
    assert row is not None
    may_run, role = row
    if not may_run:
        raise CheckFailed("supabase_auth_admin may not execute the hook", "`supabase db push` (its grants)")
    if role != "user":
        raise CheckFailed(f"the hook set user_role to {role!r} for an unknown user", "`supabase db push`")
    return (
        "public.custom_access_token_hook adds user_role; enable it in Auth > Hooks"
        " (config.toml [auth.hook.custom_access_token] locally)"
    )


def cron_jobs(settings: Settings, migrations_dir: Path = MIGRATIONS_DIR) -> str:
    wanted = sorted({name for p in migrations_dir.glob("*.sql") for name in CRON_JOB.findall(p.read_text())})
    with _connect(settings.db_url, "DATABASE_URL") as conn:
        try:
            rows = conn.execute("select jobname, active from cron.job").fetchall()
        except psycopg.Error as error:
            raise CheckFailed("pg_cron is not installed", "enable pg_cron, then `supabase db push`") from error
    active = {name for name, is_active in rows if is_active}
    missing = [name for name in wanted if name not in active]
    if missing:
        raise CheckFailed(f"not scheduled (or inactive): {', '.join(missing)}", "`supabase db push`")
    return f"{len(wanted)} scheduled: {', '.join(wanted)}"


# Storage, cache, mail ------------------------------------------------------------------------------
def buckets(settings: Settings) -> str:
    key = settings.supabase_secret_key
    if not key:
        raise CheckFailed("no secret key for Storage", "SUPABASE_SECRET_KEY")
    headers = {"Authorization": f"Bearer {key}", "apikey": key}
    found = []
    with httpx.Client(timeout=HTTP_TIMEOUT) as http:
        client = SupabaseStorageClient(storage_url(settings), headers, http_client=http)
        for name, setting in ((settings.import_bucket, "IMPORT_BUCKET"), (settings.export_bucket, "EXPORT_BUCKET")):
            try:
                bucket = client.get_bucket(name)
            except StorageApiError as error:
                raise CheckFailed(
                    f"bucket {name!r}: Storage answered {error.status} ({error.message})",
                    f"create it (`supabase seed buckets --linked`), or {setting}; SUPABASE_SECRET_KEY",
                ) from error
            except httpx.HTTPError as error:
                raise CheckFailed(
                    f"Storage at {storage_url(settings)} is unreachable: {type(error).__name__}",
                    "SUPABASE_URL or SUPABASE_STORAGE_URL",
                ) from error
            if bucket.public:
                raise CheckFailed(
                    f"bucket {name!r} is public: anyone could read imports and exports", f"make {name!r} private"
                )
            found.append(name)
    return f"{', '.join(found)} present and private"


def upstash(settings: Settings) -> str:
    if not settings.upstash_redis_rest_url:
        raise CheckFailed(
            "no Upstash: aggregates are computed per process, rate limits are off", "UPSTASH_REDIS_REST_URL", "warn"
        )
    redis = Redis(
        settings.upstash_redis_rest_url, settings.upstash_redis_rest_token, rest_retries=0, allow_telemetry=False
    )
    try:
        answer = redis.ping()
    except Exception as error:  # the client raises its own and httpx's errors alike
        raise CheckFailed(
            f"{settings.upstash_redis_rest_url}: {type(error).__name__}: {str(error)[:120]}",
            "UPSTASH_REDIS_REST_URL, UPSTASH_REDIS_REST_TOKEN",
        ) from error
    return f"{settings.upstash_redis_rest_url}: {answer}"


def smtp(settings: Settings) -> str:
    try:
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout_s) as client:
            client.ehlo()
            if settings.smtp_starttls:
                client.starttls(context=ssl.create_default_context())
                client.ehlo()
            if settings.smtp_username:
                client.login(settings.smtp_username, settings.smtp_password)
    except smtplib.SMTPAuthenticationError as error:
        raise CheckFailed(f"login refused: {error.smtp_code}", "SMTP_USERNAME, SMTP_PASSWORD") from error
    except (OSError, smtplib.SMTPException) as error:
        raise CheckFailed(
            f"{settings.smtp_host}:{settings.smtp_port}: {type(error).__name__}: {error}",
            "SMTP_HOST, SMTP_PORT, SMTP_STARTTLS",
        ) from error
    login = f" as {settings.smtp_username}" if settings.smtp_username else ""
    return f"{settings.smtp_host}:{settings.smtp_port}{login}"


# Paid providers ------------------------------------------------------------------------------------
def _provider_get(
    url: str, headers: dict[str, str], name: str, settings_hint: str, params: dict[str, str]
) -> httpx.Response:
    try:
        response = httpx.get(url, headers=headers, params=params, timeout=HTTP_TIMEOUT)
    except httpx.HTTPError as error:
        raise CheckFailed(f"{name} at {url} is unreachable: {type(error).__name__}", settings_hint) from error
    if response.status_code in (401, 403):
        raise CheckFailed(f"{name} refused the key ({response.status_code})", settings_hint)
    if response.status_code != 200:
        raise CheckFailed(f"{name} answered {response.status_code}", settings_hint)
    return response


def llm(settings: Settings) -> str:
    if not settings.llm_api_key:
        raise CheckFailed(
            "no LLM_API_KEY: the offline provider maps (new merchants wait for review)", "LLM_API_KEY", "warn"
        )
    base = settings.llm_base_url.rstrip("/")
    _provider_get(
        f"{base}/models",
        {"Authorization": f"Bearer {settings.llm_api_key}"},
        "the LLM",
        "LLM_BASE_URL, LLM_API_KEY",
        {},
    )
    return f"{base}: key accepted (model {settings.llm_model})"


def prices(settings: Settings) -> str:
    if not settings.price_api_key:
        raise CheckFailed(
            "no PRICE_API_KEY: round-ups are invested at the labelled sample prices", "PRICE_API_KEY", "warn"
        )
    base = settings.price_api_base_url.rstrip("/")
    response = _provider_get(
        f"{base}/quote",
        {"X-Finnhub-Token": settings.price_api_key},
        "the price feed",
        "PRICE_API_BASE_URL, PRICE_API_KEY",
        {"symbol": "VTI"},
    )
    quote = response.json()
    if not isinstance(quote, dict) or not quote.get("c"):
        raise CheckFailed(f"the price feed has no quote for VTI: {str(quote)[:100]}", "PRICE_API_BASE_URL")
    return f"{base}: key accepted (VTI {quote['c']})"


CHECKS: tuple[tuple[str, Callable[[Settings], str]], ...] = (
    ("database", database),
    ("database (LISTEN)", database_listen),
    ("read replica", replica),
    ("extensions", extensions),
    ("migrations", migrations),
    ("access-token hook", access_token_hook),
    ("pg_cron jobs", cron_jobs),
    ("storage buckets", buckets),
    ("upstash", upstash),
    ("smtp", smtp),
    ("llm", llm),
    ("prices", prices),
)


def run_checks(settings: Settings) -> Iterator[tuple[Finding, float]]:
    """Every check, in order, with how long it took; a check never raises."""
    socket.setdefaulttimeout(CONNECT_TIMEOUT_S * 2)  # nothing may hang the report
    for name, check in CHECKS:
        started = time.monotonic()
        try:
            finding = Finding(name, "ok", check(settings))
        except CheckFailed as problem:
            finding = Finding(name, problem.status, problem.detail, problem.fix)
        except Exception as error:  # a check's own bug must not hide the other checks' answers
            finding = Finding(name, "fail", f"{type(error).__name__}: {error}", "see the error")
        yield finding, time.monotonic() - started
