"""Run an ASGI app as a real local HTTP server: the fakes of paid services (LLM, price feed) use it."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

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
