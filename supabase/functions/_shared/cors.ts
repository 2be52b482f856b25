/**
 * CORS for browser callers. Tokens travel in the Authorization header, never in cookies, so `*`
 * is safe by default; CORS_ALLOWED_ORIGINS narrows it to a list.
 */

const ALLOWED_HEADERS = "authorization, x-client-info, apikey, content-type, if-none-match";
// Let the browser read the validators and the cache verdict.
const EXPOSED_HEADERS = "etag, x-cache";
const PREFLIGHT_MAX_AGE_S = "86400";

export function corsHeaders(
  requestOrigin: string | null,
  allowedOrigins: "*" | string[],
): Headers {
  const headers = new Headers({
    "Access-Control-Allow-Headers": ALLOWED_HEADERS,
    "Access-Control-Expose-Headers": EXPOSED_HEADERS,
  });
  if (allowedOrigins === "*") {
    headers.set("Access-Control-Allow-Origin", "*");
  } else {
    headers.set("Vary", "Origin");
    if (requestOrigin && allowedOrigins.includes(requestOrigin)) {
      headers.set("Access-Control-Allow-Origin", requestOrigin);
    }
  }
  return headers;
}

export function preflightResponse(cors: Headers, methods: string[]): Response {
  const headers = new Headers(cors);
  headers.set("Access-Control-Allow-Methods", [...methods, "OPTIONS"].join(", "));
  headers.set("Access-Control-Max-Age", PREFLIGHT_MAX_AGE_S);
  return new Response(null, { status: 204, headers });
}
