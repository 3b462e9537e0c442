/**
 * Loading the netcode test vectors (`tests/vectors/netcode-1.02.json`, made
 * by the C reference's own encoders) and the byte helpers the tests share.
 *
 * @module
 */

import { fail } from "./_assert.ts";

/** The vectors file shipped with the tests. */
export const DEFAULT_VECTORS_URL: URL = new URL(
  "./vectors/netcode-1.02.json",
  import.meta.url,
);

/** `sequence_numbers[i]`: a sequence and its minimal encoding. */
export interface SequenceVector {
  sequence: string;
  sequence_bytes: number;
  encoded: string;
}

/** `connect_tokens[i]`: token inputs and every byte string made from them. */
export interface ConnectTokenVector {
  name: string;
  protocol_id: string;
  create_timestamp: string;
  expire_timestamp: string;
  timeout_seconds: number;
  client_id: string;
  server_addresses: string[];
  /** Not in the shipped file; when present, written in the private token. */
  internal_server_addresses?: string[];
  private_key: string;
  nonce: string;
  client_to_server_key: string;
  server_to_client_key: string;
  user_data: string;
  private_plain: string;
  private_encrypted: string;
  connect_token: string;
  connection_request_packet: string;
}

/** `challenge_tokens[i]`. */
export interface ChallengeTokenVector {
  client_id: string;
  sequence: string;
  key: string;
  user_data: string;
  plain: string;
  encrypted: string;
}

/** Plaintext per-type fields of a packet vector. */
export interface PacketFields {
  challenge_token_sequence?: string;
  challenge_token_data?: string;
  client_index?: number;
  max_clients?: number;
  payload?: string;
}

/** `packets[i]`: one encrypted datagram. */
export interface PacketVector {
  name: string;
  type: number;
  sequence: string;
  protocol_id: string;
  fields: PacketFields;
  key: string;
  packet: string;
}

/** The whole vectors file. */
export interface Vectors {
  standard?: string;
  version_info?: string;
  encoding?: string;
  schema?: Record<string, string>;
  sequence_numbers?: SequenceVector[];
  connect_tokens?: ConnectTokenVector[];
  challenge_tokens?: ChallengeTokenVector[];
  packets?: PacketVector[];
  [section: string]: unknown;
}

/** The sections this suite knows how to check. */
export const KNOWN_SECTIONS: readonly string[] = [
  "sequence_numbers",
  "connect_tokens",
  "challenge_tokens",
  "packets",
];

/**
 * Where the vectors come from: `$NETCODE_VECTORS` (a path, relative to the
 * working directory) when set, otherwise the shipped file.
 */
export function vectorsLocation(): string | URL {
  let fromEnv: string | undefined;
  try {
    fromEnv = Deno.env.get("NETCODE_VECTORS");
  } catch {
    fromEnv = undefined; // no --allow-env: use the shipped file
  }
  return fromEnv !== undefined && fromEnv !== ""
    ? fromEnv
    : DEFAULT_VECTORS_URL;
}

/** Reads and parses a vectors file. */
export async function loadVectors(
  location: string | URL = DEFAULT_VECTORS_URL,
): Promise<Vectors> {
  const text = await Deno.readTextFile(location);
  const parsed: unknown = JSON.parse(text);
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new TypeError(`${String(location)}: expected a JSON object`);
  }
  return parsed as Vectors;
}

/** Decodes lowercase or uppercase hex; throws on anything else. */
export function hex(text: string): Uint8Array {
  if (
    typeof text !== "string" || text.length % 2 !== 0 ||
    !/^[0-9a-fA-F]*$/.test(text)
  ) {
    throw new TypeError(
      `Not a hex byte string: ${JSON.stringify(text).slice(0, 80)}`,
    );
  }
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) {
    out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  }
  return out;
}

/** Encodes bytes as lowercase hex. */
export function toHex(bytes: Uint8Array): string {
  let out = "";
  for (const byte of bytes) out += byte.toString(16).padStart(2, "0");
  return out;
}

/** Parses a decimal 64-bit integer string strictly. */
export function u64(text: string): bigint {
  if (typeof text !== "string" || !/^[0-9]+$/.test(text)) {
    throw new TypeError(
      `Not a decimal integer string: ${JSON.stringify(text)}`,
    );
  }
  const value = BigInt(text);
  if (value > 0xffffffffffffffffn) {
    throw new RangeError(`Out of the u64 range: ${text}`);
  }
  return value;
}

/**
 * Fails unless `actual` holds exactly the bytes of `expected`, naming the
 * first differing offset (a whole-array diff of 2048 bytes is unreadable).
 */
export function assertBytes(
  actual: Uint8Array,
  expected: Uint8Array,
  what: string,
): void {
  if (!(actual instanceof Uint8Array)) {
    fail(`${what}: expected a Uint8Array, got ${String(actual)}`);
  }
  const length = Math.min(actual.length, expected.length);
  for (let i = 0; i < length; i++) {
    if (actual[i] !== expected[i]) {
      const from = Math.max(0, i - 4);
      fail(
        `${what}: byte ${i} is ${hexByte(actual[i])}, expected ${
          hexByte(expected[i])
        } (actual ${toHex(actual.subarray(from, i + 8))} vs expected ${
          toHex(expected.subarray(from, i + 8))
        } from offset ${from})`,
      );
    }
  }
  if (actual.length !== expected.length) {
    fail(`${what}: ${actual.length} bytes, expected ${expected.length}`);
  }
}

function hexByte(byte: number): string {
  return byte.toString(16).padStart(2, "0");
}

/** A seeded PRNG (mulberry32): deterministic 32-bit outputs. */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/** A fixed byte pattern, for keys and data that must be reproducible. */
export function pattern(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = (seed + i * 7) & 0xff;
  return out;
}

/**
 * Fails when `entry` has a field not in `allowed`: a vector file with a field
 * the suite does not know would otherwise pass without it being checked.
 */
export function checkKeys(
  entry: object,
  allowed: readonly string[],
  what: string,
): void {
  for (const key of Object.keys(entry)) {
    if (!allowed.includes(key)) {
      fail(`${what}: unknown field "${key}" (this suite would not check it)`);
    }
  }
}
