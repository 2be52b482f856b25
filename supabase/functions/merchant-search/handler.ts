/**
 * GET /functions/v1/merchant-search?q=&after=&limit=: typeahead over llm_mappings through
 * public.search_mappings() with the caller's token, so RLS decides what each caller sees. Pages are
 * keyset (next_cursor = last id) and capped; each page is cached briefly in Upstash per caller,
 * because RLS makes results differ between users.
 */
import {
  cacheGet,
  cacheSet,
  MERCHANT_SEARCH_CACHE_PREFIX,
  MERCHANT_SEARCH_CACHE_TTL_S,
} from "../_shared/cache.ts";
import type { EdgeContext } from "../_shared/context.ts";
import { sha256Hex } from "../_shared/digest.ts";
import { jsonResponse } from "../_shared/http.ts";
import { type Handler, withHttpBasics } from "../_shared/serve.ts";
import { parseSearchParams, type SearchParams } from "./params.ts";

interface MappingRow {
  id: number | string;
}

async function cacheKey(userId: string, params: SearchParams): Promise<string> {
  const material = JSON.stringify([params.query, params.afterId, params.limit]);
  return `${MERCHANT_SEARCH_CACHE_PREFIX}:${userId}:${await sha256Hex(material)}`;
}

export function createMerchantSearchHandler(ctx: EdgeContext): Handler {
  return withHttpBasics(ctx.config.allowedOrigins, ["GET"], async (request) => {
    const caller = await ctx.verify(request.headers.get("Authorization"));
    const params = parseSearchParams(new URL(request.url));
    const key = await cacheKey(caller.userId, params);

    const cached = await cacheGet(ctx.redis, key);
    let body = cached;
    if (body === null) {
      const rows = await ctx.rpc.call({
        fn: "search_mappings",
        args: { p_query: params.query, p_after_id: params.afterId, p_limit: params.limit },
        readOnly: true,
        returns: "rows",
      }, caller) as MappingRow[];
      const last = rows.at(-1);
      const nextCursor = rows.length === params.limit && last ? String(last.id) : null;
      body = JSON.stringify({ items: rows, next_cursor: nextCursor });
      await cacheSet(ctx.redis, key, body, MERCHANT_SEARCH_CACHE_TTL_S);
    }
    return jsonResponse(body, 200, {
      "Cache-Control": `private, max-age=${MERCHANT_SEARCH_CACHE_TTL_S}`,
      "Vary": "Authorization",
      "X-Cache": cached === null ? "miss" : "hit",
    });
  });
}
