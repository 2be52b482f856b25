/**
 * What every function does around its route: CORS (preflight and headers on every response),
 * the method check, and turning thrown errors into the JSON error shape.
 */
import { corsHeaders, preflightResponse } from "./cors.ts";
import { errorResponse, HttpError } from "./http.ts";
import { RpcError, rpcHttpError } from "./rpc.ts";

export type Handler = (request: Request) => Promise<Response>;

function asResponse(error: unknown): Response {
  if (error instanceof HttpError) return errorResponse(error);
  if (error instanceof RpcError) return errorResponse(rpcHttpError(error));
  console.error("unhandled error", error);
  return errorResponse(new HttpError(500, "internal_error", "internal error"));
}

export function withHttpBasics(
  allowedOrigins: "*" | string[],
  methods: string[],
  route: Handler,
): Handler {
  return async (request) => {
    const cors = corsHeaders(request.headers.get("Origin"), allowedOrigins);
    if (request.method === "OPTIONS") return preflightResponse(cors, methods);
    let response: Response;
    if (!methods.includes(request.method)) {
      response = errorResponse(
        new HttpError(405, "method_not_allowed", `use ${methods.join(" or ")}`, {
          Allow: [...methods, "OPTIONS"].join(", "),
        }),
      );
    } else {
      try {
        response = await route(request);
      } catch (error) {
        response = asResponse(error);
      }
    }
    for (const [name, value] of cors) {
      if (name === "vary") response.headers.append(name, value);
      else response.headers.set(name, value);
    }
    return response;
  };
}
