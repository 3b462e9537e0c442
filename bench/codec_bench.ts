/**
 * Codec benchmarks: the per-packet hot path against the libsodium call it
 * wraps.
 *
 * In every group the baseline is the bare WASM AEAD call: the raw Emscripten
 * export (`_crypto_aead_chacha20poly1305_ietf_encrypt` and friends) on inputs
 * that are already on the WASM heap, so it measures nothing but the
 * cryptography. The second reference point is the libsodium-wrappers call
 * (`sodium.crypto_aead_chacha20poly1305_ietf_encrypt(...)`), which copies its
 * inputs in and allocates its result on every call.
 *
 * Measured items:
 * - `writePayloadPacket`: prefix, sequence, nonce, associated data, encrypt.
 * - `readPacket`: every check of the standard, replay check, decrypt, the
 *   payload handed to the caller, replay advance. It reads a run of 1024
 *   datagrams with rising sequences in turn, so replay protection does its
 *   real per-packet work; it is reset (included in the time) only when the
 *   run starts over. By default the payload is a new Uint8Array with an
 *   ArrayBuffer of its own, and allocating one costs V8 about 0.3-0.8 µs (in
 *   Node as in Deno): most of the gap to the baseline. With a
 *   `payloadBuffer` the payload is a view of the caller's buffer instead.
 * - `decryptPrivateConnectToken`: it decrypts in place, so each iteration
 *   first copies the 1024 encrypted bytes into a work buffer (`set`, no
 *   allocation, included in the time); the baseline decrypts from the same
 *   heap ciphertext into a separate heap buffer, which needs no copy.
 *
 * Run with `deno bench -A bench/codec_bench.ts`.
 *
 * @module
 */

import sodium from "libsodium-wrappers";
import type { SodiumModule } from "../_sodium_wasm.ts";
import { setAeadBackend } from "../crypto.ts";
import { loadNativeSodium, nativeSodiumUnavailable } from "../sodium_native.ts";
import {
  CONNECTION_PAYLOAD_PACKET,
  createReplayProtection,
  MAX_PACKET_BYTES,
  MAX_PAYLOAD_BYTES,
  packetTypeMask,
  readPacket,
  type ReplayProtection,
  resetReplayProtection,
  VERSION_INFO,
  VERSION_INFO_BYTES,
  writePayloadPacket,
} from "../packet.ts";
import {
  decryptPrivateConnectToken,
  encryptPrivateConnectToken,
  writePrivateConnectToken,
} from "../token.ts";

await sodium.ready;

// deno-lint-ignore no-explicit-any
const raw = (sodium as any).libsodium as SodiumModule;

const PROTOCOL_ID = 0x1122334455667788n;
const SEQUENCE = 1000;
const MAC = 16;
const key = new Uint8Array(32).map((_, i) => i * 7 + 1);

/** Fills a buffer with a fixed pattern. */
function pattern(length: number, seed: number): Uint8Array {
  return new Uint8Array(length).map((_, i) => (i * 31 + seed) & 255);
}

/** The associated data of a payload packet with a 2-byte sequence. */
function packetAdditionalData(): Uint8Array {
  const ad = new Uint8Array(VERSION_INFO_BYTES + 8 + 1);
  ad.set(VERSION_INFO);
  new DataView(ad.buffer).setBigUint64(VERSION_INFO_BYTES, PROTOCOL_ID, true);
  ad[VERSION_INFO_BYTES + 8] = (2 << 4) | CONNECTION_PAYLOAD_PACKET;
  return ad;
}

/** The packet nonce for SEQUENCE: four zero bytes, then the u64 LE. */
function packetNonce(): Uint8Array {
  const nonce = new Uint8Array(12);
  new DataView(nonce.buffer).setUint32(4, SEQUENCE, true);
  return nonce;
}

/** Copies bytes onto the WASM heap and returns their address. */
function onHeap(bytes: Uint8Array, room = bytes.length): number {
  const pointer = raw._malloc(Math.max(room, 1));
  raw.HEAPU8.set(bytes, pointer);
  return pointer;
}

