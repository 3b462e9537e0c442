/**
 * Message channels over a reliable 1.0 endpoint: per connection, several
 * numbered channels, each either **reliable-ordered** (messages up to 64 KB
 * by default, resent until acked, delivered exactly once and in order) or
 * **unreliable-unordered** (sent once; lost, late or duplicate packets lose
 * or repeat nothing the game did not send). The connection also reports the
 * endpoint's round-trip time, jitter, packet loss and bandwidth.
 *
 * A connection is one side of one link. Give it every datagram that arrives
 * ({@linkcode receiveMessagePacket}) and, once a tick, the time
 * ({@linkcode updateMessageConnection}, before the tick's datagrams) and a
 * chance to send ({@linkcode sendMessagePackets}, after them); it calls
 * `transmit` with the datagrams to put on the wire. netcode's server and
 * client do all of this for you when given a `messages` option; use this
 * module directly to run channels over another transport.
 *
 * ## Framing
 *
 * The layer is ours. The reference family's yojimbo has the same two
 * channel kinds but its own bit-packed format: **this layer is not
 * wire-compatible with yojimbo**. Below it, every datagram is a reliable 1.0
 * packet or fragment, byte-exact with mas-bandwidth/reliable. The payload of
 * each reliable packet is:
 *
 * ```text
 * packet   = flags:u8 block*
 * flags    = bit 0: ack requested (the sender would like a packet back soon);
 *            bits 1..7: zero
 * block    = channel:u8 count:varint message{count}    (count >= 1; the
 *            sender starts each packet with the next channel in turn)
 * reliable-ordered message:
 *            part:u16le head:varint [total:varint] bytes
 *            head = bytes.length * 2 + first; `total` (the whole message's
 *            length) follows when first = 1
 * unreliable-unordered message:
 *            length:varint bytes
 * varint   = unsigned LEB128, at most 3 bytes
 * ```
 *
 * A reliable-ordered message is cut into parts of at most
 * {@linkcode messagePartBytes} bytes, numbered by a 16-bit wrapping part id
 * per channel. Parts are resent every `resendInterval` until a packet that
 * carried them is acked, never more than `receiveWindowSize` parts ahead of
 * the oldest unacked one. An unreliable message goes into the next packet
 * with room; one larger than a packet's budget is sent alone in a packet that
 * reliable 1.0 fragments.
 *
 * Both sides must use the same channels and sizes. A packet that does not
 * parse under them, or holds a part outside the receive window, is dropped
 * unacked and counted: malformed input is never thrown, and a connection's
 * memory stays bounded by its config whatever the peer sends.
 *
 * @example Chat and state between two connections
 * ```ts
 * import assert from "node:assert/strict";
 * import {
 *   createMessageConnection,
 *   receiveMessage,
 *   receiveMessagePacket,
 *   sendMessage,
 *   sendMessagePackets,
 *   updateMessageConnection,
 * } from "./channel.ts";
 *
 * const config = {
 *   channels: [{ kind: "reliable-ordered" }, { kind: "unreliable-unordered" }],
 * } as const;
 * const toB: Uint8Array[] = [];
 * const toA: Uint8Array[] = [];
 * const a = createMessageConnection(config, 0, (d) => toB.push(d.slice()));
 * const b = createMessageConnection(config, 0, (d) => toA.push(d.slice()));
 *
 * sendMessage(a, 0, new TextEncoder().encode("hello"));
 * sendMessage(a, 1, new Uint8Array([1, 2, 3]));
 * let time = 0;
 * for (let tick = 0; tick < 3; tick++, time += 1 / 60) {
 *   updateMessageConnection(a, time);
 *   updateMessageConnection(b, time);
 *   for (const d of toB.splice(0)) receiveMessagePacket(b, d);
 *   for (const d of toA.splice(0)) receiveMessagePacket(a, d);
 *   sendMessagePackets(a);
 *   sendMessagePackets(b);
 * }
 * assert.equal(new TextDecoder().decode(receiveMessage(b, 0)), "hello");
 * assert.deepEqual([...receiveMessage(b, 1)!], [1, 2, 3]);
 * assert.equal(receiveMessage(b, 0), undefined);
 * ```
 *
 * @module
 */

import {
  clearAcks,
  createReliableEndpoint,
  getAcks,
  nextPacketSequence,
  receivePacket,
  type ReliableConfig,
  type ReliableEndpoint,
  type ReliableStats,
  reset as resetEndpoint,
  sendPacket,
  update as updateEndpoint,
} from "./reliable.ts";

/**
 * Most channels per connection.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createMessageConnection, MAX_CHANNELS } from "./channel.ts";
 *
 * const channels = Array.from({ length: MAX_CHANNELS + 1 }, () => ({ kind: "unreliable-unordered" as const }));
 * assert.throws(() => createMessageConnection({ channels }, 0, () => {}), RangeError);
 * ```
 */
export const MAX_CHANNELS = 64;

/** What a channel guarantees. */
export type ChannelKind = "reliable-ordered" | "unreliable-unordered";

/**
 * One channel's settings. Both ends of a connection must use the same.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type ChannelConfig, createMessageConnection } from "./channel.ts";
 *
 * const chat: ChannelConfig = { kind: "reliable-ordered", maxMessageBytes: 4096 };
 * const state: ChannelConfig = { kind: "unreliable-unordered", maxMessageBytes: 8192 };
 * const connection = createMessageConnection({ channels: [chat, state] }, 0, () => {});
 * assert.equal(connection.channels.length, 2);
 * ```
 */
