"""What a bulk import's invalidations (one a second) do to cached reads: the O(1) dashboard totals are
recomputed, the multi-second charts over history are not (they live by TTL), so chart readers never
queue behind a recomputation that an import would otherwise trigger every second."""

from __future__ import annotations

import httpx

from api.main import create_app
from api.resources import Resources
from kamioi.settings import Settings

CHART = "/v1/analytics/top-merchants?days=7&limit=3"


async def test_invalidation_recomputes_totals_but_not_charts(
    api_settings: Settings, admin_headers: dict[str, str]
) -> None:
    app = create_app(api_settings)
    async with app.router.lifespan_context(app):
        resources: Resources = app.state.resources
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t", headers=admin_headers) as http:
            for path in ("/v1/stats/dashboard", CHART):
                assert (await http.get(path)).status_code == 200  # filled (or already cached)
            for _ in range(3):  # as an import's chunks would
                assert await resources.cache.invalidate()
                stats, chart = await http.get("/v1/stats/dashboard"), await http.get(CHART)
                assert stats.headers["x-cache"] == "miss"
                assert chart.headers["x-cache"] in ("hit", "stale")  # from the cache, not waited for
