// Packets: hostile and malformed datagrams derived from the reference's
// vectors, the drop reasons of the standard's read order, replay protection
// (including the 2^64 overflow erratum) and the write-side limits.

import { chachaEncrypt } from "../crypto.ts";
import {
  ALL_PACKET_TYPES,
  CHALLENGE_TOKEN_BYTES,
  CLIENT_ALLOWED_PACKETS,
  CONNECTION_CHALLENGE_PACKET,
  CONNECTION_DENIED_PACKET,
  CONNECTION_DISCONNECT_PACKET,
  CONNECTION_KEEP_ALIVE_PACKET,
  CONNECTION_PAYLOAD_PACKET,
  CONNECTION_REQUEST_PACKET,
  CONNECTION_REQUEST_PACKET_BYTES,
  CONNECTION_RESPONSE_PACKET,
  createReplayProtection,
  type EncryptedPacket,
  MAX_PACKET_BYTES,
  MAX_PAYLOAD_BYTES,
  PACKET_DROP_REASON_NAMES,
  PacketDropReason,
  packetTypeMask,
  type ReadPacket,
  readPacket,
  type ReadPacketOptions,
  replayAdvance,
  replayAlreadyReceived,
  resetReplayProtection,
  type Sequence,
  sequenceBytesRequired,
  SERVER_ALLOWED_PACKETS,
  VERSION_INFO,
  VERSION_INFO_BYTES,
  writePacket,
  writePayloadPacket,
  writeSequenceNonce,
} from "../packet.ts";
import {
  assert,
  assertEquals,
  assertFalse,
  assertStrictEquals,
  assertThrows,
  fail,
} from "./_assert.ts";
import {
  DEFAULT_VECTORS_URL,
  hex,
  loadVectors,
  pattern,
  u64,
} from "./_vectors.ts";

const vectors = await loadVectors(DEFAULT_VECTORS_URL);
const packetVectors = vectors.packets ?? [];
const tokenVectors = vectors.connect_tokens ?? [];

const PROTOCOL_ID = 0x1122334455667788n;
const KEY = pattern(32, 1);
const OTHER_KEY = pattern(32, 2);
const TWO_64 = 1n << 64n;

function reasonName(result: unknown): string {
  return typeof result === "number"
    ? `${PACKET_DROP_REASON_NAMES[result]} (${result})`
    : `accepted ${
      JSON.stringify(result, (_, v) =>
        typeof v === "bigint"
          ? `${v}n`
          : v instanceof Uint8Array
          ? `${v.length} bytes`
          : v)
    }`;
}

/** Fails unless readPacket dropped the datagram for `reason`. */
function assertDropped(
  result: ReadPacket | PacketDropReason,
  reason: PacketDropReason,
  what: string,
): void {
  if (result !== reason) {
    fail(`${what}: expected ${reasonName(reason)}, got ${reasonName(result)}`);
  }
}

/** Fails unless readPacket accepted the datagram; returns the packet. */
function assertRead(
  result: ReadPacket | PacketDropReason,
  what: string,
): ReadPacket {
  if (typeof result === "number") {
    fail(`${what}: dropped, ${reasonName(result)}`);
  }
  return result;
}

/** readPacket that turns a throw into a test failure naming the input. */
function readSafely(
  data: Uint8Array,
  options: ReadPacketOptions,
  what: string,
): ReadPacket | PacketDropReason {
  try {
    return readPacket(data, options);
  } catch (error) {
    fail(`${what}: readPacket threw ${String(error)}`);
  }
}

function write(
  packet: EncryptedPacket,
  sequence: Sequence,
  key = KEY,
): Uint8Array {
  const out = new Uint8Array(MAX_PACKET_BYTES);
  return out.slice(0, writePacket(out, packet, sequence, key, PROTOCOL_ID));
}

function options(extra: Partial<ReadPacketOptions> = {}): ReadPacketOptions {
  return {
    protocolId: PROTOCOL_ID,
    readKey: KEY,
    allowedPackets: ALL_PACKET_TYPES,
    ...extra,
  };
}

/**
 * Seals an arbitrary packet the way a peer holding the key could: any prefix
 * byte, any sequence bytes, any plaintext. For datagrams writePacket refuses
 * to make.
 */
function seal(
  prefix: number,
  sequenceBytes: Uint8Array,
  plaintext: Uint8Array,
  key = KEY,
  protocolId = PROTOCOL_ID,
): Uint8Array {
  const additionalData = new Uint8Array(VERSION_INFO_BYTES + 9);
  additionalData.set(VERSION_INFO);
  new DataView(additionalData.buffer).setBigUint64(
    VERSION_INFO_BYTES,
    protocolId,
    true,
  );
  additionalData[VERSION_INFO_BYTES + 8] = prefix;
  const nonce = new Uint8Array(12);
  nonce.set(sequenceBytes.subarray(0, 8), 4);
  const out = new Uint8Array(1 + sequenceBytes.length + plaintext.length + 16);
  out[0] = prefix;
  out.set(sequenceBytes, 1);
  chachaEncrypt(
    plaintext,
    0,
    plaintext.length,
    additionalData,
    additionalData.length,
    nonce,
    key,
    out,
    1 + sequenceBytes.length,
  );
  return out;
}

interface Vector {
  name: string;
  type: number;
  sequence: bigint;
  protocolId: bigint;
  key: Uint8Array;
  packet: Uint8Array;
}

const packets: Vector[] = packetVectors.map((v) => ({
  name: v.name,
  type: v.type,
  sequence: u64(v.sequence),
  protocolId: u64(v.protocol_id),
  key: hex(v.key),
  packet: hex(v.packet),
}));

const requests = tokenVectors.map((v) => ({
  name: v.name,
  protocolId: u64(v.protocol_id),
  createTimestamp: u64(v.create_timestamp),
  expireTimestamp: u64(v.expire_timestamp),
  privateKey: hex(v.private_key),
  packet: hex(v.connection_request_packet),
}));

function vectorOptions(
  v: Vector,
  extra: Partial<ReadPacketOptions> = {},
): ReadPacketOptions {
  return {
    protocolId: v.protocolId,
    readKey: v.key,
    allowedPackets: ALL_PACKET_TYPES,
    ...extra,
  };
}