export interface ChannelConfig {
  /** Reliable-ordered or unreliable-unordered. */
  readonly kind: ChannelKind;
  /**
   * Largest message, in bytes. An unreliable message must also fit one
   * reliable packet (`reliable.maxPacketSize` less 8 bytes of framing).
   *
   * @default {65536 reliable-ordered, 1024 unreliable-unordered}
   */
  readonly maxMessageBytes?: number;
  /**
   * Reliable-ordered: message parts held until acked (a message of `n`
   * bytes takes `max(1, ceil(n / messagePartBytes))`). Unreliable-unordered:
   * messages waiting for the next packet. Sending past it is refused as
   * `onSendQueueFull` says.
   *
   * @default {1024 reliable-ordered, 256 unreliable-unordered}
   */
  readonly sendQueueSize?: number;
  /**
   * What sending to a full send queue does: `"throw"` a `RangeError`, or
   * `"drop"` the message, count it in `messagesDroppedSendQueueFull` and
   * return `false`.
   *
   * @default {"throw"}
   */
  readonly onSendQueueFull?: "throw" | "drop";
  /**
   * Messages received and waiting for {@linkcode receiveMessage}. When full,
   * a reliable channel stops taking parts (the peer resends them later) and
   * an unreliable one drops new messages, counted.
   *
   * @default {1024}
   */
  readonly receiveQueueSize?: number;
  /**
   * Reliable-ordered only: parts received ahead of the next one to deliver,
   * and how far ahead of its oldest unacked part a sender may send. At
   * least the parts of the largest message; at most 16384.
   *
   * @default {256}
   */
  readonly receiveWindowSize?: number;
  /**
   * Reliable-ordered only: seconds between sends of a part not yet acked.
   *
   * @default {0.1}
   */
  readonly resendInterval?: number;
}

/**
 * A connection's settings.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createMessageConnection, type MessageConfig } from "./channel.ts";
 *
 * const config: MessageConfig = {
 *   channels: [{ kind: "reliable-ordered" }],
 *   packetBudgetBytes: 1100,
 *   reliable: { fragmentAbove: 1100 },
 * };
 * const connection = createMessageConnection(config, 0, () => {});
 * assert.equal(connection.config.packetBudgetBytes, 1100);
 * ```
 */
export interface MessageConfig {
  /** The channels, numbered from 0 in this order; 1..64 of them. */
  readonly channels: readonly ChannelConfig[];
  /**
   * Most bytes of messages and framing per packet (the reliable packet's
   * payload), at most `reliable.fragmentAbove` so such packets are never
   * fragmented. Only an unreliable message larger than this travels alone
   * in a larger, fragmented packet.
   *
   * @default {1024}
   */
  readonly packetBudgetBytes?: number;
  /**
   * Most packets sent per {@linkcode sendMessagePackets} call: bounds a
   * tick's burst when a large reliable message is queued.
   *
   * @default {8}
   */
  readonly maxPacketsPerUpdate?: number;
  /**
   * Seconds after the last packet sent before an empty packet asking for
   * an ack is sent, so acks, RTT and loss keep flowing on an idle link.
   *
   * @default {0.1}
   */
  readonly keepAliveInterval?: number;
  /**
   * The reliable 1.0 endpoint's settings.
   *
   * @default {{}}
   */
  readonly reliable?: ReliableConfig;
}

/** A channel's settings with every field present. */
export type ResolvedChannelConfig = Readonly<Required<ChannelConfig>>;

/** A connection's settings with every field present. */
export interface ResolvedMessageConfig {
  /** The channels. */
  readonly channels: readonly ResolvedChannelConfig[];
  /** See {@linkcode MessageConfig.packetBudgetBytes}. */
  readonly packetBudgetBytes: number;
  /** See {@linkcode MessageConfig.maxPacketsPerUpdate}. */
  readonly maxPacketsPerUpdate: number;
  /** See {@linkcode MessageConfig.keepAliveInterval}. */
  readonly keepAliveInterval: number;
  /** See {@linkcode MessageConfig.reliable}. */
  readonly reliable: ReliableConfig;
}

/**
 * A connection's counters (the endpoint's own are in
 * `connection.endpoint.counters`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createMessageConnection, receiveMessagePacket } from "./channel.ts";
 * import { writePacketHeader } from "./reliable.ts";
 *
 * const connection = createMessageConnection({ channels: [{ kind: "reliable-ordered" }] }, 0, () => {});
 * // A reliable 1.0 packet whose payload names channel 9, which does not exist.
 * const datagram = new Uint8Array(20);
 * const header = writePacketHeader(datagram, 0, 0, 0, 0);
 * datagram.set([0, 9, 1, 0], header);
 * receiveMessagePacket(connection, datagram.subarray(0, header + 4));
 * assert.equal(connection.counters.packetsMalformed, 1);
 * assert.equal(connection.endpoint.counters.packetsReceived, 1);
 * ```
 */
export interface MessageCounters {
  /** Messages accepted by {@linkcode sendMessage}. */
  readonly messagesSent: number;
  /** Messages delivered to the receive queues. */
  readonly messagesReceived: number;
  /** Messages refused by a full send queue (`onSendQueueFull: "drop"`). */
  readonly messagesDroppedSendQueueFull: number;
  /** Unreliable messages dropped because their receive queue was full. */
  readonly messagesDroppedReceiveQueueFull: number;
  /** Reliable parts sent again after `resendInterval`. */
  readonly partsResent: number;
  /** Reliable parts received again (already held or delivered). */
  readonly partsDuplicate: number;
  /** Packets dropped unacked: a part outside the receive window. */
  readonly packetsOutOfWindow: number;
  /** Packets dropped unacked: they do not parse under this config. */
  readonly packetsMalformed: number;
  /** Packets handed to the endpoint. */
  readonly packetsSent: number;
}

/**
 * How a link is doing, from the reliable 1.0 endpoint's float32 estimates.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { connectionQuality, createMessageConnection } from "./channel.ts";
 *
 * const connection = createMessageConnection({ channels: [{ kind: "reliable-ordered" }] }, 0, () => {});
 * assert.deepEqual(connectionQuality(connection), {
 *   rtt: 0, rttMin: 0, rttMax: 0, jitter: 0, packetLoss: 0,
 *   sentBandwidthKbps: 0, receivedBandwidthKbps: 0, ackedBandwidthKbps: 0,
 * });
 * ```
 */
export interface ConnectionQuality {
  /** Smoothed round-trip time, milliseconds (0 until the first ack). */
  readonly rtt: number;
  /** Smallest RTT of the recent samples, milliseconds. */
  readonly rttMin: number;
  /** Largest RTT of the recent samples, milliseconds. */
  readonly rttMax: number;
  /** Mean RTT above the smallest, over the recent samples, milliseconds. */
  readonly jitter: number;
  /** Smoothed share of sent packets not acked, percent. */
  readonly packetLoss: number;
  /** Smoothed sent bandwidth, kilobits per second. */
  readonly sentBandwidthKbps: number;
  /** Smoothed received bandwidth, kilobits per second. */
  readonly receivedBandwidthKbps: number;
  /** Smoothed bandwidth of sent packets that were acked, kilobits per second. */
  readonly ackedBandwidthKbps: number;
}

