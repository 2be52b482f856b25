/**
 * The auth matrix, through the dashboard handler (admin only). The cache holds a fresh entry so
 * every accepted token gets a 200 without touching the database; rejected ones never get that far.
 */
import assert from "node:assert/strict";
import { readEdgeConfig } from "../_shared/config.ts";
import { createContext, type EdgeContext } from "../_shared/context.ts";
import { DASHBOARD_CACHE_KEY } from "../_shared/stats_cache.ts";
import { createDashboardHandler } from "../dashboard/handler.ts";
import {
  adminClaims,
  call,
  env,
  errorCode,
  kamioiToken,
  signHs256,
  signWithForeignKey,
  signWithStackKey,
  unsignedToken,
  writeApiStatsEntry,
} from "./helpers.ts";

const PROBE = { probe: "auth" };

async function withContext(
  overrides: Partial<ReturnType<typeof readEdgeConfig>>,
  body: (ctx: EdgeContext) => Promise<void>,
): Promise<void> {
  const ctx = createContext({ ...readEdgeConfig(), ...overrides });
  try {
    await body(ctx);
  } finally {
    await ctx.rpc.close();
  }
}

Deno.test("dashboard auth matrix", async (t) => {
  await withContext({}, async (ctx) => {
    const dashboard = createDashboardHandler(ctx);
    await writeApiStatsEntry(ctx.redis, PROBE);
    const status = async (token?: string, headers?: Record<string, string>) =>
      (await call(dashboard, "dashboard", { token, headers })).status;

    await t.step("no token is 401 with a Bearer challenge", async () => {
      const response = await call(dashboard, "dashboard");
      assert.equal(response.status, 401);
      assert.match(response.headers.get("WWW-Authenticate") ?? "", /^Bearer /);
      assert.equal(await errorCode(response), "unauthorized");
    });
    await t.step("non-Bearer scheme and garbage are 401", async () => {
      assert.equal(await status(undefined, { Authorization: "Basic YWRtaW46YWRtaW4=" }), 401);
      assert.equal(await status("not-a-jwt"), 401);
    });
    await t.step("admin token from `kamioi token` (ES256, JWKS) is 200", async () => {
      assert.equal(await status(await kamioiToken("admin")), 200);
    });
    await t.step("user token is 403", async () => {
      const response = await call(dashboard, "dashboard", { token: await kamioiToken("user") });
      assert.equal(response.status, 403);
      assert.equal(await errorCode(response), "forbidden");
    });
    await t.step("bad signature is 401", async () => {
      assert.equal(await status(await signWithForeignKey(adminClaims())), 401);
    });
    await t.step("alg none is 401", async () => {
      assert.equal(await status(unsignedToken(adminClaims())), 401);
    });
    await t.step("expired token is 401", async () => {
      const past = Math.floor(Date.now() / 1000) - 120;
      const response = await call(dashboard, "dashboard", {
        token: await signWithStackKey(adminClaims({ iat: past - 3600, exp: past })),
      });
      assert.equal(response.status, 401);
      assert.equal((await response.json()).error.message, "token expired");
    });
    await t.step("wrong issuer or audience is 401", async () => {
      assert.equal(await status(await signWithStackKey(adminClaims({ iss: "https://evil" }))), 401);
      assert.equal(await status(await signWithStackKey(adminClaims({ aud: "other" }))), 401);
    });
    await t.step("anon-role token is 401", async () => {
      assert.equal(await status(await signWithStackKey(adminClaims({ role: "anon" }))), 401);
    });
    await t.step("legacy HS256 admin token is 200, wrong secret 401", async () => {
      assert.equal(await status(await kamioiToken("admin", "HS256")), 200);
      const forged = await signHs256(adminClaims(), "not-the-secret-".repeat(3));
      assert.equal(await status(forged), 401);
    });
    await ctx.redis.del(DASHBOARD_CACHE_KEY);
  });
});

Deno.test("HS256 is refused when no legacy secret is configured", async () => {
  await withContext({ jwtSecret: "" }, async (ctx) => {
    await writeApiStatsEntry(ctx.redis, PROBE);
    const response = await call(createDashboardHandler(ctx), "dashboard", {
      token: await signHs256(adminClaims(), env("SUPABASE_JWT_SECRET")),
    });
    assert.equal(response.status, 401);
    await ctx.redis.del(DASHBOARD_CACHE_KEY);
  });
});

Deno.test("keys are fetched from a JWKS URL when no local JWKS is configured", async () => {
  const jwksJson = Deno.readTextFileSync(env("SUPABASE_JWKS_PATH"));
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    (request) =>
      new URL(request.url).pathname === "/auth/v1/.well-known/jwks.json"
        ? new Response(jwksJson, { headers: { "Content-Type": "application/json" } })
        : new Response("not found", { status: 404 }),
  );
  const url = new URL(`http://127.0.0.1:${server.addr.port}/auth/v1/.well-known/jwks.json`);
  try {
    await withContext({ jwks: { kind: "url", url } }, async (ctx) => {
      await writeApiStatsEntry(ctx.redis, PROBE);
      const dashboard = createDashboardHandler(ctx);
      assert.equal(
        (await call(dashboard, "dashboard", { token: await kamioiToken("admin") })).status,
        200,
      );
      const forged = await signWithForeignKey(adminClaims());
      assert.equal((await call(dashboard, "dashboard", { token: forged })).status, 401);
      await ctx.redis.del(DASHBOARD_CACHE_KEY);
    });
  } finally {
    await server.shutdown();
  }
});
