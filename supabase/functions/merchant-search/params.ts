/** Validates the typeahead's query string: ?q=<text>&after=<id cursor>&limit=<n>. */
import { HttpError } from "../_shared/http.ts";

// Below three characters pg_trgm has no trigram to look up, so the index cannot help.
export const MIN_QUERY_LENGTH = 3;
export const MAX_QUERY_LENGTH = 100;
export const DEFAULT_PAGE_SIZE = 20;
/** Larger requests are clamped, not refused: the page cap protects the database either way. */
export const MAX_PAGE_SIZE = 50;
const MAX_BIGINT = 9223372036854775807n;

export interface SearchParams {
  query: string;
  /** Keyset cursor: the last id of the previous page, as a string (bigint-safe). */
  afterId: string | null;
  limit: number;
}

function badRequest(message: string): HttpError {
  return new HttpError(400, "bad_request", message);
}

// search_mappings() matches case-insensitively, so case is folded here too: one cache entry per query.
function parseQuery(raw: string | null): string {
  const query = (raw ?? "").trim().replace(/\s+/g, " ").toLowerCase();
  const length = [...query].length;
  if (length < MIN_QUERY_LENGTH || length > MAX_QUERY_LENGTH) {
    throw badRequest(`q must be ${MIN_QUERY_LENGTH} to ${MAX_QUERY_LENGTH} characters`);
  }
  return query;
}

function parseAfter(raw: string | null): string | null {
  if (raw === null || raw === "") return null;
  if (!/^[1-9][0-9]{0,18}$/.test(raw) || BigInt(raw) > MAX_BIGINT) {
    throw badRequest("after must be a positive integer id");
  }
  return raw;
}

function parseLimit(raw: string | null): number {
  if (raw === null || raw === "") return DEFAULT_PAGE_SIZE;
  if (!/^[0-9]{1,6}$/.test(raw) || Number(raw) < 1) {
    throw badRequest("limit must be a positive integer");
  }
  return Math.min(Number(raw), MAX_PAGE_SIZE);
}

export function parseSearchParams(url: URL): SearchParams {
  const params = url.searchParams;
  return {
    query: parseQuery(params.get("q")),
    afterId: parseAfter(params.get("after")),
    limit: parseLimit(params.get("limit")),
  };
}
