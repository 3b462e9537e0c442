// The AEAD backend interface's packet fast path (sealPacket, openPacket):
// the same bytes as seal and open with the packet's nonce and associated
// data built by hand; packet.ts takes it through aeadBackend() when the
// backend has it and falls back to seal and open when not; packets written
// one way read the other way, on WebAssembly and on native libsodium.

import {
  AEAD_CHACHA20POLY1305_IETF,
  type AeadBackend,
  aeadBackend,
  MAC_BYTES,
  setAeadBackend,
} from "../crypto.ts";
import {
  CHALLENGE_TOKEN_BYTES,
  CONNECTION_CHALLENGE_PACKET,
  CONNECTION_DENIED_PACKET,
  CONNECTION_DISCONNECT_PACKET,
  CONNECTION_KEEP_ALIVE_PACKET,
  CONNECTION_PAYLOAD_PACKET,
  CONNECTION_RESPONSE_PACKET,
  createReplayProtection,
  type EncryptedPacket,
  MAX_PACKET_BYTES,
  MAX_PAYLOAD_BYTES,
  packetTypeMask,
  readPacket,
  type Sequence,
  VERSION_INFO,
  VERSION_INFO_BYTES,
  writePacket,
  writePayloadPacket,
  writeSequenceNonce,
} from "../packet.ts";
import { loadNativeSodium, nativeSodiumUnavailable } from "../sodium_native.ts";
import { createRandom } from "../simulator.ts";
import {
  assert,
  assertEquals,
  assertFalse,
  assertStrictEquals,
  assertThrows,
} from "./_assert.ts";
import { pattern } from "./_vectors.ts";

const wasm = aeadBackend();
/** The WebAssembly backend without its packet methods: the generic path. */
const generic: AeadBackend = {
  name: "generic",
  seal: wasm.seal,
  open: wasm.open,
};

const KEY = pattern(32, 5);
const TWO_64 = 2n ** 64n;
const SEQUENCES: Sequence[] = [
  0,
  1,
  255,
  256,
  0xffffffff,
  2 ** 32,
  2 ** 40 + 3,
  2 ** 53 - 1,
  2n ** 63n,
  TWO_64 - 1n,
];
const PROTOCOL_IDS = [
  0n,
  1n,
  0xffffffffn,
  0x100000000n,
  0x1122334455667788n,
  TWO_64 - 1n,
  0n,
];
const PACKETS: EncryptedPacket[] = [
  { type: CONNECTION_DENIED_PACKET },
  {
    type: CONNECTION_CHALLENGE_PACKET,
    challengeTokenSequence: TWO_64 - 1n,
    challengeTokenData: pattern(CHALLENGE_TOKEN_BYTES, 1),
  },
  {
    type: CONNECTION_RESPONSE_PACKET,
    challengeTokenSequence: 7n,
    challengeTokenData: pattern(CHALLENGE_TOKEN_BYTES, 2),
  },
  { type: CONNECTION_KEEP_ALIVE_PACKET, clientIndex: 3, maxClients: 64 },
  { type: CONNECTION_PAYLOAD_PACKET, payload: pattern(1, 3) },
  { type: CONNECTION_PAYLOAD_PACKET, payload: pattern(100, 4) },
  { type: CONNECTION_PAYLOAD_PACKET, payload: pattern(MAX_PAYLOAD_BYTES, 5) },
  { type: CONNECTION_DISCONNECT_PACKET },
];

/** Runs `fn` with `backend`, restoring the default after. */
function withBackend<T>(backend: AeadBackend, fn: () => T): T {
  setAeadBackend(backend);
  try {
    return fn();
  } finally {
    setAeadBackend(undefined);
  }
}

function write(
  packet: EncryptedPacket,
  sequence: Sequence,
  protocolId: bigint,
): Uint8Array {
  const out = new Uint8Array(MAX_PACKET_BYTES);
  return out.slice(0, writePacket(out, packet, sequence, KEY, protocolId));
}

/** Reads a datagram and returns the packet, or the drop reason. */
function read(datagram: Uint8Array, protocolId: bigint) {
  return readPacket(datagram, {
    protocolId,
    readKey: KEY,
    allowedPackets: packetTypeMask(
      CONNECTION_DENIED_PACKET,
      CONNECTION_CHALLENGE_PACKET,
      CONNECTION_RESPONSE_PACKET,
      CONNECTION_KEEP_ALIVE_PACKET,
      CONNECTION_PAYLOAD_PACKET,
      CONNECTION_DISCONNECT_PACKET,
    ),
    replayProtection: createReplayProtection(),
  });
}

function packetAdditionalData(protocolId: bigint, prefix: number): Uint8Array {
  const additionalData = new Uint8Array(VERSION_INFO_BYTES + 9);
  additionalData.set(VERSION_INFO);
  new DataView(additionalData.buffer).setBigUint64(
    VERSION_INFO_BYTES,
    protocolId,
    true,
  );
  additionalData[VERSION_INFO_BYTES + 8] = prefix;
  return additionalData;
}

