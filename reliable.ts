/**
 * reliable 1.0 (the protocol of mas-bandwidth/reliable, formerly
 * reliable.io): acks, fragmentation and reassembly, and RTT / jitter /
 * packet-loss / bandwidth estimates over any unreliable datagram channel,
 * byte-exact with the C reference. There is no retransmission: the layer
 * above learns which packets were acked ({@linkcode getAcks}) and decides
 * what to send again.
 *
 * An endpoint is one side of one connection. Hand it the packets to send
 * ({@linkcode sendPacket}) and every datagram that arrives
 * ({@linkcode receivePacket}); it calls `transmit` with the datagrams to put
 * on the wire and `process` with each packet that arrived whole, new and in
 * the window. Call {@linkcode update} once a tick with the current time in
 * seconds: the endpoint never reads a clock.
 *
 * Received datagrams are never trusted: malformed, stale, duplicate or too
 * large ones are dropped and counted in {@linkcode ReliableEndpoint.counters},
 * never thrown, and whatever a peer sends the endpoint's memory stays
 * within what its config allows. Misuse of the API throws: `TypeError` for a
 * value of the wrong type, `RangeError` for one out of range.
 *
 * The functions take the endpoint first, so the module reads well imported
 * as a namespace: `reliable.sendPacket(endpoint, payload)`.
 *
 * @example Two endpoints exchange packets and learn what was acked
 * ```ts
 * import assert from "node:assert/strict";
 * import * as reliable from "./reliable.ts";
 *
 * const toB: Uint8Array[] = [];
 * const toA: Uint8Array[] = [];
 * const a = reliable.createReliableEndpoint({}, 0, {
 *   transmit: (_sequence, datagram) => toB.push(datagram.slice()),
 *   process: () => true,
 * });
 * const b = reliable.createReliableEndpoint({}, 0, {
 *   transmit: (_sequence, datagram) => toA.push(datagram.slice()),
 *   process: () => true,
 * });
 *
 * const sent = reliable.sendPacket(a, new Uint8Array(3000)); // 3 fragments
 * for (const datagram of toB.splice(0)) reliable.receivePacket(b, datagram);
 * reliable.sendPacket(b, new Uint8Array([1, 2, 3])); // carries b's acks
 * for (const datagram of toA.splice(0)) reliable.receivePacket(a, datagram);
 *
 * assert.deepEqual([...reliable.getAcks(a)], [sent]);
 * assert.equal(b.counters.fragmentsReceived, 3);
 * ```
 *
 * @module
 */

import {
  advanceSequenceBuffer,
  createSequenceBuffer,
  holdsSequence,
  insertSequence,
  insertSequenceAdvancingFirst,
  isStaleSequence,
  removeSequence,
  resetSequenceBuffer,
  type SequenceBuffer,
  sequenceGreaterThan as greaterThan,
  sequenceLessThan as lessThan,
} from "./_sequence_buffer.ts";

/**
 * Most bytes a packet header takes: prefix, sequence, a 16-bit ack and four
 * ack_bits bytes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MAX_PACKET_HEADER_BYTES, writePacketHeader } from "./reliable.ts";
 *
 * const buffer = new Uint8Array(MAX_PACKET_HEADER_BYTES);
 * assert.equal(writePacketHeader(buffer, 0, 1000, 0, 0), MAX_PACKET_HEADER_BYTES);
 * ```
 */
export const MAX_PACKET_HEADER_BYTES = 9;

/**
 * Bytes of a fragment header: prefix 1, sequence, fragment id and fragment
 * count minus one. Fragment 0 carries the packet header after it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { FRAGMENT_HEADER_BYTES, readFragmentHeader } from "./reliable.ts";
 *
 * // Fragment 1 of 2 of packet 7, carrying 4 bytes.
 * const fragment = new Uint8Array([1, 7, 0, 1, 1, 9, 9, 9, 9]);
 * assert.equal(readFragmentHeader(fragment)?.headerBytes, FRAGMENT_HEADER_BYTES);
 * ```
 */
export const FRAGMENT_HEADER_BYTES = 5;

/** Largest size of the three sequence buffers (see {@linkcode ReliableConfig}). */
const MAX_SEQUENCE_BUFFER_SIZE = 16384;
/** Largest value of the other size options: keeps sums in 32-bit range. */
const MAX_SIZE_OPTION = 0x3fffffff;
/** The reference's FLT_MAX start value when it looks for the oldest time. */
const FLT_MAX = 3.4028234663852886e38;

/**
 * An endpoint's configuration: the fields of the reference's
 * `reliable_config_t` that change behaviour, with its defaults. Both ends of a
 * connection need the same `maxPacketSize`, `maxFragments` and
 * `fragmentSize`; the rest is local.
 *
 * The three sequence buffer sizes must be powers of two (1..16384). The
 * reference accepts other sizes but then indexes entries with sequences that
 * have wrapped past 65535 inconsistently; 32768 would make its stale test
 * reject every sequence.
 *
 * @example Fragment anything over 500 bytes, into pieces of 500
 * ```ts
 * import assert from "node:assert/strict";
 * import { createReliableEndpoint, type ReliableConfig } from "./reliable.ts";
 *
 * const config: ReliableConfig = { fragmentAbove: 500, fragmentSize: 500, maxFragments: 33 };
 * const datagrams: number[] = [];
 * const endpoint = createReliableEndpoint(config, 0, {
 *   transmit: (_sequence, datagram) => datagrams.push(datagram.length),
 *   process: () => true,
 * });
 * assert.equal(endpoint.config.maxPacketSize, 16384);
 * ```
 */
export interface ReliableConfig {
  /**
   * Largest payload sent or received, in bytes (1..2^30-1). A datagram over
   * `maxPacketSize + 14` is dropped unread.
   *
   * @default {16384}
   */
  maxPacketSize?: number;
  /**
   * Payloads larger than this many bytes are sent as fragments.
   *
   * @default {1024}
   */
  fragmentAbove?: number;
  /**
   * Most fragments per packet, 1..256. A receiver drops fragments that claim
   * more; a payload that would need more is not sent (see
   * {@linkcode sendPacket}).
   *
   * @default {16}
   */
  maxFragments?: number;
  /**
   * Bytes of payload per fragment; the last fragment carries the rest.
   *
   * @default {1024}
   */
  fragmentSize?: number;
  /**
   * Acks held between {@linkcode clearAcks} calls; further acks wait until
   * the buffer is cleared (the packet stays unacked until a later header
   * acks it again).
   *
   * @default {256}
   */
  ackBufferSize?: number;
  /**
   * Sent packets tracked for acks, loss and bandwidth: a power of two
   * (1..16384).
   *
   * @default {256}
   */
  sentPacketsBufferSize?: number;
  /**
   * Received packets tracked: the window for stale and duplicate rejection
   * and received bandwidth. A power of two (1..16384).
   *
   * @default {256}
   */
  receivedPacketsBufferSize?: number;
  /**
   * Packets under reassembly at once: a power of two (1..16384).
   *
   * @default {64}
   */
  fragmentReassemblyBufferSize?: number;
  /**
   * Exponential smoothing factor of the RTT, 0..1, used as a float32.
   *
   * @default {0.0025}
   */
  rttSmoothingFactor?: number;
  /**
   * RTT samples kept for min / max / average RTT and jitter.
   *
   * @default {512}
   */
  rttHistorySize?: number;
  /**
   * Exponential smoothing factor of the packet loss, 0..1, used as a
   * float32.
   *
   * @default {0.1}
   */
  packetLossSmoothingFactor?: number;
  /**
   * Exponential smoothing factor of the bandwidths, 0..1, used as a float32.
   *
   * @default {0.1}
   */
  bandwidthSmoothingFactor?: number;
  /**
   * Bytes of network header counted per packet in the bandwidth estimates
   * (28: IPv4 + UDP; 48 for IPv6). Nothing else uses it.
   *
   * @default {28}
   */
  packetHeaderSize?: number;
}

/**
 * A configuration with every field present, as an endpoint holds it (the
 * smoothing factors rounded to float32).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DEFAULT_RELIABLE_CONFIG, type ResolvedReliableConfig } from "./reliable.ts";
 *
 * const config: ResolvedReliableConfig = DEFAULT_RELIABLE_CONFIG;
 * assert.equal(config.rttSmoothingFactor, Math.fround(0.0025));
 * ```
 */
export type ResolvedReliableConfig = Readonly<Required<ReliableConfig>>;

/**
 * The reference's `reliable_default_config()` values.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DEFAULT_RELIABLE_CONFIG } from "./reliable.ts";
 *
 * assert.equal(DEFAULT_RELIABLE_CONFIG.fragmentAbove, 1024);
 * assert.equal(DEFAULT_RELIABLE_CONFIG.maxFragments * DEFAULT_RELIABLE_CONFIG.fragmentSize, 16384);
 * ```
 */