const additionalData = packetAdditionalData();
const nonce = packetNonce();
const keyPointer = onHeap(key);
const additionalDataPointer = onHeap(additionalData);
const noncePointer = onHeap(nonce);
const readOptions = {
  protocolId: PROTOCOL_ID,
  readKey: key,
  allowedPackets: packetTypeMask(CONNECTION_PAYLOAD_PACKET),
  replayProtection: createReplayProtection(),
};

for (const size of [100, 1200]) {
  const payload = pattern(size, size);
  const out = new Uint8Array(MAX_PACKET_BYTES);
  const messagePointer = onHeap(payload);
  const cipherPointer = raw._malloc(size + MAC);
  const plainPointer = raw._malloc(size);
  const datagram = out.slice(
    0,
    writePayloadPacket(out, SEQUENCE, key, PROTOCOL_ID, payload),
  );
  const ciphertext = datagram.slice(3);
  raw.HEAPU8.set(ciphertext, cipherPointer);

  // Sanity: the bare call must produce the bytes writePayloadPacket wrote.
  raw._crypto_aead_chacha20poly1305_ietf_encrypt(
    cipherPointer,
    0,
    messagePointer,
    size,
    0,
    additionalDataPointer,
    additionalData.length,
    0,
    0,
    noncePointer,
    keyPointer,
  );
  const check = raw.HEAPU8.subarray(cipherPointer, cipherPointer + size + MAC);
  if (!check.every((byte, i) => byte === ciphertext[i])) {
    throw new Error(
      "bench setup: the bare WASM call and writePayloadPacket disagree",
    );
  }
  resetReplayProtection(readOptions.replayProtection);
  const read = readPacket(datagram, readOptions);
  if (typeof read === "number") {
    throw new Error(`bench setup: readPacket dropped the datagram (${read})`);
  }

  Deno.bench({
    name: `bare WASM chacha20poly1305 encrypt ${size}`,
    group: `payload write ${size}`,
    baseline: true,
    fn() {
      raw._crypto_aead_chacha20poly1305_ietf_encrypt(
        cipherPointer,
        0,
        messagePointer,
        size,
        0,
        additionalDataPointer,
        additionalData.length,
        0,
        0,
        noncePointer,
        keyPointer,
      );
    },
  });
  Deno.bench({
    name: `writePayloadPacket ${size}`,
    group: `payload write ${size}`,
    fn() {
      writePayloadPacket(out, SEQUENCE, key, PROTOCOL_ID, payload);
    },
  });
  Deno.bench({
    name: `libsodium-wrappers encrypt ${size} (allocating)`,
    group: `payload write ${size}`,
    fn() {
      sodium.crypto_aead_chacha20poly1305_ietf_encrypt(
        payload,
        additionalData,
        null,
        nonce,
        key,
      );
    },
  });

  Deno.bench({
    name: `bare WASM chacha20poly1305 decrypt ${size}`,
    group: `payload read ${size}`,
    baseline: true,
    fn() {
      if (
        raw._crypto_aead_chacha20poly1305_ietf_decrypt(
          plainPointer,
          0,
          0,
          cipherPointer,
          size + MAC,
          0,
          additionalDataPointer,
          additionalData.length,
          0,
          noncePointer,
          keyPointer,
        ) !== 0
      ) throw new Error("bare decrypt failed");
    },
  });
  // A run of datagrams with rising sequences, read in turn: replay
  // protection does its real per-packet check and advance, and is reset only
  // when the run starts over (once every RUN reads).
  const RUN = 1024;
  const run = Array.from({ length: RUN }, (_, sequence) =>
    out.slice(
      0,
      writePayloadPacket(out, sequence, key, PROTOCOL_ID, payload),
    ));
  let next = RUN; // the first read starts a run: it resets the replay state
  const nextDatagram = (replay: ReplayProtection): Uint8Array => {
    if (next === RUN) {
      next = 0;
      resetReplayProtection(replay);
    }
    return run[next++];
  };
  Deno.bench({
    name: `readPacket payload ${size}`,
    group: `payload read ${size}`,
    fn() {
      const replay = readOptions.replayProtection;
      if (typeof readPacket(nextDatagram(replay), readOptions) === "number") {
        throw new Error("readPacket dropped the datagram");
      }
    },
  });
  const bufferedOptions = {
    ...readOptions,
    replayProtection: createReplayProtection(),
    payloadBuffer: new Uint8Array(MAX_PAYLOAD_BYTES),
  };
  Deno.bench({
    name: `readPacket payload ${size} into a payloadBuffer`,
    group: `payload read ${size}`,
    fn() {
      const replay = bufferedOptions.replayProtection;
      if (
        typeof readPacket(nextDatagram(replay), bufferedOptions) === "number"
      ) {
        throw new Error("readPacket dropped the datagram");
      }
    },
  });
  Deno.bench({
    name: `libsodium-wrappers decrypt ${size} (allocating)`,
    group: `payload read ${size}`,
    fn() {
      sodium.crypto_aead_chacha20poly1305_ietf_decrypt(
        null,
        ciphertext,
        additionalData,
        nonce,
        key,
      );
    },
  });
}

