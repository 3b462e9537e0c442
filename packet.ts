/**
 * netcode 1.02 packets: the prefix byte, minimal sequence encoding, writing
 * and reading all seven packet types, and replay protection.
 *
 * Reading follows the order of the standard exactly and never throws on
 * hostile input: {@linkcode readPacket} returns either the packet or a
 * {@linkcode PacketDropReason} number, so a caller can count every drop.
 *
 * Sequences are taken as `number` (exact below 2^53, the case for every
 * per-connection sequence) or `bigint` (the server's global sequence, which
 * starts at 2^63); inside, they are handled as two 32-bit halves, so no
 * `bigint` is allocated on the per-packet path.
 *
 * @example Write and read a payload packet
 * ```ts
 * import assert from "node:assert/strict";
 * import { generateKey } from "./crypto.ts";
 * import {
 *   CONNECTION_PAYLOAD_PACKET,
 *   MAX_PACKET_BYTES,
 *   packetTypeMask,
 *   readPacket,
 *   writePayloadPacket,
 * } from "./packet.ts";
 *
 * const key = generateKey();
 * const protocolId = 0x1122334455667788n;
 * const datagram = new Uint8Array(MAX_PACKET_BYTES);
 * const bytes = writePayloadPacket(datagram, 0, key, protocolId, new Uint8Array([1, 2, 3]));
 * const packet = readPacket(datagram.subarray(0, bytes), {
 *   protocolId,
 *   readKey: key,
 *   allowedPackets: packetTypeMask(CONNECTION_PAYLOAD_PACKET),
 * });
 * assert.ok(typeof packet !== "number" && packet.type === CONNECTION_PAYLOAD_PACKET);
 * assert.deepEqual(packet.payload, new Uint8Array([1, 2, 3]));
 * ```
 *
 * @module
 */

import {
  aeadBackend,
  CHACHA_NONCE_BYTES,
  chachaDecrypt,
  chachaEncrypt,
  KEY_BYTES,
  MAC_BYTES,
  XCHACHA_NONCE_BYTES,
  xchachaDecrypt,
} from "./crypto.ts";
import {
  PACKET_ADDITIONAL_DATA_BYTES,
  VERSION_INFO,
  VERSION_INFO_BYTES,
} from "./_aead.ts";

// The packet's associated data begins with the version info, so the AEAD
// backends' packet fast path shares its definition with this module.
export { VERSION_INFO, VERSION_INFO_BYTES } from "./_aead.ts";
/** Bytes of the public connect token a client receives from the backend. */
export const CONNECT_TOKEN_BYTES = 2048;
/** Bytes of the encrypted private connect token (1008 + 16 MAC). */
export const CONNECT_TOKEN_PRIVATE_BYTES = 1024;
/** Bytes of the connect token's XChaCha20 nonce. */
export const CONNECT_TOKEN_NONCE_BYTES: number = XCHACHA_NONCE_BYTES;
/** Bytes of the encrypted challenge token (284 + 16 MAC). */
export const CHALLENGE_TOKEN_BYTES = 300;
/** Bytes of user data carried in a connect token. */
export const USER_DATA_BYTES = 256;
/** Largest payload a packet carries. */
export const MAX_PAYLOAD_BYTES = 1200;
/** Largest datagram netcode sends or accepts. */
export const MAX_PACKET_BYTES = 1300;
/** Exact size of a connection request packet. */
export const CONNECTION_REQUEST_PACKET_BYTES: number = 1 + VERSION_INFO_BYTES +
  8 + 8 +
  CONNECT_TOKEN_NONCE_BYTES + CONNECT_TOKEN_PRIVATE_BYTES;
/** Keep-alives, requests and responses are sent at this rate (Hz). */
export const PACKET_SEND_RATE = 10;
/** Redundant disconnect packets sent when a side disconnects on purpose. */
export const NUM_DISCONNECT_PACKETS = 10;
/** Payloads queued per connection before new ones are dropped unread. */
export const PACKET_QUEUE_SIZE = 256;
/** Sequences remembered by replay protection. */
export const REPLAY_PROTECTION_BUFFER_SIZE = 256;

/** Packet type 0: connection request (client to server, unencrypted header). */
export const CONNECTION_REQUEST_PACKET = 0;
/** Packet type 1: connection denied (server to client). */
export const CONNECTION_DENIED_PACKET = 1;
/** Packet type 2: connection challenge (server to client). */
export const CONNECTION_CHALLENGE_PACKET = 2;
/** Packet type 3: connection response (client to server). */
export const CONNECTION_RESPONSE_PACKET = 3;
/** Packet type 4: keep-alive (both ways). */
export const CONNECTION_KEEP_ALIVE_PACKET = 4;
/** Packet type 5: payload (both ways). */
export const CONNECTION_PAYLOAD_PACKET = 5;
/** Packet type 6: disconnect (both ways). */
export const CONNECTION_DISCONNECT_PACKET = 6;
/** Number of packet types; a type at or above it is invalid. */
export const CONNECTION_NUM_PACKETS = 7;

/** Names of the packet types, indexed by type, for logs and stats. */
export const PACKET_TYPE_NAMES: readonly string[] = [
  "connectionRequest",
  "connectionDenied",
  "connectionChallenge",
  "connectionResponse",
  "keepAlive",
  "payload",
  "disconnect",
];

