/**
 * How functions reach the database: one RPC, run as the caller so RLS applies. In production this
 * is supabase-js with the caller's token (the Data API); locally, where no PostgREST runs,
 * rpc_postgres.ts runs the same RPC the way PostgREST would.
 */
import { createClient } from "@supabase/supabase-js";
import type { Caller } from "./auth.ts";
import type { Database } from "./database.types.ts";
import { HttpError } from "./http.ts";

/** An RPC of the public schema: `deno check` refuses a name the migrations do not define. */
export type RpcName = keyof Database["public"]["Functions"];

export interface RpcCall {
  fn: RpcName;
  args: Record<string, string | number | null>;
  /** STABLE functions: the Data API runs them in a read-only transaction (GET). */
  readOnly: boolean;
  /** `scalar`: the function returns one value; `rows`: it returns a set, sent as an array. */
  returns: "scalar" | "rows";
}

export interface RpcClient {
  call(call: RpcCall, caller: Caller): Promise<unknown>;
  close(): Promise<void>;
}

/** A database error, carrying the SQLSTATE (or PostgREST's PGRST code). */
export class RpcError extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
  }
}

/** Translates a failed RPC into the response the caller sees, like PostgREST's status mapping. */
export function rpcHttpError(error: RpcError): HttpError {
  if (error.code === "42501") {
    return new HttpError(403, "forbidden", "not allowed");
  }
  if (error.code === "P0001" || error.code.startsWith("22")) {
    return new HttpError(400, "bad_request", error.message);
  }
  if (error.code === "57014") {
    return new HttpError(504, "timeout", "the database took too long");
  }
  console.error(`rpc failed (${error.code}): ${error.message}`);
  return new HttpError(502, "database_error", "the database request failed");
}

export function createDataApiRpc(supabaseUrl: string, apiKey: string): RpcClient {
  return {
    async call({ fn, args, readOnly }, caller) {
      const client = createClient<Database>(supabaseUrl, apiKey, {
        global: { headers: { Authorization: `Bearer ${caller.token}` } },
        auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
      });
      const { data, error } = await client.rpc(fn, args, { get: readOnly });
      if (error) throw new RpcError(error.code ?? "", error.message);
      return data;
    },
    close: () => Promise.resolve(),
  };
}