// Private connect token: 1008 bytes of XChaCha20-Poly1305 plus the MAC.
const privateKey = pattern(32, 3);
const tokenNonce = pattern(24, 5);
const expireTimestamp = 1700000045n;
const privatePlain = writePrivateConnectToken({
  clientId: 42n,
  timeoutSeconds: 5,
  serverAddresses: [{ hostname: "127.0.0.1", port: 40000 }],
  clientToServerKey: pattern(32, 7),
  serverToClientKey: pattern(32, 9),
  userData: pattern(256, 11),
});
const privateEncrypted = privatePlain.slice();
encryptPrivateConnectToken(
  privateEncrypted,
  PROTOCOL_ID,
  expireTimestamp,
  tokenNonce,
  privateKey,
);
const tokenAdditionalData = new Uint8Array(VERSION_INFO_BYTES + 16);
tokenAdditionalData.set(VERSION_INFO);
new DataView(tokenAdditionalData.buffer).setBigUint64(
  VERSION_INFO_BYTES,
  PROTOCOL_ID,
  true,
);
new DataView(tokenAdditionalData.buffer).setBigUint64(
  VERSION_INFO_BYTES + 8,
  expireTimestamp,
  true,
);
const tokenCipherPointer = onHeap(privateEncrypted);
const tokenPlainPointer = raw._malloc(privateEncrypted.length);
const tokenAdditionalDataPointer = onHeap(tokenAdditionalData);
const tokenNoncePointer = onHeap(tokenNonce);
const privateKeyPointer = onHeap(privateKey);
const tokenWork = new Uint8Array(privateEncrypted.length);

Deno.bench({
  name: "bare WASM xchacha20poly1305 decrypt 1024",
  group: "private token decrypt",
  baseline: true,
  fn() {
    if (
      raw._crypto_aead_xchacha20poly1305_ietf_decrypt(
        tokenPlainPointer,
        0,
        0,
        tokenCipherPointer,
        privateEncrypted.length,
        0,
        tokenAdditionalDataPointer,
        tokenAdditionalData.length,
        0,
        tokenNoncePointer,
        privateKeyPointer,
      ) !== 0
    ) throw new Error("bare decrypt failed");
  },
});
Deno.bench({
  name: "decryptPrivateConnectToken (copy + decrypt in place)",
  group: "private token decrypt",
  fn() {
    tokenWork.set(privateEncrypted);
    if (
      !decryptPrivateConnectToken(
        tokenWork,
        PROTOCOL_ID,
        expireTimestamp,
        tokenNonce,
        privateKey,
      )
    ) throw new Error("decryptPrivateConnectToken failed");
  },
});
Deno.bench({
  name: "libsodium-wrappers xchacha decrypt 1024 (allocating)",
  group: "private token decrypt",
  fn() {
    sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(
      null,
      privateEncrypted,
      tokenAdditionalData,
      tokenNonce,
      privateKey,
    );
  },
});

