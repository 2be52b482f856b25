/**
 * Local stand-in for the Data API hop: runs an RPC directly in Postgres exactly as PostgREST does
 * (one transaction, read-only for STABLE functions; role and JWT claims set locally from the
 * already verified token), so RLS and `auth.uid()` behave as in production.
 */
import postgres from "postgres";
import type { Caller } from "./auth.ts";
import { type RpcCall, type RpcClient, RpcError } from "./rpc.ts";

const IDENTIFIER = /^[a-z_][a-z0-9_]*$/;
const POOL_SIZE = 4;
const IDLE_TIMEOUT_S = 20;

function rpcQuery({ fn, args, returns }: RpcCall): string {
  for (const name of [fn, ...Object.keys(args)]) {
    if (!IDENTIFIER.test(name)) throw new Error(`not an SQL identifier: ${name}`);
  }
  const namedArgs = Object.keys(args).map((name, i) => `${name} => $${i + 1}`).join(", ");
  const target = `public.${fn}(${namedArgs})`;
  return returns === "scalar"
    ? `select ${target} as result`
    : `select coalesce(json_agg(r), '[]'::json) as result from ${target} r`;
}

export function createPostgresRpc(url: string): RpcClient {
  const sql = postgres(url, {
    max: POOL_SIZE,
    idle_timeout: IDLE_TIMEOUT_S,
    connection: { application_name: "kamioi-edge-rpc" },
    onnotice: () => {},
  });
  return {
    async call(call: RpcCall, caller: Caller) {
      const query = rpcQuery(call);
      const values = Object.values(call.args);
      try {
        return await sql.begin(call.readOnly ? "read only" : "read write", async (tx) => {
          await tx`select
            set_config('search_path', 'public, extensions', true),
            set_config('role', ${caller.role}, true),
            set_config('request.jwt.claims', ${JSON.stringify(caller.claims)}, true),
            set_config('request.method', ${call.readOnly ? "GET" : "POST"}, true),
            set_config('request.path', ${`/rpc/${call.fn}`}, true)`;
          const [row] = await tx.unsafe(query, values);
          return row.result as unknown;
        });
      } catch (error) {
        if (error instanceof postgres.PostgresError) throw new RpcError(error.code, error.message);
        throw error;
      }
    },
    close: () => sql.end({ timeout: 5 }),
  };
}
