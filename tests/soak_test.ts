// Issue #5, item 2 (short variant): 30 simulated seconds of 64 clients
// connecting, exchanging payloads, leaving and coming back over a lossy,
// jittery, duplicating network. The full run is `deno task soak`
// (tools/soak.ts); tests/_soak.ts says what is checked on every tick.

import { assertEquals, assertGreater, assertLessOrEqual } from "./_assert.ts";
import { formatSoakResult, runSoak } from "./_soak.ts";

Deno.test("soak: 30 simulated seconds of churn leak no slot and keep echoes flowing", () => {
  const result = runSoak({ seconds: 30, seed: 1 });
  console.log(formatSoakResult(result));
  // Every way of leaving happened, and every way of being refused.
  assertGreater(result.leaves.clientDisconnect ?? 0, 0);
  assertGreater(result.leaves.serverKick ?? 0, 0);
  assertGreater(result.leaves.partition ?? 0, 0);
  assertGreater(result.abandoned, 0);
  assertGreater(result.connectFailures["connection denied"] ?? 0, 0);
  assertEquals(result.peakConnected, result.maxClients);
  // Nothing left behind, everything within its bound.
  assertEquals(result.finalConnected, 0);
  assertEquals(result.finalPending, 0);
  assertLessOrEqual(result.peakPending, 4 * result.maxClients);
  assertLessOrEqual(result.peakTokenHistory, 8 * result.maxClients);
  // 5% loss each way: about 90% of payloads come back.
  const ratio = result.echoes / result.payloadsSent;
  assertGreater(ratio, 0.85);
  assertLessOrEqual(ratio, 1);
});
