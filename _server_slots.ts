/**
 * Internal: the server's client slots. Every per-slot field is allocated
 * ({@linkcode createServerSlots}), filled ({@linkcode connectSlot}) and
 * cleared ({@linkcode resetSlot}) here and nowhere else; the rest of the
 * server reads the fields and updates the times, sequence and confirmed
 * flag of a connected slot.
 *
 * Fields are kept struct-of-arrays style (one typed array per number field),
 * so the per-tick loops over the slots touch little memory. The keys too:
 * both keys of every slot sit in one table, and a connecting client's keys
 * are copied in, so the keys a server reads for every packet lie side by
 * side instead of wherever the heap put each token's copies. Connected
 * clients are found by address key, by the `Address` object their datagrams
 * arrive with (sockets that hand out one object per peer are matched without
 * building a string per packet) and by client id, each in O(1).
 *
 * @module
 */

import type { Address } from "./address.ts";
import { KEY_BYTES } from "./_aead.ts";
import type { MessageConnection } from "./channel.ts";
import {
  createReplayProtection,
  type ReplayProtection,
  resetReplayProtection,
} from "./packet.ts";
import {
  clearPayloadQueue,
  createPayloadQueue,
  type PayloadQueue,
} from "./_payload_queue.ts";

/** The slot table of a started server; see the module documentation. */
export interface ServerSlots {
  /** Number of slots. */
  readonly maxClients: number;
  /** Slots in use. */
  numConnected: number;
  /**
   * The slots in use, in no particular order, in entries
   * `0..numConnected - 1` (a slot that empties takes the last entry's place).
   */
  readonly connectedList: Int32Array;
  /** Where each slot in use stands in `connectedList`. */
  readonly listPosition: Int32Array;
  /** 1 where the slot holds a client. */
  readonly connected: Uint8Array;
  /** 1 where the client has sent a keep-alive or payload since connecting. */
  readonly confirmed: Uint8Array;
  /** 1 where the client is a loopback client (no packets, no address). */
  readonly loopback: Uint8Array;
  /** The sequence of the next packet sent to the client. */
  readonly sequence: Float64Array;
  /** Server time a packet was last sent to the client. */
  readonly lastSendTime: Float64Array;
  /** Server time a packet was last received from the client. */
  readonly lastReceiveTime: Float64Array;
  /** The token's timeout in seconds; <= 0 never times out. */
  readonly timeoutSeconds: Int32Array;
  /** The client's id, 0n for an empty slot. */
  readonly clientIds: bigint[];
  /** The client's address (a copy the slot owns), or `undefined`. */
  readonly addresses: (Address | undefined)[];
  /** The client's address key (`addressKey()`), or `""`. */
  readonly addressKeys: string[];
  /** The object the client's datagrams arrived with when it connected. */
  readonly addressObjects: (Address | undefined)[];
  /**
   * Both keys of every slot, {@linkcode SLOT_KEY_BYTES} a slot: the key for
   * packets to the client, then the key for packets from it. Zero in an
   * empty slot.
   */
  readonly keys: Uint8Array;
  /** Key for packets to the client: a fixed view of its slot in `keys`. */
  readonly sendKeys: readonly Uint8Array[];
  /** Key for packets from the client: a fixed view of its slot in `keys`. */
  readonly receiveKeys: readonly Uint8Array[];
  /** The 256 bytes of user data from the client's token. */
  readonly userData: (Uint8Array | undefined)[];
  /** Replay protection of packets from the client. */
  readonly replay: readonly ReplayProtection[];
  /** Payloads received from the client, waiting for `receive()`. */
  readonly payloadQueues: readonly PayloadQueue[];
  /** The client's message channels, when the server has messages on. */
  readonly messages: (MessageConnection | undefined)[];
  /** Connected slot by address key. */
  readonly byAddressKey: Map<string, number>;
  /** Connected slot by the `Address` object datagrams arrive with. */
  readonly byAddressObject: Map<Address, number>;
  /** Connected slot by client id. */
  readonly byClientId: Map<bigint, number>;
}