/**
 * One side of one link, made by {@linkcode createMessageConnection}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createMessageConnection, type MessageConnection } from "./channel.ts";
 *
 * const connection: MessageConnection = createMessageConnection(
 *   { channels: [{ kind: "unreliable-unordered" }] }, 0, () => {},
 * );
 * assert.equal(connection.channels[0].kind, "unreliable-unordered");
 * assert.equal(connection.endpoint.counters.packetsSent, 0);
 * ```
 */
export interface MessageConnection {
  /** The settings, defaults filled in. */
  readonly config: ResolvedMessageConfig;
  /** The channels' settings, by channel id. */
  readonly channels: readonly ResolvedChannelConfig[];
  /** The reliable 1.0 endpoint below (its counters and stats). */
  readonly endpoint: ReliableEndpoint;
  /** The connection's counters. */
  readonly counters: MessageCounters;
  /** The time of the last {@linkcode updateMessageConnection}, seconds. */
  readonly time: number;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

const CONNECTION = Symbol("message connection");
const FLAG_ACK_REQUESTED = 1;
/** Bytes of framing around one reliable part, at most. */
const PART_OVERHEAD_BYTES = 1 + 1 + 2 + 2 + 3 + 3; // flags, channel, count, id, head, total
/** Bytes of framing around an unreliable message sent alone, at most. */
const LONE_MESSAGE_OVERHEAD_BYTES = 1 + 1 + 1 + 3;
const MAX_VARINT = (1 << 21) - 1;
/** Bytes of each chunk small queued messages are copied into. */
const SEND_CHUNK_BYTES = 16384;
/** Most parts one packet carries (bounds the sent-packet table). */
const MAX_PARTS_PER_PACKET = 64;

interface ReliableChannelState {
  readonly kind: "reliable-ordered";
  readonly config: ResolvedChannelConfig;
  // Send side: a ring of parts by part number (counting from 0 without
  // wrapping; the wire carries its low 16 bits).
  nextPart: number;
  oldestUnacked: number;
  readonly sendBytes: (Uint8Array | undefined)[];
  readonly sendTotal: Int32Array; // -1 for a part that is not first
  readonly sendLastTime: Float64Array;
  readonly sendAcked: Uint8Array;
  // Receive side: a ring of parts by part number.
  nextDeliver: number;
  readonly windowBytes: (Uint8Array | undefined)[];
  readonly windowTotal: Int32Array;
  assembly: Uint8Array | undefined;
  assembled: number;
  readonly received: Uint8Array[];
  receivedHead: number;
}

interface UnreliableChannelState {
  readonly kind: "unreliable-unordered";
  readonly config: ResolvedChannelConfig;
  readonly sendQueue: Uint8Array[];
  readonly received: Uint8Array[];
  receivedHead: number;
}

type ChannelState = ReliableChannelState | UnreliableChannelState;

interface ConnectionState extends MessageConnection {
  readonly [CONNECTION]: true;
  readonly counters: Mutable<MessageCounters>;
  readonly state: ChannelState[];
  readonly transmit: (datagram: Uint8Array) => void;
  readonly partBytes: number;
  time: number;
  lastSendTime: number;
  ackOwed: boolean;
  /** The channel the next packet starts with. */
  nextChannel: number;
  /** Where small queued messages are copied; see `copyToSend`. */
  sendChunk: Uint8Array;
  sendChunkUsed: number;
  readonly packet: Uint8Array;
  /** Per sent-packet entry (sequence & mask): its sequence or -1. */
  readonly sentSequence: Int32Array;
  readonly sentCount: Uint8Array;
  /** Per entry, MAX_PARTS_PER_PACKET (channel, part id) pairs. */
  readonly sentChannels: Uint8Array;
  readonly sentParts: Float64Array;
  readonly sentMask: number;
}

/**
 * Bytes of a reliable-ordered message carried per part under a packet
 * budget: messages up to this size take one part.
 *
 * @param packetBudgetBytes The connection's `packetBudgetBytes`.
 * @returns Bytes per part.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { messagePartBytes } from "./channel.ts";
 *
 * assert.equal(messagePartBytes(1024), 1012);
 * ```
 */
export function messagePartBytes(packetBudgetBytes: number): number {
  return packetBudgetBytes - PART_OVERHEAD_BYTES;
}

function checkInteger(
  value: unknown,
  name: string,
  min: number,
  max: number,
): number {
  if (typeof value !== "number" || !Number.isInteger(value)) {
    throw new TypeError(
      `Cannot create message connection: ${name} must be an integer`,
    );
  }
  if (value < min || value > max) {
    throw new RangeError(
      `Cannot create message connection: ${name} ${value} is outside ${min}..${max}`,
    );
  }
  return value;
}

function checkSeconds(value: unknown, name: string): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value <= 0) {
    throw new RangeError(
      `Cannot create message connection: ${name} must be a positive number of seconds`,
    );
  }
  return value;
}

/**
 * Checks a connection's settings and fills in the defaults, as
 * {@linkcode createMessageConnection} does; the server and client call it
 * when given the option, so a bad setting fails at once.
 *
 * @param config The settings.
 * @returns The settings with every field present.
 * @throws {TypeError} When a field has the wrong type.
 * @throws {RangeError} When a field is out of range.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { resolveMessageConfig } from "./channel.ts";
 *
 * const config = resolveMessageConfig({ channels: [{ kind: "reliable-ordered" }] });
 * assert.equal(config.channels[0].maxMessageBytes, 65536);
 * assert.throws(() => resolveMessageConfig({ channels: [] }), RangeError);
 * ```
 */
