/**
 * Test helpers against the running local stack (`kamioi up`): tokens minted by the project's own
 * `kamioi token` and by the stack's signing key, requests to in-process handlers, and a superuser
 * connection for fixtures. run-tests.sh exports the stack's .env before `deno test`.
 */
import { generateKeyPair, importPKCS8, type JWTPayload, SignJWT } from "jose";
import type { Redis } from "@upstash/redis";
import postgres from "postgres";
import type { Handler } from "../_shared/serve.ts";
import { DASHBOARD_CACHE_KEY, STATS_VERSION_KEY } from "../_shared/stats_cache.ts";

const REPO_ROOT = new URL("../../../", import.meta.url);

export function env(name: string): string {
  const value = Deno.env.get(name);
  if (!value) throw new Error(`${name} is not set: run the suites through run-tests.sh`);
  return value;
}

const minted = new Map<string, Promise<string>>();

/** A token exactly as `kamioi token --as <who>` prints it; minted once per run (the CLI is slow). */
export function kamioiToken(who: "admin" | "user", alg = "ES256"): Promise<string> {
  const key = `${who}:${alg}`;
  if (!minted.has(key)) minted.set(key, runKamioiToken(who, alg));
  return minted.get(key)!;
}

async function runKamioiToken(who: string, alg: string): Promise<string> {
  const cli = Deno.env.get("KAMIOI_CLI") ?? new URL(".venv/bin/kamioi", REPO_ROOT).pathname;
  const { code, stdout, stderr } = await new Deno.Command(cli, {
    args: ["token", "--as", who, "--alg", alg],
  }).output();
  if (code !== 0) throw new Error(`kamioi token failed: ${new TextDecoder().decode(stderr)}`);
  return new TextDecoder().decode(stdout).trim();
}

export const ADMIN_ID = "00000000-0000-4000-a000-000000000001";
export const USER_ID = "00000000-0000-4000-a000-000000000002";

/** Claims shaped like Supabase Auth's for the seeded admin, overridable per test. */
export function adminClaims(overrides: JWTPayload = {}): JWTPayload {
  const now = Math.floor(Date.now() / 1000);
  return {
    aud: "authenticated",
    iss: `${env("SUPABASE_URL").replace(/\/+$/, "")}/auth/v1`,
    sub: ADMIN_ID,
    role: "authenticated",
    user_role: "admin",
    iat: now,
    exp: now + 3600,
    ...overrides,
  };
}

function stackKid(): string {
  const jwks = JSON.parse(Deno.readTextFileSync(env("SUPABASE_JWKS_PATH")));
  return jwks.keys[0].kid;
}

/** Signs with the stack's own ES256 key (keys/es256.pem next to jwks.json). */
export async function signWithStackKey(claims: JWTPayload): Promise<string> {
  const pemPath = new URL("es256.pem", `file://${env("SUPABASE_JWKS_PATH")}`);
  const key = await importPKCS8(Deno.readTextFileSync(pemPath), "ES256");
  return await new SignJWT(claims).setProtectedHeader({ alg: "ES256", kid: stackKid() }).sign(key);
}

/** Right kid, wrong key: what a forged token looks like. */
export async function signWithForeignKey(claims: JWTPayload): Promise<string> {
  const { privateKey } = await generateKeyPair("ES256");
  return await new SignJWT(claims).setProtectedHeader({ alg: "ES256", kid: stackKid() })
    .sign(privateKey);
}

export async function signHs256(claims: JWTPayload, secret: string): Promise<string> {
  return await new SignJWT(claims).setProtectedHeader({ alg: "HS256" })
    .sign(new TextEncoder().encode(secret));
}

/** An unsecured JWT (`alg: none`, empty signature). */
export function unsignedToken(claims: JWTPayload): string {
  const encode = (part: object) =>
    btoa(JSON.stringify(part)).replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");
  return `${encode({ alg: "none", typ: "JWT" })}.${encode(claims)}.`;
}

export interface CallOptions {
  token?: string;
  method?: string;
  headers?: Record<string, string>;
}

/** Calls a handler in-process the way Deno.serve would. */
export function call(handler: Handler, path: string, options: CallOptions = {}): Promise<Response> {
  const headers = new Headers(options.headers);
  if (options.token) headers.set("Authorization", `Bearer ${options.token}`);
  const url = new URL(path, "http://127.0.0.1/functions/v1/");
  return handler(new Request(url, { method: options.method ?? "GET", headers }));
}

export async function errorCode(response: Response): Promise<string> {
  return (await response.json()).error.code;
}

export function superuserDb(): postgres.Sql {
  return postgres(env("SUPERUSER_DATABASE_URL"), { max: 1, onnotice: () => {} });
}

/**
 * Writes a dashboard entry the way the admin API's Python cache does (json.dumps of
 * {"v", "t", "value"}), under the current stats version unless one is given.
 */
export async function writeApiStatsEntry(
  redis: Redis,
  value: unknown,
  options: { version?: string; ageS?: number } = {},
): Promise<void> {
  const version = options.version ?? (await redis.get<string>(STATS_VERSION_KEY)) ?? "0";
  const t = Date.now() / 1000 - (options.ageS ?? 0);
  const encoded = `{"v": ${JSON.stringify(version)}, "t": ${t}, "value": ${JSON.stringify(value)}}`;
  await redis.set(DASHBOARD_CACHE_KEY, encoded);
}
