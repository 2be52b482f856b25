/**
 * Verifies Supabase Auth access tokens inside the function (config.toml sets verify_jwt = false:
 * the gateway's check only knows the legacy secret, and it would also reject CORS preflights).
 * Asymmetric tokens are checked against the project's JWKS; HS256 only when the legacy secret is set.
 */
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  decodeProtectedHeader,
  errors,
  type JWTPayload,
  jwtVerify,
  type JWTVerifyGetKey,
} from "jose";
import type { EdgeConfig } from "./config.ts";
import { HttpError } from "./http.ts";

/** Supabase signs with ES256 (recommended) or RS256 keys. */
const ASYMMETRIC_ALGORITHMS = ["ES256", "RS256"];
const CLOCK_TOLERANCE_S = 5;

export interface Caller {
  token: string;
  userId: string;
  /** Postgres role the Data API switches to (`authenticated`). */
  role: string;
  /** `admin` | `user`, added by public.custom_access_token_hook. */
  userRole: string;
  claims: JWTPayload;
}

export type Verifier = (authorization: string | null) => Promise<Caller>;

function unauthorized(message: string): HttpError {
  return new HttpError(401, "unauthorized", message, {
    "WWW-Authenticate": `Bearer error="invalid_token"`,
  });
}

function bearerToken(authorization: string | null): string {
  const match = authorization?.match(/^Bearer\s+(\S+)$/i);
  if (!match) throw unauthorized("missing bearer token");
  return match[1];
}

function keyResolver(config: EdgeConfig): JWTVerifyGetKey {
  return config.jwks.kind === "inline"
    ? createLocalJWKSet(config.jwks.jwks)
    : createRemoteJWKSet(config.jwks.url);
}

export function createVerifier(config: EdgeConfig): Verifier {
  const jwks = keyResolver(config);
  const secret = config.jwtSecret ? new TextEncoder().encode(config.jwtSecret) : null;
  const claimChecks = {
    issuer: config.jwtIssuer,
    audience: config.jwtAudience,
    clockTolerance: CLOCK_TOLERANCE_S,
    requiredClaims: ["exp", "sub", "role"],
  };

  async function verifyClaims(token: string): Promise<JWTPayload> {
    let alg: string | undefined;
    try {
      alg = decodeProtectedHeader(token).alg;
    } catch {
      throw unauthorized("malformed token");
    }
    try {
      if (alg === "HS256") {
        if (!secret) throw unauthorized("HS256 tokens are not accepted");
        return (await jwtVerify(token, secret, { ...claimChecks, algorithms: ["HS256"] })).payload;
      }
      return (await jwtVerify(token, jwks, { ...claimChecks, algorithms: ASYMMETRIC_ALGORITHMS }))
        .payload;
    } catch (error) {
      if (error instanceof HttpError) throw error;
      if (error instanceof errors.JWTExpired) throw unauthorized("token expired");
      if (error instanceof errors.JWKSTimeout) {
        throw new HttpError(503, "jwks_unavailable", "signing keys could not be fetched");
      }
      if (error instanceof errors.JOSEError) throw unauthorized("invalid token");
      throw error;
    }
  }

  return async (authorization) => {
    const token = bearerToken(authorization);
    const claims = await verifyClaims(token);
    // Only signed-in users: anon and service-role JWTs are not callers of these functions.
    if (claims.role !== "authenticated" || typeof claims.sub !== "string") {
      throw unauthorized("a signed-in user's access token is required");
    }
    return {
      token,
      userId: claims.sub,
      role: claims.role,
      userRole: typeof claims.user_role === "string" ? claims.user_role : "user",
      claims,
    };
  };
}

export function requireAdmin(caller: Caller): void {
  if (caller.userRole !== "admin") {
    throw new HttpError(403, "forbidden", "admin access required");
  }
}