export const DEFAULT_RELIABLE_CONFIG: ResolvedReliableConfig = Object.freeze({
  maxPacketSize: 16384,
  fragmentAbove: 1024,
  maxFragments: 16,
  fragmentSize: 1024,
  ackBufferSize: 256,
  sentPacketsBufferSize: 256,
  receivedPacketsBufferSize: 256,
  fragmentReassemblyBufferSize: 64,
  rttSmoothingFactor: Math.fround(0.0025),
  rttHistorySize: 512,
  packetLossSmoothingFactor: Math.fround(0.1),
  bandwidthSmoothingFactor: Math.fround(0.1),
  packetHeaderSize: 28,
});

/**
 * The endpoint's two callbacks. Both are called from inside
 * {@linkcode sendPacket} and {@linkcode receivePacket}, never later.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createReliableEndpoint, receivePacket, type ReliableCallbacks, sendPacket } from "./reliable.ts";
 *
 * const wire: Uint8Array[] = [];
 * const payloads: number[][] = [];
 * const callbacks: ReliableCallbacks = {
 *   transmit: (_sequence, datagram) => wire.push(datagram.slice()),
 *   process: (_sequence, payload) => (payloads.push([...payload]), true),
 * };
 * const endpoint = createReliableEndpoint({}, 0, callbacks);
 * sendPacket(endpoint, new Uint8Array([4, 5]));
 * const peer = createReliableEndpoint({}, 0, callbacks);
 * receivePacket(peer, wire[0]);
 * assert.deepEqual(payloads, [[4, 5]]);
 * ```
 */
export interface ReliableCallbacks {
  /**
   * Puts one datagram on the wire. `datagram` is a view of the endpoint's
   * reusable send buffer, valid only during the call: copy it to keep it.
   * Must not send on the same endpoint.
   *
   * @param sequence The packet's sequence (every fragment of a packet has it).
   * @param datagram The bytes to send.
   */
  transmit(sequence: number, datagram: Uint8Array): void;
  /**
   * Takes a packet that arrived whole. `payload` is a view of the received
   * datagram or of a reassembly buffer, valid only during the call. May send
   * on the same endpoint; must not receive on it.
   *
   * @param sequence The packet's sequence.
   * @param payload The packet's bytes.
   * @returns `true` to accept the packet: it is acked to the peer and the
   * acks its header carries are applied. `false` rejects it: not acked, and
   * taken again if it arrives again.
   */
  process(sequence: number, payload: Uint8Array): boolean;
}

/**
 * The reference's 11 endpoint counters, by name, in its index order
 * ({@linkcode RELIABLE_COUNTER_NAMES}). Reset by {@linkcode reset}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createReliableEndpoint, receivePacket, type ReliableCounters } from "./reliable.ts";
 *
 * const endpoint = createReliableEndpoint({}, 0, { transmit() {}, process: () => true });
 * receivePacket(endpoint, new Uint8Array([0])); // too short for a header
 * const counters: ReliableCounters = endpoint.counters;
 * assert.equal(counters.packetsReceived, 1);
 * assert.equal(counters.packetsInvalid, 1);
 * ```
 */
export interface ReliableCounters {
  /** Packets sent (a fragmented packet counts once). */
  readonly packetsSent: number;
  /** Regular packets received, including reassembled ones and rejected ones. */
  readonly packetsReceived: number;
  /** Sent packets acked by the peer. */
  readonly packetsAcked: number;
  /** Packets dropped as older than the received window. */
  readonly packetsStale: number;
  /** Regular packets dropped because their header does not parse. */
  readonly packetsInvalid: number;
  /** Payloads not sent: over `maxPacketSize`, or needing over `maxFragments`. */
  readonly packetsTooLargeToSend: number;
  /** Datagrams over `maxPacketSize + 14`, or payloads over `maxPacketSize`. */
  readonly packetsTooLargeToReceive: number;
  /** Fragments sent. */
  readonly fragmentsSent: number;
  /** Fragments taken for reassembly. */
  readonly fragmentsReceived: number;
  /** Fragments dropped: malformed, inconsistent or stale. */
  readonly fragmentsInvalid: number;
  /** Packets dropped because that sequence was already received. */
  readonly packetsDuplicate: number;
}

/**
 * Counter names in the reference's index order
 * (`RELIABLE_ENDPOINT_COUNTER_NUM_PACKETS_SENT` = 0 ...).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createReliableEndpoint, RELIABLE_COUNTER_NAMES } from "./reliable.ts";
 *
 * const endpoint = createReliableEndpoint({}, 0, { transmit() {}, process: () => true });
 * const asArray = RELIABLE_COUNTER_NAMES.map((name) => endpoint.counters[name]);
 * assert.deepEqual(asArray, new Array(11).fill(0));
 * ```
 */
export const RELIABLE_COUNTER_NAMES: readonly (keyof ReliableCounters)[] =
  Object.freeze([
    "packetsSent",
    "packetsReceived",
    "packetsAcked",
    "packetsStale",
    "packetsInvalid",
    "packetsTooLargeToSend",
    "packetsTooLargeToReceive",
    "fragmentsSent",
    "fragmentsReceived",
    "fragmentsInvalid",
    "packetsDuplicate",
  ]);

/**
 * The estimates, float32 values exactly as the reference computes them. `rtt`
 * moves whenever an ack arrives; the rest is computed by
 * {@linkcode update}. They survive {@linkcode reset}, as in the reference.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createReliableEndpoint, type ReliableStats, update } from "./reliable.ts";
 *
 * const endpoint = createReliableEndpoint({}, 0, { transmit() {}, process: () => true });
 * update(endpoint, 1 / 60);
 * const stats: ReliableStats = endpoint.stats;
 * assert.equal(stats.packetLoss, 0);
 * ```
 */
export interface ReliableStats {
  /** Smoothed round-trip time, milliseconds. */
  readonly rtt: number;
  /** Smallest RTT in the history, milliseconds (0 when empty). */
  readonly rttMin: number;
  /** Largest RTT in the history, milliseconds. */
  readonly rttMax: number;
  /** Mean RTT of the history, milliseconds. */
  readonly rttAvg: number;
  /** Mean of (RTT - rttMin) over the history, milliseconds. */
  readonly jitterAvgVsMinRtt: number;
  /** Largest (RTT - rttMin) in the history, milliseconds. */
  readonly jitterMaxVsMinRtt: number;
  /** Standard deviation of the history's RTTs, milliseconds. */
  readonly jitterStddevVsAvgRtt: number;
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
 * Stat names in the reference's order (`reliable_endpoint_rtt` ...
 * `reliable_endpoint_bandwidth`'s acked value).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { RELIABLE_STATS_NAMES } from "./reliable.ts";
 *
 * assert.equal(RELIABLE_STATS_NAMES[0], "rtt");
 * assert.equal(RELIABLE_STATS_NAMES.length, 11);
 * ```
 */
export const RELIABLE_STATS_NAMES: readonly (keyof ReliableStats)[] = Object
  .freeze([
    "rtt",
    "rttMin",
    "rttMax",
    "rttAvg",
    "jitterAvgVsMinRtt",
    "jitterMaxVsMinRtt",
    "jitterStddevVsAvgRtt",
    "packetLoss",
    "sentBandwidthKbps",
    "receivedBandwidthKbps",
    "ackedBandwidthKbps",
  ]);

/**
 * One side of one connection, made by {@linkcode createReliableEndpoint} and
 * driven by the functions of this module. `counters` and `stats` are live
 * views: read them any time.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createReliableEndpoint, type ReliableEndpoint, sendPacket } from "./reliable.ts";
 *
 * const endpoint: ReliableEndpoint = createReliableEndpoint({}, 0, { transmit() {}, process: () => true });
 * sendPacket(endpoint, new Uint8Array(10));
 * assert.equal(endpoint.counters.packetsSent, 1);
 * ```
 */
export interface ReliableEndpoint {
  /** The configuration, defaults filled in. */
  readonly config: ResolvedReliableConfig;
  /** The counters, updated as packets go by. */
  readonly counters: ReliableCounters;
  /** The estimates. */
  readonly stats: ReliableStats;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** The estimates computed from the RTT history. */
type RttStats = Pick<
  ReliableStats,
  | "rttMin"
  | "rttMax"
  | "rttAvg"
  | "jitterAvgVsMinRtt"
  | "jitterMaxVsMinRtt"
  | "jitterStddevVsAvgRtt"
>;

/** Marks objects made by {@linkcode createReliableEndpoint}. */
const ENDPOINT = Symbol("reliable endpoint");

/** Everything an endpoint holds; fixed in size once made. */
interface EndpointState extends ReliableEndpoint {
  readonly [ENDPOINT]: true;
  readonly counters: Mutable<ReliableCounters>;
  readonly stats: Mutable<ReliableStats>;
  readonly callbacks: ReliableCallbacks;
  /** The time of the last update (or of creation), seconds. */
  time: number;
  /** The sequence of the next packet sent. */
  sequence: number;
  /** While a callback runs: what it may not call back into. */
  inTransmit: boolean;
  inProcess: boolean;

  readonly acks: Uint16Array;
  numAcks: number;