/** Why {@linkcode readPacket} dropped a datagram. */
export const PacketDropReason = {
  /** Shorter than any packet of its kind can be. */
  TOO_SMALL: 0,
  /** Packet type 7..15, or type 0 with a sequence (prefix byte not 0). */
  INVALID_TYPE: 1,
  /** A valid type this side does not accept (in its current state). */
  TYPE_NOT_ALLOWED: 2,
  /** Datagram over 1300 bytes, or a connection request not exactly 1078. */
  BAD_LENGTH: 3,
  /** Version info is not `NETCODE 1.02\0`. */
  BAD_VERSION_INFO: 4,
  /** Protocol id is not ours. */
  BAD_PROTOCOL_ID: 5,
  /** Connect token expire timestamp is not after now. */
  TOKEN_EXPIRED: 6,
  /** Sequence byte count outside 1..8. */
  BAD_SEQUENCE_BYTES: 7,
  /** No key to decrypt with (no private key, or unknown address). */
  NO_KEY: 8,
  /** Replay protection says this sequence was already received or is too old. */
  REPLAYED: 9,
  /** Authentication failed: forged, corrupted, or the wrong key. */
  DECRYPT_FAILED: 10,
  /** Decrypted per-type data has the wrong size for its type. */
  BAD_SIZE: 11,
} as const;

/** A {@linkcode PacketDropReason} value. */
export type PacketDropReason =
  typeof PacketDropReason[keyof typeof PacketDropReason];

/** Names of the drop reasons, indexed by reason, for stats. */
export const PACKET_DROP_REASON_NAMES = [
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
  "badSize",
] as const;

/** Counters by packet type name, as kept in server and client stats. */
export type PacketTypeCounters = Record<
  | "connectionRequest"
  | "connectionDenied"
  | "connectionChallenge"
  | "connectionResponse"
  | "keepAlive"
  | "payload"
  | "disconnect",
  number
>;

/**
 * Zeroed counters, one per packet type.
 *
 * @returns A new counters object.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createPacketTypeCounters } from "./packet.ts";
 * assert.equal(createPacketTypeCounters().payload, 0);
 * ```
 */
export function createPacketTypeCounters(): PacketTypeCounters {
  return {
    connectionRequest: 0,
    connectionDenied: 0,
    connectionChallenge: 0,
    connectionResponse: 0,
    keepAlive: 0,
    payload: 0,
    disconnect: 0,
  };
}

/** A sequence number: a `number` below 2^53 or a `bigint` up to 2^64 - 1. */
export type Sequence = number | bigint;

/** Connection request: sent by a client with the private part of its token. */
export interface ConnectionRequestPacket {
  /** Always {@linkcode CONNECTION_REQUEST_PACKET}. */
  readonly type: 0;
  /** Protocol id of the game. */
  readonly protocolId: bigint;
  /** Unix seconds after which the token is no longer accepted. */
  readonly expireTimestamp: bigint;
  /** The 24-byte nonce the private token was encrypted with. */
  readonly nonce: Uint8Array;
  /** The encrypted private connect token as sent (1024 bytes). */
  readonly encryptedPrivateToken: Uint8Array;
  /**
   * When read: the decrypted private connect token, 1024 bytes of which the
   * last 16 (the MAC's place) are zero. Absent when writing.
   */
  readonly privateToken?: Uint8Array;
}

/** Connection denied: the server is full. */
export interface ConnectionDeniedPacket {
  /** Always {@linkcode CONNECTION_DENIED_PACKET}. */
  readonly type: 1;
}

/** Connection challenge (server) or response (client): a challenge token. */
export interface ConnectionChallengePacket {
  /** {@linkcode CONNECTION_CHALLENGE_PACKET} or {@linkcode CONNECTION_RESPONSE_PACKET}. */
  readonly type: 2 | 3;
  /** Sequence the challenge token was encrypted with. */
  readonly challengeTokenSequence: bigint;
  /** The 300-byte encrypted challenge token. */
  readonly challengeTokenData: Uint8Array;
}

/** Keep-alive: tells the client its slot and the server's capacity. */
export interface ConnectionKeepAlivePacket {
  /** Always {@linkcode CONNECTION_KEEP_ALIVE_PACKET}. */
  readonly type: 4;
  /** The client's slot on the server. */
  readonly clientIndex: number;
  /** The server's number of slots. */
  readonly maxClients: number;
}

/** Payload: 1 to 1200 bytes of game data. */
export interface ConnectionPayloadPacket {
  /** Always {@linkcode CONNECTION_PAYLOAD_PACKET}. */
  readonly type: 5;
  /** The game data. */
  readonly payload: Uint8Array;
}

/** Disconnect: the sender is leaving. */
export interface ConnectionDisconnectPacket {
  /** Always {@linkcode CONNECTION_DISCONNECT_PACKET}. */
  readonly type: 6;
}

/** Any packet other than the connection request: these are encrypted. */
export type EncryptedPacket =
  | ConnectionDeniedPacket
  | ConnectionChallengePacket
  | ConnectionKeepAlivePacket
  | ConnectionPayloadPacket
  | ConnectionDisconnectPacket;

/** Any netcode packet. */
export type Packet = ConnectionRequestPacket | EncryptedPacket;

/** A packet as read: encrypted packets carry the sequence they were sent with. */
export type ReadPacket =
  | ConnectionRequestPacket
  | (EncryptedPacket & { readonly sequence: Sequence });

/** What {@linkcode readPacket} needs to know about the reading side. */
export interface ReadPacketOptions {
  /** The game's protocol id; packets for another are dropped. */
  protocolId: bigint;
  /** Bit mask of the packet types accepted now (see {@linkcode packetTypeMask}). */
  allowedPackets: number;
  /** Key for encrypted packets: the peer's write key. @default {undefined} */
  readKey?: Uint8Array;
  /** Server's private key, for connection requests. @default {undefined} */
  privateKey?: Uint8Array;
  /**
   * Current unix time in seconds, for the request's expire timestamp.
   * @default {Date.now() / 1000}
   */
  currentTimestamp?: number;
  /** Replay protection for keep-alive, payload and disconnect. @default {undefined} */
  replayProtection?: ReplayProtection;
  /**
   * A buffer of at least 1200 bytes to decrypt payloads into, for callers
   * that process a payload before the next read and want no allocation per
   * packet. The returned `payload` is then a view of it, overwritten by the
   * next read that uses the same buffer. Without it, every payload is a copy
   * the caller owns.
   * @default {undefined}
   */
  payloadBuffer?: Uint8Array;
}