export function resolveMessageConfig(
  config: MessageConfig,
): ResolvedMessageConfig {
  if (typeof config !== "object" || config === null) {
    throw new TypeError(
      "Cannot create message connection: config is not an object",
    );
  }
  const channels = config.channels;
  if (!Array.isArray(channels)) {
    throw new TypeError(
      "Cannot create message connection: channels must be an array",
    );
  }
  if (channels.length < 1 || channels.length > MAX_CHANNELS) {
    throw new RangeError(
      `Cannot create message connection: ${channels.length} channels is outside 1..${MAX_CHANNELS}`,
    );
  }
  const reliable: ReliableConfig = config.reliable ?? {};
  const fragmentAbove = reliable.fragmentAbove ?? 1024;
  // The largest packet the endpoint sends: one unreliable message alone.
  const maxPacketSize = Math.min(
    reliable.maxPacketSize ?? 16384,
    (reliable.maxFragments ?? 16) * (reliable.fragmentSize ?? 1024),
  );
  const packetBudgetBytes = checkInteger(
    config.packetBudgetBytes ?? Math.min(1024, fragmentAbove),
    "packetBudgetBytes",
    PART_OVERHEAD_BYTES + 1,
    Math.max(PART_OVERHEAD_BYTES + 1, fragmentAbove),
  );
  const partBytes = messagePartBytes(packetBudgetBytes);
  const resolved = channels.map((channel, i): ResolvedChannelConfig => {
    if (typeof channel !== "object" || channel === null) {
      throw new TypeError(
        `Cannot create message connection: channel ${i} is not an object`,
      );
    }
    const kind = channel.kind;
    if (kind !== "reliable-ordered" && kind !== "unreliable-unordered") {
      throw new TypeError(
        `Cannot create message connection: channel ${i} kind ${
          JSON.stringify(kind)
        } is not "reliable-ordered" or "unreliable-unordered"`,
      );
    }
    const isReliable = kind === "reliable-ordered";
    const maxMessageBytes = checkInteger(
      channel.maxMessageBytes ?? (isReliable ? 65536 : 1024),
      `channel ${i} maxMessageBytes`,
      1,
      isReliable
        ? MAX_VARINT
        : Math.min(MAX_VARINT, maxPacketSize - LONE_MESSAGE_OVERHEAD_BYTES),
    );
    const receiveWindowSize = checkInteger(
      channel.receiveWindowSize ?? 256,
      `channel ${i} receiveWindowSize`,
      isReliable ? Math.ceil(maxMessageBytes / partBytes) : 1,
      16384,
    );
    const sendQueueSize = checkInteger(
      channel.sendQueueSize ?? (isReliable ? 1024 : 256),
      `channel ${i} sendQueueSize`,
      isReliable ? Math.ceil(maxMessageBytes / partBytes) : 1,
      isReliable ? 16384 : 65536,
    );
    const onSendQueueFull = channel.onSendQueueFull ?? "throw";
    if (onSendQueueFull !== "throw" && onSendQueueFull !== "drop") {
      throw new TypeError(
        `Cannot create message connection: channel ${i} onSendQueueFull must be "throw" or "drop"`,
      );
    }
    return Object.freeze({
      kind,
      maxMessageBytes,
      sendQueueSize,
      onSendQueueFull,
      receiveQueueSize: checkInteger(
        channel.receiveQueueSize ?? 1024,
        `channel ${i} receiveQueueSize`,
        1,
        65536,
      ),
      receiveWindowSize,
      resendInterval: checkSeconds(
        channel.resendInterval ?? 0.1,
        `channel ${i} resendInterval`,
      ),
    });
  });
  return Object.freeze({
    channels: Object.freeze(resolved),
    packetBudgetBytes,
    maxPacketsPerUpdate: checkInteger(
      config.maxPacketsPerUpdate ?? 8,
      "maxPacketsPerUpdate",
      1,
      1024,
    ),
    keepAliveInterval: checkSeconds(
      config.keepAliveInterval ?? 0.1,
      "keepAliveInterval",
    ),
    reliable,
  });
}

/**
 * Creates one side of a link.
 *
 * @param config The channels and sizes; both sides must use the same.
 * @param time The current time in seconds (any monotonic clock).
 * @param transmit Puts one datagram on the wire; `datagram` is a view valid
 * only during the call.
 * @returns The connection.
 * @throws {TypeError} When `config` has a field of the wrong type or
 * `transmit` is not a function.
 * @throws {RangeError} When a field is out of range.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createMessageConnection } from "./channel.ts";
 *
 * const connection = createMessageConnection(
 *   { channels: [{ kind: "reliable-ordered" }, { kind: "unreliable-unordered" }] },
 *   0,
 *   (datagram) => console.log("send", datagram.length),
 * );
 * assert.equal(connection.channels.length, 2);
 * ```
 */
export function createMessageConnection(
  config: MessageConfig,
  time: number,
  transmit: (datagram: Uint8Array) => void,
): MessageConnection {
  const resolved = resolveMessageConfig(config);
  if (typeof transmit !== "function") {
    throw new TypeError(
      "Cannot create message connection: transmit is not a function",
    );
  }
  // The callbacks run only after `connection` below exists.
  const endpoint = createReliableEndpoint(resolved.reliable, time, {
    transmit: (_sequence, datagram) => connection.transmit(datagram),
    process: (_sequence, payload) => processPayload(connection, payload),
  });
  const sentSize = endpoint.config.sentPacketsBufferSize;
  const connection: ConnectionState = {
    [CONNECTION]: true,
    config: resolved,
    channels: resolved.channels,
    endpoint,
    counters: {
      messagesSent: 0,
      messagesReceived: 0,
      messagesDroppedSendQueueFull: 0,
      messagesDroppedReceiveQueueFull: 0,
      partsResent: 0,
      partsDuplicate: 0,
      packetsOutOfWindow: 0,
      packetsMalformed: 0,
      packetsSent: 0,
    },
    state: resolved.channels.map(createChannelState),
    transmit,
    partBytes: messagePartBytes(resolved.packetBudgetBytes),
    time,
    lastSendTime: -Infinity,
    ackOwed: false,
    nextChannel: 0,
    sendChunk: new Uint8Array(0),
    sendChunkUsed: 0,
    packet: new Uint8Array(
      Math.max(
        resolved.packetBudgetBytes,
        ...resolved.channels.map((c) =>
          c.kind === "unreliable-unordered"
            ? c.maxMessageBytes + LONE_MESSAGE_OVERHEAD_BYTES
            : 0
        ),
      ),
    ),
    sentSequence: new Int32Array(sentSize).fill(-1),
    sentCount: new Uint8Array(sentSize),
    sentChannels: new Uint8Array(sentSize * MAX_PARTS_PER_PACKET),
    sentParts: new Float64Array(sentSize * MAX_PARTS_PER_PACKET),
    sentMask: sentSize - 1,
  };
  return connection;
}