function requestOptions(
  v: (typeof requests)[number],
  extra: Partial<ReadPacketOptions> = {},
): ReadPacketOptions {
  return {
    protocolId: v.protocolId,
    privateKey: v.privateKey,
    allowedPackets: packetTypeMask(CONNECTION_REQUEST_PACKET),
    currentTimestamp: Number(v.createTimestamp),
    ...extra,
  };
}

Deno.test("the vectors this file derives its cases from are present", () => {
  assertEquals(
    [...new Set(packets.map((v) => v.type))].sort(),
    [1, 2, 3, 4, 5, 6],
    "one packet vector of every encrypted type",
  );
  assert(requests.length > 0, "connection request vectors");
  for (const v of packets) {
    assertRead(readPacket(v.packet, vectorOptions(v)), v.name);
  }
  for (const v of requests) {
    assertRead(readPacket(v.packet, requestOptions(v)), v.name);
  }
});

// ---------------------------------------------------------------------------
// Bit flips.

Deno.test("readPacket() rejects every single-bit flip of every encrypted packet vector", () => {
  let flips = 0;
  for (const v of packets) {
    const replay = createReplayProtection();
    for (let bit = 0; bit < v.packet.length * 8; bit++) {
      const mutated = v.packet.slice();
      mutated[bit >> 3] ^= 1 << (bit & 7);
      const what = `${v.name}, bit ${bit}`;
      const result = readSafely(
        mutated,
        vectorOptions(v, { replayProtection: replay }),
        what,
      );
      if (typeof result !== "number") fail(`${what}: accepted`);
      if (bit >= 8) {
        // Sequence, ciphertext and MAC are all authenticated.
        assertDropped(result, PacketDropReason.DECRYPT_FAILED, what);
      }
      flips++;
    }
    // None of the failures advanced the window: the genuine packet still reads.
    assertRead(
      readPacket(v.packet, vectorOptions(v, { replayProtection: replay })),
      v.name,
    );
  }
  assertStrictEquals(
    flips,
    packets.reduce((sum, v) => sum + 8 * v.packet.length, 0),
  );
});

Deno.test("readPacket() rejects every single-bit flip of a connection request", () => {
  for (const v of requests) {
    const now = Number(v.createTimestamp);
    for (let bit = 0; bit < v.packet.length * 8; bit++) {
      const byte = bit >> 3;
      const mutated = v.packet.slice();
      mutated[byte] ^= 1 << (bit & 7);
      const what = `${v.name}, byte ${byte} bit ${bit & 7}`;
      const result = readSafely(mutated, requestOptions(v), what);
      if (typeof result !== "number") fail(`${what}: accepted`);
      if (byte === 0) continue; // No longer a request: dropped before any key is used.
      if (byte < 1 + VERSION_INFO_BYTES) {
        assertDropped(result, PacketDropReason.BAD_VERSION_INFO, what);
      } else if (byte < 1 + VERSION_INFO_BYTES + 8) {
        assertDropped(result, PacketDropReason.BAD_PROTOCOL_ID, what);
      } else if (byte < 1 + VERSION_INFO_BYTES + 16) {
        // The expire timestamp is associated data: lower it past now and
        // the request has expired; otherwise the token no longer decrypts.
        const expire = new DataView(mutated.buffer).getBigUint64(
          1 + VERSION_INFO_BYTES + 8,
          true,
        );
        assertDropped(
          result,
          expire <= BigInt(now)
            ? PacketDropReason.TOKEN_EXPIRED
            : PacketDropReason.DECRYPT_FAILED,
          what,
        );
      } else {
        // Nonce, encrypted token and its MAC.
        assertDropped(result, PacketDropReason.DECRYPT_FAILED, what);
      }
    }
  }
});

// ---------------------------------------------------------------------------
// One field wrong.

Deno.test("readPacket() drops packets read with the wrong key", () => {
  for (const v of packets) {
    assertDropped(
      readPacket(v.packet, vectorOptions(v, { readKey: OTHER_KEY })),
      PacketDropReason.DECRYPT_FAILED,
      v.name,
    );
  }
  for (const v of requests) {
    assertDropped(
      readPacket(v.packet, requestOptions(v, { privateKey: OTHER_KEY })),
      PacketDropReason.DECRYPT_FAILED,
      v.name,
    );
  }
});

Deno.test("readPacket() drops packets for another protocol id", () => {
  for (const v of packets) {
    assertDropped(
      readPacket(v.packet, vectorOptions(v, { protocolId: v.protocolId + 1n })),
      PacketDropReason.DECRYPT_FAILED,
      v.name,
    );
  }
  for (const v of requests) {
    assertDropped(
      readPacket(
        v.packet,
        requestOptions(v, { protocolId: v.protocolId ^ 1n }),
      ),
      PacketDropReason.BAD_PROTOCOL_ID,
      v.name,
    );
  }
});

Deno.test("readPacket() drops packets one byte short or one byte long", () => {
  for (const v of packets) {
    const short = v.packet.slice(0, -1);
    const long = new Uint8Array(v.packet.length + 1);
    long.set(v.packet);
    const sequenceBytes = v.packet[0] >> 4;
    assertDropped(
      readPacket(short, vectorOptions(v)),
      short.length < 1 + Math.max(1, sequenceBytes) + 16
        ? PacketDropReason.TOO_SMALL
        : PacketDropReason.DECRYPT_FAILED,
      `${v.name}, short`,
    );
    assertDropped(
      readPacket(long, vectorOptions(v)),
      PacketDropReason.DECRYPT_FAILED,
      `${v.name}, long`,
    );
  }
  for (const v of requests) {
    const long = new Uint8Array(v.packet.length + 1);
    long.set(v.packet);
    assertDropped(
      readPacket(v.packet.slice(0, -1), requestOptions(v)),
      PacketDropReason.BAD_LENGTH,
      v.name,
    );
    assertDropped(
      readPacket(long, requestOptions(v)),
      PacketDropReason.BAD_LENGTH,
      v.name,
    );
  }
});

Deno.test("readPacket() drops sequence byte counts 0 and 9..15", () => {
  for (const v of packets) {
    for (const count of [0, 9, 10, 15]) {
      const mutated = v.packet.slice();
      mutated[0] = (count << 4) | v.type;
      assertDropped(
        readPacket(mutated, vectorOptions(v)),
        PacketDropReason.BAD_SEQUENCE_BYTES,
        `${v.name}, ${count} sequence bytes`,
      );
    }
  }
});