/**
 * The bit mask accepting the given packet types, for
 * {@linkcode ReadPacketOptions.allowedPackets}.
 *
 * @param types Packet types 0..6.
 * @returns A mask with bit `type` set for each.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CONNECTION_KEEP_ALIVE_PACKET, CONNECTION_PAYLOAD_PACKET, packetTypeMask } from "./packet.ts";
 * assert.equal(packetTypeMask(CONNECTION_KEEP_ALIVE_PACKET, CONNECTION_PAYLOAD_PACKET), 0b110000);
 * ```
 */
export function packetTypeMask(...types: number[]): number {
  let mask = 0;
  for (const type of types) mask |= 1 << type;
  return mask;
}

/**
 * The packet types a server accepts at all: request, response, keep-alive,
 * payload, disconnect. The server narrows it per source address.
 */
export const SERVER_ALLOWED_PACKETS: number = 0b1111001;
/**
 * The packet types a client accepts at all: denied, challenge, keep-alive,
 * payload, disconnect. The client narrows it per state.
 */
export const CLIENT_ALLOWED_PACKETS: number = 0b1110110;

/** Every packet type: a mask for tests and tools that read anything. */
export const ALL_PACKET_TYPES: number = (1 << CONNECTION_NUM_PACKETS) - 1;

// ---------------------------------------------------------------------------
// Sequences as two 32-bit halves.

const TWO_32 = 4294967296;

/** Throws a RangeError unless `sequence` is a number 0..2^53-1 or bigint 0..2^64-1. */
function checkSequence(sequence: Sequence): void {
  if (typeof sequence === "number") {
    if (!Number.isSafeInteger(sequence) || sequence < 0) {
      throw new RangeError(
        `Cannot use sequence ${sequence}: expected an integer 0..2^53-1 or a bigint`,
      );
    }
  } else if (
    typeof sequence !== "bigint" || sequence < 0n || sequence >> 64n
  ) {
    throw new RangeError(
      `Cannot use sequence ${sequence}: expected 0..2^64-1`,
    );
  }
}

// The halves of a sequence that passed checkSequence, as two numbers: two
// calls rather than a returned pair, so nothing is allocated per packet.

/** Low 32 bits of a checked sequence. */
function sequenceLow(sequence: Sequence): number {
  return typeof sequence === "number"
    ? sequence >>> 0
    : Number(sequence & 0xffffffffn);
}

/** High 32 bits of a checked sequence. */
function sequenceHigh(sequence: Sequence): number {
  return typeof sequence === "number"
    ? Math.floor(sequence / TWO_32)
    : Number(sequence >> 32n);
}

/** Sequence bytes on the wire for the halves: the fewest that hold them. */
function sequenceBytes(low: number, high: number): number {
  return high !== 0 ? 4 + bytesOf32(high) : bytesOf32(low);
}

function joinSequence(low: number, high: number): Sequence {
  return high < 0x200000
    ? high * TWO_32 + low
    : (BigInt(high) << 32n) | BigInt(low);
}

function bytesOf32(value: number): number {
  return value > 0xffffff ? 4 : value > 0xffff ? 3 : value > 0xff ? 2 : 1;
}

/**
 * How many bytes the sequence takes on the wire: the fewest that hold it,
 * 1..8 (sequence 0 takes one byte).
 *
 * @param sequence The sequence.
 * @returns 1..8.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { sequenceBytesRequired } from "./packet.ts";
 * assert.equal(sequenceBytesRequired(0), 1);
 * assert.equal(sequenceBytesRequired(256), 2);
 * assert.equal(sequenceBytesRequired(2n ** 63n), 8);
 * ```
 */
export function sequenceBytesRequired(sequence: Sequence): number {
  checkSequence(sequence);
  return sequenceBytes(sequenceLow(sequence), sequenceHigh(sequence));
}

// ---------------------------------------------------------------------------
// Scratch space shared by every call (the library is single-threaded).

const additionalData = new Uint8Array(PACKET_ADDITIONAL_DATA_BYTES);
const additionalDataView = new DataView(additionalData.buffer);
additionalData.set(VERSION_INFO, 0);
/** The protocol id in `additionalData`, also as 32-bit halves. */
let additionalDataProtocolId = 0n;
let protocolIdLow = 0;
let protocolIdHigh = 0;
const nonce = new Uint8Array(CHACHA_NONCE_BYTES);
const nonceView = new DataView(nonce.buffer);
const plain = new Uint8Array(MAX_PACKET_BYTES + CONNECT_TOKEN_PRIVATE_BYTES);
const plainView = new DataView(plain.buffer);
const tokenAdditionalData = new Uint8Array(VERSION_INFO_BYTES + 8 + 8);
const tokenAdditionalDataView = new DataView(tokenAdditionalData.buffer);
tokenAdditionalData.set(VERSION_INFO, 0);

function setProtocolId(protocolId: bigint): void {
  if (protocolId !== additionalDataProtocolId) {
    additionalDataView.setBigUint64(VERSION_INFO_BYTES, protocolId, true);
    additionalDataProtocolId = protocolId;
    protocolIdLow = additionalDataView.getUint32(VERSION_INFO_BYTES, true);
    protocolIdHigh = additionalDataView.getUint32(VERSION_INFO_BYTES + 4, true);
  }
}

