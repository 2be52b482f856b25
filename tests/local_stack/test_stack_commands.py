"""`kamioi up | status | stop | reset` on a throwaway second stack (own ports and state dir)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def stack_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    state = tmp_path_factory.mktemp("stack")
    state.chmod(0o755)
    env = {
        **os.environ,
        "KAMIOI_STATE_DIR": str(state),
        "KAMIOI_ENV_FILE": str(state / ".env"),
        "KAMIOI_DB_PORT": str(_free_port()),
        "KAMIOI_REDIS_PORT": str(_free_port()),
        "KAMIOI_UPSTASH_PORT": str(_free_port()),
        "KAMIOI_API_PORT": str(_free_port()),
        "KAMIOI_REPLICA_PORT": str(_free_port()),
        "KAMIOI_STORAGE_PORT": str(_free_port()),
        "KAMIOI_SMTP_PORT": str(_free_port()),
        "KAMIOI_BROKER_PORT": str(_free_port()),
    }
    for key in (
        "DATABASE_URL", "SUPERUSER_DATABASE_URL", "READ_REPLICA_URL", "UPSTASH_REDIS_REST_URL",
        "UPSTASH_REDIS_REST_TOKEN", "SUPABASE_STORAGE_URL", "SMTP_HOST", "SMTP_PORT",
    ):  # fmt: skip
        env.pop(key, None)
    yield env
    _kamioi(env, "reset")


def _kamioi(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )


def _timed_up(env: dict[str, str]) -> float:
    started = time.monotonic()
    result = _kamioi(env, "up")
    assert result.returncode == 0, result.stdout + result.stderr
    return time.monotonic() - started


def test_up_twice_second_is_fast_then_status_stop_reset(stack_env: dict[str, str]) -> None:
    first = _timed_up(stack_env)
    second = _timed_up(stack_env)
    # Nothing to start and nothing to migrate: the second run is a check, not a set-up.
    assert second < first

    env_file = Path(stack_env["KAMIOI_ENV_FILE"]).read_text()
    assert f":{stack_env['KAMIOI_DB_PORT']}/postgres" in env_file
    assert (
        f"READ_REPLICA_URL=postgresql://postgres:postgres@127.0.0.1:{stack_env['KAMIOI_REPLICA_PORT']}/postgres"
        in env_file
    )
    assert "UPSTASH_REDIS_REST_TOKEN=" in env_file
    for setting in ("KAMIOI_STATE_DIR", "KAMIOI_DB_PORT", "KAMIOI_API_PORT", "KAMIOI_SMTP_PORT"):
        assert f"{setting}={stack_env[setting]}\n" in env_file

    status = _kamioi(stack_env, "status")
    assert status.returncode == 0, status.stdout
    assert status.stdout.count("running") >= 3
    replica_line = next(line for line in status.stdout.splitlines() if line.split()[:1] == ["replica"])
    assert "running" in replica_line and "(standby, lag" in replica_line, replica_line
    lines = {line.split()[0]: line for line in status.stdout.splitlines() if line.strip()}
    assert f"smtp://127.0.0.1:{stack_env['KAMIOI_SMTP_PORT']}" in lines["smtp-catcher"]
    assert "(0 mails)" in lines["smtp-catcher"]
    assert "running" in lines["storage"]

    stop = _kamioi(stack_env, "stop")
    assert "postgres" in stop.stdout and "replica" in stop.stdout
    assert _kamioi(stack_env, "status").returncode == 3

    reset = _kamioi(stack_env, "reset", "--up", "--quiet")
    assert reset.returncode == 0, reset.stdout + reset.stderr
    assert _kamioi(stack_env, "status").returncode == 0


def test_paused_runs_a_command_without_the_worker_then_restarts_it(stack_env: dict[str, str]) -> None:
    during = _kamioi(stack_env, "paused", "--", sys.executable, "-m", "cli", "status")
    worker_line = next(line for line in during.stdout.splitlines() if line.split()[:1] == ["worker"])
    assert "stopped" in worker_line
    assert during.returncode == 3  # the command's own exit status: status says something is down
    assert _kamioi(stack_env, "status").returncode == 0
    assert _kamioi(stack_env, "paused").returncode == 2


def test_port_taken_names_port_and_setting(stack_env: dict[str, str]) -> None:
    _kamioi(stack_env, "stop")
    with socket.socket() as blocker:
        # The stopped server's closed connections may linger in TIME_WAIT on that port.
        blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        blocker.bind(("127.0.0.1", int(stack_env["KAMIOI_DB_PORT"])))
        blocker.listen()
        result = _kamioi(stack_env, "up")
    assert result.returncode == 1
    assert stack_env["KAMIOI_DB_PORT"] in result.stdout
    assert "KAMIOI_DB_PORT" in result.stdout


def _pid(stack_env: dict[str, str], service: str) -> int:
    return int((Path(stack_env["KAMIOI_STATE_DIR"]) / "run" / f"{service}.pid").read_text())


def test_a_new_shell_finds_a_second_stack_from_its_env_file(stack_env: dict[str, str]) -> None:
    """Only KAMIOI_ENV_FILE (or being in the checkout, whose .env it is by default): no ports to export."""
    assert _kamioi(stack_env, "up", "--quiet").returncode == 0
    bare = {k: v for k, v in stack_env.items() if not k.startswith("KAMIOI_") or k == "KAMIOI_ENV_FILE"}
    status = _kamioi(bare, "status")
    assert status.returncode == 0, status.stdout
    assert f":{stack_env['KAMIOI_DB_PORT']}/postgres" in status.stdout


def test_up_restarts_the_processes_whose_environment_changed(stack_env: dict[str, str]) -> None:
    assert _kamioi(stack_env, "up", "--quiet").returncode == 0
    worker, api = _pid(stack_env, "worker"), _pid(stack_env, "api")
    assert _kamioi(stack_env, "up", "--quiet").returncode == 0
    assert (_pid(stack_env, "worker"), _pid(stack_env, "api")) == (worker, api)  # nothing changed: kept

    env_file = Path(stack_env["KAMIOI_ENV_FILE"])
    before = env_file.read_text()
    env_file.write_text(before + "LLM_API_KEY=sk-test-new-key\n")
    try:
        result = _kamioi(stack_env, "up")
        assert result.returncode == 0, result.stdout
        assert result.stdout.count("restarted: its environment changed") == 2  # the API and the worker only
        assert _pid(stack_env, "worker") != worker and _pid(stack_env, "api") != api
        assert "LLM_API_KEY=sk-test-new-key" in env_file.read_text()  # the developer's line is kept
    finally:
        env_file.write_text(before)
    assert _kamioi(stack_env, "up", "--quiet").returncode == 0  # the key removed: restarted once more
    restored = _pid(stack_env, "worker")
    assert restored != worker
    assert _kamioi(stack_env, "up", "--quiet").returncode == 0
    assert _pid(stack_env, "worker") == restored
