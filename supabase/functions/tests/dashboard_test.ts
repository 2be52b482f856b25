/**
 * dashboard against the real Upstash endpoint and Postgres: a miss runs public.dashboard_stats()
 * with the caller's token and refills the admin API's entry in its format; a hit serves that entry
 * as the API wrote it; version bumps and age make misses; ETag/304; CORS; a cache outage still
 * serves from the database.
 */
import assert from "node:assert/strict";
import { readEdgeConfig } from "../_shared/config.ts";
import { createContext } from "../_shared/context.ts";
import {
  DASHBOARD_CACHE_KEY,
  STATS_STALE_S,
  STATS_TTL_S,
  STATS_VERSION_KEY,
} from "../_shared/stats_cache.ts";
import { createDashboardHandler } from "../dashboard/handler.ts";
import {
  ADMIN_ID,
  call,
  errorCode,
  kamioiToken,
  superuserDb,
  writeApiStatsEntry,
} from "./helpers.ts";
/** What the database says right now, computed as the admin the way PostgREST would run it. */
async function statsFromDatabase(): Promise<unknown> {
  const sql = superuserDb();
  try {
    return await sql.begin(async (tx) => {
      const claims = JSON.stringify({ sub: ADMIN_ID, role: "authenticated", user_role: "admin" });
      await tx`select set_config('role', 'authenticated', true),
        set_config('request.jwt.claims', ${claims}, true)`;
      const [row] = await tx`select public.dashboard_stats() as stats`;
      return row.stats;
    });
  } finally {
    await sql.end();
  }
}

/**
 * Runs `check` while no write can change the stats: on a used stack the worker may be investing
 * between the handler's read and statsFromDatabase(). An EXCLUSIVE lock on the tables the stats count
 * lets every read through and holds writers back until `check` is done.
 */
async function withStatsHeldStill(check: () => Promise<void>): Promise<void> {
  const sql = superuserDb();
  try {
    await sql.begin(async (tx) => {
      await tx`lock table public.llm_mappings, public.transactions, public.allocations in exclusive mode`;
      await check();
    });
  } finally {
    await sql.end();
  }
}