function createChannelState(config: ResolvedChannelConfig): ChannelState {
  if (config.kind === "unreliable-unordered") {
    return {
      kind: config.kind,
      config,
      sendQueue: [],
      received: [],
      receivedHead: 0,
    };
  }
  const send = config.sendQueueSize;
  const window = config.receiveWindowSize;
  return {
    kind: config.kind,
    config,
    nextPart: 0,
    oldestUnacked: 0,
    sendBytes: new Array(send).fill(undefined),
    sendTotal: new Int32Array(send),
    sendLastTime: new Float64Array(send),
    sendAcked: new Uint8Array(send),
    nextDeliver: 0,
    windowBytes: new Array(window).fill(undefined),
    windowTotal: new Int32Array(window),
    assembly: undefined,
    assembled: 0,
    received: [],
    receivedHead: 0,
  };
}

function stateOf(connection: MessageConnection, what: string): ConnectionState {
  if (
    typeof connection !== "object" || connection === null ||
    !(CONNECTION in connection)
  ) {
    throw new TypeError(
      `Cannot ${what}: expected a connection from createMessageConnection()`,
    );
  }
  return connection as ConnectionState;
}

function channelOf(
  state: ConnectionState,
  channelId: number,
  what: string,
): ChannelState {
  if (!Number.isInteger(channelId)) {
    throw new TypeError(
      `Cannot ${what}: channel ${channelId} is not an integer`,
    );
  }
  const channel = state.state[channelId];
  if (channel === undefined) {
    throw new RangeError(
      `Cannot ${what}: channel ${channelId} is outside 0..${
        state.state.length - 1
      }`,
    );
  }
  return channel;
}

/**
 * Queues a message on a channel; it goes out in the next
 * {@linkcode sendMessagePackets}. The connection keeps a copy.
 *
 * @param connection The connection.
 * @param channelId The channel, 0..channels - 1.
 * @param message 0..`maxMessageBytes` bytes.
 * @returns `true` when queued; `false` when the send queue was full and the
 * channel's `onSendQueueFull` is `"drop"` (counted).
 * @throws {TypeError} When `message` is not a `Uint8Array` or the
 * connection or channel id is not one.
 * @throws {RangeError} When the channel does not exist, the message is too
 * large, or the send queue is full and `onSendQueueFull` is `"throw"`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createMessageConnection, sendMessage } from "./channel.ts";
 *
 * const connection = createMessageConnection({
 *   channels: [{
 *     kind: "reliable-ordered",
 *     maxMessageBytes: 1000,
 *     sendQueueSize: 2,
 *     onSendQueueFull: "drop",
 *   }],
 * }, 0, () => {});
 * assert.equal(sendMessage(connection, 0, new Uint8Array(10)), true);
 * assert.equal(sendMessage(connection, 0, new Uint8Array(10)), true);
 * assert.equal(sendMessage(connection, 0, new Uint8Array(10)), false);
 * assert.equal(connection.counters.messagesDroppedSendQueueFull, 1);
 * assert.throws(() => sendMessage(connection, 0, new Uint8Array(1001)), {
 *   name: "RangeError",
 *   message: "Cannot send message: 1001 bytes exceeds channel 0's 1000 byte limit",
 * });
 * ```
 */
export function sendMessage(
  connection: MessageConnection,
  channelId: number,
  message: Uint8Array,
): boolean {
  const what = "send message";
  const state = stateOf(connection, what);
  const channel = channelOf(state, channelId, what);
  if (!(message instanceof Uint8Array)) {
    throw new TypeError(`Cannot ${what}: expected a Uint8Array`);
  }
  const config = channel.config;
  if (message.length > config.maxMessageBytes) {
    throw new RangeError(
      `Cannot ${what}: ${message.length} bytes exceeds channel ${channelId}'s ${config.maxMessageBytes} byte limit`,
    );
  }
  if (channel.kind === "unreliable-unordered") {
    if (channel.sendQueue.length >= config.sendQueueSize) {
      return sendQueueFull(state, channelId, config);
    }
    channel.sendQueue.push(copyToSend(state, message));
    state.counters.messagesSent++;
    return true;
  }
  const partBytes = state.partBytes;
  const parts = Math.max(1, Math.ceil(message.length / partBytes));
  const queued = channel.nextPart - channel.oldestUnacked;
  if (queued + parts > config.sendQueueSize) {
    return sendQueueFull(state, channelId, config);
  }
  const copy = copyToSend(state, message);
  for (let p = 0; p < parts; p++) {
    const entry = channel.nextPart % config.sendQueueSize;
    channel.sendBytes[entry] = copy.subarray(
      p * partBytes,
      Math.min(copy.length, (p + 1) * partBytes),
    );
    channel.sendTotal[entry] = p === 0 ? copy.length : -1;
    channel.sendLastTime[entry] = -Infinity;
    channel.sendAcked[entry] = 0;
    channel.nextPart++;
  }
  state.counters.messagesSent++;
  return true;
}

/**
 * A copy of a message being queued. Small ones share chunks of
 * {@linkcode SEND_CHUNK_BYTES} (a chunk is freed once no queued message
 * holds a view of it), so queuing allocates no buffer per message.
 */
function copyToSend(state: ConnectionState, message: Uint8Array): Uint8Array {
  const length = message.length;
  if (length > SEND_CHUNK_BYTES / 8) return message.slice();
  if (state.sendChunkUsed + length > state.sendChunk.length) {
    state.sendChunk = new Uint8Array(SEND_CHUNK_BYTES);
    state.sendChunkUsed = 0;
  }
  const start = state.sendChunkUsed;
  state.sendChunk.set(message, start);
  state.sendChunkUsed = start + length;
  return state.sendChunk.subarray(start, start + length);
}

function sendQueueFull(
  state: ConnectionState,
  channelId: number,
  config: ResolvedChannelConfig,
): boolean {
  if (config.onSendQueueFull === "drop") {
    state.counters.messagesDroppedSendQueueFull++;
    return false;
  }
  throw new RangeError(
    `Cannot send message: channel ${channelId}'s send queue is full (${config.sendQueueSize} ${
      config.kind === "reliable-ordered" ? "parts" : "messages"
    } waiting)`,
  );
}