function bytes(random: () => number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = Math.floor(random() * 256);
  return out;
}

function halves(value: bigint): [number, number] {
  return [Number(value & 0xffffffffn), Number(value >> 32n)];
}

Deno.test("the WebAssembly backend has the packet fast path", () => {
  assertStrictEquals(wasm.name, "wasm");
  assertStrictEquals(typeof wasm.sealPacket, "function");
  assertStrictEquals(typeof wasm.openPacket, "function");
});

Deno.test("sealPacket() and openPacket() give the bytes of seal() and open() with the packet nonce and associated data built by hand", () => {
  const sealPacket = wasm.sealPacket!;
  const openPacket = wasm.openPacket!;
  const random = createRandom(12);
  for (let i = 0; i < 500; i++) {
    // Protocol ids that change in the low half only, the high half only,
    // both or neither, as the backend rewrites them only when they change.
    const protocolId = i % 5 === 0
      ? PROTOCOL_IDS[i % PROTOCOL_IDS.length]
      : i % 5 === 1
      ? BigInt(Math.floor(random() * 2 ** 32))
      : i % 5 === 2
      ? BigInt(Math.floor(random() * 2 ** 32)) << 32n
      : BigInt.asUintN(64, BigInt(Math.floor(random() * 2 ** 53)) << 11n);
    const sequence = BigInt.asUintN(
      64,
      (BigInt(Math.floor(random() * 2 ** 32)) << 32n) |
        BigInt(Math.floor(random() * 2 ** 32)),
    );
    const prefix = Math.floor(random() * 256);
    const length = Math.floor(random() * (MAX_PAYLOAD_BYTES + 1));
    const offset = Math.floor(random() * 40);
    const source = bytes(random, offset + length + Math.floor(random() * 80));
    const key = bytes(random, 32);
    const [protocolIdLow, protocolIdHigh] = halves(protocolId);
    const [sequenceLow, sequenceHigh] = halves(sequence);
    const what = `case ${i}: protocol id ${protocolId}, sequence ${sequence}`;

    const expected = new Uint8Array(length + MAC_BYTES);
    const additionalData = packetAdditionalData(protocolId, prefix);
    const nonce = writeSequenceNonce(new Uint8Array(12), sequence);
    wasm.seal(
      AEAD_CHACHA20POLY1305_IETF,
      source,
      offset,
      length,
      additionalData,
      additionalData.length,
      nonce,
      key,
      expected,
      0,
    );
    const sealed = new Uint8Array(length + MAC_BYTES + 3);
    sealPacket(
      source,
      offset,
      length,
      prefix,
      protocolIdLow,
      protocolIdHigh,
      sequenceLow,
      sequenceHigh,
      key,
      sealed,
      3,
    );
    assertEquals(sealed.subarray(3), expected, what);

    const opened = new Uint8Array(length);
    assert(
      openPacket(
        expected,
        0,
        expected.length,
        prefix,
        protocolIdLow,
        protocolIdHigh,
        sequenceLow,
        sequenceHigh,
        key,
        opened,
        0,
      ),
      what,
    );
    assertEquals(opened, source.subarray(offset, offset + length), what);
    const viaOpen = new Uint8Array(length);
    assert(
      wasm.open(
        AEAD_CHACHA20POLY1305_IETF,
        sealed,
        3,
        sealed.length - 3,
        additionalData,
        additionalData.length,
        nonce,
        key,
        viaOpen,
        0,
      ),
      what,
    );
    assertEquals(viaOpen, opened, what);

    // Another prefix, protocol id or sequence fails and writes nothing.
    for (
      const [p, low, high, s] of [
        [prefix ^ 1, protocolIdLow, protocolIdHigh, sequenceLow],
        [prefix, protocolIdLow ^ 1, protocolIdHigh, sequenceLow],
        [
          prefix,
          protocolIdLow,
          (protocolIdHigh ^ 0x80000000) >>> 0,
          sequenceLow,
        ],
        [prefix, protocolIdLow, protocolIdHigh, (sequenceLow ^ 1) >>> 0],
      ]
    ) {
      const untouched = new Uint8Array(length).fill(0xee);
      assertFalse(
        openPacket(
          expected,
          0,
          expected.length,
          p,
          low,
          high,
          s,
          sequenceHigh,
          key,
          untouched,
          0,
        ),
        what,
      );
      assert(untouched.every((byte) => byte === 0xee), what);
    }
  }
});

