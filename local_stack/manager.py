"""`kamioi up | stop | status | reset`: bring the local stack up idempotently and report on it."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from kamioi.settings import ENV_FILE, Settings
from local_stack.buckets import declared_buckets, ensure_buckets
from local_stack.envfile import write_env_file
from local_stack.keys import KeyMaterial, ensure_keys
from local_stack.postgres import LocalPostgres
from local_stack.redis_server import LocalRedis
from local_stack.replica import LocalReplica
from local_stack.replica import describe as describe_replica
from local_stack.services import (
    Service,
    admin_api,
    broker_server,
    mail_dir,
    smtp_catcher,
    storage_server,
    upstash_proxy,
    worker,
)
from local_stack.standins.smtp_catcher import Inbox


@dataclass
class Stack:
    settings: Settings
    postgres: LocalPostgres = field(init=False)
    redis: LocalRedis = field(init=False)
    replica: LocalReplica = field(init=False)

    def __post_init__(self) -> None:
        self.postgres = LocalPostgres(self.settings)
        self.redis = LocalRedis(self.settings)
        self.replica = LocalReplica(self.settings)

    @property
    def keys(self) -> KeyMaterial:
        return ensure_keys(self.settings.keys_dir)

    def services(self) -> list[Service]:
        return [
            upstash_proxy(self.settings),
            storage_server(self.settings),
            smtp_catcher(self.settings),
            broker_server(self.settings),
            admin_api(self.settings),
            worker(self.settings),
        ]

    @contextmanager
    def worker_paused(self) -> Iterator[None]:
        """Stop the worker `kamioi up` runs (it would race a test's, drill's or bench's own workers for
        their jobs) and start it again afterwards, if it was running."""
        service = next(s for s in self.services() if s.name == "worker")
        was_running = service.stop(self.settings)
        try:
            yield
        finally:
            if was_running:
                service.start(self.settings, self.env_values())

    def env_values(self) -> dict[str, str]:
        s, keys = self.settings, self.keys
        return {
            "DATABASE_URL": s.db_url,
            "SUPERUSER_DATABASE_URL": s.superuser_db_url,
            "READ_REPLICA_URL": s.local_replica_url,
            "REDIS_URL": self.redis.url,
            "UPSTASH_REDIS_REST_URL": f"http://127.0.0.1:{s.upstash_port}",
            "UPSTASH_REDIS_REST_TOKEN": keys.upstash_token,
            "SUPABASE_URL": s.supabase_url,
            "SUPABASE_JWT_SECRET": keys.jwt_secret,
            "SUPABASE_JWKS_PATH": str(s.keys_dir / "jwks.json"),
            "SUPABASE_SECRET_KEY": keys.secret_key,
            "SUPABASE_PUBLISHABLE_KEY": keys.publishable_key,
            "SUPABASE_STORAGE_URL": f"http://127.0.0.1:{s.storage_port}/storage/v1",
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(s.smtp_catcher_port),
            "KAMIOI_API_URL": s.api_url,
            # Where this stack lives: a new shell in this checkout finds a second stack (own ports and
            # state) from .env alone.
            "KAMIOI_STATE_DIR": str(s.state_dir),
            "KAMIOI_DB_PORT": str(s.db_port),
            "KAMIOI_REPLICA_PORT": str(s.replica_port),
            "KAMIOI_REDIS_PORT": str(s.redis_port),
            "KAMIOI_UPSTASH_PORT": str(s.upstash_port),
            "KAMIOI_API_PORT": str(s.api_port),
            "KAMIOI_STORAGE_PORT": str(s.storage_port),
            "KAMIOI_SMTP_PORT": str(s.smtp_catcher_port),
        }

    def up(self, log: _Log) -> None:
        (self.settings.state_dir / "logs").mkdir(parents=True, exist_ok=True)
        with log.step("PostgreSQL cluster"):
            created = self.postgres.initialize()
            self.postgres.start()
        with log.step("Supabase bootstrap (roles, auth, realtime)"):
            self.postgres.apply_bootstrap()
        with log.step("migrations and seed (supabase db push)"):
            out = self.postgres.push_migrations()
            log.detail(out.strip().splitlines()[-1] if out.strip() else "up to date")
        with log.step("read replica (streaming hot standby)"):
            self.replica.initialize()
            self.replica.start()
        with log.step("redis-server"):
            if self.redis.start():
                # A proxy still running from before holds connections to the old server (or its URL).
                upstash_proxy(self.settings).stop(self.settings)
        env = self.env_values()
        write_env_file(ENV_FILE, env)
        for service in self.services():
            with log.step(service.name):
                restarted = service.start(self.settings, env)
            if restarted:
                log.detail(restarted)
        with log.step("Storage buckets (supabase/config.toml)"):
            made = ensure_buckets(env["SUPABASE_STORAGE_URL"], env["SUPABASE_SECRET_KEY"], declared_buckets())
            log.detail(f"created {', '.join(made)}" if made else "present")
        if created:
            log.detail("new cluster created")

    def stop(self) -> list[str]:
        stopped = [svc.name for svc in reversed(self.services()) if svc.stop(self.settings)]
        if self.redis.stop():
            stopped.append("redis-server")
        if self.replica.stop():
            stopped.append("replica")
        if self.postgres.stop():
            stopped.append("postgres")
        return stopped

    def reset(self) -> None:
        self.stop()
        self.replica.remove()
        self.postgres.remove()
        shutil.rmtree(self.redis.dir, ignore_errors=True)

    def status(self) -> list[tuple[str, bool, str]]:
        s, env = self.settings, self.env_values()
        rows = [
            ("postgres", self.postgres.is_running(), env["DATABASE_URL"]),
            ("replica", self.replica.is_running(), f"{env['READ_REPLICA_URL']}  {self._replica_detail()}"),
            ("redis-server", self.redis.is_running(), f"{self.redis.display_url}  (password in .env REDIS_URL)"),
        ]
        for svc in self.services():
            address = f"{svc.scheme}://127.0.0.1:{svc.port}" if svc.port else "-"
            if svc.name == "smtp-catcher":
                inbox = mail_dir(s)
                count = Inbox(inbox).count()
                address += f"  inbox {inbox} ({count} mail{'' if count == 1 else 's'})"
            rows.append((svc.name, svc.is_running(s), address))
        return rows

    def _replica_detail(self) -> str:
        running = self.replica.is_running()
        return describe_replica(running, self.replica.state() if running else None)


class _Log:
    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet

    @contextmanager
    def step(self, what: str) -> Iterator[None]:
        started = time.monotonic()
        yield
        if not self.quiet:
            print(f"  ok  {what} ({time.monotonic() - started:.1f}s)", flush=True)

    def detail(self, text: str) -> None:
        if not self.quiet:
            print(f"      {text}", flush=True)


def make_log(quiet: bool = False) -> _Log:
    return _Log(quiet)