/**
 * Takes the next message received on a channel: in order on a
 * reliable-ordered channel, in arrival order on an unreliable one.
 *
 * @param connection The connection.
 * @param channelId The channel.
 * @returns The message (the caller owns it), or `undefined` when none is
 * waiting.
 * @throws {RangeError} When the channel does not exist.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createMessageConnection, receiveMessage } from "./channel.ts";
 *
 * const connection = createMessageConnection({ channels: [{ kind: "reliable-ordered" }] }, 0, () => {});
 * assert.equal(receiveMessage(connection, 0), undefined);
 * assert.throws(() => receiveMessage(connection, 1), RangeError);
 * ```
 */
export function receiveMessage(
  connection: MessageConnection,
  channelId: number,
): Uint8Array | undefined {
  const what = "receive message";
  const state = stateOf(connection, what);
  const channel = channelOf(state, channelId, what);
  if (channel.receivedHead === channel.received.length) return undefined;
  const message = channel.received[channel.receivedHead++];
  if (
    channel.receivedHead > 64 &&
    channel.receivedHead * 2 > channel.received.length
  ) {
    channel.received.splice(0, channel.receivedHead);
    channel.receivedHead = 0;
  }
  if (channel.kind === "reliable-ordered") deliverParts(state, channel);
  return message;
}

function receivedCount(channel: ChannelState): number {
  return channel.received.length - channel.receivedHead;
}

/**
 * Moves the time on: the endpoint's RTT, loss and bandwidth estimates are
 * computed for this time, and acks received after this call are timed by
 * it. Call it once a tick, before the tick's datagrams.
 *
 * @param connection The connection.
 * @param time The current time in seconds, not before the last.
 * @throws {RangeError} When `time` is before the previous one.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createMessageConnection, updateMessageConnection } from "./channel.ts";
 *
 * const connection = createMessageConnection({ channels: [{ kind: "reliable-ordered" }] }, 0, () => {});
 * updateMessageConnection(connection, 1 / 60);
 * assert.throws(() => updateMessageConnection(connection, 0), RangeError);
 * ```
 */
export function updateMessageConnection(
  connection: MessageConnection,
  time: number,
): void {
  const state = stateOf(connection, "update message connection");
  updateEndpoint(state.endpoint, time);
  state.time = time;
}

/**
 * Takes one datagram from the wire. Never throws on its content: a
 * malformed, stale or duplicate datagram is dropped and counted (here or in
 * the endpoint's counters).
 *
 * @param connection The connection.
 * @param datagram The bytes; only read during the call.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createMessageConnection, receiveMessagePacket } from "./channel.ts";
 *
 * const connection = createMessageConnection({ channels: [{ kind: "reliable-ordered" }] }, 0, () => {});
 * receiveMessagePacket(connection, new Uint8Array([0])); // too short for a header
 * assert.equal(connection.endpoint.counters.packetsInvalid, 1);
 * ```
 */
export function receiveMessagePacket(
  connection: MessageConnection,
  datagram: Uint8Array,
): void {
  const state = stateOf(connection, "receive message packet");
  if (!(datagram instanceof Uint8Array)) {
    throw new TypeError("Cannot receive message packet: expected a Uint8Array");
  }
  receivePacket(state.endpoint, datagram);
  applyAcks(state);
}

function applyAcks(state: ConnectionState): void {
  const acks = getAcks(state.endpoint);
  for (let i = 0; i < acks.length; i++) {
    const entry = acks[i] & state.sentMask;
    if (state.sentSequence[entry] !== acks[i]) continue;
    state.sentSequence[entry] = -1;
    const base = entry * MAX_PARTS_PER_PACKET;
    for (let p = 0; p < state.sentCount[entry]; p++) {
      const channel = state.state[state.sentChannels[base + p]];
      if (channel.kind !== "reliable-ordered") continue;
      ackPart(channel, state.sentParts[base + p]);
    }
  }
  clearAcks(state.endpoint);
}

function ackPart(channel: ReliableChannelState, part: number): void {
  const size = channel.config.sendQueueSize;
  // Parts before the oldest unacked one were acked and released already.
  if (part < channel.oldestUnacked || part >= channel.nextPart) return;
  channel.sendAcked[part % size] = 1;
  while (
    channel.oldestUnacked < channel.nextPart &&
    channel.sendAcked[channel.oldestUnacked % size]
  ) {
    channel.sendBytes[channel.oldestUnacked % size] = undefined;
    channel.oldestUnacked++;
  }
}

// ---------------------------------------------------------------------------
// Receiving

function readVarint(
  data: Uint8Array,
  offset: number,
  end: number,
): number {
  // Returns value * 4 + bytes used, or -1.
  let value = 0;
  for (let i = 0; i < 3; i++) {
    if (offset + i >= end) return -1;
    const byte = data[offset + i];
    value |= (byte & 0x7f) << (7 * i);
    if ((byte & 0x80) === 0) {
      // Canonical: no trailing zero byte.
      if (i > 0 && byte === 0) return -1;
      return value * 4 + i + 1;
    }
  }
  return -1;
}

/**
 * Parses a packet payload twice: first to check it (nothing changes), then
 * to apply it. Returns whether the endpoint should accept (ack) it.
 */
function processPayload(state: ConnectionState, payload: Uint8Array): boolean {
  const check = walkPayload(state, payload, false);
  if (check !== 0) {
    if (check === 1) state.counters.packetsMalformed++;
    else state.counters.packetsOutOfWindow++;
    return false;
  }
  walkPayload(state, payload, true);
  return true;
}

