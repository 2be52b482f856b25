/** Strong validators for JSON bodies, so a browser revalidates with If-None-Match and gets a 304. */
import { sha256Hex } from "./digest.ts";

export async function etagFor(body: string): Promise<string> {
  // 128 bits are plenty to tell two versions of one resource apart.
  return `"${(await sha256Hex(body)).slice(0, 32)}"`;
}

/** If-None-Match uses the weak comparison (RFC 9110 13.1.2): a `W/` prefix does not matter. */
export function matchesIfNoneMatch(header: string | null, etag: string): boolean {
  if (!header) return false;
  if (header.trim() === "*") return true;
  return header.split(",").some((candidate) => candidate.trim().replace(/^W\//, "") === etag);
}