Deno.test("readPacket() drops packet types 7..15", () => {
  for (const v of packets) {
    for (let type = 7; type <= 15; type++) {
      const mutated = v.packet.slice();
      mutated[0] = (mutated[0] & 0xf0) | type;
      assertDropped(
        readPacket(mutated, vectorOptions(v)),
        PacketDropReason.INVALID_TYPE,
        `${v.name} as type ${type}`,
      );
    }
  }
  // Even with a sequence byte count of 0 or a prefix of 7.
  for (const prefix of [0x07, 0x0f, 0x1f, 0x87]) {
    const datagram = new Uint8Array(40);
    datagram[0] = prefix;
    assertDropped(
      readPacket(datagram, options()),
      PacketDropReason.INVALID_TYPE,
      `prefix ${prefix}`,
    );
  }
});

Deno.test("readPacket() drops a type not in allowedPackets with TYPE_NOT_ALLOWED", () => {
  for (const v of packets) {
    const allowed = ALL_PACKET_TYPES & ~(1 << v.type);
    assertDropped(
      readPacket(v.packet, vectorOptions(v, { allowedPackets: allowed })),
      PacketDropReason.TYPE_NOT_ALLOWED,
      v.name,
    );
  }
  for (const v of requests) {
    assertDropped(
      readPacket(
        v.packet,
        requestOptions(v, { allowedPackets: ALL_PACKET_TYPES & ~1 }),
      ),
      PacketDropReason.TYPE_NOT_ALLOWED,
      v.name,
    );
  }
  // A client reading what only a server accepts, and the reverse.
  const clientAllowed = packetTypeMask(1, 2, 4, 5, 6);
  const serverAllowed = packetTypeMask(0, 3, 4, 5, 6);
  const response = packets.find((v) => v.type === CONNECTION_RESPONSE_PACKET)!;
  const challenge = packets.find((v) =>
    v.type === CONNECTION_CHALLENGE_PACKET
  )!;
  assertDropped(
    readPacket(
      response.packet,
      vectorOptions(response, { allowedPackets: clientAllowed }),
    ),
    PacketDropReason.TYPE_NOT_ALLOWED,
    "response at a client",
  );
  assertDropped(
    readPacket(
      challenge.packet,
      vectorOptions(challenge, { allowedPackets: serverAllowed }),
    ),
    PacketDropReason.TYPE_NOT_ALLOWED,
    "challenge at a server",
  );
});

Deno.test("readPacket() drops a connection request with an expired timestamp (TOKEN_EXPIRED)", () => {
  for (const v of requests) {
    const expire = Number(v.expireTimestamp);
    assertRead(
      readPacket(v.packet, requestOptions(v, { currentTimestamp: expire - 1 })),
      v.name,
    );
    assertRead(
      readPacket(
        v.packet,
        requestOptions(v, { currentTimestamp: expire - 0.5 }),
      ),
      v.name,
    );
    for (const now of [expire, expire + 0.5, expire + 1, expire + 1e6]) {
      assertDropped(
        readPacket(v.packet, requestOptions(v, { currentTimestamp: now })),
        PacketDropReason.TOKEN_EXPIRED,
        `${v.name} at ${now}`,
      );
    }
    // The default is the wall clock, long past these 2023 tokens.
    assertDropped(
      readPacket(v.packet, requestOptions(v, { currentTimestamp: undefined })),
      PacketDropReason.TOKEN_EXPIRED,
      `${v.name} at Date.now()`,
    );
  }
});

Deno.test("readPacket() drops datagrams over 1300 bytes", () => {
  for (const length of [MAX_PACKET_BYTES + 1, 1400, 65507]) {
    for (const prefix of [0x00, 0x15, 0x25, 0x14]) {
      const datagram = new Uint8Array(length);
      datagram[0] = prefix;
      assertDropped(
        readPacket(datagram, options({ privateKey: KEY })),
        PacketDropReason.BAD_LENGTH,
        `${length} bytes, prefix ${prefix}`,
      );
    }
  }
  // 1300 itself is a valid size: a full-size forgery fails only to decrypt.
  const full = new Uint8Array(MAX_PACKET_BYTES);
  full[0] = 0x15;
  assertDropped(
    readPacket(full, options()),
    PacketDropReason.DECRYPT_FAILED,
    "1300 bytes",
  );
});

Deno.test("readPacket() drops datagrams too small for their prefix", () => {
  assertDropped(
    readPacket(new Uint8Array(0), options()),
    PacketDropReason.TOO_SMALL,
    "empty",
  );
  for (let length = 1; length < 18; length++) {
    const datagram = new Uint8Array(length).fill(0x15);
    assertDropped(
      readPacket(datagram, options()),
      PacketDropReason.TOO_SMALL,
      `${length} bytes`,
    );
  }
  // 8 sequence bytes need 1 + 8 + 16 bytes at least.
  for (let length = 18; length < 25; length++) {
    const datagram = new Uint8Array(length);
    datagram[0] = 0x85;
    assertDropped(
      readPacket(datagram, options()),
      PacketDropReason.TOO_SMALL,
      `${length} bytes`,
    );
  }
  // A prefix of 0 is a connection request, which has one exact size.
  for (const length of [1, 17, 100, CONNECTION_REQUEST_PACKET_BYTES - 1]) {
    assertDropped(
      readPacket(new Uint8Array(length), options({ privateKey: KEY })),
      PacketDropReason.BAD_LENGTH,
      `request of ${length} bytes`,
    );
  }
});

Deno.test("readPacket() drops packets it has no key for (NO_KEY)", () => {
  for (const v of packets) {
    assertDropped(
      readPacket(v.packet, vectorOptions(v, { readKey: undefined })),
      PacketDropReason.NO_KEY,
      v.name,
    );
  }
  for (const v of requests) {
    assertDropped(
      readPacket(v.packet, requestOptions(v, { privateKey: undefined })),
      PacketDropReason.NO_KEY,
      v.name,
    );
  }
});

