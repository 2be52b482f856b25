"""The API docs pages load nothing from the network: Swagger UI's and ReDoc's assets come from the API."""

from __future__ import annotations

import re

import httpx
import pytest


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_docs_pages_use_only_local_assets(client: httpx.AsyncClient, page: str) -> None:
    response = await client.get(page)
    assert response.status_code == 200
    html = response.text
    assert "cdn." not in html and "fonts.googleapis" not in html
    assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html) + re.findall(r"url: '([^']+)'", html)
    assert assets and all(url.startswith("/") for url in assets), assets
    for url in assets:
        fetched = await client.get(url)
        assert fetched.status_code == 200, url
        assert len(fetched.content) > 100, url
