"""The project's own long-running Python processes (Upstash REST proxy, API, worker)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from kamioi.settings import Settings
from kamioi.stack.processes import ensure_port_free, read_pid, start_background, stop_pid, wait_until


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

    def pid_file(self, settings: Settings) -> Path:
        return settings.state_dir / "run" / f"{self.name}.pid"

    def is_running(self, settings: Settings) -> bool:
        return read_pid(self.pid_file(settings)) is not None

    def start(self, settings: Settings, env: dict[str, str]) -> None:
        if self.is_running(settings):
            return
        if self.port is not None:
            ensure_port_free("127.0.0.1", self.port, self.name, self.port_setting)
        self.pid_file(settings).parent.mkdir(parents=True, exist_ok=True)
        start_background(
            [sys.executable, *self.args],
            log_file=settings.state_dir / "logs" / f"{self.name}.log",
            pid_file=self.pid_file(settings),
            env=env,
        )
        if self.health_url is not None:
            wait_until(_http_ok(self.health_url), 30, f"{self.name} at {self.health_url}")

    def stop(self, settings: Settings) -> bool:
        return stop_pid(self.pid_file(settings))


def upstash_proxy(settings: Settings, redis_url: str, token: str) -> Service:
    port = settings.upstash_port
    return Service(
        name="upstash-proxy",
        args=(
            "-m", "kamioi.upstash_proxy", "--host", "127.0.0.1", "--port", str(port),
            "--redis-url", redis_url, "--token", token,
        ),
        port=port,
        port_setting="KAMIOI_UPSTASH_PORT",
        health_url=f"http://127.0.0.1:{port}/healthz",
    )


def admin_api(settings: Settings) -> Service:
    port = settings.api_port
    return Service(
        name="api",
        args=(
            "-m", "uvicorn", "api.main:app", "--host", settings.api_host, "--port", str(port),
            "--no-access-log", "--timeout-graceful-shutdown", "10",
        ),
        port=port,
        port_setting="KAMIOI_API_PORT",
        health_url=f"http://{settings.api_host}:{port}/healthz",
    )


def worker(settings: Settings) -> Service:
    # No port: readiness is the queue itself (a job enqueued now is claimed by it).
    return Service(
        name="worker",
        args=("-m", "jobs", "worker", "--concurrency", "2", "--db-url", settings.db_url),
        port=None,
        port_setting="",
        health_url=None,
    )