Deno.test("readPacket() drops authenticated packets of the wrong size for their type (BAD_SIZE)", () => {
  const cases: [string, number, number][] = [
    ["denied with 1 byte", CONNECTION_DENIED_PACKET, 1],
    [
      "challenge with 307 bytes",
      CONNECTION_CHALLENGE_PACKET,
      8 + CHALLENGE_TOKEN_BYTES - 1,
    ],
    [
      "challenge with 309 bytes",
      CONNECTION_CHALLENGE_PACKET,
      8 + CHALLENGE_TOKEN_BYTES + 1,
    ],
    [
      "response with 368 bytes (the 1.01 size)",
      CONNECTION_RESPONSE_PACKET,
      8 + 360,
    ],
    ["keep-alive with 7 bytes", CONNECTION_KEEP_ALIVE_PACKET, 7],
    ["keep-alive with 9 bytes", CONNECTION_KEEP_ALIVE_PACKET, 9],
    ["payload with 0 bytes", CONNECTION_PAYLOAD_PACKET, 0],
    [
      "payload with 1201 bytes",
      CONNECTION_PAYLOAD_PACKET,
      MAX_PAYLOAD_BYTES + 1,
    ],
    ["disconnect with 1 byte", CONNECTION_DISCONNECT_PACKET, 1],
  ];
  for (const [what, type, bytes] of cases) {
    const datagram = seal(
      (1 << 4) | type,
      new Uint8Array([9]),
      pattern(bytes, 3),
    );
    assertDropped(
      readPacket(
        datagram,
        options({ replayProtection: createReplayProtection() }),
      ),
      PacketDropReason.BAD_SIZE,
      what,
    );
  }
});

Deno.test("readPacket() never reads an authenticated prefix of type 0 with sequence bytes as a packet", () => {
  // Only the prefix byte 0 is a connection request; (n << 4) | 0 is no type
  // at all. The reference drops it; it must not come out as a payload.
  for (let count = 1; count <= 8; count++) {
    const datagram = seal(
      count << 4,
      new Uint8Array(count).fill(1),
      pattern(100, 5),
    );
    const result = readSafely(
      datagram,
      options({ privateKey: KEY }),
      `prefix ${count << 4}`,
    );
    if (typeof result !== "number") {
      fail(`prefix ${count << 4}: read as ${reasonName(result)}`);
    }
  }
});

Deno.test("readPacket() accepts a sequence written in more bytes than needed, as the reference does", () => {
  const datagram = seal(
    (3 << 4) | CONNECTION_KEEP_ALIVE_PACKET,
    new Uint8Array([5, 0, 0]),
    new Uint8Array([1, 0, 0, 0, 8, 0, 0, 0]),
  );
  const packet = assertRead(
    readPacket(datagram, options()),
    "sequence 5 in 3 bytes",
  );
  assertEquals(packet, {
    type: CONNECTION_KEEP_ALIVE_PACKET,
    sequence: 5,
    clientIndex: 1,
    maxClients: 8,
  });
  // The prefix is authenticated: the same body under the minimal prefix fails.
  const rewritten = new Uint8Array(datagram.length - 2);
  rewritten[0] = (1 << 4) | CONNECTION_KEEP_ALIVE_PACKET;
  rewritten[1] = 5;
  rewritten.set(datagram.subarray(4), 2);
  assertDropped(
    readPacket(rewritten, options()),
    PacketDropReason.DECRYPT_FAILED,
    "rewritten prefix",
  );
});

// ---------------------------------------------------------------------------
// Replay protection through readPacket.

Deno.test("readPacket() drops a replayed keep-alive, payload or disconnect (REPLAYED)", () => {
  const cases: [string, EncryptedPacket][] = [
    ["keep-alive", {
      type: CONNECTION_KEEP_ALIVE_PACKET,
      clientIndex: 0,
      maxClients: 4,
    }],
    ["payload", { type: CONNECTION_PAYLOAD_PACKET, payload: pattern(50, 1) }],
    ["disconnect", { type: CONNECTION_DISCONNECT_PACKET }],
  ];
  for (const [what, packet] of cases) {
    const replay = createReplayProtection();
    const datagram = write(packet, 77);
    assertRead(
      readPacket(datagram, options({ replayProtection: replay })),
      what,
    );
    assertDropped(
      readPacket(datagram, options({ replayProtection: replay })),
      PacketDropReason.REPLAYED,
      `${what} replayed`,
    );
    assertDropped(
      readPacket(datagram, options({ replayProtection: replay })),
      PacketDropReason.REPLAYED,
      `${what} replayed again`,
    );
    // Without replay protection the same bytes still authenticate.
    assertRead(
      readPacket(datagram, options()),
      `${what} without replay protection`,
    );
  }
});

Deno.test("readPacket() drops a replayed payload from the packet vectors", () => {
  for (
    const v of packets.filter((p) => p.type >= CONNECTION_KEEP_ALIVE_PACKET)
  ) {
    const replay = createReplayProtection();
    assertRead(
      readPacket(v.packet, vectorOptions(v, { replayProtection: replay })),
      v.name,
    );
    assertDropped(
      readPacket(v.packet, vectorOptions(v, { replayProtection: replay })),
      PacketDropReason.REPLAYED,
      v.name,
    );
  }
});

Deno.test("readPacket() leaves denied, challenge and response packets to the state machines, as the reference does", () => {
  // Replay protection covers keep-alive, payload and disconnect only.
  for (
    const v of packets.filter((p) => p.type < CONNECTION_KEEP_ALIVE_PACKET)
  ) {
    const replay = createReplayProtection();
    for (let i = 0; i < 3; i++) {
      assertRead(
        readPacket(v.packet, vectorOptions(v, { replayProtection: replay })),
        v.name,
      );
    }
    assertFalse(
      replayAlreadyReceived(replay, v.sequence),
      `${v.name} did not touch the window`,
    );
  }
});