  readonly sent: SequenceBuffer;
  readonly sentTime: Float64Array;
  readonly sentBytes: Float64Array;
  readonly sentAcked: Uint8Array;

  readonly received: SequenceBuffer;
  readonly receivedTime: Float64Array;
  readonly receivedBytes: Float64Array;

  readonly reassembly: SequenceBuffer;
  readonly reassemblyFragments: Uint16Array;
  readonly reassemblyReceived: Uint16Array;
  /** Payload bytes of the packet, known once its last fragment arrived. */
  readonly reassemblyPayloadBytes: Float64Array;
  /** Bytes of the packet header rebuilt in front of the payload. */
  readonly reassemblyHeaderBytes: Uint8Array;
  /** Per entry `maxFragments` flags: which fragments arrived. */
  readonly reassemblyFlags: Uint8Array;
  /**
   * Per entry: 9 bytes of room for the header, then the payload (at most
   * `maxPacketSize` of it; the rest cannot be accepted and is not kept).
   * Made when an entry first needs it, grown only up to that bound.
   */
  readonly reassemblyData: (Uint8Array | undefined)[];

  readonly rttHistory: Float32Array;
  /** The history as the last update saw it, when it had changed. */
  readonly rttSnapshot: Float32Array;
  /** A sample arrived since the last update. */
  rttHistoryChanged: boolean;
  /** `rttStats` is older than `rttSnapshot`. */
  rttStatsStale: boolean;
  /** The history's statistics, computed from `rttSnapshot` when read. */
  readonly rttStats: Mutable<RttStats>;
  /** Send buffer: one regular packet or one fragment. */
  readonly transmitBuffer: Uint8Array;

