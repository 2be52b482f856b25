// deno-lint-ignore-file no-import-prefix -- a standalone script run with --no-config, so no import map
// Runs the unmodified npm clients (@upstash/redis, @upstash/ratelimit) against the proxy.
// Started by test_upstash_js_client.py with UPSTASH_REDIS_REST_URL/TOKEN and KEY_PREFIX set.
import assert from "node:assert/strict";
import { Ratelimit } from "npm:@upstash/ratelimit@2";
import { Redis } from "npm:@upstash/redis@1";

const redis = new Redis({
  url: Deno.env.get("UPSTASH_REDIS_REST_URL")!,
  token: Deno.env.get("UPSTASH_REDIS_REST_TOKEN")!,
  enableTelemetry: false,
});
const key = Deno.env.get("KEY_PREFIX")!;

for (const value of ['héllo\n"x" 🌍', "OK", "T0s="]) {
  assert.equal(await redis.set(`${key}:s`, value), "OK");
  assert.equal(await redis.get(`${key}:s`), value);
}
assert.equal(await redis.get(`${key}:missing`), null);
await redis.rpush(`${key}:l`, "OK", "a", "");
assert.deepEqual(await redis.lrange(`${key}:l`, 0, -1), ["OK", "a", ""]);
await redis.set(`${key}:json`, { a: 1, b: [1, 2] });
assert.deepEqual(await redis.get(`${key}:json`), { a: 1, b: [1, 2] });

const pipeline = redis.pipeline();
pipeline.incr(`${key}:n`).hset(`${key}:h`, { f: "v" }).hgetall(`${key}:h`);
assert.deepEqual(await pipeline.exec(), [1, 1, { f: "v" }]);
const transaction = redis.multi();
transaction.set(`${key}:m`, 1).incr(`${key}:m`);
assert.deepEqual(await transaction.exec(), ["OK", 2]);
await assert.rejects(redis.hget(`${key}:s`, "f"), /WRONGTYPE/);

const limiters = {
  sliding: Ratelimit.slidingWindow(3, "1 h"),
  fixed: Ratelimit.fixedWindow(3, "1 h"),
  bucket: Ratelimit.tokenBucket(3, "1 h", 3),
};
for (const [name, limiter] of Object.entries(limiters)) {
  const ratelimit = new Ratelimit({ redis, limiter, prefix: `${key}:${name}` });
  const allowed = [];
  for (let i = 0; i < 5; i++) {
    allowed.push((await ratelimit.limit("user")).success);
  }
  assert.deepEqual(allowed, [true, true, true, false, false], name);
}
console.log("all checks passed");