Deno.test("readPacket() accepts sequences 2^64-256 .. 2^64-1 in order, then rejects each replay (overflow erratum)", () => {
  const replay = createReplayProtection();
  const datagrams: Uint8Array[] = [];
  for (let sequence = TWO_64 - 256n; sequence < TWO_64; sequence++) {
    const datagram = write({
      type: CONNECTION_PAYLOAD_PACKET,
      payload: pattern(8, Number(sequence & 255n)),
    }, sequence);
    datagrams.push(datagram);
    const packet = assertRead(
      readPacket(datagram, options({ replayProtection: replay })),
      `sequence ${sequence}`,
    );
    assertStrictEquals(packet.type, CONNECTION_PAYLOAD_PACKET);
    assertStrictEquals(
      BigInt((packet as { sequence: Sequence }).sequence),
      sequence,
    );
  }
  assertStrictEquals(replay.mostRecentHigh, 0xffffffff);
  assertStrictEquals(replay.mostRecentLow, 0xffffffff);
  for (const [i, datagram] of datagrams.entries()) {
    assertDropped(
      readPacket(datagram, options({ replayProtection: replay })),
      PacketDropReason.REPLAYED,
      `replay of sequence 2^64-256+${i}`,
    );
  }
  // And the last 256 again in reverse order, after a fresh start.
  const fresh = createReplayProtection();
  for (const datagram of datagrams.toReversed()) {
    assertRead(
      readPacket(datagram, options({ replayProtection: fresh })),
      "reverse order",
    );
  }
});

Deno.test("readPacket() does not advance the replay window for a packet that fails to decrypt", () => {
  const replay = createReplayProtection();
  const genuine = write({
    type: CONNECTION_PAYLOAD_PACKET,
    payload: pattern(20, 1),
  }, 1000);
  const forged = genuine.slice();
  forged[forged.length - 1] ^= 1;
  assertDropped(
    readPacket(forged, options({ replayProtection: replay })),
    PacketDropReason.DECRYPT_FAILED,
    "forged 1000",
  );
  assertStrictEquals(replay.mostRecentLow, 0);
  assertFalse(replayAlreadyReceived(replay, 1000));
  // A forgery far ahead does not push genuine packets out of the window.
  const ahead = write(
    { type: CONNECTION_PAYLOAD_PACKET, payload: pattern(20, 1) },
    100000,
    OTHER_KEY,
  );
  assertDropped(
    readPacket(ahead, options({ replayProtection: replay })),
    PacketDropReason.DECRYPT_FAILED,
    "forged 100000",
  );
  assertStrictEquals(replay.mostRecentLow, 0);
  assertRead(
    readPacket(genuine, options({ replayProtection: replay })),
    "genuine 1000",
  );
  assertStrictEquals(replay.mostRecentLow, 1000);
  // Nor does a packet of the wrong size that authenticates.
  const wrongSize = seal(
    (2 << 4) | CONNECTION_KEEP_ALIVE_PACKET,
    new Uint8Array([0x10, 0x27]),
    new Uint8Array(9),
  );
  assertDropped(
    readPacket(wrongSize, options({ replayProtection: replay })),
    PacketDropReason.BAD_SIZE,
    "bad size 10000",
  );
  assertStrictEquals(replay.mostRecentLow, 1000);
  assertFalse(replayAlreadyReceived(replay, 10000));
});

// ---------------------------------------------------------------------------
// Replay protection itself.

Deno.test("replay protection accepts anything at first, including 0 and 2^64-1", () => {
  const replay = createReplayProtection();
  for (
    const sequence of [
      0,
      1,
      255,
      256,
      1000,
      2 ** 53 - 1,
      2n ** 63n,
      TWO_64 - 1n,
    ]
  ) {
    assertFalse(
      replayAlreadyReceived(replay, sequence),
      `sequence ${sequence}`,
    );
  }
});

Deno.test("replay protection rejects a duplicate", () => {
  const replay = createReplayProtection();
  replayAdvance(replay, 0);
  assert(replayAlreadyReceived(replay, 0));
  replayAdvance(replay, 5);
  assert(replayAlreadyReceived(replay, 5));
  assert(
    replayAlreadyReceived(replay, 5n),
    "the bigint form is the same sequence",
  );
  assert(replayAlreadyReceived(replay, 0));
  assertFalse(replayAlreadyReceived(replay, 4));
});

Deno.test("replay protection rejects a packet 256 or more behind the most recent", () => {
  const replay = createReplayProtection();
  replayAdvance(replay, 1000);
  assert(replayAlreadyReceived(replay, 1000 - 256), "exactly 256 behind");
  assert(replayAlreadyReceived(replay, 1000 - 257));
  assert(replayAlreadyReceived(replay, 0));
  assertFalse(
    replayAlreadyReceived(replay, 1000 - 255),
    "255 behind is in the window",
  );
  // Across the 2^32 boundary of the two halves.
  const high = createReplayProtection();
  replayAdvance(high, 2 ** 32 + 10);
  assert(replayAlreadyReceived(high, 2 ** 32 + 10 - 256));
  assert(replayAlreadyReceived(high, 2 ** 32 - 1000));
  assertFalse(replayAlreadyReceived(high, 2 ** 32 + 10 - 255));
  assertFalse(replayAlreadyReceived(high, 2 ** 32 - 245));
  assert(replayAlreadyReceived(high, 2 ** 32 - 246));
});

Deno.test("replay protection accepts out-of-order packets within the window, once each", () => {
  const replay = createReplayProtection();
  replayAdvance(replay, 1000);
  for (const sequence of [990, 745, 999, 1001, 1500, 1300]) {
    assertFalse(replayAlreadyReceived(replay, sequence), `first ${sequence}`);
    replayAdvance(replay, sequence);
    assert(replayAlreadyReceived(replay, sequence), `again ${sequence}`);
  }
  assertStrictEquals(
    replay.mostRecentLow,
    1500,
    "the most recent only moves forward",
  );
  assert(replayAlreadyReceived(replay, 1000), "1000 is now too old");
  assertFalse(replayAlreadyReceived(replay, 1499));
});

Deno.test("replay protection: a slot holding an older sequence does not reject a newer one", () => {
  const replay = createReplayProtection();
  replayAdvance(replay, 3);
  assertFalse(replayAlreadyReceived(replay, 3 + 256), "same slot, newer");
  replayAdvance(replay, 3 + 256);
  assert(
    replayAlreadyReceived(replay, 3),
    "the old one is now out of the window",
  );
});

Deno.test("replay protection handles the last 256 sequences before 2^64 (overflow erratum)", () => {
  const replay = createReplayProtection();
  for (let sequence = TWO_64 - 256n; sequence < TWO_64; sequence++) {
    assertFalse(replayAlreadyReceived(replay, sequence), `first ${sequence}`);
    replayAdvance(replay, sequence);
  }
  for (let sequence = TWO_64 - 256n; sequence < TWO_64; sequence++) {
    assert(replayAlreadyReceived(replay, sequence), `replay ${sequence}`);
  }
  assert(replayAlreadyReceived(replay, TWO_64 - 257n), "257 behind");
  assert(replayAlreadyReceived(replay, 0), "0 is old");
});

