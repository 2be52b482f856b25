"""Processes a drill starts, breaks and restarts: job workers and an Upstash REST proxy."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from kamioi.settings import PROJECT_ROOT
from local_stack.services import api_server_args, api_workers_env

# Short leases so a killed worker's job is requeued within seconds; small chunks so a drill has
# many chunk boundaries (and many places to be killed) in a small file.
DRILL_JOBS_ENV = {
    "KAMIOI_JOBS_LEASE_SECONDS": "1.5",
    "KAMIOI_JOBS_POLL_SECONDS": "2",
    "KAMIOI_JOBS_BACKOFF_BASE_SECONDS": "0.2",
    "KAMIOI_JOBS_BACKOFF_CAP_SECONDS": "1",
    "KAMIOI_IMPORT_CHUNK_ROWS": "500",
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


class WorkerProcess:
    """`python -m jobs worker` for the given kinds, with the drill's job settings."""

    def __init__(
        self,
        log_dir: Path,
        kinds: list[str],
        *,
        db_url: str,
        env: dict[str, str] | None = None,
        concurrency: int = 1,
        nice: int = 0,
    ) -> None:
        self.log_dir = log_dir
        self.kinds = kinds
        self.db_url = db_url
        self.concurrency = concurrency
        self.nice = nice  # > 0: background priority, as batch work on a shared host
        self.env = {**DRILL_JOBS_ENV, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        self.started = 0

    def start(self) -> int:
        args = ["nice", "-n", str(self.nice)] if self.nice else []
        args += [sys.executable, "-m", "jobs", "worker", "--concurrency", str(self.concurrency)]
        args += ["--db-url", self.db_url]
        args += [a for kind in self.kinds for a in ("--kind", kind)] + ["--module", "bench.drills.handlers"]
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with (self.log_dir / f"worker-{self.started}.log").open("wb") as log:
            self.proc = subprocess.Popen(
                args, cwd=PROJECT_ROOT, env={**os.environ, **self.env}, stdout=log, stderr=subprocess.STDOUT
            )
        self.started += 1
        return self.proc.pid

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM (hand running jobs back), then SIGKILL if it does not exit."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill9()


class UpstashProxyProcess:
    """The project's Upstash REST endpoint over the stack's redis-server, on its own port."""

    def __init__(self, redis_url: str, token: str, log_file: Path) -> None:
        self.redis_url = redis_url
        self.token = token
        self.log_file = log_file
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        args = [sys.executable, "-m", "local_stack.standins.upstash_proxy", "--port", str(self.port)]
        # Through the environment: the URL carries redis-server's password, which `ps` would show.
        env = {**os.environ, "REDIS_URL": self.redis_url, "UPSTASH_REDIS_REST_TOKEN": self.token}
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            self.proc = subprocess.Popen(args, cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=0.5).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError(f"the Upstash proxy did not start; see {self.log_file}")

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)


class ApiProcess:
    """The admin API as production runs it (the uvicorn command `kamioi up` uses), with overrides."""

    def __init__(self, env: dict[str, str], log_file: Path, workers: int = 1, cwd: Path = PROJECT_ROOT) -> None:
        self.env = env
        self.log_file = log_file
        self.workers = workers
        self.cwd = cwd  # a host of its own: the separate-hosts drill gives each process its own directory
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ApiProcess:
        metrics_dir = self.log_file.parent / f"api-metrics-{self.port}"
        if self.workers > 1:
            shutil.rmtree(metrics_dir, ignore_errors=True)
            metrics_dir.mkdir(parents=True)
        env = {**os.environ, **api_workers_env(self.workers, metrics_dir), **self.env}
        with self.log_file.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, *api_server_args("127.0.0.1", self.port, self.workers)],
                cwd=self.cwd,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                if httpx.get(f"{self.url}/healthz", timeout=0.5).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError(f"the API did not start; see {self.log_file}")

    def __exit__(self, *_: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