/**
 * Encrypts a packet body. A backend with the packet fast path (the
 * WebAssembly one) gets the prefix, protocol id and sequence as numbers and
 * keeps nonce and associated data in its own memory; other backends get them
 * built here. The protocol id must have been set with `setProtocolId`.
 */
function sealBody(
  prefix: number,
  low: number,
  high: number,
  key: Uint8Array,
  source: Uint8Array,
  sourceOffset: number,
  length: number,
  out: Uint8Array,
  outOffset: number,
): void {
  const backend = aeadBackend();
  if (backend.sealPacket !== undefined) {
    backend.sealPacket(
      source,
      sourceOffset,
      length,
      prefix,
      protocolIdLow,
      protocolIdHigh,
      low,
      high,
      key,
      out,
      outOffset,
    );
    return;
  }
  additionalData[VERSION_INFO_BYTES + 8] = prefix;
  setNonce(low, high);
  chachaEncrypt(
    source,
    sourceOffset,
    length,
    additionalData,
    additionalData.length,
    nonce,
    key,
    out,
    outOffset,
  );
}

/** Decrypts a packet body; see `sealBody`. Returns whether it verified. */
function openBody(
  prefix: number,
  low: number,
  high: number,
  key: Uint8Array,
  source: Uint8Array,
  sourceOffset: number,
  length: number,
  out: Uint8Array,
): boolean {
  // The fast path takes valid arguments only; anything else goes the
  // checked way, which throws the usual error.
  const backend = aeadBackend();
  if (
    backend.openPacket !== undefined && key instanceof Uint8Array &&
    key.length === KEY_BYTES && source instanceof Uint8Array &&
    out instanceof Uint8Array
  ) {
    return backend.openPacket(
      source,
      sourceOffset,
      length,
      prefix,
      protocolIdLow,
      protocolIdHigh,
      low,
      high,
      key,
      out,
      0,
    );
  }
  additionalData[VERSION_INFO_BYTES + 8] = prefix;
  setNonce(low, high);
  return chachaDecrypt(
    source,
    sourceOffset,
    length,
    additionalData,
    additionalData.length,
    nonce,
    key,
    out,
    0,
  );
}

/** Writes the packet nonce: four zero bytes, then the sequence u64 LE. */
function setNonce(low: number, high: number): void {
  nonceView.setUint32(4, low, true);
  nonceView.setUint32(8, high, true);
}

/**
 * Writes the 12-byte AEAD nonce for a sequence: four zero bytes, then the
 * sequence as a u64 little-endian (the erratum most likely to break a new
 * implementation is building it the other way round).
 *
 * @param out 12-byte buffer to fill.
 * @param sequence The packet or challenge token sequence.
 * @returns `out`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { writeSequenceNonce } from "./packet.ts";
 * assert.deepEqual(
 *   writeSequenceNonce(new Uint8Array(12), 1),
 *   new Uint8Array([0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]),
 * );
 * ```
 */
export function writeSequenceNonce(
  out: Uint8Array,
  sequence: Sequence,
): Uint8Array {
  checkSequence(sequence);
  if (out.length < CHACHA_NONCE_BYTES) {
    throw new RangeError(
      `Cannot write nonce into ${out.length} bytes: ${CHACHA_NONCE_BYTES} needed`,
    );
  }
  let low = sequenceLow(sequence);
  let high = sequenceHigh(sequence);
  for (let i = 0; i < 4; i++) out[i] = 0;
  for (let i = 4; i < 8; i++, low >>>= 8) out[i] = low & 0xff;
  for (let i = 8; i < 12; i++, high >>>= 8) out[i] = high & 0xff;
  return out;
}

function checkProtocolId(protocolId: bigint): void {
  if (
    typeof protocolId !== "bigint" || protocolId < 0n ||
    protocolId > 0xffffffffffffffffn
  ) {
    throw new TypeError(
      `Cannot use protocol id ${
        String(protocolId)
      }: expected a bigint 0..2^64-1`,
    );
  }
}

function checkOut(out: Uint8Array, bytes: number): void {
  if (!(out instanceof Uint8Array)) {
    throw new TypeError("Cannot write packet: output is not a Uint8Array");
  }
  if (out.length < bytes) {
    throw new RangeError(
      `Cannot write packet: ${bytes} bytes do not fit in ${out.length}`,
    );
  }
}

// ---------------------------------------------------------------------------
// Writing.

/**
 * Writes a connection request packet (1078 bytes): type 0, version info,
 * protocol id, expire timestamp, token nonce, encrypted private token.
 *
 * @param out Buffer of at least 1078 bytes.
 * @param packet The request's fields.
 * @returns Bytes written (1078).
 * @throws {RangeError} When `out` or a field has the wrong size.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { writeConnectionRequestPacket } from "./packet.ts";
 * const out = new Uint8Array(1078);
 * const bytes = writeConnectionRequestPacket(out, {
 *   type: 0,
 *   protocolId: 1n,
 *   expireTimestamp: 2000000000n,
 *   nonce: new Uint8Array(24),
 *   encryptedPrivateToken: new Uint8Array(1024),
 * });
 * assert.equal(bytes, 1078);
 * assert.equal(out[0], 0); // the packet type
 * ```
 */