Deno.test("resetReplayProtection() forgets everything", () => {
  const replay = createReplayProtection();
  replayAdvance(replay, 5000);
  replayAdvance(replay, 4999);
  resetReplayProtection(replay);
  assertStrictEquals(replay.mostRecentLow, 0);
  assertStrictEquals(replay.mostRecentHigh, 0);
  assertFalse(replayAlreadyReceived(replay, 5000));
  assertFalse(replayAlreadyReceived(replay, 4999));
  assertFalse(replayAlreadyReceived(replay, 1));
});

Deno.test("replay protection rejects sequences outside 0..2^64-1 with a RangeError", () => {
  const replay = createReplayProtection();
  assertThrows(() => replayAlreadyReceived(replay, -1), RangeError);
  assertThrows(() => replayAlreadyReceived(replay, 1.5), RangeError);
  assertThrows(() => replayAlreadyReceived(replay, 2 ** 53), RangeError);
  assertThrows(() => replayAdvance(replay, TWO_64), RangeError);
  assertThrows(() => replayAdvance(replay, -1n), RangeError);
});

// ---------------------------------------------------------------------------
// Writing.

Deno.test("writePayloadPacket() and writePacket() throw RangeError for 0 and 1201 payload bytes", () => {
  const out = new Uint8Array(MAX_PACKET_BYTES + 100);
  for (const bytes of [0, MAX_PAYLOAD_BYTES + 1, 1300]) {
    assertThrows(
      () => writePayloadPacket(out, 1, KEY, PROTOCOL_ID, new Uint8Array(bytes)),
      RangeError,
      `${bytes} bytes`,
    );
    assertThrows(
      () =>
        writePacket(
          out,
          { type: CONNECTION_PAYLOAD_PACKET, payload: new Uint8Array(bytes) },
          1,
          KEY,
          PROTOCOL_ID,
        ),
      RangeError,
      `${bytes} bytes`,
    );
  }
  assertStrictEquals(
    writePayloadPacket(out, 1, KEY, PROTOCOL_ID, new Uint8Array(1)),
    1 + 1 + 1 + 16,
  );
  assertStrictEquals(
    writePayloadPacket(
      out,
      TWO_64 - 1n,
      KEY,
      PROTOCOL_ID,
      new Uint8Array(MAX_PAYLOAD_BYTES),
    ),
    1 + 8 + MAX_PAYLOAD_BYTES + 16,
  );
});

Deno.test("writePacket() validates its key, output buffer, sequence and fields", () => {
  const out = new Uint8Array(MAX_PACKET_BYTES);
  const keepAlive: EncryptedPacket = {
    type: CONNECTION_KEEP_ALIVE_PACKET,
    clientIndex: 0,
    maxClients: 1,
  };
  assertThrows(
    () => writePacket(out, keepAlive, 1, new Uint8Array(31), PROTOCOL_ID),
    RangeError,
    "31",
  );
  assertThrows(
    () => writePacket(out, keepAlive, 1, new Uint8Array(33), PROTOCOL_ID),
    RangeError,
    "33",
  );
  assertThrows(
    () => writePacket(new Uint8Array(26), keepAlive, 1000, KEY, PROTOCOL_ID),
    RangeError,
    "27 bytes",
  );
  assertStrictEquals(
    writePacket(new Uint8Array(27), keepAlive, 1000, KEY, PROTOCOL_ID),
    27,
  );
  assertThrows(
    () => writePacket(out, keepAlive, -1, KEY, PROTOCOL_ID),
    RangeError,
  );
  assertThrows(
    () => writePacket(out, keepAlive, TWO_64, KEY, PROTOCOL_ID),
    RangeError,
  );
  assertThrows(
    () => writePacket(out, keepAlive, 1, KEY, -1n),
    TypeError,
    "protocol id",
  );
  assertThrows(
    () =>
      writePacket(
        out,
        {
          type: CONNECTION_CHALLENGE_PACKET,
          challengeTokenSequence: 0n,
          challengeTokenData: new Uint8Array(299),
        },
        1,
        KEY,
        PROTOCOL_ID,
      ),
    RangeError,
    "299",
  );
  assertThrows(
    () =>
      writePacket(
        out,
        { type: CONNECTION_REQUEST_PACKET } as unknown as EncryptedPacket,
        1,
        KEY,
        PROTOCOL_ID,
      ),
    TypeError,
  );
});

Deno.test("writePacket() and readPacket() round-trip every encrypted type", () => {
  const token = pattern(CHALLENGE_TOKEN_BYTES, 9);
  const cases: EncryptedPacket[] = [
    { type: CONNECTION_DENIED_PACKET },
    {
      type: CONNECTION_CHALLENGE_PACKET,
      challengeTokenSequence: TWO_64 - 1n,
      challengeTokenData: token,
    },
    {
      type: CONNECTION_RESPONSE_PACKET,
      challengeTokenSequence: 0n,
      challengeTokenData: token,
    },
    {
      type: CONNECTION_KEEP_ALIVE_PACKET,
      clientIndex: 0xffffffff,
      maxClients: 256,
    },
    { type: CONNECTION_PAYLOAD_PACKET, payload: pattern(MAX_PAYLOAD_BYTES, 4) },
    { type: CONNECTION_DISCONNECT_PACKET },
  ];
  for (const packet of cases) {
    for (const sequence of [0, 255, 2 ** 53 - 1, 2n ** 63n, TWO_64 - 1n]) {
      const datagram = write(packet, sequence);
      const read = assertRead(
        readPacket(datagram, options()),
        `type ${packet.type} at ${sequence}`,
      );
      const expectedSequence =
        BigInt(sequence) <= BigInt(Number.MAX_SAFE_INTEGER)
          ? Number(sequence)
          : BigInt(sequence);
      assertEquals(read, { ...packet, sequence: expectedSequence });
    }
  }
});

