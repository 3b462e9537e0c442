// Issue #5, item 1 (short variant): hostile datagrams at a running server
// and its connected clients, over the simulator and over loopback UDP. The
// full run is `deno task fuzz` (tools/fuzz.ts); tests/_fuzz.ts says what is
// sent and checked.

import { assertEquals, assertGreater } from "./_assert.ts";
import { formatFuzzResult, runFuzz } from "./_fuzz.ts";

/** Drop reasons a fuzz run must reach, proof that it goes deep enough. */
const SERVER_REASONS = [
  "tooSmall",
  "invalidType",
  "typeNotAllowed",
  "badLength",
  "badVersionInfo",
  "badProtocolId",
  "tokenExpired",
  "badSequenceBytes",
  "noKey",
  "replayed",
  "decryptFailed",
  "serverAddressNotInToken",
  "clientIdConnected",
  "tokenReused",
];
const CLIENT_REASONS = [
  "tooSmall",
  "invalidType",
  "typeNotAllowed",
  "badLength",
  "badSequenceBytes",
  "replayed",
  "decryptFailed",
  "wrongAddress",
  "wrongState",
];

Deno.test("fuzz: 50,000 hostile datagrams over the simulator change nothing and earn no reply", async () => {
  const result = await runFuzz({ count: 50_000, seed: 1 });
  console.log(formatFuzzResult(result));
  assertEquals(result.datagrams, 50_000);
  for (const reason of SERVER_REASONS) {
    assertGreater(result.serverDropped[reason] ?? 0, 0, `server ${reason}`);
  }
  for (const reason of CLIENT_REASONS) {
    assertGreater(result.clientDropped[reason] ?? 0, 0, `client ${reason}`);
  }
  // The one reply the spec requires was exercised, and legitimate traffic
  // flowed throughout, every payload echoed exactly once.
  assertGreater(result.allowedReplies, 0);
  assertGreater(result.legitPayloads, 300);
  assertEquals(result.legitEchoes, result.legitPayloads);
});

Deno.test("fuzz: 3,000 hostile datagrams over loopback UDP change nothing and earn no reply", async () => {
  const result = await runFuzz({ count: 3_000, seed: 2, transport: "udp" });
  console.log(formatFuzzResult(result));
  assertEquals(result.datagrams, 3_000);
  assertGreater(result.serverDropped.decryptFailed ?? 0, 0);
  assertGreater(result.clientDropped.decryptFailed ?? 0, 0);
  assertGreater(result.legitEchoes, 0);
});
