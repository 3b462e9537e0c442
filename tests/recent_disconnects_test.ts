// The ring of recently disconnected addresses on its own.

import { assertEquals } from "./_assert.ts";
import {
  clearRecentDisconnects,
  createRecentDisconnects,
  RECENT_DISCONNECT_SECONDS,
  recentlyDisconnected,
  rememberDisconnect,
} from "../_recent_disconnects.ts";

Deno.test("recentlyDisconnected() remembers an address for RECENT_DISCONNECT_SECONDS", () => {
  const recent = createRecentDisconnects(4);
  assertEquals(recentlyDisconnected(recent, "a", 0), false);
  rememberDisconnect(recent, "a", 10);
  assertEquals(recentlyDisconnected(recent, "a", 10), true);
  assertEquals(
    recentlyDisconnected(recent, "a", 10 + RECENT_DISCONNECT_SECONDS),
    true,
  );
  assertEquals(
    recentlyDisconnected(recent, "a", 10.01 + RECENT_DISCONNECT_SECONDS),
    false,
  );
  assertEquals(recentlyDisconnected(recent, "b", 10), false);
  // Remembering again renews the time without taking another entry.
  rememberDisconnect(recent, "a", 20);
  assertEquals(recentlyDisconnected(recent, "a", 21), true);
  assertEquals(recent.byKey.size, 1);
});

Deno.test("rememberDisconnect() overwrites the oldest entry when the ring is full", () => {
  const recent = createRecentDisconnects(2);
  rememberDisconnect(recent, "a", 1);
  rememberDisconnect(recent, "b", 1);
  rememberDisconnect(recent, "c", 1);
  assertEquals(recentlyDisconnected(recent, "a", 1), false);
  assertEquals(recentlyDisconnected(recent, "b", 1), true);
  assertEquals(recentlyDisconnected(recent, "c", 1), true);
  assertEquals(recent.byKey.size, 2);
  clearRecentDisconnects(recent);
  assertEquals(recentlyDisconnected(recent, "c", 1), false);
  // A ring of capacity 0 (a stopped server) remembers nothing.
  const none = createRecentDisconnects(0);
  rememberDisconnect(none, "a", 1);
  assertEquals(recentlyDisconnected(none, "a", 1), false);
});