Deno.test("readPacket() returns a payload the caller owns", () => {
  const first = write({
    type: CONNECTION_PAYLOAD_PACKET,
    payload: pattern(10, 1),
  }, 1);
  const second = write({
    type: CONNECTION_PAYLOAD_PACKET,
    payload: pattern(10, 2),
  }, 2);
  const a = assertRead(readPacket(first, options()), "first");
  const b = assertRead(readPacket(second, options()), "second");
  if (
    a.type !== CONNECTION_PAYLOAD_PACKET || b.type !== CONNECTION_PAYLOAD_PACKET
  ) fail("types");
  assertEquals(a.payload, pattern(10, 1), "not overwritten by the next read");
  assertEquals(b.payload, pattern(10, 2));
  first.fill(0);
  assertEquals(a.payload, pattern(10, 1), "not a view of the datagram");
  // Its ArrayBuffer is its own: `new DataView(payload.buffer)` reads it.
  assertStrictEquals(a.payload.byteOffset, 0);
  assertStrictEquals(a.payload.buffer.byteLength, 10);
  assertStrictEquals(
    new DataView(b.payload.buffer).getUint8(9),
    pattern(10, 2)[9],
  );
});

Deno.test("readPacket() payloads stay intact across many reads", () => {
  // Each payload keeps its own bytes, whatever is read or written after it.
  const kept: { payload: Uint8Array; expected: Uint8Array }[] = [];
  for (let i = 0; i < 300; i++) {
    const expected = pattern(1 + ((i * 97) % MAX_PAYLOAD_BYTES), i);
    const read = assertRead(
      readPacket(
        write({ type: CONNECTION_PAYLOAD_PACKET, payload: expected }, i),
        options(),
      ),
      `payload ${i}`,
    );
    if (read.type !== CONNECTION_PAYLOAD_PACKET) {
      fail(`payload ${i}: type ${read.type}`);
    }
    kept.push({ payload: read.payload, expected });
    // Writing into one payload must not reach any other.
    if (i % 2) read.payload.fill(0xff);
  }
  for (const [i, { payload, expected }] of kept.entries()) {
    assertEquals(
      payload,
      i % 2 ? new Uint8Array(expected.length).fill(0xff) : expected,
      `payload ${i}`,
    );
  }
});

Deno.test("readPacket() keeps working after a payload's buffer is transferred away", () => {
  const first = assertRead(
    readPacket(
      write({ type: CONNECTION_PAYLOAD_PACKET, payload: pattern(10, 1) }, 1),
      options(),
    ),
    "first",
  );
  if (first.type !== CONNECTION_PAYLOAD_PACKET) fail("type");
  const { byteOffset } = first.payload;
  const buffer = first.payload.buffer as ArrayBuffer;
  const moved = new Uint8Array(structuredClone(buffer, { transfer: [buffer] }));
  assertEquals(moved.subarray(byteOffset, byteOffset + 10), pattern(10, 1));
  assertStrictEquals(
    first.payload.length,
    0,
    "the transferred view is detached",
  );
  const second = assertRead(
    readPacket(
      write({ type: CONNECTION_PAYLOAD_PACKET, payload: pattern(20, 2) }, 2),
      options(),
    ),
    "second",
  );
  if (second.type !== CONNECTION_PAYLOAD_PACKET) fail("type");
  assertEquals(second.payload, pattern(20, 2));
});

Deno.test("sequenceBytesRequired() takes the fewest bytes, agreeing for number and bigint", () => {
  assertStrictEquals(sequenceBytesRequired(0), 1);
  for (let bytes = 1; bytes <= 8; bytes++) {
    const max = (1n << BigInt(8 * bytes)) - 1n;
    assertStrictEquals(sequenceBytesRequired(max), bytes, `2^${8 * bytes}-1`);
    if (bytes < 8) {
      assertStrictEquals(
        sequenceBytesRequired(max + 1n),
        bytes + 1,
        `2^${8 * bytes}`,
      );
    }
    if (max <= BigInt(Number.MAX_SAFE_INTEGER)) {
      assertStrictEquals(
        sequenceBytesRequired(Number(max)),
        bytes,
        `2^${8 * bytes}-1 as a number`,
      );
      assertStrictEquals(
        sequenceBytesRequired(Number(max) + 1),
        bytes + 1,
        `2^${8 * bytes} as a number`,
      );
    }
  }
  assertStrictEquals(sequenceBytesRequired(2 ** 53 - 1), 7);
  assertThrows(() => sequenceBytesRequired(-1), RangeError);
  assertThrows(() => sequenceBytesRequired(2 ** 53), RangeError);
  assertThrows(() => sequenceBytesRequired(0.5), RangeError);
  assertThrows(() => sequenceBytesRequired(TWO_64), RangeError);
});

Deno.test("writeSequenceNonce() writes four zero bytes, then the sequence as u64 little-endian", () => {
  assertEquals(
    writeSequenceNonce(new Uint8Array(12).fill(0xaa), 0x0102030405060708n),
    new Uint8Array([0, 0, 0, 0, 8, 7, 6, 5, 4, 3, 2, 1]),
  );
  assertEquals(
    writeSequenceNonce(new Uint8Array(12), TWO_64 - 1n),
    new Uint8Array([0, 0, 0, 0, 255, 255, 255, 255, 255, 255, 255, 255]),
  );
  assertEquals(
    writeSequenceNonce(new Uint8Array(12), 1000),
    new Uint8Array([0, 0, 0, 0, 0xe8, 0x03, 0, 0, 0, 0, 0, 0]),
  );
  // Into a view with an offset.
  const backing = new Uint8Array(20);
  writeSequenceNonce(backing.subarray(4, 16), 1);
  assertEquals(
    backing,
    new Uint8Array([
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      1,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
    ]),
  );
});

Deno.test("packetTypeMask() sets one bit per type", () => {
  assertStrictEquals(packetTypeMask(), 0);
  assertStrictEquals(packetTypeMask(CONNECTION_REQUEST_PACKET), 1);
  assertStrictEquals(
    packetTypeMask(CONNECTION_KEEP_ALIVE_PACKET, CONNECTION_PAYLOAD_PACKET),
    48,
  );
  assertStrictEquals(packetTypeMask(0, 1, 2, 3, 4, 5, 6), ALL_PACKET_TYPES);
  assertStrictEquals(ALL_PACKET_TYPES, 127);
});

