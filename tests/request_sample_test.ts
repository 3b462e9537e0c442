// The fair choice of an update's connection requests on its own.

import { assert, assertEquals } from "./_assert.ts";
import {
  clearRequestSample,
  createRequestSample,
  offerRequest,
} from "../_request_sample.ts";

const REQUEST = new Uint8Array(1078).fill(7);

function offerAll(
  sample: ReturnType<typeof createRequestSample>,
  keys: string[],
) {
  for (const key of keys) {
    offerRequest(sample, REQUEST, { hostname: key, port: 1 }, key);
  }
}

Deno.test("offerRequest() keeps every candidate while there is room, a copy of each", () => {
  const sample = createRequestSample(4, 1);
  const data = REQUEST.slice();
  assert(offerRequest(sample, data, { hostname: "a", port: 1 }, "a"));
  data.fill(0);
  assertEquals(sample.slots[0], REQUEST);
  offerAll(sample, ["b", "c"]);
  assertEquals(sample.count, 3);
  assertEquals(sample.offered, 3);
  assertEquals(sample.fromKeys.slice(0, 3), ["a", "b", "c"]);
});

Deno.test("offerRequest() sheds a second request from the same address in one update", () => {
  const sample = createRequestSample(4, 1);
  assert(offerRequest(sample, REQUEST, { hostname: "a", port: 1 }, "a"));
  assertEquals(
    offerRequest(sample, REQUEST, { hostname: "a", port: 1 }, "a"),
    false,
  );
  assertEquals(sample.offered, 1);
  clearRequestSample(sample);
  assert(offerRequest(sample, REQUEST, { hostname: "a", port: 1 }, "a"));
});

Deno.test("the sample does not depend on a request's place in the queue", () => {
  // 8 slots, 64 candidates an update; the one watched is always offered
  // last (or first). Over 20,000 updates each is kept about 8/64 of the time.
  const sample = createRequestSample(8, 12345);
  const flood = Array.from({ length: 63 }, (_, i) => `flood${i}`);
  for (const position of ["last", "first"]) {
    let kept = 0;
    for (let update = 0; update < 20_000; update++) {
      clearRequestSample(sample);
      offerAll(
        sample,
        position === "last" ? [...flood, "me"] : ["me", ...flood],
      );
      assertEquals(sample.count, 8);
      if (sample.fromKeys.slice(0, sample.count).includes("me")) kept++;
    }
    const rate = kept / 20_000;
    assert(Math.abs(rate - 8 / 64) < 0.015, `${position}: kept ${rate}`);
  }
  assert(sample.slots.length <= 8, "at most capacity slots are allocated");
});

Deno.test("a sample of capacity 0 keeps nothing and counts every offer", () => {
  const sample = createRequestSample(0, 1);
  offerAll(sample, ["a", "b"]);
  assertEquals(sample.count, 0);
  assertEquals(sample.offered, 2);
  assertEquals(sample.slots.length, 0);
});
