"""The project's own PostgreSQL 15 cluster, configured like Supabase's local database."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import psycopg

from kamioi.settings import PROJECT_ROOT, Settings
from local_stack.processes import StackError, ensure_port_free, run, wait_until

PG_BIN = Path(os.environ.get("KAMIOI_PG_BIN", "/usr/lib/postgresql/15/bin"))
BOOTSTRAP_SQL = Path(__file__).parent / "sql" / "bootstrap.sql"
SUPABASE_CLI = PROJECT_ROOT / "node_modules" / ".bin" / "supabase"
SUPERUSER = "supabase_admin"
LOCAL_PASSWORD = "postgres"  # noqa: S105 - the well-known password of `supabase start`; local clusters only

# Small-machine settings that favour bulk loads without giving up durability (fsync stays on).
SERVER_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "unix_socket_directories": "''",
    "max_connections": "200",
    "shared_buffers": "'1GB'",
    "work_mem": "'32MB'",
    "maintenance_work_mem": "'512MB'",
    "effective_cache_size": "'8GB'",
    "max_wal_size": "'8GB'",
    "checkpoint_timeout": "'15min'",
    "wal_compression": "on",
    "jit": "off",
    "wal_level": "logical",
    "max_wal_senders": "10",
    "max_replication_slots": "10",
    "output_plugin_libraries": "'pgoutput, test_decoding, wal2json'",
    "shared_preload_libraries": "'pg_cron, pg_stat_statements'",
    "cron.database_name": "'postgres'",
    "cron.use_background_workers": "on",
    "max_worker_processes": "16",
    "logging_collector": "off",
    "log_min_duration_statement": "'2s'",
    "timezone": "'UTC'",
}


def _is_root() -> bool:
    return os.geteuid() == 0


def as_server_user(cmd: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: as root, run its tools as the `postgres` OS user."""
    return ["runuser", "-u", "postgres", "--", *cmd] if _is_root() else cmd


def _server_user_can_reach(path: Path) -> bool:
    if not _is_root():
        return True
    probe = subprocess.run(["runuser", "-u", "postgres", "--", "test", "-w", str(path)], check=False)
    return probe.returncode == 0


def prepare_server_dir(server_dir: Path) -> None:
    """Create a cluster's directory under the state dir; if the OS user `postgres` cannot reach the
    checkout (e.g. a clone under /root), keep it under /var/tmp and link it from there."""
    if server_dir.is_symlink() or server_dir.exists():
        return
    server_dir.parent.mkdir(parents=True, exist_ok=True)
    server_dir.mkdir()
    if _is_root():
        shutil.chown(server_dir, "postgres", "postgres")
    if not _server_user_can_reach(server_dir):
        server_dir.rmdir()
        digest = hashlib.sha256(str(server_dir.resolve()).encode()).hexdigest()[:12]
        outside = Path("/var/tmp") / f"kamioi-{server_dir.name}-{digest}"  # noqa: S108 - fixed name, owned by postgres
        outside.mkdir(parents=True, exist_ok=True)
        shutil.chown(outside, "postgres", "postgres")
        server_dir.symlink_to(outside)


def remove_server_dir(server_dir: Path) -> None:
    if server_dir.is_symlink():
        shutil.rmtree(server_dir.resolve(), ignore_errors=True)
        server_dir.unlink()
    else:
        shutil.rmtree(server_dir, ignore_errors=True)


def pg_ctl(*args: str) -> list[str]:
    """A pg_ctl command line, run as the server's OS user."""
    return as_server_user([str(PG_BIN / "pg_ctl"), *args])


def cluster_running(data_dir: Path) -> bool:
    return subprocess.run(pg_ctl("status", "-D", str(data_dir)), capture_output=True, check=False).returncode == 0


