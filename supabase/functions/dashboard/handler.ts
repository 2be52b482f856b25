/**
 * GET /functions/v1/dashboard: the admin dashboard aggregates, `{"value": <dashboard_stats()>,
 * "computed_at": "<iso>"}`. Served from the Upstash entry the admin API maintains; on a miss,
 * computed by public.dashboard_stats() with the caller's token and written back in the API's
 * format. ETag + `no-cache` let the browser revalidate cheaply (304, no body).
 */
import { requireAdmin } from "../_shared/auth.ts";
import type { EdgeContext } from "../_shared/context.ts";
import { etagFor, matchesIfNoneMatch } from "../_shared/etag.ts";
import { jsonResponse } from "../_shared/http.ts";
import { type Handler, withHttpBasics } from "../_shared/serve.ts";
import {
  DASHBOARD_CACHE_KEY,
  lookupStats,
  type StatsEntry,
  storeStats,
} from "../_shared/stats_cache.ts";

export function createDashboardHandler(ctx: EdgeContext): Handler {
  return withHttpBasics(ctx.config.allowedOrigins, ["GET"], async (request) => {
    const caller = await ctx.verify(request.headers.get("Authorization"));
    requireAdmin(caller);

    const nowS = Date.now() / 1000;
    const lookup = await lookupStats(ctx.redis, DASHBOARD_CACHE_KEY, nowS);
    let entry: StatsEntry;
    if (lookup.status === "hit") {
      entry = lookup.entry;
    } else {
      const value = await ctx.rpc.call(
        { fn: "dashboard_stats", args: {}, readOnly: true, returns: "scalar" },
        caller,
      );
      entry = { version: lookup.status === "miss" ? lookup.version : "", computedAt: nowS, value };
      if (lookup.status === "miss") await storeStats(ctx.redis, DASHBOARD_CACHE_KEY, entry);
    }

    const body = JSON.stringify({
      value: entry.value,
      computed_at: new Date(entry.computedAt * 1000).toISOString(),
    });
    const etag = await etagFor(body);
    const headers = {
      "Cache-Control": "private, no-cache",
      "ETag": etag,
      "Vary": "Authorization",
      "X-Cache": lookup.status,
    };
    if (matchesIfNoneMatch(request.headers.get("If-None-Match"), etag)) {
      return new Response(null, { status: 304, headers });
    }
    return jsonResponse(body, 200, headers);
  });
}
