"""Run an ASGI app as a real local HTTP server: the fakes of paid services (LLM, price feed) use it,
with the client of their shared control endpoints (`POST /__mode`, `GET /__stats`)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import httpx
import uvicorn
from fastapi import FastAPI


def uvicorn_server(app: FastAPI) -> uvicorn.Server:
    # Short graceful shutdown: a `slow` request still sleeping must not hold up a test run.
    config = uvicorn.Config(app, log_level="warning", lifespan="off", timeout_graceful_shutdown=1)
    return uvicorn.Server(config)


def socket_root(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://{host}:{port}"


@contextmanager
def serve_app_in_thread(app: FastAPI, *, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve `app` on a background thread; yields its root URL (http://host:port)."""
    sock = socket.create_server((host, port))
    server = uvicorn_server(app)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("local server did not start")
            time.sleep(0.01)
        yield socket_root(sock)
    finally:
        server.should_exit = True
        thread.join(timeout=5)
        sock.close()


class FakeServerControl:
    """Client for a fake server's control endpoints, so tests and fault drills can flip modes and read counters."""

    api_path: ClassVar[str] = ""  # where the faked API lives under the root

    def __init__(self, root: str, http: httpx.AsyncClient) -> None:
        self.root = root.rstrip("/")
        self._http = http

    @property
    def base_url(self) -> str:
        """What a client of the faked service uses as its base URL."""
        return self.root + self.api_path

    async def set_mode(self, mode: str, **options: float) -> None:
        """Switch mode (options as the server's /__mode takes them) and zero the counters."""
        response = await self._http.post(f"{self.root}/__mode", json={"mode": mode, **options})
        response.raise_for_status()

    async def stats(self) -> dict[str, Any]:
        response = await self._http.get(f"{self.root}/__stats")
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result
