// The server's slot table on its own: every field filled in one place and
// cleared in one place, the lookups, and the list of slots in use.

import { assert, assertEquals } from "./_assert.ts";
import type { Address } from "../address.ts";
import {
  connectedSlots,
  connectSlot,
  createServerSlots,
  findFreeSlot,
  findSlotByAddressKey,
  findSlotByAddressObject,
  findSlotByClientId,
  resetSlot,
  type ServerSlots,
  SLOT_KEY_BYTES,
} from "../_server_slots.ts";
import { replayAdvance, replayAlreadyReceived } from "../packet.ts";
import { pushPayload } from "../_payload_queue.ts";

const KEY_A = new Uint8Array(32).fill(1);
const KEY_B = new Uint8Array(32).fill(2);

function connectNetworkClient(
  slots: ServerSlots,
  clientIndex: number,
  port: number,
  clientId: bigint,
  time = 1,
): Address {
  const address: Address = { hostname: "127.0.0.1", port };
  connectSlot(slots, clientIndex, {
    clientId,
    userData: new Uint8Array(256).fill(Number(clientId)),
    address,
    addressKey: `127.0.0.1:${port}`,
    sendKey: KEY_A,
    receiveKey: KEY_B,
    timeoutSeconds: 5,
  }, time);
  return address;
}

/** Every per-slot field of one slot, as plain values. */
function slotFields(slots: ServerSlots, i: number) {
  return {
    connected: slots.connected[i],
    confirmed: slots.confirmed[i],
    loopback: slots.loopback[i],
    sequence: slots.sequence[i],
    lastSendTime: slots.lastSendTime[i],
    lastReceiveTime: slots.lastReceiveTime[i],
    timeoutSeconds: slots.timeoutSeconds[i],
    clientId: slots.clientIds[i],
    address: slots.addresses[i],
    addressKey: slots.addressKeys[i],
    addressObject: slots.addressObjects[i],
    sendKey: slots.sendKeys[i],
    receiveKey: slots.receiveKeys[i],
    userData: slots.userData[i],
    replayed5: replayAlreadyReceived(slots.replay[i], 5),
    queued: slots.payloadQueues[i].count,
  };
}

Deno.test("createServerSlots() allocates every field empty, for every slot", () => {
  const slots = createServerSlots(3);
  const fresh = slotFields(createServerSlots(1), 0);
  assertEquals(slots.maxClients, 3);
  assertEquals(slots.numConnected, 0);
  for (let i = 0; i < 3; i++) assertEquals(slotFields(slots, i), fresh);
  assertEquals(findFreeSlot(slots), 0);
  assertEquals(connectedSlots(slots), []);
});

Deno.test("connectSlot() fills a network client's fields and lookups; resetSlot() empties all of them", () => {
  const slots = createServerSlots(2);
  const fresh = slotFields(slots, 1);
  const address = connectNetworkClient(slots, 1, 50000, 7n, 2.5);
  const filled = slotFields(slots, 1);
  assertEquals(filled.connected, 1);
  assertEquals(filled.confirmed, 0);
  assertEquals(filled.loopback, 0);
  assertEquals(filled.lastSendTime, 2.5);
  assertEquals(filled.lastReceiveTime, 2.5);
  assertEquals(filled.timeoutSeconds, 5);
  assertEquals(filled.clientId, 7n);
  assertEquals(filled.address, { hostname: "127.0.0.1", port: 50000 });
  assert(filled.address !== address, "the slot keeps its own copy");
  assertEquals(filled.addressObject, address);
  assertEquals(filled.addressKey, "127.0.0.1:50000");
  assertEquals(filled.sendKey, KEY_A);
  assertEquals(filled.receiveKey, KEY_B);
  assertEquals(slots.numConnected, 1);
  assertEquals(findSlotByAddressKey(slots, "127.0.0.1:50000"), 1);
  assertEquals(findSlotByAddressObject(slots, address), 1);
  assertEquals(findSlotByClientId(slots, 7n), 1);
  assertEquals(findFreeSlot(slots), 0);

  // Traffic leaves traces in the replay window and the queue; reset clears them.
  replayAdvance(slots.replay[1], 5);
  pushPayload(slots.payloadQueues[1], new Uint8Array([1]), 5);
  slots.confirmed[1] = 1;
  slots.sequence[1] = 9;
  resetSlot(slots, 1);
  assertEquals(slotFields(slots, 1), fresh);
  assertEquals(slots.numConnected, 0);
  assertEquals(findSlotByAddressKey(slots, "127.0.0.1:50000"), -1);
  assertEquals(findSlotByAddressObject(slots, address), -1);
  assertEquals(findSlotByClientId(slots, 7n), -1);
});