/** What a slot is filled with by {@linkcode connectSlot}. */
export interface SlotConnection {
  /** The client's id. */
  readonly clientId: bigint;
  /** 256 bytes of user data; the slot keeps this array. */
  readonly userData: Uint8Array;
  /**
   * The address the client's datagrams arrive with (the slot keeps a copy,
   * and the object for lookups); absent for a loopback client.
   */
  readonly address?: Address;
  /** `addressKey(address)`; with `address`. */
  readonly addressKey?: string;
  /** Key for packets to the client (copied into the slot); with `address`. */
  readonly sendKey?: Uint8Array;
  /** Key for packets from the client (copied into the slot); with `address`. */
  readonly receiveKey?: Uint8Array;
  /** The token's timeout; with `address`. @default {0} */
  readonly timeoutSeconds?: number;
  /** The client's message channels; with `address`, when on. @default {undefined} */
  readonly messages?: MessageConnection;
}

/** Bytes of the key table per slot: the send key, then the receive key. */
export const SLOT_KEY_BYTES = 2 * KEY_BYTES;

/**
 * Allocates the slots of a server starting with `maxClients`, all empty.
 *
 * @param maxClients Number of slots (0 for a stopped server).
 * @returns The slot table.
 */
export function createServerSlots(maxClients: number): ServerSlots {
  const keys = new Uint8Array(maxClients * SLOT_KEY_BYTES);
  const keyView = (clientIndex: number, offset: number) => {
    const start = clientIndex * SLOT_KEY_BYTES + offset;
    return keys.subarray(start, start + KEY_BYTES);
  };
  return {
    maxClients,
    numConnected: 0,
    connectedList: new Int32Array(maxClients),
    listPosition: new Int32Array(maxClients),
    connected: new Uint8Array(maxClients),
    confirmed: new Uint8Array(maxClients),
    loopback: new Uint8Array(maxClients),
    sequence: new Float64Array(maxClients),
    lastSendTime: new Float64Array(maxClients),
    lastReceiveTime: new Float64Array(maxClients),
    timeoutSeconds: new Int32Array(maxClients),
    clientIds: new Array(maxClients).fill(0n),
    addresses: new Array(maxClients).fill(undefined),
    addressKeys: new Array(maxClients).fill(""),
    addressObjects: new Array(maxClients).fill(undefined),
    keys,
    sendKeys: Array.from({ length: maxClients }, (_, i) => keyView(i, 0)),
    receiveKeys: Array.from(
      { length: maxClients },
      (_, i) => keyView(i, KEY_BYTES),
    ),
    userData: new Array(maxClients).fill(undefined),
    replay: Array.from({ length: maxClients }, createReplayProtection),
    payloadQueues: Array.from({ length: maxClients }, createPayloadQueue),
    messages: new Array(maxClients).fill(undefined),
    byAddressKey: new Map(),
    byAddressObject: new Map(),
    byClientId: new Map(),
  };
}

/**
 * The first empty slot (as `netcode_server_find_free_client_index`).
 *
 * @param slots The slot table.
 * @returns Its index, or -1 when every slot is taken.
 */
export function findFreeSlot(slots: ServerSlots): number {
  const connected = slots.connected;
  for (let i = 0; i < slots.maxClients; i++) {
    if (!connected[i]) return i;
  }
  return -1;
}

/**
 * The slot of the client whose datagrams arrive with this very object, when
 * it still holds that client's address (a socket may reuse one object for
 * several peers).
 *
 * @param slots The slot table.
 * @param from The datagram's source, as the socket handed it out.
 * @returns The slot, or -1.
 */
export function findSlotByAddressObject(
  slots: ServerSlots,
  from: Address,
): number {
  const clientIndex = slots.byAddressObject.get(from);
  if (clientIndex === undefined) return -1;
  const address = slots.addresses[clientIndex]!;
  return from.port === address.port && from.hostname === address.hostname
    ? clientIndex
    : -1;
}

/**
 * The slot of the client at an address.
 *
 * @param slots The slot table.
 * @param key The address key.
 * @returns The slot, or -1.
 */
export function findSlotByAddressKey(slots: ServerSlots, key: string): number {
  return slots.byAddressKey.get(key) ?? -1;
}

/**
 * The slot of the client with an id.
 *
 * @param slots The slot table.
 * @param clientId The client id.
 * @returns The slot, or -1.
 */
export function findSlotByClientId(
  slots: ServerSlots,
  clientId: bigint,
): number {
  return slots.byClientId.get(clientId) ?? -1;
}

