"""A real redis-server and the proxy as a real uvicorn subprocess, shared by the whole session."""

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import pytest
import redis as redis_py
from upstash_redis import Redis
from upstash_redis.asyncio import Redis as AsyncRedis

REPO_ROOT = Path(__file__).resolve().parents[2]
TOKEN = "proxy-test-token"
REDIS_PASSWORD = "proxy-test-redis-password"
STARTUP_TIMEOUT_S = 15.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_until(ready: Callable[[], bool], process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with code {process.returncode}")
        if ready():
            return
        time.sleep(0.05)
    raise TimeoutError(f"{what} did not become ready in {STARTUP_TIMEOUT_S}s")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def redis_answers(port: int) -> bool:
    try:
        return bool(redis_py.Redis(port=port, password=REDIS_PASSWORD, socket_connect_timeout=0.2).ping())
    except redis_py.ConnectionError:
        return False


def proxy_answers(url: str) -> bool:
    try:
        httpx.get(f"{url}/healthz", timeout=0.5)
    except httpx.TransportError:
        return False
    return True


def start_proxy(redis_url: str, *extra_args: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    command = [
        sys.executable, "-m", "local_stack.standins.upstash_proxy",
        "--host", "127.0.0.1", "--port", str(port), "--token", TOKEN, *extra_args,
    ]  # fmt: skip
    # As `kamioi up` starts it: the URL, with redis-server's password, through the environment.
    process = subprocess.Popen(command, cwd=REPO_ROOT, env={**os.environ, "REDIS_URL": redis_url})
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: proxy_answers(url), process, "upstash proxy")
    except BaseException:
        stop(process)
        raise
    return process, url


@pytest.fixture(scope="session")
def redis_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    server = shutil.which("redis-server")
    if server is None:
        pytest.fail("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
    command = [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    command += ["--requirepass", REDIS_PASSWORD]
    process = subprocess.Popen(command, cwd=workdir, stdout=subprocess.DEVNULL)
    try:
        wait_until(lambda: redis_answers(port), process, "redis-server")
        yield port
    finally:
        stop(process)


@pytest.fixture(scope="session")
def proxy_url(redis_port: int) -> Iterator[str]:
    process, url = start_proxy(f"redis://:{REDIS_PASSWORD}@127.0.0.1:{redis_port}/0")
    yield url
    stop(process)


@pytest.fixture(scope="session")
def proxy_without_redis_url() -> Iterator[str]:
    """A proxy whose redis-server is not running (nothing listens on its port)."""
    process, url = start_proxy(f"redis://127.0.0.1:{free_port()}/0")
    yield url
    stop(process)


@pytest.fixture
def proxy_token() -> str:
    return TOKEN


@pytest.fixture
def redis_password() -> str:
    return REDIS_PASSWORD


@pytest.fixture
def key() -> str:
    """A key prefix no other test uses, so tests never see each other's data."""
    return f"test:{uuid.uuid4().hex}"


@pytest.fixture
def redis(proxy_url: str) -> Iterator[Redis]:
    with Redis(url=proxy_url, token=TOKEN) as client:
        yield client


@pytest.fixture
async def async_redis(proxy_url: str) -> AsyncIterator[AsyncRedis]:
    async with AsyncRedis(url=proxy_url, token=TOKEN) as client:
        yield client


@pytest.fixture
def http(proxy_url: str) -> Iterator[httpx.Client]:
    """Raw HTTP to the proxy, authorized, for what the official clients hide."""
    with httpx.Client(base_url=proxy_url, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        yield client