export function writeConnectionRequestPacket(
  out: Uint8Array,
  packet: ConnectionRequestPacket,
): number {
  checkOut(out, CONNECTION_REQUEST_PACKET_BYTES);
  checkProtocolId(packet.protocolId);
  if (packet.nonce.length !== CONNECT_TOKEN_NONCE_BYTES) {
    throw new RangeError(
      `Cannot write connection request: nonce is ${packet.nonce.length} bytes, expected ${CONNECT_TOKEN_NONCE_BYTES}`,
    );
  }
  if (packet.encryptedPrivateToken.length !== CONNECT_TOKEN_PRIVATE_BYTES) {
    throw new RangeError(
      `Cannot write connection request: private token is ${packet.encryptedPrivateToken.length} bytes, expected ${CONNECT_TOKEN_PRIVATE_BYTES}`,
    );
  }
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  out[0] = CONNECTION_REQUEST_PACKET;
  out.set(VERSION_INFO, 1);
  view.setBigUint64(1 + VERSION_INFO_BYTES, packet.protocolId, true);
  view.setBigUint64(1 + VERSION_INFO_BYTES + 8, packet.expireTimestamp, true);
  out.set(packet.nonce, 1 + VERSION_INFO_BYTES + 16);
  out.set(
    packet.encryptedPrivateToken,
    1 + VERSION_INFO_BYTES + 16 + CONNECT_TOKEN_NONCE_BYTES,
  );
  return CONNECTION_REQUEST_PACKET_BYTES;
}

/**
 * Writes prefix and sequence (given as its 32-bit halves); returns the
 * offset of the encrypted part.
 */
function writeHeader(
  out: Uint8Array,
  type: number,
  low: number,
  high: number,
): number {
  const bytes = sequenceBytes(low, high);
  out[0] = (bytes << 4) | type;
  for (let i = 1; i <= bytes; i++) {
    out[i] = low & 0xff;
    low = (low >>> 8) | ((high & 0xff) << 24);
    high >>>= 8;
  }
  return 1 + bytes;
}

function checkUint32(value: number, what: string): void {
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
    throw new RangeError(
      `Cannot write packet: ${what} ${value} is not an integer 0..2^32-1`,
    );
  }
}

function checkWriteKey(key: Uint8Array): void {
  if (!(key instanceof Uint8Array) || key.length !== 32) {
    throw new RangeError(
      `Cannot write packet: key is ${
        key instanceof Uint8Array ? key.length : typeof key
      } bytes, expected 32`,
    );
  }
}

/**
 * Writes the header of a packet of `type` with `sequence`, then encrypts
 * `length` bytes of `source` into `out` after it. Returns the bytes written.
 */
function sealPacket(
  out: Uint8Array,
  type: number,
  sequence: Sequence,
  source: Uint8Array,
  sourceOffset: number,
  length: number,
  key: Uint8Array,
  protocolId: bigint,
): number {
  checkSequence(sequence);
  const low = sequenceLow(sequence);
  const high = sequenceHigh(sequence);
  const bodyOffset = writeHeader(out, type, low, high);
  if (protocolId !== additionalDataProtocolId) checkProtocolId(protocolId);
  checkOut(out, bodyOffset + length + MAC_BYTES);
  setProtocolId(protocolId);
  sealBody(
    out[0],
    low,
    high,
    key,
    source,
    sourceOffset,
    length,
    out,
    bodyOffset,
  );
  return bodyOffset + length + MAC_BYTES;
}

/**
 * Writes an encrypted payload packet: the hot path for game data.
 *
 * @param out Buffer for the datagram (at most 1300 bytes are written).
 * @param sequence The sender's next packet sequence.
 * @param key The sender's write key.
 * @param protocolId The game's protocol id.
 * @param payload 1..1200 bytes of game data.
 * @returns Bytes written.
 * @throws {RangeError} When the payload is empty or over 1200 bytes, the key is not 32 bytes, or `out` is too small.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { generateKey } from "./crypto.ts";
 * import { writePayloadPacket } from "./packet.ts";
 * const out = new Uint8Array(1300);
 * const bytes = writePayloadPacket(out, 7, generateKey(), 1n, new Uint8Array(100));
 * assert.equal(bytes, 118);
 * ```
 */
export function writePayloadPacket(
  out: Uint8Array,
  sequence: Sequence,
  key: Uint8Array,
  protocolId: bigint,
  payload: Uint8Array,
): number {
  if (!(payload instanceof Uint8Array)) {
    throw new TypeError("Cannot send payload: expected a Uint8Array");
  }
  if (payload.length < 1 || payload.length > MAX_PAYLOAD_BYTES) {
    throw new RangeError(
      `Cannot send payload: ${payload.length} bytes is outside the 1..${MAX_PAYLOAD_BYTES} byte limit`,
    );
  }
  checkWriteKey(key);
  return sealPacket(
    out,
    CONNECTION_PAYLOAD_PACKET,
    sequence,
    payload,
    0,
    payload.length,
    key,
    protocolId,
  );
}

/**
 * Writes any encrypted packet (types 1..6).
 *
 * @param out Buffer for the datagram.
 * @param packet The packet to write.
 * @param sequence The sender's packet sequence for it.
 * @param key The sender's write key.
 * @param protocolId The game's protocol id.
 * @returns Bytes written.
 * @throws {RangeError} On a field of the wrong size, or `out` too small.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { generateKey } from "./crypto.ts";
 * import { writePacket } from "./packet.ts";
 * const out = new Uint8Array(1300);
 * const bytes = writePacket(out, { type: 4, clientIndex: 3, maxClients: 64 }, 1000, generateKey(), 1n);
 * assert.equal(bytes, 27);
 * ```
 */
