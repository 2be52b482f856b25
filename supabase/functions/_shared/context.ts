/** The per-isolate dependencies a function handler needs, built once from the environment. */
import type { Redis } from "@upstash/redis";
import { createVerifier, type Verifier } from "./auth.ts";
import { createRedis } from "./cache.ts";
import { type EdgeConfig, readEdgeConfig } from "./config.ts";
import { createDataApiRpc, type RpcClient } from "./rpc.ts";
import { createPostgresRpc } from "./rpc_postgres.ts";

export interface EdgeContext {
  config: EdgeConfig;
  verify: Verifier;
  redis: Redis;
  rpc: RpcClient;
}

export function createContext(config: EdgeConfig = readEdgeConfig()): EdgeContext {
  return {
    config,
    verify: createVerifier(config),
    redis: createRedis(config),
    rpc: config.rpcDbUrl
      ? createPostgresRpc(config.rpcDbUrl)
      : createDataApiRpc(config.supabaseUrl, config.apiKey),
  };
}