Deno.test("connectSlot() copies the keys into the slot's place in one key table; resetSlot() zeroes them", () => {
  const slots = createServerSlots(3);
  assertEquals(slots.keys.length, 3 * SLOT_KEY_BYTES);
  const sendKey = KEY_A.slice();
  const receiveKey = KEY_B.slice();
  connectSlot(slots, 1, {
    clientId: 9n,
    userData: new Uint8Array(256),
    address: { hostname: "127.0.0.1", port: 50001 },
    addressKey: "127.0.0.1:50001",
    sendKey,
    receiveKey,
  }, 1);
  // The slot's keys are views of its 64 bytes of the table, send key first.
  assertEquals(slots.keys.subarray(SLOT_KEY_BYTES, SLOT_KEY_BYTES + 32), KEY_A);
  assertEquals(
    slots.keys.subarray(SLOT_KEY_BYTES + 32, 2 * SLOT_KEY_BYTES),
    KEY_B,
  );
  assert(slots.sendKeys[1].buffer === slots.keys.buffer);
  assert(slots.receiveKeys[1].buffer === slots.keys.buffer);
  // Copies: the token's arrays can change or go without touching the slot.
  sendKey.fill(7);
  receiveKey.fill(7);
  assertEquals(slots.sendKeys[1], KEY_A);
  assertEquals(slots.receiveKeys[1], KEY_B);
  // The neighbours' keys are untouched.
  assertEquals(slots.keys.subarray(0, SLOT_KEY_BYTES), new Uint8Array(64));
  assertEquals(slots.keys.subarray(2 * SLOT_KEY_BYTES), new Uint8Array(64));
  resetSlot(slots, 1);
  assertEquals(slots.keys, new Uint8Array(3 * SLOT_KEY_BYTES));
});

Deno.test("connectSlot() without an address makes a confirmed loopback client", () => {
  const slots = createServerSlots(1);
  connectSlot(slots, 0, { clientId: 3n, userData: new Uint8Array(256) }, 4);
  assertEquals(slots.loopback[0], 1);
  assertEquals(slots.confirmed[0], 1);
  assertEquals(slots.addresses[0], undefined);
  assertEquals(findSlotByClientId(slots, 3n), 0);
  assertEquals(findFreeSlot(slots), -1);
  resetSlot(slots, 0);
  assertEquals(slots.loopback[0], 0);
  assertEquals(findFreeSlot(slots), 0);
});

Deno.test("findSlotByAddressObject() misses when the socket reused the object for another peer", () => {
  const slots = createServerSlots(1);
  const address = connectNetworkClient(slots, 0, 50000, 1n);
  assertEquals(findSlotByAddressObject(slots, address), 0);
  (address as { port: number }).port = 50001;
  assertEquals(findSlotByAddressObject(slots, address), -1);
  assertEquals(findSlotByAddressObject(slots, { ...address }), -1);
});

Deno.test("connectedSlots() lists the slots in use in ascending order as clients come and go", () => {
  const slots = createServerSlots(6);
  for (const i of [4, 0, 2, 5]) {
    connectNetworkClient(slots, i, 50000 + i, BigInt(i + 1));
  }
  assertEquals(connectedSlots(slots), [0, 2, 4, 5]);
  resetSlot(slots, 0);
  assertEquals(connectedSlots(slots), [2, 4, 5]);
  resetSlot(slots, 5);
  connectNetworkClient(slots, 1, 50001, 20n);
  assertEquals(connectedSlots(slots), [1, 2, 4]);
  assertEquals(slots.numConnected, 3);
  const list = connectedSlots(slots);
  list.push(99);
  assertEquals(connectedSlots(slots), [1, 2, 4], "a copy each call");
  for (const i of [1, 2, 4]) resetSlot(slots, i);
  assertEquals(connectedSlots(slots), []);
});