export function writePacket(
  out: Uint8Array,
  packet: EncryptedPacket,
  sequence: Sequence,
  key: Uint8Array,
  protocolId: bigint,
): number {
  switch (packet.type) {
    case CONNECTION_PAYLOAD_PACKET:
      return writePayloadPacket(out, sequence, key, protocolId, packet.payload);
    case CONNECTION_DENIED_PACKET:
    case CONNECTION_DISCONNECT_PACKET: {
      checkWriteKey(key);
      return sealPacket(
        out,
        packet.type,
        sequence,
        plain,
        0,
        0,
        key,
        protocolId,
      );
    }
    case CONNECTION_KEEP_ALIVE_PACKET: {
      checkWriteKey(key);
      checkUint32(packet.clientIndex, "client index");
      checkUint32(packet.maxClients, "max clients");
      plainView.setUint32(0, packet.clientIndex, true);
      plainView.setUint32(4, packet.maxClients, true);
      return sealPacket(
        out,
        packet.type,
        sequence,
        plain,
        0,
        8,
        key,
        protocolId,
      );
    }
    case CONNECTION_CHALLENGE_PACKET:
    case CONNECTION_RESPONSE_PACKET: {
      checkWriteKey(key);
      if (packet.challengeTokenData.length !== CHALLENGE_TOKEN_BYTES) {
        throw new RangeError(
          `Cannot write packet: challenge token is ${packet.challengeTokenData.length} bytes, expected ${CHALLENGE_TOKEN_BYTES}`,
        );
      }
      const challengeSequence = packet.challengeTokenSequence;
      if (
        typeof challengeSequence !== "bigint" || challengeSequence < 0n ||
        challengeSequence > 0xffffffffffffffffn
      ) {
        throw new TypeError(
          `Cannot write packet: challenge token sequence ${
            String(challengeSequence)
          } is not a bigint 0..2^64-1`,
        );
      }
      plainView.setBigUint64(0, challengeSequence, true);
      plain.set(packet.challengeTokenData, 8);
      return sealPacket(
        out,
        packet.type,
        sequence,
        plain,
        0,
        8 + CHALLENGE_TOKEN_BYTES,
        key,
        protocolId,
      );
    }
    default:
      throw new TypeError(
        `Cannot write packet: type ${
          (packet as { type: unknown }).type
        } is not an encrypted packet type`,
      );
  }
}

// ---------------------------------------------------------------------------
// Replay protection.

/**
 * Replay protection state: the most recent sequence and a ring of the last
 * 256 received, held as 32-bit halves so the full 64-bit range is exact.
 */
export interface ReplayProtection {
  /** Low 32 bits of the most recent sequence received. */
  mostRecentLow: number;
  /** High 32 bits of the most recent sequence received. */
  mostRecentHigh: number;
  /**
   * The ring: slot `sequence % 256` is the four words at `4 * slot`: low
   * half, high half, 1 when the slot holds a sequence, and 0 (padding, so a
   * slot is 16 bytes and one cache line holds it: a server checks a
   * different client's ring for every packet).
   */
  readonly received: Uint32Array;
}

/**
 * Creates empty replay protection.
 *
 * @returns Replay protection that has received nothing.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createReplayProtection, replayAlreadyReceived } from "./packet.ts";
 * assert.equal(replayAlreadyReceived(createReplayProtection(), 5), false);
 * ```
 */
export function createReplayProtection(): ReplayProtection {
  return {
    mostRecentLow: 0,
    mostRecentHigh: 0,
    received: new Uint32Array(REPLAY_PROTECTION_BUFFER_SIZE * 4),
  };
}

/**
 * Forgets everything received, as at a new connection.
 *
 * @param replay The state to reset.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createReplayProtection, replayAdvance, replayAlreadyReceived, resetReplayProtection } from "./packet.ts";
 * const replay = createReplayProtection();
 * replayAdvance(replay, 5);
 * resetReplayProtection(replay);
 * assert.equal(replayAlreadyReceived(replay, 5), false);
 * ```
 */
export function resetReplayProtection(replay: ReplayProtection): void {
  replay.mostRecentLow = 0;
  replay.mostRecentHigh = 0;
  replay.received.fill(0);
}

function alreadyReceived(
  replay: ReplayProtection,
  low: number,
  high: number,
): boolean {
  // Too old: mostRecent >= 256 && sequence <= mostRecent - 256, written so
  // that nothing wraps.
  const recentHigh = replay.mostRecentHigh;
  const recentLow = replay.mostRecentLow;
  if (recentHigh > 0 || recentLow >= REPLAY_PROTECTION_BUFFER_SIZE) {
    let limitLow = recentLow - REPLAY_PROTECTION_BUFFER_SIZE;
    let limitHigh = recentHigh;
    if (limitLow < 0) {
      limitLow += TWO_32;
      limitHigh -= 1;
    }
    if (high < limitHigh || (high === limitHigh && low <= limitLow)) {
      return true;
    }
  }
  const slot = (low & (REPLAY_PROTECTION_BUFFER_SIZE - 1)) << 2;
  const received = replay.received;
  if (received[slot + 2] === 0) return false;
  const storedHigh = received[slot + 1];
  return storedHigh > high || (storedHigh === high && received[slot] >= low);
}

function advance(replay: ReplayProtection, low: number, high: number): void {
  if (
    high > replay.mostRecentHigh ||
    (high === replay.mostRecentHigh && low > replay.mostRecentLow)
  ) {
    replay.mostRecentHigh = high;
    replay.mostRecentLow = low;
  }
  const slot = (low & (REPLAY_PROTECTION_BUFFER_SIZE - 1)) << 2;
  const received = replay.received;
  received[slot] = low;
  received[slot + 1] = high;
  received[slot + 2] = 1;
}

/**
 * Whether a packet with this sequence must be dropped as a replay: it is 256
 * or more behind the most recent, or its slot already holds it (or newer).
 *
 * @param replay The connection's replay protection.
 * @param sequence The packet's sequence.
 * @returns `true` to drop.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createReplayProtection, replayAdvance, replayAlreadyReceived } from "./packet.ts";
 * const replay = createReplayProtection();
 * replayAdvance(replay, 1000);
 * assert.equal(replayAlreadyReceived(replay, 1000), true); // already received
 * assert.equal(replayAlreadyReceived(replay, 744), true); // 256 behind: too old
 * assert.equal(replayAlreadyReceived(replay, 745), false);
 * ```
 */