@dataclass
class LocalPostgres:
    settings: Settings

    @property
    def root(self) -> Path:
        """Resolved, so the `postgres` OS user gets paths it can reach even through a link."""
        return (self.settings.state_dir / "pg").resolve()

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log_file(self) -> Path:
        return self.root / "postgres.log"

    def is_running(self) -> bool:
        return cluster_running(self.data_dir)

    def accepts_connections(self) -> bool:
        try:
            with psycopg.connect(self.settings.superuser_db_url, connect_timeout=2):
                return True
        except psycopg.OperationalError:
            return False

    def initialize(self) -> bool:
        """Create the cluster once. Returns whether it was created now."""
        if (self.data_dir / "PG_VERSION").exists():
            return False
        if not (PG_BIN / "initdb").exists():
            raise StackError(f"PostgreSQL 15 is not installed ({PG_BIN}); run `make dev` to install it")
        prepare_server_dir(self.settings.state_dir / "pg")
        pwfile = self.root / "pwfile"
        pwfile.write_text(LOCAL_PASSWORD + "\n")
        if _is_root():
            shutil.chown(pwfile, "postgres", "postgres")
        run(
            as_server_user(
                [
                    str(PG_BIN / "initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    SUPERUSER,
                    f"--pwfile={pwfile}",
                    "--auth=scram-sha-256",
                    "--encoding=UTF8",
                    "--locale=C.UTF-8",
                ]
            ),
            what="initdb",
        )
        pwfile.unlink()
        conf = "\n".join(f"{key} = {value}" for key, value in SERVER_SETTINGS.items())
        with (self.data_dir / "postgresql.conf").open("a") as handle:
            handle.write(f"\n# kamioi local stack\nport = {self.settings.db_port}\n{conf}\n")
        (self.data_dir / "pg_hba.conf").write_text(
            "host all all 127.0.0.1/32 scram-sha-256\nhost replication all 127.0.0.1/32 scram-sha-256\n"
        )
        return True

    def start(self) -> None:
        if self.is_running():
            self._ensure_port_setting()
            return
        ensure_port_free(self.settings.db_host, self.settings.db_port, "PostgreSQL", "KAMIOI_DB_PORT")
        run(
            pg_ctl(
                "start", "-w", "-t", "60", "-D", str(self.data_dir), "-l", str(self.log_file),
                "-o", f"-p {self.settings.db_port}",
            ),
            what=f"starting PostgreSQL (log: {self.log_file})",
        )  # fmt: skip
        wait_until(self.accepts_connections, 30, "PostgreSQL to accept connections")

    def _ensure_port_setting(self) -> None:
        if not self.accepts_connections():
            raise StackError(
                f"PostgreSQL from {self.data_dir} is running but not on port {self.settings.db_port}; "
                "run `kamioi stop` first after changing KAMIOI_DB_PORT"
            )

    def stop(self) -> bool:
        if not self.is_running():
            return False
        run(
            pg_ctl("stop", "-w", "-m", "fast", "-D", str(self.data_dir)),
            what="stopping PostgreSQL",
        )
        return True

    def apply_bootstrap(self) -> None:
        with psycopg.connect(self.settings.superuser_db_url, autocommit=True) as conn:
            conn.execute(BOOTSTRAP_SQL.read_text().encode())

    def push_migrations(self) -> str:
        """Apply supabase/migrations and the seeds with the real Supabase CLI, as on a hosted project."""
        if not SUPABASE_CLI.exists():
            raise StackError("the Supabase CLI is missing (node_modules/.bin/supabase); run `make dev`")
        changed_seeds = self._changed_seed_files()
        output = run(
            [str(SUPABASE_CLI), "db", "push", "--db-url", self.settings.db_url, "--include-seed", "--yes"],
            env={"SUPABASE_TELEMETRY_DISABLED": "1", "DO_NOT_TRACK": "1"},
            cwd=PROJECT_ROOT,
            what="supabase db push",
        )
        # The CLI runs a seed file once per database and afterwards only records a changed file's new
        # hash. Our seeds are idempotent upserts, so a local stack re-applies the ones that changed.
        if changed_seeds:
            with psycopg.connect(self.settings.db_url, autocommit=True) as conn:
                for seed in changed_seeds:
                    conn.execute(seed.read_bytes())
        return output

    def _changed_seed_files(self) -> list[Path]:
        """Seed files the database already ran whose content has changed since."""
        with psycopg.connect(self.settings.db_url) as conn:
            if conn.execute("select to_regclass('supabase_migrations.seed_files')").fetchone() == (None,):
                return []
            rows = conn.execute("select path, hash from supabase_migrations.seed_files").fetchall()
        recorded: dict[str, str] = dict(rows)
        changed = []
        for path, recorded_hash in recorded.items():
            file = PROJECT_ROOT / path
            if file.exists() and hashlib.sha256(file.read_bytes()).hexdigest() != recorded_hash:
                changed.append(file)
        return changed

    def remove(self) -> None:
        remove_server_dir(self.settings.state_dir / "pg")
