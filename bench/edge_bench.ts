/**
 * Requests/s and latency percentiles of the `dashboard` Edge Function, served with Deno.serve on
 * 127.0.0.1 against the local stack, on an Upstash cache hit vs a miss (database RPC + cache write).
 *
 *   DENO_DIR=.local/deno .venv/bin/deno run --config supabase/functions/deno.json --frozen -A \
 *     bench/edge_bench.ts [--requests 2000] [--concurrency 8]
 *
 * Reads the stack's .env ($KAMIOI_ENV_FILE, default ./.env). A miss needs the key gone before every
 * request, so misses run one at a time with an untimed DEL in between; hits are measured both one at
 * a time (for the ratio) and with --concurrency clients.
 */
import { parseArgs } from "node:util";
import { DASHBOARD_CACHE_KEY } from "../supabase/functions/_shared/stats_cache.ts";
import { readEdgeConfig } from "../supabase/functions/_shared/config.ts";
import { createContext } from "../supabase/functions/_shared/context.ts";
import { createDashboardHandler } from "../supabase/functions/dashboard/handler.ts";

const REPO_ROOT = new URL("../", import.meta.url);

interface Run {
  label: string;
  concurrency: number;
  latenciesMs: number[];
  wallMs: number;
  cacheVerdicts: Record<string, number>;
}

function readEnvFile(path: string): Map<string, string> {
  const vars = new Map<string, string>();
  for (const line of Deno.readTextFileSync(path).split("\n")) {
    const match = line.match(/^([A-Z0-9_]+)=(.*)$/);
    if (match) vars.set(match[1], match[2]);
  }
  return vars;
}

async function adminToken(): Promise<string> {
  const cli = new URL(".venv/bin/kamioi", REPO_ROOT).pathname;
  const { code, stdout } = await new Deno.Command(cli, { args: ["token", "--as", "admin"] })
    .output();
  if (code !== 0) throw new Error("kamioi token failed: is the stack up?");
  return new TextDecoder().decode(stdout).trim();
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

async function measure(
  label: string,
  requests: number,
  concurrency: number,
  request: () => Promise<{ ms: number; verdict: string }>,
): Promise<Run> {
  const latenciesMs: number[] = [];
  const cacheVerdicts: Record<string, number> = {};
  let remaining = requests;
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (remaining-- > 0) {
      const { ms, verdict } = await request();
      latenciesMs.push(ms);
      cacheVerdicts[verdict] = (cacheVerdicts[verdict] ?? 0) + 1;
    }
  }));
  return { label, concurrency, latenciesMs, wallMs: performance.now() - started, cacheVerdicts };
}

function summary(run: Run) {
  const sorted = [...run.latenciesMs].sort((a, b) => a - b);
  const totalMs = run.latenciesMs.reduce((sum, ms) => sum + ms, 0);
  return {
    label: run.label,
    concurrency: run.concurrency,
    requests: sorted.length,
    // One at a time, wall time would include the untimed DEL of the miss runs: use latency instead.
    rps: run.concurrency === 1 ? 1000 * sorted.length / totalMs : 1000 * sorted.length / run.wallMs,
    p50: percentile(sorted, 50),
    p95: percentile(sorted, 95),
    p99: percentile(sorted, 99),
    cache: run.cacheVerdicts,
  };
}

const { values } = parseArgs({
  args: Deno.args,
  options: {
    requests: { type: "string", default: "2000" },
    concurrency: { type: "string", default: "8" },
  },
});
const requests = Number(values.requests);
const concurrency = Number(values.concurrency);

const envFile = Deno.env.get("KAMIOI_ENV_FILE") ?? new URL(".env", REPO_ROOT).pathname;
const stackEnv = readEnvFile(envFile);
// Locally the RPC goes straight to Postgres (no PostgREST here), as in the Deno test suites.
stackEnv.set("KAMIOI_RPC_DB_URL", stackEnv.get("DATABASE_URL")!);
const ctx = createContext(readEdgeConfig({ get: (name) => stackEnv.get(name) }));
const server = Deno.serve(
  { hostname: "127.0.0.1", port: 0, onListen: () => {} },
  createDashboardHandler(ctx),
);
const url = `http://127.0.0.1:${server.addr.port}/dashboard`;
const headers = { Authorization: `Bearer ${await adminToken()}` };

async function timedGet(): Promise<{ ms: number; verdict: string }> {
  const started = performance.now();
  const response = await fetch(url, { headers });
  await response.arrayBuffer();
  const ms = performance.now() - started;
  if (response.status !== 200) throw new Error(`dashboard answered ${response.status}`);
  return { ms, verdict: response.headers.get("X-Cache") ?? "none" };
}

async function timedMiss(): Promise<{ ms: number; verdict: string }> {
  await ctx.redis.del(DASHBOARD_CACHE_KEY);
  return await timedGet();
}

try {
  await measure("warm-up", 200, 4, timedMiss);
  const runs = [
    await measure("miss (RPC + cache write)", requests, 1, timedMiss),
    await measure("hit", requests, 1, timedGet),
    await measure("hit", requests, concurrency, timedGet),
  ].map(summary);
  console.log(`| path | clients | requests | req/s | p50 ms | p95 ms | p99 ms | X-Cache |`);
  console.log(`|---|---|---|---|---|---|---|---|`);
  for (const run of runs) {
    const cells = [run.label, run.concurrency, run.requests, run.rps.toFixed(0)]
      .concat([run.p50, run.p95, run.p99].map((ms) => ms.toFixed(2)))
      .concat(JSON.stringify(run.cache));
    console.log(`| ${cells.join(" | ")} |`);
  }
  const [miss, hit] = runs;
  console.log(
    `\nhit/miss, one client: ${(hit.rps / miss.rps).toFixed(1)}x req/s, ` +
      `p95 ${(miss.p95 / hit.p95).toFixed(1)}x lower`,
  );
} finally {
  await server.shutdown();
  await ctx.rpc.close();
}