  // Parser outputs, so reading a header allocates nothing.
  headerSequence: number;
  headerAck: number;
  headerAckBits: number;
  fragmentSequence: number;
  fragmentId: number;
  fragmentCount: number;
  fragmentBytes: number;
  fragmentAck: number;
  fragmentAckBits: number;
}

// ---------------------------------------------------------------------------
// Sequences

/**
 * Whether sequence `a` is newer than `b` in reliable's 16-bit wrapping order,
 * exactly as the reference compares them: at a distance of exactly 32768 the
 * numerically larger sequence is the newer one.
 *
 * @param a A sequence, 0..65535.
 * @param b A sequence, 0..65535.
 * @returns `true` when `a` is newer than `b`.
 * @throws {RangeError} When either is not an integer 0..65535.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { sequenceGreaterThan } from "./reliable.ts";
 *
 * assert.equal(sequenceGreaterThan(1, 65535), true); // across the wrap
 * assert.equal(sequenceGreaterThan(32768, 0), true);
 * assert.equal(sequenceGreaterThan(0, 32768), false); // asymmetric at 32768
 * ```
 */
export function sequenceGreaterThan(a: number, b: number): boolean {
  checkSequence(a, "compare sequences", "sequence");
  checkSequence(b, "compare sequences", "sequence");
  return greaterThan(a, b);
}

/**
 * Whether sequence `a` is older than `b`: `sequenceGreaterThan(b, a)`.
 *
 * @param a A sequence, 0..65535.
 * @param b A sequence, 0..65535.
 * @returns `true` when `a` is older than `b`.
 * @throws {RangeError} When either is not an integer 0..65535.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { sequenceLessThan } from "./reliable.ts";
 *
 * assert.equal(sequenceLessThan(65535, 1), true);
 * assert.equal(sequenceLessThan(0, 32768), true);
 * assert.equal(sequenceLessThan(32768, 0), false);
 * ```
 */
export function sequenceLessThan(a: number, b: number): boolean {
  checkSequence(a, "compare sequences", "sequence");
  checkSequence(b, "compare sequences", "sequence");
  return lessThan(a, b);
}

function checkSequence(value: unknown, what: string, name: string): void {
  if (
    typeof value !== "number" || !Number.isInteger(value) || value < 0 ||
    value > 0xffff
  ) {
    throw new RangeError(
      `Cannot ${what}: ${name} ${String(value)} is not an integer 0..65535`,
    );
  }
}

// ---------------------------------------------------------------------------
// Headers

/**
 * A decoded packet header.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type PacketHeader, readPacketHeader } from "./reliable.ts";
 *
 * const header: PacketHeader | undefined = readPacketHeader(new Uint8Array([0x20, 5, 0, 1]));
 * assert.deepEqual(header, { sequence: 5, ack: 4, ackBits: 0xffffffff, headerBytes: 4 });
 * ```
 */
export interface PacketHeader {
  /** The packet's sequence. */
  sequence: number;
  /** The newest sequence of the sender's received window. */
  ack: number;
  /** Bit n set: the sender received sequence `ack - n` (bit 0 is `ack`). */
  ackBits: number;
  /** Bytes the header took, 4..9; the payload follows. */
  headerBytes: number;
}

/**
 * Writes a packet header in its one canonical form: the prefix byte, the
 * sequence, the ack as a one-byte difference when `sequence - ack` (mod
 * 65536) is at most 255 or else in full, then only the ack_bits bytes that
 * are not 0xFF.
 *
 * @param buffer Where to write.
 * @param offset Where the header starts in `buffer`.
 * @param sequence The packet's sequence, 0..65535.
 * @param ack The newest sequence received from the peer, 0..65535.
 * @param ackBits Bit n set: sequence `ack - n` was received; 0..2^32-1.
 * @returns Bytes written, 4..9.
 * @throws {RangeError} When a value is out of range or the header does not
 * fit in `buffer` at `offset`.
 * @throws {TypeError} When `buffer` is not a `Uint8Array`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { writePacketHeader } from "./reliable.ts";
 *
 * const buffer = new Uint8Array(9);
 * // Everything acked: a 4-byte header (prefix 0x20, sequence, difference 1).
 * assert.equal(writePacketHeader(buffer, 0, 100, 99, 0xffffffff), 4);
 * assert.deepEqual([...buffer.subarray(0, 4)], [0x20, 100, 0, 1]);
 * ```
 */
export function writePacketHeader(
  buffer: Uint8Array,
  offset: number,
  sequence: number,
  ack: number,
  ackBits: number,
): number {
  const what = "write packet header";
  if (!(buffer instanceof Uint8Array)) {
    throw new TypeError(`Cannot ${what}: the buffer is not a Uint8Array`);
  }
  checkSequence(sequence, what, "sequence");
  checkSequence(ack, what, "ack");
  if (
    typeof ackBits !== "number" || !Number.isInteger(ackBits) || ackBits < 0 ||
    ackBits > 0xffffffff
  ) {
    throw new RangeError(
      `Cannot ${what}: ack bits ${String(ackBits)} is not an integer 0..2^32-1`,
    );
  }
  if (
    typeof offset !== "number" || !Number.isInteger(offset) || offset < 0 ||
    offset + headerBytesFor(sequence, ack, ackBits) > buffer.length
  ) {
    throw new RangeError(
      `Cannot ${what}: it does not fit in a ${buffer.length} byte buffer at offset ${
        String(offset)
      }`,
    );
  }
  return encodeHeader(buffer, offset, sequence, ack, ackBits);
}

/** The canonical prefix byte of a header. */
function prefixFor(sequence: number, ack: number, ackBits: number): number {
  let prefix = ((sequence - ack) & 0xffff) <= 255 ? 0x20 : 0;
  if ((ackBits & 0xff) !== 0xff) prefix |= 0x02;
  if ((ackBits & 0xff00) !== 0xff00) prefix |= 0x04;
  if ((ackBits & 0xff0000) !== 0xff0000) prefix |= 0x08;
  if ((ackBits >>> 24) !== 0xff) prefix |= 0x10;
  return prefix;
}

/** Bytes of a header with this prefix byte: 3, the ack, the ack_bits bytes. */
function headerBytesOfPrefix(prefix: number): number {
  return (prefix & 0x20 ? 4 : 5) + ((prefix >> 1) & 1) + ((prefix >> 2) & 1) +
    ((prefix >> 3) & 1) + ((prefix >> 4) & 1);
}

function headerBytesFor(
  sequence: number,
  ack: number,
  ackBits: number,
): number {
  return headerBytesOfPrefix(prefixFor(sequence, ack, ackBits));
}

/** Writes the canonical header; the caller made sure it fits. */
function encodeHeader(
  buffer: Uint8Array,
  offset: number,
  sequence: number,
  ack: number,
  ackBits: number,
): number {
  const prefix = prefixFor(sequence, ack, ackBits);
  let p = offset;
  buffer[p++] = prefix;
  buffer[p++] = sequence & 0xff;
  buffer[p++] = sequence >>> 8;
  if (prefix & 0x20) {
    buffer[p++] = (sequence - ack) & 0xff;
  } else {
    buffer[p++] = ack & 0xff;
    buffer[p++] = ack >>> 8;
  }
  if (prefix & 0x02) buffer[p++] = ackBits & 0xff;
  if (prefix & 0x04) buffer[p++] = (ackBits >>> 8) & 0xff;
  if (prefix & 0x08) buffer[p++] = (ackBits >>> 16) & 0xff;
  if (prefix & 0x10) buffer[p++] = ackBits >>> 24;
  return p - offset;
}

/** The parser's output fields, on an endpoint or on a scratch record. */
interface HeaderFields {
  headerSequence: number;
  headerAck: number;
  headerAckBits: number;
}

/**
 * Parses a packet header at `data[offset..offset+length)` into `out`, as
 * leniently as the reference: prefix bits 6-7 and non-canonical forms are
 * accepted here.
 *
 * @returns Header bytes, or -1 when the bytes cannot be a header.
 */
function decodeHeader(
  data: Uint8Array,
  offset: number,
  length: number,
  out: HeaderFields,
): number {
  if (length < 3) return -1;
  const prefix = data[offset];
  if (prefix & 1) return -1;
  const sequence = data[offset + 1] | (data[offset + 2] << 8);
  let p = offset + 3;
  let ack: number;
  if (prefix & 0x20) {
    if (length < 4) return -1;
    ack = (sequence - data[p++]) & 0xffff;
  } else {
    if (length < 5) return -1;
    ack = data[p] | (data[p + 1] << 8);
    p += 2;
  }
  const present = ((prefix >> 1) & 1) + ((prefix >> 2) & 1) +
    ((prefix >> 3) & 1) + ((prefix >> 4) & 1);
  if (length < p - offset + present) return -1;
  let ackBits = 0xffffffff;
  if (prefix & 0x02) ackBits = (ackBits & 0xffffff00) | data[p++];
  if (prefix & 0x04) ackBits = (ackBits & 0xffff00ff) | (data[p++] << 8);
  if (prefix & 0x08) ackBits = (ackBits & 0xff00ffff) | (data[p++] << 16);
  if (prefix & 0x10) ackBits = (ackBits & 0x00ffffff) | (data[p++] << 24);
  out.headerSequence = sequence;
  out.headerAck = ack;
  out.headerAckBits = ackBits >>> 0;
  return p - offset;
}

/**
 * Reads a regular packet's header as the reference's receiver does: leniently
 * (prefix bits 6-7 and non-canonical encodings are accepted; only headers
 * inside fragment 0 must be canonical).
 *
 * @param packet The datagram, starting at its prefix byte.
 * @returns The header, or `undefined` when the bytes cannot be one (too
 * short, or prefix bit 0 set: a fragment).
 * @throws {TypeError} When `packet` is not a `Uint8Array`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readPacketHeader } from "./reliable.ts";
 *
 * // Sequence 0, ack 65535 (difference 1), ack_bits all clear.
 * const header = readPacketHeader(new Uint8Array([0x3e, 0, 0, 1, 0, 0, 0, 0, 42]));
 * assert.deepEqual(header, { sequence: 0, ack: 65535, ackBits: 0, headerBytes: 8 });
 * assert.equal(readPacketHeader(new Uint8Array([0x3e, 0, 0, 1, 0])), undefined);
 * ```
 */
export function readPacketHeader(packet: Uint8Array): PacketHeader | undefined {
  if (!(packet instanceof Uint8Array)) {
    throw new TypeError("Cannot read packet header: expected a Uint8Array");
  }
  const out = { headerSequence: 0, headerAck: 0, headerAckBits: 0 };
  const headerBytes = decodeHeader(packet, 0, packet.length, out);
  if (headerBytes < 0) return undefined;
  return {
    sequence: out.headerSequence,
    ack: out.headerAck,
    ackBits: out.headerAckBits,
    headerBytes,
  };
}

/**
 * A decoded fragment header.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type FragmentHeader, readFragmentHeader } from "./reliable.ts";
 *
 * const fragment = new Uint8Array([1, 7, 0, 1, 1, 9, 9, 9]);
 * const header: FragmentHeader | undefined = readFragmentHeader(fragment);
 * assert.equal(header?.fragmentId, 1);
 * assert.equal(header?.numFragments, 2);
 * assert.equal(header?.fragmentBytes, 3);
 * ```
 */
export interface FragmentHeader {
  /** The sequence of the whole packet. */
  sequence: number;
  /** This fragment's index, 0..numFragments-1. */
  fragmentId: number;
  /** Fragments of the packet, 1..256. */
  numFragments: number;
  /** Payload bytes this fragment carries (after fragment 0's packet header). */
  fragmentBytes: number;
  /** Fragment 0: the ack of its packet header; 0 for other fragments. */
  ack: number;
  /** Fragment 0: the ack_bits of its packet header; 0 for other fragments. */
  ackBits: number;
  /** Bytes of the fragment header: {@linkcode FRAGMENT_HEADER_BYTES}. */
  headerBytes: number;
}

/** Scratch of {@linkcode decodeFragment}: the fields it fills. */
interface FragmentFields extends HeaderFields {
  fragmentSequence: number;
  fragmentId: number;
  fragmentCount: number;
  fragmentBytes: number;
  fragmentAck: number;
  fragmentAckBits: number;
}

/**
 * Parses and checks a fragment header into `out`, with the reference's
 * rules: prefix exactly 1, count within `maxFragments`, id below the count,
 * fragment 0's packet header canonical and of the same sequence, at most
 * `fragmentSize` bytes of data and exactly that many unless last.
 *
 * @returns {@linkcode FRAGMENT_HEADER_BYTES}, or -1 when invalid.
 */
function decodeFragment(
  data: Uint8Array,
  offset: number,
  length: number,
  maxFragments: number,
  fragmentSize: number,
  out: FragmentFields,
): number {
  if (length < FRAGMENT_HEADER_BYTES || data[offset] !== 1) return -1;
  const sequence = data[offset + 1] | (data[offset + 2] << 8);
  const id = data[offset + 3];
  const count = data[offset + 4] + 1;
  if (count > maxFragments || id >= count) return -1;
  let bytes = length - FRAGMENT_HEADER_BYTES;
  let ack = 0;
  let ackBits = 0;
  if (id === 0) {
    const start = offset + FRAGMENT_HEADER_BYTES;
    const headerBytes = decodeHeader(data, start, bytes, out);
    if (headerBytes < 0 || out.headerSequence !== sequence) return -1;
    ack = out.headerAck;
    ackBits = out.headerAckBits;
    // The header is rebuilt canonically in front of the reassembled payload,
    // so only the canonical form is accepted here. The fields were parsed
    // from these bytes, so the canonical prefix byte implies the same layout
    // and therefore the same bytes.
    if (data[start] !== prefixFor(sequence, ack, ackBits)) return -1;
    bytes -= headerBytes;
  }
  if (bytes > fragmentSize) return -1;
  if (id !== count - 1 && bytes !== fragmentSize) return -1;
  out.fragmentSequence = sequence;
  out.fragmentId = id;
  out.fragmentCount = count;
  out.fragmentBytes = bytes;
  out.fragmentAck = ack;
  out.fragmentAckBits = ackBits;
  return FRAGMENT_HEADER_BYTES;
}

/**
 * Reads and checks a fragment header as the reference's receiver does: the
 * prefix byte is exactly 1, the fragment count is at most `maxFragments`, the
 * id is below the count, fragment 0 carries a canonical packet header of the
 * same sequence, and the data is at most `fragmentSize` bytes (exactly that
 * many unless it is the last fragment).
 *
 * @param datagram The datagram, starting at its prefix byte.
 * @param maxFragments The receiver's limit, 1..256.
 * @param fragmentSize The receiver's fragment size.
 * @returns The header, or `undefined` when the receiver would drop the
 * fragment as invalid.
 * @throws {TypeError} When `datagram` is not a `Uint8Array`.
 * @throws {RangeError} When `maxFragments` or `fragmentSize` is out of range.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readFragmentHeader } from "./reliable.ts";
 *
 * // Fragment 0 of 1 of packet 2: fragment header, packet header, 3 bytes.
 * const fragment = new Uint8Array([1, 2, 0, 0, 0, 0x20, 2, 0, 3, 7, 7, 7]);
 * const header = readFragmentHeader(fragment, 16, 1024);
 * assert.equal(header?.ack, 65535);
 * assert.equal(header?.fragmentBytes, 3);
 * assert.equal(readFragmentHeader(fragment.subarray(0, 7)), undefined);
 * ```
 */
export function readFragmentHeader(
  datagram: Uint8Array,
  maxFragments: number = DEFAULT_RELIABLE_CONFIG.maxFragments,
  fragmentSize: number = DEFAULT_RELIABLE_CONFIG.fragmentSize,
): FragmentHeader | undefined {
  const what = "read fragment header";
  if (!(datagram instanceof Uint8Array)) {
    throw new TypeError(`Cannot ${what}: expected a Uint8Array`);
  }
  checkInteger(maxFragments, what, "maxFragments", 1, 256);
  checkInteger(fragmentSize, what, "fragmentSize", 1, MAX_SIZE_OPTION);
  const out: FragmentFields = {
    headerSequence: 0,
    headerAck: 0,
    headerAckBits: 0,
    fragmentSequence: 0,
    fragmentId: 0,
    fragmentCount: 0,
    fragmentBytes: 0,
    fragmentAck: 0,
    fragmentAckBits: 0,
  };
  const headerBytes = decodeFragment(
    datagram,
    0,
    datagram.length,
    maxFragments,
    fragmentSize,
    out,
  );
  if (headerBytes < 0) return undefined;
  return {
    sequence: out.fragmentSequence,
    fragmentId: out.fragmentId,
    numFragments: out.fragmentCount,
    fragmentBytes: out.fragmentBytes,
    ack: out.fragmentAck,
    ackBits: out.fragmentAckBits,
    headerBytes,
  };
}

// ---------------------------------------------------------------------------
// Endpoint

function checkInteger(
  value: unknown,
  what: string,
  name: string,
  min: number,
  max: number,
): number {
  if (
    typeof value !== "number" || !Number.isInteger(value) || value < min ||
    value > max
  ) {
    throw new RangeError(
      `Cannot ${what}: ${name} ${String(value)} is not an integer ${min}..${
        max === MAX_SIZE_OPTION ? "2^30-1" : max
      }`,
    );
  }
  return value;
}

function checkPowerOfTwo(value: unknown, what: string, name: string): number {
  checkInteger(value, what, name, 1, MAX_SEQUENCE_BUFFER_SIZE);
  const size = value as number;
  if ((size & (size - 1)) !== 0) {
    throw new RangeError(
      `Cannot ${what}: ${name} ${size} is not a power of two (1..${MAX_SEQUENCE_BUFFER_SIZE})`,
    );
  }
  return size;
}

function checkFactor(value: unknown, what: string, name: string): number {
  if (typeof value !== "number" || !(value >= 0 && value <= 1)) {
    throw new RangeError(
      `Cannot ${what}: ${name} ${String(value)} is not a number 0..1`,
    );
  }
  return Math.fround(value);
}

function resolveConfig(config: ReliableConfig): ResolvedReliableConfig {
  const what = "create reliable endpoint";
  if (typeof config !== "object" || config === null) {
    throw new TypeError(`Cannot ${what}: config is not an object`);
  }
  for (const key of Object.keys(config)) {
    if (!Object.hasOwn(DEFAULT_RELIABLE_CONFIG, key)) {
      throw new TypeError(`Cannot ${what}: unknown config option ${key}`);
    }
  }
  const d = DEFAULT_RELIABLE_CONFIG;
  const size = (name: keyof ReliableConfig, min = 1): number =>
    checkInteger(config[name] ?? d[name], what, name, min, MAX_SIZE_OPTION);
  return Object.freeze({
    maxPacketSize: size("maxPacketSize"),
    fragmentAbove: size("fragmentAbove"),
    maxFragments: checkInteger(
      config.maxFragments ?? d.maxFragments,
      what,
      "maxFragments",
      1,
      256,
    ),
    fragmentSize: size("fragmentSize"),
    ackBufferSize: size("ackBufferSize"),
    sentPacketsBufferSize: checkPowerOfTwo(
      config.sentPacketsBufferSize ?? d.sentPacketsBufferSize,
      what,
      "sentPacketsBufferSize",
    ),
    receivedPacketsBufferSize: checkPowerOfTwo(
      config.receivedPacketsBufferSize ?? d.receivedPacketsBufferSize,
      what,
      "receivedPacketsBufferSize",
    ),
    fragmentReassemblyBufferSize: checkPowerOfTwo(
      config.fragmentReassemblyBufferSize ?? d.fragmentReassemblyBufferSize,
      what,
      "fragmentReassemblyBufferSize",
    ),
    rttSmoothingFactor: checkFactor(
      config.rttSmoothingFactor ?? d.rttSmoothingFactor,
      what,
      "rttSmoothingFactor",
    ),
    rttHistorySize: size("rttHistorySize"),
    packetLossSmoothingFactor: checkFactor(
      config.packetLossSmoothingFactor ?? d.packetLossSmoothingFactor,
      what,
      "packetLossSmoothingFactor",
    ),
    bandwidthSmoothingFactor: checkFactor(
      config.bandwidthSmoothingFactor ?? d.bandwidthSmoothingFactor,
      what,
      "bandwidthSmoothingFactor",
    ),
    packetHeaderSize: size("packetHeaderSize", 0),
  });
}

function checkTime(time: unknown, what: string): number {
  if (typeof time !== "number" || Number.isNaN(time)) {
    throw new TypeError(`Cannot ${what}: time ${String(time)} is not a number`);
  }
  if (!Number.isFinite(time)) {
    throw new RangeError(`Cannot ${what}: time ${time} is not finite`);
  }
  return time;
}

/**
 * Creates an endpoint: one side of one connection. Everything it will hold
 * is sized here from `config`, except the reassembly buffers, which are made
 * when first needed and never grow past `fragmentReassemblyBufferSize`
 * entries of `9 + min(maxFragments * fragmentSize, maxPacketSize)` bytes.
 *
 * @param config Options; `{}` for the reference's defaults.
 * @param time The current time in seconds (any monotonic clock).
 * @param callbacks Where datagrams go out and packets come in.
 * @returns The endpoint, at sequence 0 with nothing received.
 * @throws {TypeError} When `config` or `callbacks` is not an object, a
 * callback is not a function, an option is unknown, or `time` is not a
 * number.
 * @throws {RangeError} When an option is out of range (a sequence buffer
 * size that is not a power of two, `maxFragments` over 256, ...) or `time` is
 * not finite.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createReliableEndpoint, nextPacketSequence } from "./reliable.ts";
 *
 * const endpoint = createReliableEndpoint({ fragmentSize: 512, maxFragments: 32 }, 0, {
 *   transmit(sequence, datagram) {
 *     console.log("send", sequence, datagram.length);
 *   },
 *   process(sequence, payload) {
 *     console.log("received", sequence, payload.length);
 *     return true;
 *   },
 * });
 * assert.equal(nextPacketSequence(endpoint), 0);
 * assert.throws(
 *   () => createReliableEndpoint({ sentPacketsBufferSize: 100 }, 0, { transmit() {}, process: () => true }),
 *   RangeError,
 * );
 * ```
 */
export function createReliableEndpoint(
  config: ReliableConfig,
  time: number,
  callbacks: ReliableCallbacks,
): ReliableEndpoint {
  const what = "create reliable endpoint";
  const resolved = resolveConfig(config);
  checkTime(time, what);
  if (typeof callbacks !== "object" || callbacks === null) {
    throw new TypeError(`Cannot ${what}: callbacks is not an object`);
  }
  for (const name of ["transmit", "process"] as const) {
    if (typeof callbacks[name] !== "function") {
      throw new TypeError(`Cannot ${what}: ${name} must be a function`);
    }
  }
  const sentSize = resolved.sentPacketsBufferSize;
  const receivedSize = resolved.receivedPacketsBufferSize;
  const reassemblySize = resolved.fragmentReassemblyBufferSize;
  const rttHistory = new Float32Array(resolved.rttHistorySize);
  rttHistory.fill(-1);
  const state: EndpointState = {
    [ENDPOINT]: true,
    config: resolved,
    counters: {
      packetsSent: 0,
      packetsReceived: 0,
      packetsAcked: 0,
      packetsStale: 0,
      packetsInvalid: 0,
      packetsTooLargeToSend: 0,
      packetsTooLargeToReceive: 0,
      fragmentsSent: 0,
      fragmentsReceived: 0,
      fragmentsInvalid: 0,
      packetsDuplicate: 0,
    },
    // The history's statistics are computed when first read after an
    // update that saw new samples, from the history as that update saw it:
    // the values are the reference's, at a fraction of the cost per tick.
    stats: {
      rtt: 0,
      get rttMin() {
        return rttStatsOf(state).rttMin;
      },
      get rttMax() {
        return rttStatsOf(state).rttMax;
      },
      get rttAvg() {
        return rttStatsOf(state).rttAvg;
      },
      get jitterAvgVsMinRtt() {
        return rttStatsOf(state).jitterAvgVsMinRtt;
      },
      get jitterMaxVsMinRtt() {
        return rttStatsOf(state).jitterMaxVsMinRtt;
      },
      get jitterStddevVsAvgRtt() {
        return rttStatsOf(state).jitterStddevVsAvgRtt;
      },
      packetLoss: 0,
      sentBandwidthKbps: 0,
      receivedBandwidthKbps: 0,
      ackedBandwidthKbps: 0,
    },
    callbacks,
    time,
    sequence: 0,
    inTransmit: false,
    inProcess: false,
    acks: new Uint16Array(resolved.ackBufferSize),
    numAcks: 0,
    sent: createSequenceBuffer(sentSize),
    sentTime: new Float64Array(sentSize),
    sentBytes: new Float64Array(sentSize),
    sentAcked: new Uint8Array(sentSize),
    received: createSequenceBuffer(receivedSize),
    receivedTime: new Float64Array(receivedSize),
    receivedBytes: new Float64Array(receivedSize),
    reassembly: createSequenceBuffer(reassemblySize),
    reassemblyFragments: new Uint16Array(reassemblySize),
    reassemblyReceived: new Uint16Array(reassemblySize),
    reassemblyPayloadBytes: new Float64Array(reassemblySize),
    reassemblyHeaderBytes: new Uint8Array(reassemblySize),
    reassemblyFlags: new Uint8Array(reassemblySize * resolved.maxFragments),
    reassemblyData: new Array(reassemblySize).fill(undefined),
    rttHistory,
    rttSnapshot: new Float32Array(resolved.rttHistorySize).fill(-1),
    rttHistoryChanged: false,
    rttStatsStale: false,
    rttStats: {
      rttMin: 0,
      rttMax: 0,
      rttAvg: 0,
      jitterAvgVsMinRtt: 0,
      jitterMaxVsMinRtt: 0,
      jitterStddevVsAvgRtt: 0,
    },
    transmitBuffer: new Uint8Array(
      Math.max(
        resolved.maxPacketSize + MAX_PACKET_HEADER_BYTES,
        FRAGMENT_HEADER_BYTES + MAX_PACKET_HEADER_BYTES + resolved.fragmentSize,
      ),
    ),
    headerSequence: 0,
    headerAck: 0,
    headerAckBits: 0,
    fragmentSequence: 0,
    fragmentId: 0,
    fragmentCount: 0,
    fragmentBytes: 0,
    fragmentAck: 0,
    fragmentAckBits: 0,
  };
  return state;
}

function stateOf(endpoint: ReliableEndpoint, what: string): EndpointState {
  if (
    typeof endpoint !== "object" || endpoint === null ||
    (endpoint as EndpointState)[ENDPOINT] !== true
  ) {
    throw new TypeError(
      `Cannot ${what}: not an endpoint made by createReliableEndpoint`,
    );
  }
  return endpoint as EndpointState;
}

/**
 * The sequence the next packet sent will have. Remember it with what you
 * send, to know what an ack from {@linkcode getAcks} refers to.
 *
 * @param endpoint The endpoint.
 * @returns A sequence, 0..65535 (it wraps).
 * @throws {TypeError} When `endpoint` is not an endpoint.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createReliableEndpoint, nextPacketSequence, sendPacket } from "./reliable.ts";
 *
 * const endpoint = createReliableEndpoint({}, 0, { transmit() {}, process: () => true });
 * sendPacket(endpoint, new Uint8Array(1));
 * assert.equal(nextPacketSequence(endpoint), 1);
 * ```
 */
export function nextPacketSequence(endpoint: ReliableEndpoint): number {
  return stateOf(endpoint, "read next packet sequence").sequence;
}

/** The received window's (ack, ack_bits), as the next header carries them. */
function receivedAckBits(received: SequenceBuffer): number {
  const ack = (received.sequence - 1) & 0xffff;
  let ackBits = 0;
  for (let i = 0; i < 32; i++) {
    if (holdsSequence(received, (ack - i) & 0xffff)) ackBits |= 1 << i;
  }
  return ackBits >>> 0;
}

function tooLargeToSend(state: EndpointState, message: string): never {
  state.counters.packetsTooLargeToSend++;
  throw new RangeError(`Cannot send packet: ${message}`);
}

/**
 * Sends one packet: as one datagram when it is at most `fragmentAbove` bytes,
 * otherwise as fragments of `fragmentSize` bytes (the last one carries the
 * rest), each handed to `transmit` before this returns. The header carries the
 * acks of everything received recently.
 *
 * A payload over `maxPacketSize`, or one that would need more than
 * `maxFragments` fragments, is not sent: it counts in
 * `counters.packetsTooLargeToSend` as in the reference, takes no sequence,
 * and throws. (The reference only asserts on the fragment limit; here both
 * are the same clear outcome.) An empty payload is sent as a header alone.
 *
 * @param endpoint The endpoint.
 * @param payload The packet; copied before this returns.
 * @returns The packet's sequence.
 * @throws {TypeError} When `payload` is not a `Uint8Array`.
 * @throws {RangeError} When the payload is too large, as above.
 * @throws {Error} When called from inside this endpoint's `transmit`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createReliableEndpoint, sendPacket } from "./reliable.ts";
 *
 * const datagrams: number[] = [];
 * const endpoint = createReliableEndpoint({}, 0, {
 *   transmit: (_sequence, datagram) => datagrams.push(datagram.length),
 *   process: () => true,
 * });
 * assert.equal(sendPacket(endpoint, new Uint8Array(100)), 0);
 * assert.equal(sendPacket(endpoint, new Uint8Array(2500)), 1);
 * assert.deepEqual(datagrams, [108, 1037, 1029, 457]); // 1 + 3 fragments
 * assert.throws(
 *   () => sendPacket(endpoint, new Uint8Array(20000)),
 *   { name: "RangeError", message: "Cannot send packet: 20000 bytes exceeds the 16384 byte limit" },
 * );
 * assert.equal(endpoint.counters.packetsTooLargeToSend, 1);
 * ```
 */
export function sendPacket(
  endpoint: ReliableEndpoint,
  payload: Uint8Array,
): number {
  const state = stateOf(endpoint, "send packet");
  if (!(payload instanceof Uint8Array)) {
    throw new TypeError("Cannot send packet: expected a Uint8Array");
  }
  if (state.inTransmit) {
    throw new Error(
      "Cannot send packet: called from inside this endpoint's transmit callback",
    );
  }
  const config = state.config;
  const bytes = payload.length;
  if (bytes > config.maxPacketSize) {
    tooLargeToSend(
      state,
      `${bytes} bytes exceeds the ${config.maxPacketSize} byte limit`,
    );
  }
  const fragmentSize = config.fragmentSize;
  const fragments = bytes > config.fragmentAbove
    ? Math.ceil(bytes / fragmentSize)
    : 0;
  if (fragments > config.maxFragments) {
    tooLargeToSend(
      state,
      `${bytes} bytes needs ${fragments} fragments of ${fragmentSize} bytes, over the limit of ${config.maxFragments}`,
    );
  }

  const sequence = state.sequence;
  state.sequence = (sequence + 1) & 0xffff;
  const received = state.received;
  const ack = (received.sequence - 1) & 0xffff;
  const ackBits = receivedAckBits(received);

  // Never stale: the sent window is at this sequence (sizes are <= 16384).
  const entry = insertSequence(state.sent, sequence);
  state.sentTime[entry] = state.time;
  state.sentBytes[entry] = config.packetHeaderSize + bytes;
  state.sentAcked[entry] = 0;

  const buffer = state.transmitBuffer;
  const callbacks = state.callbacks;
  state.inTransmit = true;
  try {
    if (fragments === 0) {
      const headerBytes = encodeHeader(buffer, 0, sequence, ack, ackBits);
      buffer.set(payload, headerBytes);
      callbacks.transmit(sequence, buffer.subarray(0, headerBytes + bytes));
    } else {
      buffer[0] = 1;
      buffer[1] = sequence & 0xff;
      buffer[2] = sequence >>> 8;
      buffer[4] = fragments - 1;
      for (let id = 0, from = 0; id < fragments; id++) {
        buffer[3] = id;
        let p = FRAGMENT_HEADER_BYTES;
        if (id === 0) p += encodeHeader(buffer, p, sequence, ack, ackBits);
        const to = Math.min(from + fragmentSize, bytes);
        buffer.set(payload.subarray(from, to), p);
        p += to - from;
        from = to;
        callbacks.transmit(sequence, buffer.subarray(0, p));
        state.counters.fragmentsSent++;
      }
    }
  } finally {
    state.inTransmit = false;
  }
  state.counters.packetsSent++;
  return sequence;
}

/**
 * Takes one datagram from the peer. A regular packet that is new and inside
 * the received window goes to `process`; a fragment is stored, and the
 * packet goes to `process` when its last fragment arrives. When `process`
 * accepts a packet, its sequence joins the acks the next header sends, and
 * the acks its own header carries are applied: newly acked sequences are
 * added to {@linkcode getAcks} and the RTT is sampled.
 *
 * Datagrams that cannot be taken are dropped and counted, never thrown: see
 * {@linkcode ReliableCounters}. Duplicate fragments, and fragments of packets
 * already received, are dropped without a count, as in the reference. An
 * empty datagram counts as received and invalid.
 *
 * @param endpoint The endpoint.
 * @param datagram The bytes that arrived; not kept after this returns.
 * @throws {TypeError} When `datagram` is not a `Uint8Array`.
 * @throws {Error} When called from inside one of this endpoint's callbacks.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createReliableEndpoint, receivePacket, sendPacket } from "./reliable.ts";
 *
 * let datagram = new Uint8Array();
 * const a = createReliableEndpoint({}, 0, {
 *   transmit: (_sequence, bytes) => (datagram = bytes.slice()),
 *   process: () => true,
 * });
 * const got: number[] = [];
 * const b = createReliableEndpoint({}, 0, {
 *   transmit() {},
 *   process: (sequence) => (got.push(sequence), true),
 * });
 * sendPacket(a, new Uint8Array([1, 2, 3]));
 * receivePacket(b, datagram);
 * receivePacket(b, datagram); // a duplicate: dropped and counted
 * assert.deepEqual(got, [0]);
 * assert.equal(b.counters.packetsDuplicate, 1);
 * ```
 */
export function receivePacket(
  endpoint: ReliableEndpoint,
  datagram: Uint8Array,
): void {
  const state = stateOf(endpoint, "receive packet");
  if (!(datagram instanceof Uint8Array)) {
    throw new TypeError("Cannot receive packet: expected a Uint8Array");
  }
  if (state.inTransmit || state.inProcess) {
    throw new Error(
      "Cannot receive packet: called from inside this endpoint's callback",
    );
  }
  receiveDatagram(state, datagram, 0, datagram.length);
}

/** Receives `data[offset..offset+length)`: a datagram or a reassembled packet. */
function receiveDatagram(
  state: EndpointState,
  data: Uint8Array,
  offset: number,
  length: number,
): void {
  const maxPacketSize = state.config.maxPacketSize;
  if (
    length > maxPacketSize + MAX_PACKET_HEADER_BYTES + FRAGMENT_HEADER_BYTES
  ) {
    state.counters.packetsTooLargeToReceive++;
    return;
  }
  if (length > 0 && (data[offset] & 1) === 1) {
    receiveFragment(state, data, offset, length);
  } else {
    receiveRegular(state, data, offset, length);
  }
}

function receiveRegular(
  state: EndpointState,
  data: Uint8Array,
  offset: number,
  length: number,
): void {
  const counters = state.counters;
  counters.packetsReceived++;
  const headerBytes = decodeHeader(data, offset, length, state);
  if (headerBytes < 0) {
    counters.packetsInvalid++;
    return;
  }
  if (length - headerBytes > state.config.maxPacketSize) {
    counters.packetsTooLargeToReceive++;
    return;
  }
  const sequence = state.headerSequence;
  const ack = state.headerAck;
  const ackBits = state.headerAckBits;
  const received = state.received;
  if (isStaleSequence(received, sequence)) {
    counters.packetsStale++;
    return;
  }
  if (holdsSequence(received, sequence)) {
    counters.packetsDuplicate++;
    return;
  }
  let accepted: boolean;
  state.inProcess = true;
  try {
    accepted = state.callbacks.process(
      sequence,
      data.subarray(offset + headerBytes, offset + length),
    );
  } finally {
    state.inProcess = false;
  }
  if (!accepted) return;

  // Not stale (checked above; process cannot receive or reset).
  const entry = insertSequence(received, sequence);
  state.receivedTime[entry] = state.time;
  state.receivedBytes[entry] = state.config.packetHeaderSize + length;
  advanceSequenceBuffer(state.reassembly, sequence);
  applyAcks(state, ack, ackBits);
}

/** Acks the sent packets named by a received header, sampling the RTT. */
function applyAcks(state: EndpointState, ack: number, ackBits: number): void {
  const sent = state.sent;
  const stats = state.stats;
  const config = state.config;
  for (let i = 0; i < 32 && ackBits !== 0; i++, ackBits >>>= 1) {
    if ((ackBits & 1) === 0) continue;
    const sequence = (ack - i) & 0xffff;
    const entry = sequence & sent.mask;
    if (sent.entries[entry] !== sequence || state.sentAcked[entry] === 1) {
      continue;
    }
    // A full ack buffer leaves the packet unacked: a later header acks it.
    if (state.numAcks === config.ackBufferSize) continue;
    state.acks[state.numAcks++] = sequence;
    state.counters.packetsAcked++;
    state.sentAcked[entry] = 1;
    const rtt = Math.fround(
      Math.fround(state.time - state.sentTime[entry]) * 1000,
    );
    state.rttHistory[sequence % config.rttHistorySize] = rtt;
    state.rttHistoryChanged = true;
    const current = stats.rtt;
    if (
      (current === 0 && rtt > 0) ||
      Math.abs(Math.fround(current - rtt)) < 0.00001
    ) {
      stats.rtt = rtt;
    } else {
      stats.rtt = Math.fround(
        current +
          Math.fround(Math.fround(rtt - current) * config.rttSmoothingFactor),
      );
    }
  }
}

function receiveFragment(
  state: EndpointState,
  data: Uint8Array,
  offset: number,
  length: number,
): void {
  const config = state.config;
  const counters = state.counters;
  const fragmentSize = config.fragmentSize;
  if (
    decodeFragment(
      data,
      offset,
      length,
      config.maxFragments,
      fragmentSize,
      state,
    ) < 0
  ) {
    counters.fragmentsInvalid++;
    return;
  }
  const sequence = state.fragmentSequence;
  const id = state.fragmentId;
  const count = state.fragmentCount;
  if (holdsSequence(state.received, sequence)) return; // already received

  const reassembly = state.reassembly;
  let entry = sequence & reassembly.mask;
  if (reassembly.entries[entry] !== sequence) {
    entry = insertSequenceAdvancingFirst(reassembly, sequence);
    if (entry < 0) {
      counters.fragmentsInvalid++;
      return;
    }
    // The first fragment of a packet moves the received window (not marking
    // the packet received), as in the reference.
    advanceSequenceBuffer(state.received, sequence);
    state.reassemblyFragments[entry] = count;
    state.reassemblyReceived[entry] = 0;
    state.reassemblyPayloadBytes[entry] = 0;
    state.reassemblyHeaderBytes[entry] = 0;
    const flags = entry * config.maxFragments;
    state.reassemblyFlags.fill(0, flags, flags + count);
    const needed = MAX_PACKET_HEADER_BYTES +
      Math.min(count * fragmentSize, config.maxPacketSize);
    const buffer = state.reassemblyData[entry];
    if (buffer === undefined || buffer.length < needed) {
      state.reassemblyData[entry] = new Uint8Array(needed);
    }
  }
  if (count !== state.reassemblyFragments[entry]) {
    counters.fragmentsInvalid++;
    return;
  }
  const flag = entry * config.maxFragments + id;
  if (state.reassemblyFlags[flag] === 1) return; // duplicate fragment
  state.reassemblyFlags[flag] = 1;
  const received = ++state.reassemblyReceived[entry];

  const buffer = state.reassemblyData[entry]!;
  let from = offset + FRAGMENT_HEADER_BYTES;
  const bytes = state.fragmentBytes;
  if (id === 0) {
    // Rebuild the (canonical) header right in front of the payload.
    const headerBytes = headerBytesFor(
      sequence,
      state.fragmentAck,
      state.fragmentAckBits,
    );
    encodeHeader(
      buffer,
      MAX_PACKET_HEADER_BYTES - headerBytes,
      sequence,
      state.fragmentAck,
      state.fragmentAckBits,
    );
    state.reassemblyHeaderBytes[entry] = headerBytes;
    from += headerBytes;
  }
  if (id === count - 1) {
    state.reassemblyPayloadBytes[entry] = id * fragmentSize + bytes;
  }
  // Payload past maxPacketSize is never accepted, so it is not kept.
  const at = MAX_PACKET_HEADER_BYTES + id * fragmentSize;
  const keep = Math.min(bytes, buffer.length - at);
  if (keep > 0) buffer.set(data.subarray(from, from + keep), at);

  if (received === count) {
    const headerBytes = state.reassemblyHeaderBytes[entry];
    receiveDatagram(
      state,
      buffer,
      MAX_PACKET_HEADER_BYTES - headerBytes,
      headerBytes + state.reassemblyPayloadBytes[entry],
    );
    removeSequence(reassembly, sequence);
  }
  counters.fragmentsReceived++;
}

/**
 * The sequences of sent packets acked since the last {@linkcode clearAcks},
 * in the order the acks arrived (within one header: newest first).
 *
 * @param endpoint The endpoint.
 * @returns A view of the endpoint's ack buffer, valid until the next
 * receive, clear or reset: copy it to keep it.
 * @throws {TypeError} When `endpoint` is not an endpoint.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { clearAcks, createReliableEndpoint, getAcks, receivePacket, sendPacket } from "./reliable.ts";
 *
 * let last = new Uint8Array();
 * const callbacks = { transmit: (_s: number, d: Uint8Array) => (last = d.slice()), process: () => true };
 * const a = createReliableEndpoint({}, 0, callbacks);
 * const b = createReliableEndpoint({}, 0, callbacks);
 * sendPacket(a, new Uint8Array([1]));
 * receivePacket(b, last);
 * sendPacket(b, new Uint8Array([2])); // acks a's packet 0
 * receivePacket(a, last);
 * assert.deepEqual([...getAcks(a)], [0]);
 * clearAcks(a);
 * assert.equal(getAcks(a).length, 0);
 * ```
 */
export function getAcks(endpoint: ReliableEndpoint): Uint16Array {
  const state = stateOf(endpoint, "get acks");
  return state.acks.subarray(0, state.numAcks);
}

/**
 * Empties the acks {@linkcode getAcks} returns. Call it once a tick after
 * reading them: while the buffer is full, further acks wait.
 *
 * @param endpoint The endpoint.
 * @throws {TypeError} When `endpoint` is not an endpoint.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { clearAcks, createReliableEndpoint, getAcks } from "./reliable.ts";
 *
 * const endpoint = createReliableEndpoint({}, 0, { transmit() {}, process: () => true });
 * clearAcks(endpoint);
 * assert.equal(getAcks(endpoint).length, 0);
 * ```
 */
export function clearAcks(endpoint: ReliableEndpoint): void {
  stateOf(endpoint, "clear acks").numAcks = 0;
}

/**
 * Resets the endpoint for a new connection: sequence 0, no acks, counters
 * zero, nothing sent, received or under reassembly. As in the reference,
 * the estimates, the RTT history and the time are kept.
 *
 * @param endpoint The endpoint.
 * @throws {TypeError} When `endpoint` is not an endpoint.
 * @throws {Error} When called from inside one of this endpoint's callbacks.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createReliableEndpoint, nextPacketSequence, reset, sendPacket } from "./reliable.ts";
 *
 * const endpoint = createReliableEndpoint({}, 0, { transmit() {}, process: () => true });
 * sendPacket(endpoint, new Uint8Array(1));
 * reset(endpoint);
 * assert.equal(nextPacketSequence(endpoint), 0);
 * assert.equal(endpoint.counters.packetsSent, 0);
 * ```
 */
export function reset(endpoint: ReliableEndpoint): void {
  const state = stateOf(endpoint, "reset endpoint");
  if (state.inTransmit || state.inProcess) {
    throw new Error(
      "Cannot reset endpoint: called from inside this endpoint's callback",
    );
  }
  state.sequence = 0;
  state.numAcks = 0;
  state.acks.fill(0);
  const counters = state.counters;
  for (const name of RELIABLE_COUNTER_NAMES) counters[name] = 0;
  resetSequenceBuffer(state.sent);
  resetSequenceBuffer(state.received);
  resetSequenceBuffer(state.reassembly);
}

/**
 * Moves the endpoint's time to `time` and recomputes the estimates: min,
 * max and mean RTT and the jitter over the RTT history; packet loss over the
 * older half of the sent window; sent, received and acked bandwidth over the
 * same windows. Packets sent and received from now on are stamped with
 * `time`, and acks that arrive measure RTT against it. Call it once a tick,
 * before receiving.
 *
 * @param endpoint The endpoint.
 * @param time The current time in seconds, not before the endpoint's time.
 * @throws {TypeError} When `time` is not a number.
 * @throws {RangeError} When `time` is not finite or goes backwards.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createReliableEndpoint, receivePacket, sendPacket, update } from "./reliable.ts";
 *
 * let last = new Uint8Array();
 * const callbacks = { transmit: (_s: number, d: Uint8Array) => (last = d.slice()), process: () => true };
 * const a = createReliableEndpoint({}, 0, callbacks);
 * const b = createReliableEndpoint({}, 0, callbacks);
 * sendPacket(a, new Uint8Array(8));
 * receivePacket(b, last);
 * sendPacket(b, new Uint8Array(8));
 * update(a, 0.05); // 50 ms later the ack arrives
 * receivePacket(a, last);
 * update(a, 0.1);
 * assert.equal(a.stats.rtt, Math.fround(50));
 * assert.equal(a.stats.rttMin, Math.fround(50));
 * ```
 */
export function update(endpoint: ReliableEndpoint, time: number): void {
  const state = stateOf(endpoint, "update endpoint");
  checkTime(time, "update endpoint");
  if (time < state.time) {
    throw new RangeError(
      `Cannot update endpoint: time ${time} is before its time ${state.time}`,
    );
  }
  state.time = time;
  if (state.rttHistoryChanged) {
    state.rttSnapshot.set(state.rttHistory);
    state.rttHistoryChanged = false;
    state.rttStatsStale = true;
  }
  updatePacketLoss(state);
  const config = state.config;
  const factor = config.bandwidthSmoothingFactor;
  const stats = state.stats;
  stats.sentBandwidthKbps = smoothBandwidth(
    stats.sentBandwidthKbps,
    windowKbps(state.sent, state.sentTime, state.sentBytes, undefined),
    factor,
  );
  stats.receivedBandwidthKbps = smoothBandwidth(
    stats.receivedBandwidthKbps,
    windowKbps(
      state.received,
      state.receivedTime,
      state.receivedBytes,
      undefined,
    ),
    factor,
  );
  stats.ackedBandwidthKbps = smoothBandwidth(
    stats.ackedBandwidthKbps,
    windowKbps(state.sent, state.sentTime, state.sentBytes, state.sentAcked),
    factor,
  );
}

/** Min / max / mean RTT and the three jitter figures, in float32 steps. */
/** The history's statistics as of the last update, computed if stale. */
function rttStatsOf(state: EndpointState): RttStats {
  if (state.rttStatsStale) {
    computeRttStats(state.rttSnapshot, state.rttStats);
    state.rttStatsStale = false;
  }
  return state.rttStats;
}

function computeRttStats(history: Float32Array, stats: Mutable<RttStats>) {
  let min = 10000;
  let max = 0;
  let sum = 0;
  let count = 0;
  for (let i = 0; i < history.length; i++) {
    const rtt = history[i];
    if (rtt < 0) continue;
    if (rtt < min) min = rtt;
    if (rtt > max) max = rtt;
    sum = Math.fround(sum + rtt);
    count++;
  }
  if (min === 10000) min = 0;
  stats.rttMin = min;
  stats.rttMax = max;
  const avg = count > 0 ? Math.fround(sum / count) : 0;
  stats.rttAvg = avg;

  let jitterSum = 0;
  let jitterMax = 0;
  let squares = 0;
  for (let i = 0; i < history.length; i++) {
    const rtt = history[i];
    if (rtt < 0) continue;
    const aboveMin = Math.fround(rtt - min);
    jitterSum = Math.fround(jitterSum + aboveMin);
    if (aboveMin > jitterMax) jitterMax = aboveMin;
    const deviation = Math.fround(rtt - avg);
    squares = Math.fround(squares + Math.fround(deviation * deviation));
  }
  stats.jitterAvgVsMinRtt = count > 0 ? Math.fround(jitterSum / count) : 0;
  stats.jitterMaxVsMinRtt = jitterMax;
  stats.jitterStddevVsAvgRtt = count > 0
    ? Math.fround(Math.sqrt(Math.fround(squares / count)))
    : 0;
}

/** Share of unacked packets among the older half of the sent window. */
function updatePacketLoss(state: EndpointState): void {
  const sent = state.sent;
  const stats = state.stats;
  const base = sent.sequence - sent.size;
  const samples = sent.size >> 1;
  let numSent = 0;
  let numDropped = 0;
  for (let i = 0; i < samples; i++) {
    const sequence = (base + i) & 0xffff;
    const entry = sequence & sent.mask;
    if (sent.entries[entry] !== sequence) continue;
    numSent++;
    if (state.sentAcked[entry] === 0) numDropped++;
  }
  if (numSent === 0) {
    stats.packetLoss = 0;
    return;
  }
  const loss = Math.fround(Math.fround(numDropped / numSent) * 100);
  const current = stats.packetLoss;
  stats.packetLoss = Math.abs(Math.fround(current - loss)) > 0.00001
    ? Math.fround(
      current +
        Math.fround(
          Math.fround(loss - current) * state.config.packetLossSmoothingFactor,
        ),
    )
    : loss;
}

/**
 * Kilobits per second over the older half of a window (only acked entries
 * when `acked` is given), or NaN when the window spans no time.
 */
function windowKbps(
  buffer: SequenceBuffer,
  times: Float64Array,
  sizes: Float64Array,
  acked: Uint8Array | undefined,
): number {
  const base = buffer.sequence - buffer.size;
  const samples = buffer.size >> 1;
  let bytes = 0;
  let first = FLT_MAX;
  let last = 0;
  for (let i = 0; i < samples; i++) {
    const sequence = (base + i) & 0xffff;
    const entry = sequence & buffer.mask;
    if (buffer.entries[entry] !== sequence) continue;
    if (acked !== undefined && acked[entry] === 0) continue;
    bytes += sizes[entry];
    const time = times[entry];
    if (time < first) first = time;
    if (time > last) last = time;
  }
  if (first === FLT_MAX || !(last > first)) return NaN;
  return Math.fround(bytes / (last - first) * 8 / 1000);
}

/** One smoothing step; NaN (no sample) keeps the current value. */
function smoothBandwidth(
  current: number,
  sample: number,
  factor: number,
): number {
  if (Number.isNaN(sample)) return current;
  return Math.abs(Math.fround(current - sample)) > 0.00001
    ? Math.fround(current + Math.fround(Math.fround(sample - current) * factor))
    : sample;
}