/**
 * Fills an empty slot: a network client (with `address`), unconfirmed, or a
 * loopback client, confirmed. Its sequence starts at 0 and both its times
 * at `time`.
 *
 * @param slots The slot table.
 * @param clientIndex An empty slot.
 * @param connection The client.
 * @param time Server time, in seconds.
 */
export function connectSlot(
  slots: ServerSlots,
  clientIndex: number,
  connection: SlotConnection,
  time: number,
): void {
  const { address, clientId } = connection;
  slots.connectedList[slots.numConnected] = clientIndex;
  slots.listPosition[clientIndex] = slots.numConnected;
  slots.numConnected++;
  slots.connected[clientIndex] = 1;
  slots.clientIds[clientIndex] = clientId;
  slots.userData[clientIndex] = connection.userData;
  slots.sequence[clientIndex] = 0;
  slots.lastSendTime[clientIndex] = time;
  slots.lastReceiveTime[clientIndex] = time;
  slots.byClientId.set(clientId, clientIndex);
  if (address === undefined) {
    slots.loopback[clientIndex] = 1;
    slots.confirmed[clientIndex] = 1;
    return;
  }
  const key = connection.addressKey!;
  slots.loopback[clientIndex] = 0;
  slots.confirmed[clientIndex] = 0;
  slots.timeoutSeconds[clientIndex] = connection.timeoutSeconds ?? 0;
  // A copy: `address` may be an object its socket reuses for other peers.
  slots.addresses[clientIndex] = {
    hostname: address.hostname,
    port: address.port,
  };
  slots.addressKeys[clientIndex] = key;
  slots.addressObjects[clientIndex] = address;
  slots.sendKeys[clientIndex].set(connection.sendKey!);
  slots.receiveKeys[clientIndex].set(connection.receiveKey!);
  slots.messages[clientIndex] = connection.messages;
  resetReplayProtection(slots.replay[clientIndex]);
  slots.byAddressKey.set(key, clientIndex);
  slots.byAddressObject.set(address, clientIndex);
}

/**
 * Empties a connected slot: every field back to its empty value, the
 * client's lookups and queued payloads gone.
 *
 * @param slots The slot table.
 * @param clientIndex A connected slot.
 */
export function resetSlot(slots: ServerSlots, clientIndex: number): void {
  if (!slots.loopback[clientIndex]) {
    slots.byAddressKey.delete(slots.addressKeys[clientIndex]);
    const object = slots.addressObjects[clientIndex];
    if (
      object !== undefined &&
      slots.byAddressObject.get(object) === clientIndex
    ) {
      slots.byAddressObject.delete(object);
    }
  }
  const clientId = slots.clientIds[clientIndex];
  if (slots.byClientId.get(clientId) === clientIndex) {
    slots.byClientId.delete(clientId);
  }
  clearPayloadQueue(slots.payloadQueues[clientIndex]);
  slots.connected[clientIndex] = 0;
  slots.loopback[clientIndex] = 0;
  slots.confirmed[clientIndex] = 0;
  slots.clientIds[clientIndex] = 0n;
  slots.sequence[clientIndex] = 0;
  slots.lastSendTime[clientIndex] = 0;
  slots.lastReceiveTime[clientIndex] = 0;
  slots.timeoutSeconds[clientIndex] = 0;
  slots.addresses[clientIndex] = undefined;
  slots.addressKeys[clientIndex] = "";
  slots.addressObjects[clientIndex] = undefined;
  slots.sendKeys[clientIndex].fill(0);
  slots.receiveKeys[clientIndex].fill(0);
  slots.userData[clientIndex] = undefined;
  slots.messages[clientIndex] = undefined;
  resetReplayProtection(slots.replay[clientIndex]);
  const last = slots.connectedList[slots.numConnected - 1];
  const position = slots.listPosition[clientIndex];
  slots.connectedList[position] = last;
  slots.listPosition[last] = position;
  slots.numConnected--;
}

/**
 * The slots in use, in ascending order, as a new array.
 *
 * @param slots The slot table.
 * @returns Their indices.
 */
export function connectedSlots(slots: ServerSlots): number[] {
  const list = Array.from(slots.connectedList.subarray(0, slots.numConnected));
  return list.sort((a, b) => a - b);
}
