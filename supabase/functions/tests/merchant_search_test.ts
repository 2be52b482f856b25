/**
 * merchant-search against Postgres (public.search_mappings, RLS) and Upstash: keyset pages, the
 * page cap, per-caller caching, bad input, CORS. Fixture rows are inserted as the superuser under
 * a per-run marker, which also makes every cache key of the run new.
 */
import assert from "node:assert/strict";
import { readEdgeConfig } from "../_shared/config.ts";
import { createContext } from "../_shared/context.ts";
import { createMerchantSearchHandler } from "../merchant-search/handler.ts";
import { MAX_PAGE_SIZE } from "../merchant-search/params.ts";
import { ADMIN_ID, call, errorCode, kamioiToken, superuserDb, USER_ID } from "./helpers.ts";

const MARKER = `zq${crypto.randomUUID().replaceAll("-", "").slice(0, 10)}`;
const ADMIN_ROWS = 60;

interface Page {
  items: { id: number; merchant_name: string }[];
  next_cursor: string | null;
}

Deno.test("merchant-search", async (t) => {
  const sql = superuserDb();
  const ctx = createContext(readEdgeConfig());
  const search = createMerchantSearchHandler(ctx);
  const [admin, user] = [await kamioiToken("admin"), await kamioiToken("user")];
  const get = (query: string, token = admin) => call(search, `merchant-search?${query}`, { token });

  const insert = (name: string, extra: Record<string, string | null> = {}) =>
    sql`insert into public.llm_mappings ${
      sql({
        merchant_name: name,
        merchant_key: name.toLowerCase(),
        company_name: "Fixture Coffee Co",
        category: "FOOD_AND_DRINK",
        status: "approved",
        source: "llm",
        ...extra,
      })
    } returning id`;

  /** search_mappings() run directly as `who`, the way PostgREST would: the expected answer. */
  const asDatabase = (who: string, query: string) =>
    sql.begin(async (tx) => {
      const claims = JSON.stringify({ sub: who, role: "authenticated" });
      await tx`select set_config('role', 'authenticated', true),
        set_config('request.jwt.claims', ${claims}, true)`;
      const [row] = await tx`select coalesce(json_agg(r), '[]') as rows
        from public.search_mappings(${query}, null, ${MAX_PAGE_SIZE}) r`;
      return row.rows as { id: number }[];
    });

  try {
    for (let i = 0; i < ADMIN_ROWS; i++) await insert(`${MARKER.toUpperCase()} Coffee #${i}`);
    await insert(`${MARKER} suggested by user`, {
      status: "pending",
      source: "user",
      submitted_by: USER_ID,
    });
    const allIds = (await sql`select id from public.llm_mappings
      where merchant_key like ${MARKER + "%"} order by id desc`).map((row) => Number(row.id));

    await t.step("keyset pages walk every match once, newest first", async () => {
      const seen: number[] = [];
      let cursor: string | null = null;
      const sizes: number[] = [];
      do {
        const response = await get(`q=${MARKER}&limit=25${cursor ? `&after=${cursor}` : ""}`);
        assert.equal(response.status, 200);
        const page: Page = await response.json();
        sizes.push(page.items.length);
        seen.push(...page.items.map((item) => Number(item.id)));
        cursor = page.next_cursor;
      } while (cursor !== null);
      assert.deepEqual(sizes, [25, 25, 11]);
      assert.deepEqual(seen, allIds);
    });

    await t.step("the page is capped whatever limit asks for", async () => {
      const page: Page = await (await get(`q=${MARKER}&limit=1000`)).json();
      assert.equal(page.items.length, MAX_PAGE_SIZE);
      assert.equal(page.next_cursor, String(page.items.at(-1)!.id));
    });

    await t.step("a repeated query is a cache hit, whatever its case and spacing", async () => {
      const first = await get(`q=${MARKER}&limit=5`);
      assert.equal(first.headers.get("X-Cache"), "miss");
      assert.equal(first.headers.get("Cache-Control"), "private, max-age=30");
      const firstPage: Page = await first.json();
      // A new newest match: a hit cannot show it, a new query (another limit) must.
      const [{ id: newest }] = await insert(`${MARKER} Coffee newest`);
      const again = await get(`q=%20${MARKER.toUpperCase()}%20&limit=5`);
      assert.equal(again.headers.get("X-Cache"), "hit");
      assert.deepEqual(await again.json(), firstPage);
      const fresh: Page = await (await get(`q=${MARKER}&limit=6`)).json();
      assert.equal(String(fresh.items[0].id), String(newest));
    });

    await t.step(
      "another user gets what RLS lets them see, never a cached admin page",
      async () => {
        let expected: { id: number }[] | null = null;
        try {
          expected = await asDatabase(USER_ID, MARKER);
        } catch (error) {
          // search_mappings() refuses non-admins (SQLSTATE 42501): the function must say 403.
          assert.equal((error as { code?: string }).code, "42501");
        }
        const response = await get(`q=${MARKER}&limit=${MAX_PAGE_SIZE}`, user);
        if (expected === null) {
          assert.equal(response.status, 403);
          assert.equal(await errorCode(response), "forbidden");
        } else {
          assert.equal(response.status, 200);
          const page: Page = await response.json();
          assert.deepEqual(page.items.map((item) => item.id), expected.map((row) => row.id));
        }
        const adminView = await asDatabase(ADMIN_ID, MARKER);
        assert.equal(adminView.length, MAX_PAGE_SIZE);
      },
    );

    await t.step("bad input is a 400 with a JSON error", async () => {
      for (const query of ["", "q=ab", `q=${MARKER}&after=x`, `q=${MARKER}&limit=0`]) {
        const response = await get(query);
        assert.equal(response.status, 400, query);
        assert.equal(await errorCode(response), "bad_request");
        assert.equal(response.headers.get("Access-Control-Allow-Origin"), "*");
      }
    });

    await t.step("no token is 401; CORS preflight needs none", async () => {
      const denied = await call(search, `merchant-search?q=${MARKER}`);
      assert.equal(denied.status, 401);
      await denied.body?.cancel();
      const preflight = await call(search, "merchant-search", {
        method: "OPTIONS",
        headers: { "Origin": "https://app.kamioi.example", "Access-Control-Request-Method": "GET" },
      });
      assert.equal(preflight.status, 204);
      assert.equal(preflight.headers.get("Access-Control-Allow-Origin"), "*");
    });
  } finally {
    await sql`delete from public.llm_mappings where merchant_key like ${MARKER + "%"}`;
    await sql.end();
    await ctx.rpc.close();
  }
});
