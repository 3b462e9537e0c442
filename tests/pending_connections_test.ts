// The pending-connection table (the reference's encryption manager) on its
// own: add, refresh in place, expiry, the bound, removal.

import { assert, assertEquals } from "./_assert.ts";
import {
  addPendingConnection,
  clearPendingConnections,
  createPendingConnections,
  findPendingConnection,
  pendingConnectionExpired,
  removePendingConnection,
  sweepPendingConnections,
  touchPendingConnection,
} from "../_pending_connections.ts";

const SEND = new Uint8Array(32).fill(1);
const RECEIVE = new Uint8Array(32).fill(2);

Deno.test("addPendingConnection() keeps the token's keys and times, and refreshes an entry in place", () => {
  const table = createPendingConnections(4);
  assert(addPendingConnection(table, "a", SEND, RECEIVE, 5, 10, 1));
  const entry = findPendingConnection(table, "a", 1)!;
  assertEquals(entry, {
    sendKey: SEND,
    receiveKey: RECEIVE,
    timeoutSeconds: 5,
    expireTime: 10,
    lastAccessTime: 1,
  });
  const newSend = new Uint8Array(32).fill(3);
  assert(addPendingConnection(table, "a", newSend, RECEIVE, 7, 12, 2));
  assert(findPendingConnection(table, "a", 2) === entry, "the same entry");
  assertEquals(entry.sendKey, newSend);
  assertEquals(entry.timeoutSeconds, 7);
  assertEquals(entry.expireTime, 12);
  assertEquals(entry.lastAccessTime, 2);
  assertEquals(table.entries.size, 1);
});

Deno.test("a pending connection expires after its timeout without traffic, or at its expire time", () => {
  const table = createPendingConnections(4);
  addPendingConnection(table, "a", SEND, RECEIVE, 5, 100, 0);
  const entry = findPendingConnection(table, "a", 0)!;
  assertEquals(pendingConnectionExpired(entry, 5), false);
  touchPendingConnection(entry, 4);
  assertEquals(pendingConnectionExpired(entry, 9), false);
  assertEquals(pendingConnectionExpired(entry, 9.01), true);
  // A token that disables timeouts still goes at its expire time.
  addPendingConnection(table, "b", SEND, RECEIVE, -1, 10, 0);
  const forever = findPendingConnection(table, "b", 0)!;
  assertEquals(pendingConnectionExpired(forever, 10), false);
  assertEquals(pendingConnectionExpired(forever, 10.01), true);
  // Looking up an expired entry forgets it.
  assertEquals(findPendingConnection(table, "b", 11), undefined);
  assertEquals(table.entries.has("b"), false);
});

Deno.test("a full table forgets expired entries, then refuses new addresses", () => {
  const table = createPendingConnections(2);
  assert(addPendingConnection(table, "a", SEND, RECEIVE, 5, 100, 0));
  assert(addPendingConnection(table, "b", SEND, RECEIVE, 1, 100, 0));
  assertEquals(
    addPendingConnection(table, "c", SEND, RECEIVE, 5, 100, 0.5),
    false,
  );
  assertEquals(table.entries.size, 2);
  // "b" timed out by 2: the sweep makes room for "c".
  assert(addPendingConnection(table, "c", SEND, RECEIVE, 5, 100, 2));
  assertEquals([...table.entries.keys()], ["a", "c"]);
  // An address already pending is refreshed even when full.
  assert(addPendingConnection(table, "a", SEND, RECEIVE, 5, 100, 3));
});

Deno.test("sweepPendingConnections(), removePendingConnection() and clearPendingConnections() forget entries", () => {
  const table = createPendingConnections(8);
  addPendingConnection(table, "a", SEND, RECEIVE, 1, 100, 0);
  addPendingConnection(table, "b", SEND, RECEIVE, 5, 100, 0);
  addPendingConnection(table, "c", SEND, RECEIVE, 5, 100, 0);
  sweepPendingConnections(table, 3);
  assertEquals([...table.entries.keys()], ["b", "c"]);
  removePendingConnection(table, "b");
  removePendingConnection(table, "nobody");
  assertEquals([...table.entries.keys()], ["c"]);
  clearPendingConnections(table);
  assertEquals(table.entries.size, 0);
});
