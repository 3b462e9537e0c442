// The connect token history on its own: a token's MAC is bound to the
// address that used it first, within a bounded table.

import { assert, assertEquals } from "./_assert.ts";
import {
  clearTokenHistory,
  createTokenHistory,
  findOrAddTokenUse,
  tokenMacKey,
} from "../_token_history.ts";

/** An encrypted private token whose MAC (last 16 bytes) is `mac`. */
function tokenWithMac(mac: number): Uint8Array {
  const token = new Uint8Array(1024).fill(0xee);
  token.fill(mac, 1008);
  return token;
}

Deno.test("tokenMacKey() reads the last 16 bytes of the encrypted private token", () => {
  const token = tokenWithMac(7);
  assertEquals(tokenMacKey(token), String.fromCharCode(7).repeat(16));
  token[0] = 1; // outside the MAC
  assertEquals(tokenMacKey(token), String.fromCharCode(7).repeat(16));
  token[1023] = 8;
  assertEquals(tokenMacKey(token).charCodeAt(15), 8);
});

Deno.test("findOrAddTokenUse() accepts a token again from its first address only", () => {
  const history = createTokenHistory(4);
  assert(findOrAddTokenUse(history, tokenWithMac(1), "127.0.0.1:50000"));
  assert(findOrAddTokenUse(history, tokenWithMac(1), "127.0.0.1:50000"));
  assertEquals(
    findOrAddTokenUse(history, tokenWithMac(1), "127.0.0.1:50001"),
    false,
  );
  assert(findOrAddTokenUse(history, tokenWithMac(2), "127.0.0.1:50001"));
  assertEquals(history.entries.size, 2);
});

Deno.test("findOrAddTokenUse() forgets the oldest token when full", () => {
  const history = createTokenHistory(2);
  findOrAddTokenUse(history, tokenWithMac(1), "a");
  findOrAddTokenUse(history, tokenWithMac(2), "b");
  findOrAddTokenUse(history, tokenWithMac(3), "c");
  assertEquals(history.entries.size, 2);
  // Token 1 was forgotten: another address may use it now, and is recorded.
  assert(findOrAddTokenUse(history, tokenWithMac(1), "d"));
  assertEquals(findOrAddTokenUse(history, tokenWithMac(3), "x"), false);
  clearTokenHistory(history);
  assertEquals(history.entries.size, 0);
  assert(findOrAddTokenUse(history, tokenWithMac(3), "x"));
});
