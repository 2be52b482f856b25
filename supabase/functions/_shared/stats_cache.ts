/**
 * The admin API's cache-aside protocol for aggregates (api/cache.py), so the edge and the API
 * read and refill the same Upstash entries:
 * - key `kamioi:cache:<family>`, value `{"v": <version>, "t": <epoch seconds>, "value": <data>}`,
 *   expiring after TTL + stale window;
 * - an entry counts only while `v` equals `kamioi:cache:stats:version` ("0" when absent): the API
 *   bumps that version whenever the database announces changed numbers, invalidating everything;
 * - fresh for TTL seconds. Past that the API serves it stale while refreshing in the background;
 *   the edge has no background work, so it recomputes instead (dashboard_stats() is O(1)).
 */
import type { Redis } from "@upstash/redis";
import { cacheSet } from "./cache.ts";

export const STATS_VERSION_KEY = "kamioi:cache:stats:version";
export const DASHBOARD_CACHE_KEY = "kamioi:cache:dashboard_stats";
/** The API's defaults (API_STATS_TTL_S, API_STATS_STALE_S). */
export const STATS_TTL_S = 300;
export const STATS_STALE_S = 300;

export interface StatsEntry {
  version: string;
  /** Epoch seconds, as Python's time.time(). */
  computedAt: number;
  value: unknown;
}

export type StatsLookup =
  | { status: "hit"; entry: StatsEntry }
  /** Absent, malformed, out of date or of an old version: recompute and store under `version`. */
  | { status: "miss"; version: string }
  /** Upstash unreachable: compute from the database and write nothing. */
  | { status: "bypass" };

function decodeEntry(raw: string | null): StatsEntry | null {
  if (raw === null) return null;
  try {
    const data = JSON.parse(raw);
    const computedAt = Number(data.t);
    if (data.v !== undefined && Number.isFinite(computedAt) && "value" in data) {
      return { version: String(data.v), computedAt, value: data.value };
    }
  } catch {
    // Falls through to the warning: a malformed entry is a miss and gets overwritten.
  }
  console.warn("ignoring a malformed stats cache entry");
  return null;
}

export async function lookupStats(redis: Redis, key: string, nowS: number): Promise<StatsLookup> {
  let version: string | null;
  let raw: string | null;
  try {
    // One round trip for both, like the API's pipeline.
    [version, raw] = await redis.pipeline().get<string>(STATS_VERSION_KEY).get<string>(key)
      .exec<[string | null, string | null]>();
  } catch (error) {
    console.warn(`cache read failed for ${key}: ${error}`);
    return { status: "bypass" };
  }
  const current = version ?? "0";
  const entry = decodeEntry(raw);
  if (entry && entry.version === current && nowS - entry.computedAt < STATS_TTL_S) {
    return { status: "hit", entry };
  }
  return { status: "miss", version: current };
}

export async function storeStats(redis: Redis, key: string, entry: StatsEntry): Promise<void> {
  const encoded = JSON.stringify({ v: entry.version, t: entry.computedAt, value: entry.value });
  await cacheSet(redis, key, encoded, STATS_TTL_S + STATS_STALE_S);
}