/** 0 when valid (and applied if `apply`), 1 malformed, 2 out of window. */
function walkPayload(
  state: ConnectionState,
  data: Uint8Array,
  apply: boolean,
): number {
  const end = data.length;
  if (end < 1 || (data[0] & ~FLAG_ACK_REQUESTED) !== 0) return 1;
  let offset = 1;
  let carriesMessages = false;
  while (offset < end) {
    const channelId = data[offset++];
    const channel = state.state[channelId];
    if (channel === undefined) return 1;
    const countRead = readVarint(data, offset, end);
    if (countRead < 0) return 1;
    const count = countRead >> 2;
    offset += countRead & 3;
    if (count < 1) return 1;
    carriesMessages = true;
    const maxMessageBytes = channel.config.maxMessageBytes;
    for (let m = 0; m < count; m++) {
      if (channel.kind === "unreliable-unordered") {
        const lengthRead = readVarint(data, offset, end);
        if (lengthRead < 0) return 1;
        const length = lengthRead >> 2;
        offset += lengthRead & 3;
        if (length > maxMessageBytes || offset + length > end) return 1;
        if (apply) {
          if (receivedCount(channel) >= channel.config.receiveQueueSize) {
            state.counters.messagesDroppedReceiveQueueFull++;
          } else {
            channel.received.push(data.slice(offset, offset + length));
            state.counters.messagesReceived++;
          }
        }
        offset += length;
        continue;
      }
      if (offset + 2 > end) return 1;
      const id = data[offset] | (data[offset + 1] << 8);
      offset += 2;
      const headRead = readVarint(data, offset, end);
      if (headRead < 0) return 1;
      const head = headRead >> 2;
      offset += headRead & 3;
      const length = head >> 1;
      const first = head & 1;
      let total = -1;
      if (first) {
        const totalRead = readVarint(data, offset, end);
        if (totalRead < 0) return 1;
        total = totalRead >> 2;
        offset += totalRead & 3;
        if (total > maxMessageBytes || length > total) return 1;
      }
      if (length > state.partBytes || offset + length > end) return 1;
      const ahead = (id - channel.nextDeliver) & 0xffff;
      if (ahead >= 32768) {
        // Before the next to deliver: already delivered.
        if (apply) state.counters.partsDuplicate++;
      } else if (ahead >= channel.config.receiveWindowSize) {
        return 2;
      } else if (apply) {
        const entry = (channel.nextDeliver + ahead) %
          channel.config.receiveWindowSize;
        if (channel.windowBytes[entry] !== undefined) {
          state.counters.partsDuplicate++;
        } else {
          channel.windowBytes[entry] = data.slice(offset, offset + length);
          channel.windowTotal[entry] = total;
        }
      }
      offset += length;
    }
  }
  if (apply) {
    if (carriesMessages || (data[0] & FLAG_ACK_REQUESTED) !== 0) {
      state.ackOwed = true;
    }
    for (const channel of state.state) {
      if (channel.kind === "reliable-ordered") deliverParts(state, channel);
    }
  }
  return 0;
}

/** Moves parts that are next in order out of the window into messages. */
function deliverParts(state: ConnectionState, channel: ReliableChannelState) {
  const window = channel.config.receiveWindowSize;
  const limit = channel.config.receiveQueueSize;
  while (receivedCount(channel) < limit) {
    const entry = channel.nextDeliver % window;
    const bytes = channel.windowBytes[entry];
    if (bytes === undefined) return;
    const total = channel.windowTotal[entry];
    channel.windowBytes[entry] = undefined;
    channel.nextDeliver++;
    if (total >= 0) {
      // A first part: any message being assembled was cut short (only a
      // peer not following the framing does this); it is dropped.
      if (channel.assembly !== undefined) state.counters.packetsMalformed++;
      if (bytes.length === total) {
        channel.assembly = undefined;
        channel.received.push(bytes);
        state.counters.messagesReceived++;
        continue;
      }
      channel.assembly = new Uint8Array(total);
      channel.assembly.set(bytes);
      channel.assembled = bytes.length;
      continue;
    }
    const assembly = channel.assembly;
    if (
      assembly === undefined ||
      channel.assembled + bytes.length > assembly.length
    ) {
      // A middle part without its start, or more bytes than announced.
      state.counters.packetsMalformed++;
      channel.assembly = undefined;
      continue;
    }
    assembly.set(bytes, channel.assembled);
    channel.assembled += bytes.length;
    if (channel.assembled === assembly.length) {
      channel.assembly = undefined;
      channel.received.push(assembly);
      state.counters.messagesReceived++;
    }
  }
}

// ---------------------------------------------------------------------------
// Sending

function writeVarint(out: Uint8Array, offset: number, value: number): number {
  while (value >= 0x80) {
    out[offset++] = (value & 0x7f) | 0x80;
    value >>>= 7;
  }
  out[offset++] = value;
  return offset;
}

function varintBytes(value: number): number {
  return value < 0x80 ? 1 : value < 0x4000 ? 2 : 3;
}

/**
 * Sends what is due: queued unreliable messages, reliable parts not sent
 * yet or due for a resend, and an empty packet when an ack is owed or the
 * link has been quiet for `keepAliveInterval`. At most
 * `maxPacketsPerUpdate` packets; what does not fit waits for the next call.
 * Call it once a tick, after the tick's datagrams.
 *
 * @param connection The connection.
 * @returns The number of packets sent.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createMessageConnection, sendMessage, sendMessagePackets } from "./channel.ts";
 *
 * const sizes: number[] = [];
 * const connection = createMessageConnection(
 *   { channels: [{ kind: "reliable-ordered" }] }, 0, (d) => sizes.push(d.length),
 * );
 * sendMessage(connection, 0, new Uint8Array(3000)); // three parts
 * assert.equal(sendMessagePackets(connection), 3);
 * assert.equal(sendMessagePackets(connection), 0); // nothing due until the resend interval
 * ```
 */
export function sendMessagePackets(connection: MessageConnection): number {
  const state = stateOf(connection, "send message packets");
  const config = state.config;
  let sent = 0;
  while (sent < config.maxPacketsPerUpdate) {
    if (!buildAndSendPacket(state)) break;
    sent++;
  }
  if (
    sent === 0 &&
    (state.ackOwed ||
      state.time - state.lastSendTime >= config.keepAliveInterval)
  ) {
    const keepAlive = !state.ackOwed;
    state.packet[0] = keepAlive ? FLAG_ACK_REQUESTED : 0;
    transmitPacket(state, 1, 0);
    sent++;
  }
  return sent;
}