// Native libsodium (sodium_native.ts), where it loads: the same packet
// functions on the native backend, against the bare native call on buffers
// already in place. Skipped without the library or --allow-ffi.
if (nativeSodiumUnavailable() === undefined) {
  const native = loadNativeSodium();
  const sodiumLibrary = Deno.dlopen("libsodium.so.23", {
    crypto_aead_chacha20poly1305_ietf_encrypt: {
      parameters: [
        "buffer",
        "pointer",
        "buffer",
        "usize",
        "buffer",
        "usize",
        "pointer",
        "buffer",
        "buffer",
      ],
      result: "i32",
    },
    crypto_aead_chacha20poly1305_ietf_decrypt: {
      parameters: [
        "buffer",
        "pointer",
        "pointer",
        "buffer",
        "usize",
        "buffer",
        "usize",
        "buffer",
        "buffer",
      ],
      result: "i32",
    },
  });
  const bare = sodiumLibrary.symbols;
  for (const size of [100, 1200]) {
    const payload = pattern(size, size);
    const out = new Uint8Array(MAX_PACKET_BYTES);
    const sealed = new Uint8Array(size + MAC);
    const opened = new Uint8Array(size);
    // Lengths as bigints made once: the fast way to pass a 64-bit length.
    const sizeBytes = BigInt(size);
    const sealedBytes = BigInt(size + MAC);
    const additionalDataBytes = BigInt(additionalData.length);
    setAeadBackend(native);
    const run = Array.from({ length: 1024 }, (_, sequence) =>
      out.slice(
        0,
        writePayloadPacket(out, sequence, key, PROTOCOL_ID, payload),
      ));
    setAeadBackend(undefined);
    bare.crypto_aead_chacha20poly1305_ietf_encrypt(
      sealed,
      null,
      payload,
      sizeBytes,
      additionalData,
      additionalDataBytes,
      null,
      nonce,
      key,
    );
    const options = {
      protocolId: PROTOCOL_ID,
      readKey: key,
      allowedPackets: packetTypeMask(CONNECTION_PAYLOAD_PACKET),
      replayProtection: createReplayProtection(),
      payloadBuffer: new Uint8Array(MAX_PAYLOAD_BYTES),
    };
    let next = run.length;
    Deno.bench({
      name: `bare native chacha20poly1305 encrypt ${size}`,
      group: `native payload write ${size}`,
      baseline: true,
      fn() {
        bare.crypto_aead_chacha20poly1305_ietf_encrypt(
          sealed,
          null,
          payload,
          sizeBytes,
          additionalData,
          additionalDataBytes,
          null,
          nonce,
          key,
        );
      },
    });
    Deno.bench({
      name: `writePayloadPacket ${size} (native)`,
      group: `native payload write ${size}`,
      fn() {
        setAeadBackend(native);
        writePayloadPacket(out, SEQUENCE, key, PROTOCOL_ID, payload);
        setAeadBackend(undefined);
      },
    });
    Deno.bench({
      name: `bare native chacha20poly1305 decrypt ${size}`,
      group: `native payload read ${size}`,
      baseline: true,
      fn() {
        if (
          bare.crypto_aead_chacha20poly1305_ietf_decrypt(
            opened,
            null,
            null,
            sealed,
            sealedBytes,
            additionalData,
            additionalDataBytes,
            nonce,
            key,
          ) !== 0
        ) throw new Error("bare native decrypt failed");
      },
    });
    Deno.bench({
      name: `readPacket payload ${size} into a payloadBuffer (native)`,
      group: `native payload read ${size}`,
      fn() {
        if (next === run.length) {
          next = 0;
          resetReplayProtection(options.replayProtection);
        }
        setAeadBackend(native);
        const packet = readPacket(run[next++], options);
        setAeadBackend(undefined);
        if (typeof packet === "number") {
          throw new Error("readPacket dropped the datagram");
        }
      },
    });
  }
}
