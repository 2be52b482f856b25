"""JWKS from a URL (as on hosted Supabase): fetched once, cached, refetched for a new kid, bounded."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from api.auth import JwksKeys


class JwksServer:
    """A real HTTP server publishing a JWKS document that a test can rotate."""

    def __init__(self) -> None:
        self.document: dict[str, Any] = {"keys": []}
        self.requests = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.requests += 1
                body = json.dumps(outer.document).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/auth/v1/.well-known/jwks.json"

    def publish(self, *kids: str) -> None:
        self.document = {"keys": [public_jwk(kid) for kid in kids]}


def public_jwk(kid: str) -> dict[str, Any]:
    jwk: dict[str, Any] = json.loads(ECAlgorithm.to_jwk(ec.generate_private_key(ec.SECP256R1()).public_key()))
    return {**jwk, "kid": kid, "alg": "ES256", "use": "sig"}


@pytest.fixture
def jwks_server() -> Iterator[JwksServer]:
    server = JwksServer()
    thread = threading.Thread(target=server.server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()


async def test_keys_are_cached_and_refetched_for_an_unknown_kid(jwks_server: JwksServer) -> None:
    jwks_server.publish("key-1")
    async with httpx.AsyncClient() as http:
        keys = JwksKeys(http=http, url=jwks_server.url, min_refresh_s=0)
        assert (await keys.get("key-1")) is not None
        assert (await keys.get("key-1")) is not None
        assert jwks_server.requests == 1  # cached

        jwks_server.publish("key-1", "key-2")  # Supabase rotates in a new signing key
        assert (await keys.get("key-2")) is not None
        assert jwks_server.requests == 2


async def test_unknown_kids_cannot_hammer_the_endpoint(jwks_server: JwksServer) -> None:
    jwks_server.publish("key-1")
    async with httpx.AsyncClient() as http:
        keys = JwksKeys(http=http, url=jwks_server.url, min_refresh_s=60)
        for n in range(20):
            assert (await keys.get(f"made-up-{n}")) is None
    assert jwks_server.requests == 1


async def test_symmetric_and_excess_keys_are_ignored(jwks_server: JwksServer) -> None:
    jwks_server.document = {
        "keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "hmac", "alg": "HS256"}]
        + [public_jwk(f"key-{n}") for n in range(40)]
    }
    async with httpx.AsyncClient() as http:
        keys = JwksKeys(http=http, url=jwks_server.url, min_refresh_s=60)
        assert (await keys.get("hmac")) is None  # never an HMAC secret from a JWKS
        assert (await keys.get("key-0")) is not None
        assert (await keys.get("key-39")) is None  # at most MAX_KEYS kept