export function replayAlreadyReceived(
  replay: ReplayProtection,
  sequence: Sequence,
): boolean {
  checkSequence(sequence);
  return alreadyReceived(
    replay,
    sequenceLow(sequence),
    sequenceHigh(sequence),
  );
}

/**
 * Records a sequence as received (call only after the packet decrypted).
 *
 * @param replay The connection's replay protection.
 * @param sequence The packet's sequence.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createReplayProtection, replayAdvance, replayAlreadyReceived } from "./packet.ts";
 * const replay = createReplayProtection();
 * replayAdvance(replay, 2n ** 64n - 1n); // the largest sequence
 * assert.equal(replayAlreadyReceived(replay, 2n ** 64n - 1n), true);
 * ```
 */
export function replayAdvance(
  replay: ReplayProtection,
  sequence: Sequence,
): void {
  checkSequence(sequence);
  advance(replay, sequenceLow(sequence), sequenceHigh(sequence));
}

// ---------------------------------------------------------------------------
// Reading.

// The last view handed out of a payload buffer: payloads of one size in a
// row (the usual game traffic) reuse it instead of making a view a packet.
let lastPayloadBuffer: Uint8Array | undefined;
let lastPayloadView: Uint8Array = new Uint8Array(0);

function payloadBufferView(buffer: Uint8Array, length: number): Uint8Array {
  if (buffer !== lastPayloadBuffer || lastPayloadView.length !== length) {
    lastPayloadBuffer = buffer;
    lastPayloadView = buffer.subarray(0, length);
  }
  return lastPayloadView;
}

function readUint64(view: DataView, offset: number): bigint {
  return view.getBigUint64(offset, true);
}

function versionInfoMatches(data: Uint8Array, offset: number): boolean {
  for (let i = 0; i < VERSION_INFO_BYTES; i++) {
    if (data[offset + i] !== VERSION_INFO[i]) return false;
  }
  return true;
}

/**
 * The checks of a connection request that need no cryptography, in the
 * order {@linkcode readPacket} makes them: the prefix byte is 0, exactly
 * 1078 bytes, the version info, the protocol id, and an expire timestamp
 * after `currentTimestamp`. A server spends its per-update decryption budget
 * only on requests that pass.
 *
 * @param data The datagram.
 * @param protocolId The game's protocol id.
 * @param currentTimestamp Unix seconds now.
 * @returns -1 when every check passed, otherwise the
 * {@linkcode PacketDropReason} the request would be dropped for.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkConnectionRequest, PacketDropReason } from "./packet.ts";
 *
 * assert.equal(
 *   checkConnectionRequest(new Uint8Array([0]), 1n, 0),
 *   PacketDropReason.BAD_LENGTH,
 * );
 * ```
 */
export function checkConnectionRequest(
  data: Uint8Array,
  protocolId: bigint,
  currentTimestamp: number,
): PacketDropReason | -1 {
  if (data.length === 0 || data[0] !== CONNECTION_REQUEST_PACKET) {
    return PacketDropReason.INVALID_TYPE;
  }
  if (data.length !== CONNECTION_REQUEST_PACKET_BYTES) {
    return PacketDropReason.BAD_LENGTH;
  }
  if (!versionInfoMatches(data, 1)) return PacketDropReason.BAD_VERSION_INFO;
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  if (readUint64(view, 1 + VERSION_INFO_BYTES) !== protocolId) {
    return PacketDropReason.BAD_PROTOCOL_ID;
  }
  if (readUint64(view, 1 + VERSION_INFO_BYTES + 8) <= currentTimestamp) {
    return PacketDropReason.TOKEN_EXPIRED;
  }
  return -1;
}

function readConnectionRequest(
  data: Uint8Array,
  options: ReadPacketOptions,
): ConnectionRequestPacket | PacketDropReason {
  if (data.length !== CONNECTION_REQUEST_PACKET_BYTES) {
    return PacketDropReason.BAD_LENGTH;
  }
  const privateKey = options.privateKey;
  if (privateKey === undefined) return PacketDropReason.NO_KEY;
  const checked = checkConnectionRequest(
    data,
    options.protocolId,
    options.currentTimestamp ?? Date.now() / 1000,
  );
  if (checked >= 0) return checked as PacketDropReason;
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const protocolId = readUint64(view, 1 + VERSION_INFO_BYTES);
  const expireTimestamp = readUint64(view, 1 + VERSION_INFO_BYTES + 8);
  const nonceOffset = 1 + VERSION_INFO_BYTES + 16;
  const tokenOffset = nonceOffset + CONNECT_TOKEN_NONCE_BYTES;
  const tokenNonce = data.subarray(nonceOffset, tokenOffset);
  tokenAdditionalDataView.setBigUint64(VERSION_INFO_BYTES, protocolId, true);
  tokenAdditionalDataView.setBigUint64(
    VERSION_INFO_BYTES + 8,
    expireTimestamp,
    true,
  );
  const privateToken = new Uint8Array(CONNECT_TOKEN_PRIVATE_BYTES);
  if (
    !xchachaDecrypt(
      data,
      tokenOffset,
      CONNECT_TOKEN_PRIVATE_BYTES,
      tokenAdditionalData,
      tokenAdditionalData.length,
      tokenNonce,
      privateKey,
      privateToken,
      0,
    )
  ) {
    return PacketDropReason.DECRYPT_FAILED;
  }
  return {
    type: CONNECTION_REQUEST_PACKET,
    protocolId,
    expireTimestamp,
    nonce: tokenNonce,
    encryptedPrivateToken: data.subarray(tokenOffset),
    privateToken,
  };
}

