/** JSON responses and the one error shape every function returns: {"error": {code, message}}. */

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: HeadersInit = {},
  ) {
    super(message);
  }
}

export function jsonResponse(
  body: string,
  status = 200,
  headers: HeadersInit = {},
): Response {
  const merged = new Headers(headers);
  merged.set("Content-Type", "application/json; charset=utf-8");
  return new Response(body, { status, headers: merged });
}

export function errorResponse(error: HttpError): Response {
  const body = JSON.stringify({ error: { code: error.code, message: error.message } });
  return jsonResponse(body, error.status, error.headers);
}
