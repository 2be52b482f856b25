"""Background processes with pid files, readiness waits and port checks."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path


class StackError(RuntimeError):
    """A set-up step failed; the message says what to do about it."""


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def ensure_port_free(host: str, port: int, service: str, setting: str) -> None:
    if port_in_use(host, port):
        raise StackError(
            f"port {port} ({service}) is already taken by another program; "
            f"stop it or choose another port with {setting}=<port> (env or .env)"
        )


def wait_until(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise StackError(f"timed out after {timeout_s:.0f}s waiting for {what}")


def read_pid(pid_file: Path) -> int | None:
    try:
        pid = int(pid_file.read_text().split()[0])
    except (FileNotFoundError, ValueError, IndexError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    return pid


def start_background(cmd: Sequence[str], *, log_file: Path, pid_file: Path, env: dict[str, str] | None = None) -> int:
    """Start a detached process (own session, so it outlives this CLI) and record its pid."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as log:
        proc = subprocess.Popen(
            list(cmd),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
    pid_file.write_text(f"{proc.pid}\n")
    return proc.pid


def stop_pid(pid_file: Path, timeout_s: float = 15.0) -> bool:
    """SIGTERM, then SIGKILL after the timeout. Returns whether a process was running."""
    pid = read_pid(pid_file)
    if pid is None:
        pid_file.unlink(missing_ok=True)
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and read_pid(pid_file) is not None:
        time.sleep(0.1)
    if read_pid(pid_file) is not None:
        os.kill(pid, signal.SIGKILL)
    pid_file.unlink(missing_ok=True)
    return True


def run(cmd: Sequence[str], *, env: dict[str, str] | None = None, cwd: Path | None = None, what: str) -> str:
    result = subprocess.run(
        list(cmd), capture_output=True, text=True, env={**os.environ, **(env or {})}, cwd=cwd, check=False
    )
    if result.returncode != 0:
        raise StackError(f"{what} failed (exit {result.returncode}):\n{result.stdout}{result.stderr}")
    return result.stdout
