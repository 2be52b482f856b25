import assert from "node:assert/strict";
import { etagFor, matchesIfNoneMatch } from "../_shared/etag.ts";

Deno.test("etags are stable per body and differ between bodies", async () => {
  assert.equal(await etagFor('{"a":1}'), await etagFor('{"a":1}'));
  assert.notEqual(await etagFor('{"a":1}'), await etagFor('{"a":2}'));
});

Deno.test("If-None-Match uses weak comparison and accepts lists and *", () => {
  const etag = '"abc"';
  assert.equal(matchesIfNoneMatch(null, etag), false);
  assert.equal(matchesIfNoneMatch('"abc"', etag), true);
  assert.equal(matchesIfNoneMatch('W/"abc"', etag), true);
  assert.equal(matchesIfNoneMatch('"x", "abc"', etag), true);
  assert.equal(matchesIfNoneMatch("*", etag), true);
  assert.equal(matchesIfNoneMatch('"abcd"', etag), false);
});