Deno.test("dashboard", async (t) => {
  const ctx = createContext(readEdgeConfig());
  const dashboard = createDashboardHandler(ctx);
  const admin = await kamioiToken("admin");
  const get = (headers: Record<string, string> = {}) =>
    call(dashboard, "dashboard", { token: admin, headers });
  const storedEntry = async () => JSON.parse((await ctx.redis.get<string>(DASHBOARD_CACHE_KEY))!);

  try {
    await t.step(
      "a miss falls back to dashboard_stats() and fills the API's entry",
      () =>
        withStatsHeldStill(async () => {
          await ctx.redis.del(DASHBOARD_CACHE_KEY);
          await ctx.redis.set(STATS_VERSION_KEY, "1732000000000000000");
          const before = Date.now() / 1000;
          const response = await get();
          assert.equal(response.status, 200);
          assert.equal(response.headers.get("X-Cache"), "miss");
          const body = await response.json();
          assert.deepEqual(body.value, await statsFromDatabase());

          const stored = await storedEntry();
          assert.deepEqual(Object.keys(stored).sort(), ["t", "v", "value"]);
          assert.equal(stored.v, "1732000000000000000");
          assert.ok(stored.t >= before && stored.t <= Date.now() / 1000);
          assert.deepEqual(stored.value, body.value);
          assert.equal(Date.parse(body.computed_at), Math.floor(stored.t * 1000));
          const ttl = await ctx.redis.ttl(DASHBOARD_CACHE_KEY);
          assert.ok(ttl > STATS_TTL_S && ttl <= STATS_TTL_S + STATS_STALE_S, `ttl ${ttl}`);
        }),
    );

    await t.step("a hit serves the API's entry without the database", async () => {
      // A value the database cannot produce proves where the answer came from.
      await writeApiStatsEntry(ctx.redis, { written_by: "admin api" });
      const response = await get();
      assert.equal(response.headers.get("X-Cache"), "hit");
      assert.deepEqual((await response.json()).value, { written_by: "admin api" });
    });

    await t.step(
      "an entry of an older stats version is a miss",
      () =>
        withStatsHeldStill(async () => {
          await writeApiStatsEntry(ctx.redis, { written_by: "admin api" }, { version: "1" });
          const response = await get();
          assert.equal(response.headers.get("X-Cache"), "miss");
          assert.deepEqual((await response.json()).value, await statsFromDatabase());
          assert.equal((await storedEntry()).v, "1732000000000000000");
        }),
    );

    await t.step("an entry past the TTL is a miss", async () => {
      await writeApiStatsEntry(ctx.redis, { written_by: "admin api" }, { ageS: STATS_TTL_S + 1 });
      const response = await get();
      assert.equal(response.headers.get("X-Cache"), "miss");
      await response.body?.cancel();
    });

    await t.step('without a version key the version is "0", as in the API', async () => {
      await ctx.redis.del(STATS_VERSION_KEY);
      await writeApiStatsEntry(ctx.redis, { written_by: "admin api" }, { version: "0" });
      const response = await get();
      assert.equal(response.headers.get("X-Cache"), "hit");
      await response.body?.cancel();
    });

    await t.step(
      "a malformed entry is a miss and is replaced",
      () =>
        withStatsHeldStill(async () => {
          await ctx.redis.set(DASHBOARD_CACHE_KEY, "{not json");
          const response = await get();
          assert.equal(response.headers.get("X-Cache"), "miss");
          assert.deepEqual((await response.json()).value, await statsFromDatabase());
          assert.deepEqual((await storedEntry()).value, await statsFromDatabase());
        }),
    );

    await t.step("ETag revalidation answers 304 with no body", async () => {
      const first = await get();
      const etag = first.headers.get("ETag")!;
      await first.body?.cancel();
      assert.match(etag, /^"[0-9a-f]{32}"$/);
      assert.equal(first.headers.get("Cache-Control"), "private, no-cache");

      for (const candidate of [etag, `W/${etag}`, `"other", ${etag}`]) {
        const revalidated = await get({ "If-None-Match": candidate });
        assert.equal(revalidated.status, 304, candidate);
        assert.equal(revalidated.headers.get("ETag"), etag);
        assert.equal(await revalidated.text(), "");
      }
      const stale = await get({ "If-None-Match": `"0000"` });
      assert.equal(stale.status, 200);
      await stale.body?.cancel();
    });

    await t.step("the ETag changes when the cached entry does", async () => {
      const before = (await get()).headers.get("ETag");
      await writeApiStatsEntry(ctx.redis, { total: 1 });
      const after = await get({ "If-None-Match": before! });
      assert.equal(after.status, 200);
      assert.notEqual(after.headers.get("ETag"), before);
      await after.body?.cancel();
    });

    await t.step("CORS preflight needs no token", async () => {
      const response = await call(dashboard, "dashboard", {
        method: "OPTIONS",
        headers: {
          "Origin": "https://app.kamioi.example",
          "Access-Control-Request-Method": "GET",
          "Access-Control-Request-Headers": "authorization, if-none-match",
        },
      });
      assert.equal(response.status, 204);
      assert.equal(response.headers.get("Access-Control-Allow-Origin"), "*");
      assert.match(response.headers.get("Access-Control-Allow-Methods")!, /\bGET\b/);
      assert.match(response.headers.get("Access-Control-Allow-Headers")!, /\bauthorization\b/);
      assert.match(response.headers.get("Access-Control-Allow-Headers")!, /\bif-none-match\b/);
    });

    await t.step("responses, errors included, carry CORS headers", async () => {
      const ok = await get({ "Origin": "https://app.kamioi.example" });
      assert.equal(ok.headers.get("Access-Control-Allow-Origin"), "*");
      assert.match(ok.headers.get("Access-Control-Expose-Headers")!, /\betag\b/);
      await ok.body?.cancel();
      const denied = await call(dashboard, "dashboard");
      assert.equal(denied.status, 401);
      assert.equal(denied.headers.get("Access-Control-Allow-Origin"), "*");
      await denied.body?.cancel();
    });

    await t.step("other methods are 405 with Allow", async () => {
      const response = await call(dashboard, "dashboard", { token: admin, method: "POST" });
      assert.equal(response.status, 405);
      assert.equal(response.headers.get("Allow"), "GET, OPTIONS");
      assert.equal(await errorCode(response), "method_not_allowed");
    });
  } finally {
    await ctx.redis.del(DASHBOARD_CACHE_KEY, STATS_VERSION_KEY);
    await ctx.rpc.close();
  }
});

/** A local port with nothing listening on it: connections are refused at once. */
function closedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

Deno.test("dashboard still answers from the database when Upstash is down", async () => {
  const ctx = createContext({
    ...readEdgeConfig(),
    upstashUrl: `http://127.0.0.1:${closedPort()}`,
  });
  try {
    const token = await kamioiToken("admin");
    await withStatsHeldStill(async () => {
      const response = await call(createDashboardHandler(ctx), "dashboard", { token });
      assert.equal(response.status, 200);
      assert.equal(response.headers.get("X-Cache"), "bypass");
      assert.deepEqual((await response.json()).value, await statsFromDatabase());
    });
  } finally {
    await ctx.rpc.close();
  }
});

Deno.test("an allow-list of origins is echoed only for listed origins", async () => {
  const ctx = createContext({
    ...readEdgeConfig(),
    allowedOrigins: ["https://admin.kamioi.example"],
  });
  const dashboard = createDashboardHandler(ctx);
  const preflight = (origin: string) =>
    call(dashboard, "dashboard", {
      method: "OPTIONS",
      headers: { "Origin": origin, "Access-Control-Request-Method": "GET" },
    });
  try {
    const listed = await preflight("https://admin.kamioi.example");
    assert.equal(listed.headers.get("Access-Control-Allow-Origin"), "https://admin.kamioi.example");
    assert.equal(listed.headers.get("Vary"), "Origin");
    const other = await preflight("https://evil.example");
    assert.equal(other.headers.get("Access-Control-Allow-Origin"), null);
  } finally {
    await ctx.rpc.close();
  }
});
