"""Through a real uvicorn process: the wire-level behaviour in-process tests cannot show."""

from __future__ import annotations

import httpx


def test_uvicorn_serves_the_api_end_to_end(api_server: str, admin_headers: dict[str, str]) -> None:
    with httpx.Client(base_url=api_server, timeout=10) as client:
        assert client.get("/readyz").json()["status"] == "ready"
        stats = client.get(
            "/v1/stats/dashboard", headers={**admin_headers, "X-Request-ID": "wire-1", "Accept-Encoding": "gzip"}
        )
        assert stats.status_code == 200
        assert stats.headers["x-request-id"] == "wire-1"
        assert stats.headers["x-cache"] in ("hit", "miss", "stale")
        assert set(stats.json()) == {"computed_at", "mappings", "transactions", "investing"}
        refused = client.get("/v1/stats/dashboard")
        assert refused.status_code == 401
        assert refused.headers["content-type"] == "application/problem+json"
        openapi = client.get("/openapi.json", headers={"Accept-Encoding": "gzip"})
        assert openapi.headers["content-encoding"] == "gzip"