Deno.test("packets written on the fast path and on the generic path are byte-identical, and each reads the other's", () => {
  for (const protocolId of PROTOCOL_IDS) {
    for (const packet of PACKETS) {
      for (const sequence of SEQUENCES) {
        const what =
          `type ${packet.type}, sequence ${sequence}, protocol id ${protocolId}`;
        const fast = write(packet, sequence, protocolId);
        const slow = withBackend(
          generic,
          () => write(packet, sequence, protocolId),
        );
        assertEquals(fast, slow, what);
        const expected = {
          ...packet,
          sequence: typeof sequence === "bigint" &&
              sequence <= BigInt(Number.MAX_SAFE_INTEGER)
            ? Number(sequence)
            : sequence,
        };
        assertEquals(
          withBackend(generic, () => read(fast, protocolId)),
          expected,
          what,
        );
        assertEquals(read(slow, protocolId), expected, what);
        // A flipped MAC bit is dropped either way.
        const forged = fast.slice();
        forged[forged.length - 1] ^= 1;
        assertStrictEquals(
          typeof read(forged, protocolId),
          "number",
          what,
        );
        assertStrictEquals(
          typeof withBackend(generic, () => read(forged, protocolId)),
          "number",
          what,
        );
      }
    }
  }
});

Deno.test("packet.ts encrypts through the backend's packet methods when it has them, through seal and open when not", () => {
  const calls = { seal: 0, open: 0, sealPacket: 0, openPacket: 0 };
  const counting: AeadBackend = {
    name: "counting",
    seal(...args) {
      calls.seal++;
      wasm.seal(...args);
    },
    open(...args) {
      calls.open++;
      return wasm.open(...args);
    },
    sealPacket(...args) {
      calls.sealPacket++;
      wasm.sealPacket!(...args);
    },
    openPacket(...args) {
      calls.openPacket++;
      return wasm.openPacket!(...args);
    },
  };
  const countingGeneric: AeadBackend = {
    name: "counting generic",
    seal: counting.seal,
    open: counting.open,
  };
  const payload = pattern(100, 9);
  const out = new Uint8Array(MAX_PACKET_BYTES);
  const options = {
    protocolId: 5n,
    readKey: KEY,
    allowedPackets: packetTypeMask(CONNECTION_PAYLOAD_PACKET),
  };
  withBackend(counting, () => {
    const length = writePayloadPacket(out, 1, KEY, 5n, payload);
    const packet = readPacket(out.subarray(0, length), options);
    assert(typeof packet !== "number" && packet.type === 5, String(packet));
  });
  assertEquals(calls, { seal: 0, open: 0, sealPacket: 1, openPacket: 1 });
  withBackend(countingGeneric, () => {
    const length = writePayloadPacket(out, 2, KEY, 5n, payload);
    const packet = readPacket(out.subarray(0, length), options);
    assert(typeof packet !== "number" && packet.type === 5, String(packet));
  });
  assertEquals(calls, { seal: 1, open: 1, sealPacket: 1, openPacket: 1 });
  // A read key the fast path cannot take goes the checked way and throws
  // its usual error, as before.
  withBackend(counting, () => {
    const length = writePayloadPacket(out, 3, KEY, 5n, payload);
    assertThrows(
      () =>
        readPacket(out.subarray(0, length), {
          ...options,
          readKey: new Uint8Array(31),
        }),
      RangeError,
      "Cannot use key: 31 bytes",
    );
  });
});

Deno.test("setAeadBackend() takes both packet methods or neither", () => {
  const { sealPacket, openPacket } = wasm;
  for (
    const backend of [
      { name: "half", seal: wasm.seal, open: wasm.open, sealPacket },
      { name: "half", seal: wasm.seal, open: wasm.open, openPacket },
      {
        name: "bad",
        seal: wasm.seal,
        open: wasm.open,
        sealPacket,
        openPacket: 1,
      },
    ]
  ) {
    assertThrows(
      () => setAeadBackend(backend as unknown as AeadBackend),
      TypeError,
      "sealPacket and openPacket",
    );
    assertStrictEquals(aeadBackend(), wasm);
  }
  withBackend(generic, () => assertStrictEquals(aeadBackend(), generic));
  withBackend(
    { name: "full", seal: wasm.seal, open: wasm.open, sealPacket, openPacket },
    () => assertStrictEquals(aeadBackend().name, "full"),
  );
});

const nativeUnavailable = nativeSodiumUnavailable();

Deno.test({
  name:
    "packets from the WebAssembly fast path read on native libsodium, which has no fast path, and the other way round",
  ignore: nativeUnavailable !== undefined,
  fn() {
    const native = loadNativeSodium();
    assertStrictEquals(native.sealPacket, undefined);
    for (const protocolId of PROTOCOL_IDS) {
      for (const packet of PACKETS) {
        for (const sequence of [0, 2 ** 32, TWO_64 - 1n]) {
          const what =
            `type ${packet.type}, sequence ${sequence}, protocol id ${protocolId}`;
          const fast = write(packet, sequence, protocolId);
          const onNative = withBackend(
            native,
            () => write(packet, sequence, protocolId),
          );
          assertEquals(fast, onNative, what);
          const fromNative = withBackend(native, () => read(fast, protocolId));
          assertEquals(read(onNative, protocolId), fromNative, what);
          assertStrictEquals(typeof fromNative, "object", what);
        }
      }
    }
  },
});
