"""The project's own long-running Python processes (Upstash REST proxy, Storage stand-in, SMTP catcher,
API, worker)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from kamioi.settings import ENV_FILE, Settings
from local_stack.processes import ensure_port_free, port_in_use, read_pid, start_background, stop_pid, wait_until

# The API's uvicorn processes took 35 s to import on a loaded 2-core machine; the wait ends when healthy.
START_TIMEOUT_S = 120

# prometheus_client's switch to multiprocess mode (read by api.metrics in every worker).
PROMETHEUS_MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"


def _settings_names() -> frozenset[str]:
    return frozenset((field.alias or name).upper() for name, field in Settings.model_fields.items())


def _env_file_values(path: Path) -> dict[str, str]:
    values = {}
    if path.exists():
        for line in path.read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep and not line.lstrip().startswith("#"):
                values[key.strip()] = value.strip()
    return values


def environment_fingerprint(args: tuple[str, ...], env: dict[str, str]) -> str:
    """What a started process is configured by: its command line, the variables it is given, and the
    settings it reads itself (the .env file, then this shell's environment). Other variables of the
    shell (PWD, TERM, ...) are left out so a new terminal restarts nothing."""
    names = _settings_names()
    effective = {k: v for k, v in _env_file_values(ENV_FILE).items() if k.upper() in names}
    effective |= {k: v for k, v in os.environ.items() if k.upper() in names}
    effective |= env
    return hashlib.sha256(json.dumps([list(args), effective], sort_keys=True).encode()).hexdigest()


def _http_ok(url: str) -> Callable[[], bool]:
    def check() -> bool:
        try:
            return httpx.get(url, timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    return check


@dataclass(frozen=True)
class Service:
    name: str
    args: tuple[str, ...]
    port: int | None
    port_setting: str
    health_url: str | None
    # How clients address it (status shows <scheme>://127.0.0.1:<port>); a non-HTTP one is ready when
    # its port accepts connections.
    scheme: str = "http"
    # Set for this process only (never written to .env, which other processes read).
    env: dict[str, str] = field(default_factory=dict)
    # Emptied before every start: state the previous run's processes left behind.
    scratch_dir: Path | None = None
    # Reads kamioi's Settings (the API, the worker): restarted when they change. The stand-ins are
    # configured by their command line alone.
    reads_settings: bool = False

    def pid_file(self, settings: Settings) -> Path:
        return settings.state_dir / "run" / f"{self.name}.pid"

    def fingerprint_file(self, settings: Settings) -> Path:
        return settings.state_dir / "run" / f"{self.name}.env-sha256"

    def is_running(self, settings: Settings) -> bool:
        return read_pid(self.pid_file(settings)) is not None

    def start(self, settings: Settings, env: dict[str, str]) -> str | None:
        """Start it unless it runs with this configuration already; one that runs with another (a new
        LLM_API_KEY in .env, another port) is restarted, and the reason returned."""
        fingerprint = (
            environment_fingerprint(self.args, {**env, **self.env})
            if self.reads_settings
            else hashlib.sha256(json.dumps([list(self.args), self.env], sort_keys=True).encode()).hexdigest()
        )
        fingerprint_file = self.fingerprint_file(settings)
        restarted = None
        if self.is_running(settings):
            stored = fingerprint_file.read_text().strip() if fingerprint_file.exists() else None
            if stored == fingerprint:
                return None
            self.stop(settings)
            restarted = "restarted: its environment changed"
        if self.port is not None:
            ensure_port_free("127.0.0.1", self.port, self.name, self.port_setting)
        self.pid_file(settings).parent.mkdir(parents=True, exist_ok=True)
        if self.scratch_dir is not None:
            shutil.rmtree(self.scratch_dir, ignore_errors=True)
            self.scratch_dir.mkdir(parents=True)
        start_background(
            [sys.executable, *self.args],
            log_file=settings.state_dir / "logs" / f"{self.name}.log",
            pid_file=self.pid_file(settings),
            env={**env, **self.env},
        )
        fingerprint_file.write_text(fingerprint + "\n")
        if self.health_url is not None:
            wait_until(_http_ok(self.health_url), START_TIMEOUT_S, f"{self.name} at {self.health_url}")
        elif self.port is not None:
            port = self.port
            wait_until(lambda: port_in_use("127.0.0.1", port), START_TIMEOUT_S, f"{self.name} on port {port}")
        return restarted

    def stop(self, settings: Settings) -> bool:
        return stop_pid(self.pid_file(settings))


def upstash_proxy(settings: Settings) -> Service:
    """Reads REDIS_URL and UPSTASH_REDIS_REST_TOKEN from the environment: secrets stay out of `ps`."""
    port = settings.upstash_port
    return Service(
        name="upstash-proxy",
        args=("-m", "local_stack.standins.upstash_proxy", "--host", "127.0.0.1", "--port", str(port)),
        port=port,
        port_setting="KAMIOI_UPSTASH_PORT",
        health_url=f"http://127.0.0.1:{port}/healthz",
    )


def storage_server(settings: Settings) -> Service:
    port = settings.storage_port
    return Service(
        name="storage",
        args=("-m", "local_stack.standins.storage_server", "--port", str(port), "--root", str(storage_dir(settings))),
        port=port,
        port_setting="KAMIOI_STORAGE_PORT",
        health_url=f"http://127.0.0.1:{port}/healthz",
    )


def storage_dir(settings: Settings) -> Path:
    return settings.state_dir / "storage"


def smtp_catcher(settings: Settings) -> Service:
    port = settings.smtp_catcher_port
    return Service(
        name="smtp-catcher",
        args=("-m", "local_stack.standins.smtp_catcher", "--port", str(port), "--maildir", str(mail_dir(settings))),
        port=port,
        port_setting="KAMIOI_SMTP_PORT",
        health_url=None,
        scheme="smtp",
    )


def broker_server(settings: Settings) -> Service:
    """The broker stand-in: the offline default broker (kamioi.broker.broker_url)."""
    port = settings.broker_port
    return Service(
        name="broker",
        args=("-m", "local_stack.standins.broker_server", "--port", str(port)),
        port=port,
        port_setting="KAMIOI_BROKER_PORT",
        health_url=f"http://127.0.0.1:{port}/healthz",
    )


def mail_dir(settings: Settings) -> Path:
    """The SMTP catcher's inbox (a Maildir)."""
    return settings.state_dir / "mail"


def api_server_args(host: str, port: int, workers: int) -> tuple[str, ...]:
    """How the admin API runs, in the stack, the benches and the tests: uvicorn, JSON access logs
    from the app itself, `workers` processes on one port (the API is stateless)."""
    return (
        "-m", "uvicorn", "api.main:app", "--host", host, "--port", str(port), "--workers", str(workers),
        "--no-access-log", "--timeout-graceful-shutdown", "10",
    )  # fmt: skip


def api_workers_env(workers: int, metrics_dir: Path) -> dict[str, str]:
    """Several workers count their metrics in one directory, which must start empty."""
    return {PROMETHEUS_MULTIPROC_DIR: str(metrics_dir)} if workers > 1 else {}


def admin_api(settings: Settings) -> Service:
    port, workers = settings.api_port, settings.api_workers
    metrics_dir = settings.state_dir / "run" / "api-metrics"
    return Service(
        name="api",
        args=api_server_args(settings.api_host, port, workers),
        port=port,
        port_setting="KAMIOI_API_PORT",
        health_url=f"http://{settings.api_host}:{port}/healthz",
        env=api_workers_env(workers, metrics_dir),
        scratch_dir=metrics_dir if workers > 1 else None,
        reads_settings=True,
    )


def worker(settings: Settings) -> Service:
    # No port: readiness is the queue itself (a job enqueued now is claimed by it).
    return Service(
        name="worker",
        args=("-m", "jobs", "worker", "--concurrency", "2", "--db-url", settings.db_url),
        port=None,
        port_setting="",
        health_url=None,
        reads_settings=True,
    )