/**
 * Reads one datagram, in the order of the standard: size, type, whether the
 * type is allowed, sequence byte count, size again, replay protection,
 * decryption, the decrypted size for the type; only then is the replay window
 * advanced. Hostile input never throws: it returns the reason it was dropped.
 *
 * Connection requests are checked for exact size, version info, protocol id
 * and expiry, and their private token is decrypted with
 * {@linkcode ReadPacketOptions.privateKey}.
 *
 * @param data The datagram.
 * @param options Protocol id, allowed types, keys and replay protection.
 * @returns The packet, or a {@linkcode PacketDropReason}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ALL_PACKET_TYPES, PacketDropReason, readPacket } from "./packet.ts";
 * const options = { protocolId: 1n, allowedPackets: ALL_PACKET_TYPES };
 * assert.equal(readPacket(new Uint8Array(0), options), PacketDropReason.TOO_SMALL);
 * // A first byte 0 is a connection request, which must be 1078 bytes.
 * assert.equal(readPacket(new Uint8Array(10), options), PacketDropReason.BAD_LENGTH);
 * ```
 */
export function readPacket(
  data: Uint8Array,
  options: ReadPacketOptions,
): ReadPacket | PacketDropReason {
  const length = data.length;
  if (length < 1) return PacketDropReason.TOO_SMALL;
  if (length > MAX_PACKET_BYTES) return PacketDropReason.BAD_LENGTH;
  const prefix = data[0];
  if (prefix === CONNECTION_REQUEST_PACKET) {
    if ((options.allowedPackets & 1) === 0) {
      return PacketDropReason.TYPE_NOT_ALLOWED;
    }
    return readConnectionRequest(data, options);
  }
  if (length < 1 + 1 + MAC_BYTES) return PacketDropReason.TOO_SMALL;
  const type = prefix & 0xf;
  // Only the prefix byte 0 is a connection request: type 0 with sequence
  // bytes is no packet at all (the reference drops it too).
  if (type === CONNECTION_REQUEST_PACKET || type >= CONNECTION_NUM_PACKETS) {
    return PacketDropReason.INVALID_TYPE;
  }
  if ((options.allowedPackets & (1 << type)) === 0) {
    return PacketDropReason.TYPE_NOT_ALLOWED;
  }
  const sequenceBytes = prefix >> 4;
  if (sequenceBytes < 1 || sequenceBytes > 8) {
    return PacketDropReason.BAD_SEQUENCE_BYTES;
  }
  if (length < 1 + sequenceBytes + MAC_BYTES) {
    return PacketDropReason.TOO_SMALL;
  }
  const key = options.readKey;
  if (key === undefined) return PacketDropReason.NO_KEY;
  let low = 0;
  let high = 0;
  for (let i = 0, end = sequenceBytes < 4 ? sequenceBytes : 4; i < end; i++) {
    low |= data[1 + i] << (8 * i);
  }
  for (let i = 4; i < sequenceBytes; i++) high |= data[1 + i] << (8 * (i - 4));
  low >>>= 0;
  high >>>= 0;
  const replay = options.replayProtection;
  const replayProtected = replay !== undefined &&
    type >= CONNECTION_KEEP_ALIVE_PACKET;
  if (replayProtected && alreadyReceived(replay, low, high)) {
    return PacketDropReason.REPLAYED;
  }
  setProtocolId(options.protocolId);
  const bodyOffset = 1 + sequenceBytes;
  const encryptedBytes = length - bodyOffset;
  const decryptedBytes = encryptedBytes - MAC_BYTES;
  const payloadBuffer = options.payloadBuffer;
  const intoPayloadBuffer = type === CONNECTION_PAYLOAD_PACKET &&
    payloadBuffer !== undefined && payloadBuffer.length >= decryptedBytes;
  if (
    !openBody(
      prefix,
      low,
      high,
      key,
      data,
      bodyOffset,
      encryptedBytes,
      intoPayloadBuffer ? payloadBuffer : plain,
    )
  ) {
    return PacketDropReason.DECRYPT_FAILED;
  }
  const sequence = joinSequence(low, high);
  let packet: ReadPacket;
  switch (type) {
    case CONNECTION_DENIED_PACKET:
    case CONNECTION_DISCONNECT_PACKET:
      if (decryptedBytes !== 0) return PacketDropReason.BAD_SIZE;
      packet = { type, sequence };
      break;
    case CONNECTION_CHALLENGE_PACKET:
    case CONNECTION_RESPONSE_PACKET:
      if (decryptedBytes !== 8 + CHALLENGE_TOKEN_BYTES) {
        return PacketDropReason.BAD_SIZE;
      }
      packet = {
        type,
        sequence,
        challengeTokenSequence: readUint64(plainView, 0),
        challengeTokenData: plain.slice(8, 8 + CHALLENGE_TOKEN_BYTES),
      };
      break;
    case CONNECTION_KEEP_ALIVE_PACKET:
      if (decryptedBytes !== 8) return PacketDropReason.BAD_SIZE;
      packet = {
        type,
        sequence,
        clientIndex: plainView.getUint32(0, true),
        maxClients: plainView.getUint32(4, true),
      };
      break;
    default: // CONNECTION_PAYLOAD_PACKET
      if (decryptedBytes < 1 || decryptedBytes > MAX_PAYLOAD_BYTES) {
        return PacketDropReason.BAD_SIZE;
      }
      // The one allocation per packet: a payload the caller owns outright
      // (its own ArrayBuffer), made only once the packet authenticated.
      packet = {
        type: CONNECTION_PAYLOAD_PACKET,
        sequence,
        payload: intoPayloadBuffer
          ? payloadBufferView(payloadBuffer, decryptedBytes)
          : plain.slice(0, decryptedBytes),
      };
  }
  if (replayProtected) advance(replay, low, high);
  return packet;
}