/** Fills one packet with what is due; false when nothing is. */
function buildAndSendPacket(state: ConnectionState): boolean {
  const out = state.packet;
  const budget = state.config.packetBudgetBytes;
  const time = state.time;
  let offset = 1;
  let parts = 0;
  const sentEntry = sequenceEntry(state);
  const base = sentEntry * MAX_PARTS_PER_PACKET;
  let carries = false;
  // Each packet starts with the next channel in turn, so a reliable backlog
  // cannot starve an unreliable channel (or the reverse).
  const numChannels = state.state.length;
  const firstChannel = state.nextChannel;
  state.nextChannel = (firstChannel + 1) % numChannels;
  // A message too large for any packet's budget goes alone, fragmented.
  for (let channelId = 0; channelId < state.state.length; channelId++) {
    const channel = state.state[channelId];
    if (channel.kind !== "unreliable-unordered") continue;
    const message = channel.sendQueue[0];
    if (
      message === undefined ||
      1 + 3 + varintBytes(message.length) + message.length <= budget
    ) {
      continue;
    }
    channel.sendQueue.shift();
    out[0] = FLAG_ACK_REQUESTED;
    out[1] = channelId;
    out[2] = 1;
    const start = writeVarint(out, 3, message.length);
    out.set(message, start);
    transmitPacket(state, start + message.length, 0);
    return true;
  }
  for (let turn = 0; turn < numChannels; turn++) {
    const channelId = (firstChannel + turn) % numChannels;
    const channel = state.state[channelId];
    // Room for a block header: channel byte and a count of up to 2 bytes.
    if (offset + 3 >= budget) break;
    const blockStart = offset;
    let count = 0;
    let cursor = offset + 3; // count written later, up to 2 bytes (<= 16383)
    if (channel.kind === "unreliable-unordered") {
      const queue = channel.sendQueue;
      let taken = 0;
      while (taken < queue.length) {
        const message = queue[taken];
        const need = varintBytes(message.length) + message.length;
        if (cursor + need > budget) break;
        cursor = writeVarint(out, cursor, message.length);
        out.set(message, cursor);
        cursor += message.length;
        taken++;
        count++;
      }
      if (taken > 0) queue.splice(0, taken);
    } else {
      const size = channel.config.sendQueueSize;
      // Never past the peer's receive window from the oldest unacked part.
      const end = Math.min(
        channel.nextPart,
        channel.oldestUnacked + channel.config.receiveWindowSize,
      );
      for (
        let part = channel.oldestUnacked;
        part < end && parts < MAX_PARTS_PER_PACKET;
        part++
      ) {
        const entry = part % size;
        if (channel.sendAcked[entry]) continue;
        const last = channel.sendLastTime[entry];
        if (last + channel.config.resendInterval > time) continue;
        const bytes = channel.sendBytes[entry]!;
        const total = channel.sendTotal[entry];
        const head = bytes.length * 2 + (total >= 0 ? 1 : 0);
        const need = 2 + varintBytes(head) +
          (total >= 0 ? varintBytes(total) : 0) + bytes.length;
        if (cursor + need > budget) continue; // a smaller one may fit
        out[cursor] = part & 0xff;
        out[cursor + 1] = (part >>> 8) & 0xff;
        cursor = writeVarint(out, cursor + 2, head);
        if (total >= 0) cursor = writeVarint(out, cursor, total);
        out.set(bytes, cursor);
        cursor += bytes.length;
        if (last !== -Infinity) state.counters.partsResent++;
        channel.sendLastTime[entry] = time;
        state.sentChannels[base + parts] = channelId;
        state.sentParts[base + parts] = part;
        parts++;
        count++;
      }
    }
    if (count === 0) continue;
    // Write the block header and close the gap the count left.
    out[blockStart] = channelId;
    const countEnd = writeVarint(out, blockStart + 1, count);
    if (countEnd < blockStart + 3) {
      out.copyWithin(countEnd, blockStart + 3, cursor);
      cursor -= blockStart + 3 - countEnd;
    }
    offset = cursor;
    carries = true;
  }
  if (!carries) return false;
  out[0] = FLAG_ACK_REQUESTED;
  transmitPacket(state, offset, parts);
  return true;
}

function sequenceEntry(state: ConnectionState): number {
  return nextPacketSequence(state.endpoint) & state.sentMask;
}

function transmitPacket(state: ConnectionState, bytes: number, parts: number) {
  const sequence = nextPacketSequence(state.endpoint);
  const entry = sequence & state.sentMask;
  state.sentSequence[entry] = parts > 0 ? sequence : -1;
  state.sentCount[entry] = parts;
  sendPacket(state.endpoint, state.packet.subarray(0, bytes));
  state.counters.packetsSent++;
  state.lastSendTime = state.time;
  state.ackOwed = false;
}

/**
 * The link's estimates: RTT and jitter (from the endpoint's RTT history),
 * packet loss and bandwidth, as float32 values.
 *
 * @param connection The connection.
 * @returns A new object with the current values.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { connectionQuality, createMessageConnection } from "./channel.ts";
 *
 * const connection = createMessageConnection({ channels: [{ kind: "reliable-ordered" }] }, 0, () => {});
 * assert.equal(connectionQuality(connection).packetLoss, 0);
 * ```
 */
export function connectionQuality(
  connection: MessageConnection,
): ConnectionQuality {
  const stats: ReliableStats = stateOf(connection, "read connection quality")
    .endpoint.stats;
  return {
    rtt: stats.rtt,
    rttMin: stats.rttMin,
    rttMax: stats.rttMax,
    jitter: stats.jitterAvgVsMinRtt,
    packetLoss: stats.packetLoss,
    sentBandwidthKbps: stats.sentBandwidthKbps,
    receivedBandwidthKbps: stats.receivedBandwidthKbps,
    ackedBandwidthKbps: stats.ackedBandwidthKbps,
  };
}

/**
 * Forgets everything queued, in flight or received, as at a new connection
 * (the endpoint is reset too; its estimates survive, as in reliable 1.0).
 *
 * @param connection The connection.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createMessageConnection, resetMessageConnection, sendMessage, sendMessagePackets } from "./channel.ts";
 *
 * const connection = createMessageConnection({ channels: [{ kind: "reliable-ordered" }] }, 0, () => {});
 * sendMessage(connection, 0, new Uint8Array(5));
 * resetMessageConnection(connection);
 * assert.equal(sendMessagePackets(connection), 1); // only the keep-alive
 * ```
 */
export function resetMessageConnection(connection: MessageConnection): void {
  const state = stateOf(connection, "reset message connection");
  resetEndpoint(state.endpoint);
  for (let i = 0; i < state.state.length; i++) {
    state.state[i] = createChannelState(state.channels[i]);
  }
  state.sentSequence.fill(-1);
  state.lastSendTime = -Infinity;
  state.ackOwed = false;
  for (const key of Object.keys(state.counters) as (keyof MessageCounters)[]) {
    state.counters[key] = 0;
  }
}
