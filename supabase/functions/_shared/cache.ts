/**
 * The Upstash client and fail-soft reads and writes. A cache outage must never fail a request: reads
 * degrade to a miss and writes are dropped, each after one short attempt.
 */
import { Redis } from "@upstash/redis";
import type { EdgeConfig } from "./config.ts";

/** Typeahead pages: short-lived, one key per caller scope and query. */
export const MERCHANT_SEARCH_CACHE_PREFIX = "kamioi:edge:merchant_search:v1";
export const MERCHANT_SEARCH_CACHE_TTL_S = 30;

// Beyond this a cache round trip is slower than the database it is meant to spare.
const CACHE_TIMEOUT_MS = 500;

export function createRedis(config: EdgeConfig): Redis {
  return new Redis({
    url: config.upstashUrl,
    token: config.upstashToken,
    // Values are JSON strings written by Python too: parse them ourselves, strictly.
    automaticDeserialization: false,
    enableTelemetry: false,
    retry: { retries: 1, backoff: () => 20 },
    signal: () => AbortSignal.timeout(CACHE_TIMEOUT_MS),
  });
}

export async function cacheGet(redis: Redis, key: string): Promise<string | null> {
  try {
    return await redis.get<string>(key);
  } catch (error) {
    console.warn(`cache read failed for ${key}: ${error}`);
    return null;
  }
}

export async function cacheSet(
  redis: Redis,
  key: string,
  value: string,
  ttlSeconds: number,
): Promise<void> {
  try {
    await redis.set(key, value, { ex: ttlSeconds });
  } catch (error) {
    console.warn(`cache write failed for ${key}: ${error}`);
  }
}
