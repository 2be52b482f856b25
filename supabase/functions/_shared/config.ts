/**
 * Everything the functions read from the environment, resolved once per isolate.
 *
 * Hosted Supabase injects SUPABASE_URL, SUPABASE_JWKS, SUPABASE_PUBLISHABLE_KEYS (and the legacy
 * SUPABASE_ANON_KEY); the Upstash credentials are project secrets. The local stack's .env provides
 * SUPABASE_JWKS_PATH and KAMIOI_RPC_DB_URL instead (see README.md).
 */
import type { JSONWebKeySet } from "jose";

export type JwksSource =
  | { kind: "inline"; jwks: JSONWebKeySet }
  | { kind: "url"; url: URL };

export interface EdgeConfig {
  supabaseUrl: string;
  /** Issuer Supabase Auth puts in access tokens: `<SUPABASE_URL>/auth/v1` unless JWT_ISSUER says. */
  jwtIssuer: string;
  jwtAudience: string;
  jwks: JwksSource;
  /** Legacy HS256 secret; when empty, HS256 tokens are rejected. */
  jwtSecret: string;
  /** Publishable (or legacy anon) key supabase-js sends as `apikey`. */
  apiKey: string;
  upstashUrl: string;
  upstashToken: string;
  /**
   * Local only: run RPCs straight against Postgres the way PostgREST does, because this machine
   * has no PostgREST. Deliberately not SUPABASE_DB_URL, which hosted functions always receive.
   */
  rpcDbUrl: string;
  /** `*` or an explicit allow-list of browser origins. */
  allowedOrigins: "*" | string[];
}

type Env = Pick<typeof Deno.env, "get">;

function required(env: Env, name: string): string {
  const value = env.get(name);
  if (!value) throw new Error(`missing environment variable ${name}`);
  return value;
}

function jwksSource(env: Env, supabaseUrl: string): JwksSource {
  const inline = env.get("SUPABASE_JWKS");
  if (inline) return { kind: "inline", jwks: JSON.parse(inline) };
  const path = env.get("SUPABASE_JWKS_PATH");
  if (path) return { kind: "inline", jwks: JSON.parse(Deno.readTextFileSync(path)) };
  const url = env.get("SUPABASE_JWKS_URL") ||
    `${supabaseUrl}/auth/v1/.well-known/jwks.json`;
  return { kind: "url", url: new URL(url) };
}

function publishableKey(env: Env): string {
  // SUPABASE_PUBLISHABLE_KEYS is a JSON dictionary such as {"default": "sb_publishable_..."}.
  const keys = env.get("SUPABASE_PUBLISHABLE_KEYS");
  if (keys) {
    const parsed: Record<string, string> = JSON.parse(keys);
    if (parsed.default) return parsed.default;
  }
  return env.get("SUPABASE_PUBLISHABLE_KEY") || env.get("SUPABASE_ANON_KEY") || "";
}

function origins(env: Env): "*" | string[] {
  const raw = env.get("CORS_ALLOWED_ORIGINS")?.trim();
  if (!raw || raw === "*") return "*";
  return raw.split(",").map((origin) => origin.trim()).filter(Boolean);
}

export function readEdgeConfig(env: Env = Deno.env): EdgeConfig {
  const supabaseUrl = required(env, "SUPABASE_URL").replace(/\/+$/, "");
  const rpcDbUrl = env.get("KAMIOI_RPC_DB_URL") ?? "";
  const apiKey = publishableKey(env);
  if (!rpcDbUrl && !apiKey) {
    throw new Error("set SUPABASE_PUBLISHABLE_KEYS, SUPABASE_PUBLISHABLE_KEY or SUPABASE_ANON_KEY");
  }
  return {
    supabaseUrl,
    jwtIssuer: env.get("JWT_ISSUER") || `${supabaseUrl}/auth/v1`,
    jwtAudience: env.get("JWT_AUDIENCE") || "authenticated",
    jwks: jwksSource(env, supabaseUrl),
    jwtSecret: env.get("SUPABASE_JWT_SECRET") ?? "",
    apiKey,
    upstashUrl: required(env, "UPSTASH_REDIS_REST_URL"),
    upstashToken: required(env, "UPSTASH_REDIS_REST_TOKEN"),
    rpcDbUrl,
    allowedOrigins: origins(env),
  };
}