Deno.test("readPacket() reads a datagram that is a view into a larger buffer", () => {
  const datagram = write({
    type: CONNECTION_PAYLOAD_PACKET,
    payload: pattern(33, 7),
  }, 300);
  const backing = new Uint8Array(datagram.length + 50).fill(0xee);
  backing.set(datagram, 17);
  const read = assertRead(
    readPacket(backing.subarray(17, 17 + datagram.length), options()),
    "view",
  );
  assertEquals(read, {
    type: CONNECTION_PAYLOAD_PACKET,
    sequence: 300,
    payload: pattern(33, 7),
  });
  const request = requests[0];
  const requestBacking = new Uint8Array(request.packet.length + 9);
  requestBacking.set(request.packet, 9);
  assertRead(
    readPacket(requestBacking.subarray(9), requestOptions(request)),
    "request view",
  );
});

Deno.test("readPacket() decrypts a payload into payloadBuffer when one is given", () => {
  const key = new Uint8Array(32).fill(7);
  const protocolId = 0x1122334455667788n;
  const datagram = new Uint8Array(MAX_PACKET_BYTES);
  const payloadBuffer = new Uint8Array(1200);
  const options = {
    protocolId,
    readKey: key,
    allowedPackets: packetTypeMask(CONNECTION_PAYLOAD_PACKET),
    payloadBuffer,
  };
  for (const [sequence, fill] of [[1, 0xaa], [2, 0xbb]]) {
    const bytes = writePayloadPacket(
      datagram,
      sequence,
      key,
      protocolId,
      new Uint8Array(100).fill(fill),
    );
    const packet = readPacket(datagram.subarray(0, bytes), options);
    if (
      typeof packet === "number" || packet.type !== CONNECTION_PAYLOAD_PACKET
    ) {
      throw new Error(`dropped: ${packet}`);
    }
    assertEquals(packet.payload, new Uint8Array(100).fill(fill));
    // A view of the caller's buffer, not a copy.
    assertStrictEquals(packet.payload.buffer, payloadBuffer.buffer);
  }
  assertEquals(payloadBuffer.subarray(0, 100), new Uint8Array(100).fill(0xbb));
});

Deno.test("the role masks accept exactly the types each side may receive", () => {
  assertEquals(
    SERVER_ALLOWED_PACKETS,
    packetTypeMask(
      CONNECTION_REQUEST_PACKET,
      CONNECTION_RESPONSE_PACKET,
      CONNECTION_KEEP_ALIVE_PACKET,
      CONNECTION_PAYLOAD_PACKET,
      CONNECTION_DISCONNECT_PACKET,
    ),
  );
  assertEquals(
    CLIENT_ALLOWED_PACKETS,
    packetTypeMask(
      CONNECTION_DENIED_PACKET,
      CONNECTION_CHALLENGE_PACKET,
      CONNECTION_KEEP_ALIVE_PACKET,
      CONNECTION_PAYLOAD_PACKET,
      CONNECTION_DISCONNECT_PACKET,
    ),
  );
});

Deno.test("writePayloadPacket() encrypts as the checked AEAD call does, across protocol id changes", () => {
  // The packet path keeps associated data and nonce on the WASM heap and
  // rewrites the protocol id only when it changes: every switch, including
  // back to 0 (the id the heap starts with), must give the bytes of the
  // general chachaEncrypt call with the associated data built by hand.
  const key = new Uint8Array(32).map((_, i) => i + 1);
  const payload = new Uint8Array(100).map((_, i) => i * 3);
  const out = new Uint8Array(MAX_PACKET_BYTES);
  const protocolIds = [0n, 1n, PROTOCOL_ID, 0n, 2n ** 64n - 1n, PROTOCOL_ID];
  for (const [i, protocolId] of protocolIds.entries()) {
    const sequence = 1000 + i;
    const bytes = writePayloadPacket(out, sequence, key, protocolId, payload);
    const additionalData = new Uint8Array(VERSION_INFO_BYTES + 9);
    additionalData.set(VERSION_INFO);
    new DataView(additionalData.buffer).setBigUint64(
      VERSION_INFO_BYTES,
      protocolId,
      true,
    );
    additionalData[VERSION_INFO_BYTES + 8] = out[0];
    const expected = new Uint8Array(payload.length + 16);
    chachaEncrypt(
      payload,
      0,
      payload.length,
      additionalData,
      additionalData.length,
      writeSequenceNonce(new Uint8Array(12), sequence),
      key,
      expected,
      0,
    );
    assertEquals(out.subarray(3, bytes), expected, `protocol id ${protocolId}`);
    const read = readPacket(out.subarray(0, bytes), {
      protocolId,
      readKey: key,
      allowedPackets: packetTypeMask(CONNECTION_PAYLOAD_PACKET),
    });
    if (typeof read === "number" || read.type !== CONNECTION_PAYLOAD_PACKET) {
      throw new Error(`protocol id ${protocolId}: dropped (${read})`);
    }
    assertEquals(read.payload, payload);
  }
});

Deno.test("readPacket() payload views follow the payloadBuffer and the payload length", () => {
  const key = new Uint8Array(32).fill(9);
  const datagram = new Uint8Array(MAX_PACKET_BYTES);
  const first = new Uint8Array(1200);
  const second = new Uint8Array(1200);
  const reads: [Uint8Array, number][] = [
    [first, 100],
    [first, 100],
    [first, 7],
    [second, 7],
    [first, 7],
    [first, 1200],
  ];
  for (const [i, [payloadBuffer, length]] of reads.entries()) {
    const payload = new Uint8Array(length).fill(i + 1);
    const bytes = writePayloadPacket(datagram, i, key, PROTOCOL_ID, payload);
    const read = readPacket(datagram.subarray(0, bytes), {
      protocolId: PROTOCOL_ID,
      readKey: key,
      allowedPackets: packetTypeMask(CONNECTION_PAYLOAD_PACKET),
      payloadBuffer,
    });
    if (typeof read === "number" || read.type !== CONNECTION_PAYLOAD_PACKET) {
      throw new Error(`read ${i}: dropped (${read})`);
    }
    assertEquals(read.payload, payload, `read ${i}`);
    assertStrictEquals(read.payload.buffer, payloadBuffer.buffer);
    assertStrictEquals(read.payload.byteOffset, payloadBuffer.byteOffset);
  }
});
