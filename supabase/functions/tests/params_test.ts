import assert from "node:assert/strict";
import { HttpError } from "../_shared/http.ts";
import { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, parseSearchParams } from "../merchant-search/params.ts";

const parse = (query: string) => parseSearchParams(new URL(`http://x/merchant-search?${query}`));

function assertBadRequest(query: string): void {
  assert.throws(
    () => parse(query),
    (error) => error instanceof HttpError && error.status === 400,
    query,
  );
}

Deno.test("search params: defaults, trimming, case folding and the page cap", () => {
  assert.deepEqual(parse("q=%20%20Star%20%20%20BUCKS%20"), {
    query: "star bucks",
    afterId: null,
    limit: DEFAULT_PAGE_SIZE,
  });
  assert.equal(parse("q=star&limit=1000").limit, MAX_PAGE_SIZE);
  assert.equal(parse("q=star&limit=7").limit, 7);
  assert.equal(parse("q=star&after=9223372036854775807").afterId, "9223372036854775807");
});

Deno.test("search params: bad input is a 400", () => {
  for (
    const query of [
      "",
      "q=",
      "q=ab",
      "q=%20%20ab%20%20",
      `q=${"x".repeat(101)}`,
      "q=star&after=abc",
      "q=star&after=0",
      "q=star&after=-5",
      "q=star&after=1.5",
      "q=star&after=9223372036854775808",
      "q=star&limit=0",
      "q=star&limit=-1",
      "q=star&limit=ten",
      "q=star&limit=2.5",
    ]
  ) assertBadRequest(query);
});
