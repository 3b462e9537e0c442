/**
 * Internal: libsodium compiled to WebAssembly (`npm:libsodium-wrappers`),
 * called on memory preallocated on its heap. `crypto.ts` wraps the general
 * AEAD backend with argument checks; `packet.ts` uses the packet functions
 * at the end, which keep the packet nonce and associated data on the heap.
 *
 * Nothing here checks its arguments: callers pass valid ones.
 *
 * The package is imported by its full `npm:` specifier (the same version
 * range as deno.json's import map), so the file loads from a checkout or a
 * git submodule of a project with another deno.json or none.
 *
 * @module
 */

import sodium from "npm:libsodium-wrappers@^0.8.4";
import type { AeadBackend, AeadConstruction } from "./crypto.ts";

await sodium.ready;

// Sizes, as crypto.ts exports them (not imported: crypto.ts imports this
// module, and the constants must exist before it finishes loading).
const KEY_BYTES = 32;
const MAC_BYTES = 16;
const CHACHA_NONCE_BYTES = 12;
const XCHACHA_NONCE_BYTES = 24;
const CHACHA: AeadConstruction = 0;

/** The Emscripten module behind the wrappers: raw functions and the heap. */
export interface SodiumModule {
  HEAPU8: Uint8Array;
  _malloc(size: number): number;
  _crypto_aead_chacha20poly1305_ietf_encrypt(
    c: number,
    clen: number,
    m: number,
    mlen: number,
    mlenHigh: number,
    ad: number,
    adlen: number,
    adlenHigh: number,
    nsec: number,
    npub: number,
    k: number,
  ): number;
  _crypto_aead_chacha20poly1305_ietf_decrypt(
    m: number,
    mlen: number,
    nsec: number,
    c: number,
    clen: number,
    clenHigh: number,
    ad: number,
    adlen: number,
    adlenHigh: number,
    npub: number,
    k: number,
  ): number;
  _crypto_aead_xchacha20poly1305_ietf_encrypt(
    c: number,
    clen: number,
    m: number,
    mlen: number,
    mlenHigh: number,
    ad: number,
    adlen: number,
    adlenHigh: number,
    nsec: number,
    npub: number,
    k: number,
  ): number;
  _crypto_aead_xchacha20poly1305_ietf_decrypt(
    m: number,
    mlen: number,
    nsec: number,
    c: number,
    clen: number,
    clenHigh: number,
    ad: number,
    adlen: number,
    adlenHigh: number,
    npub: number,
    k: number,
  ): number;
}

const lib = (sodium as unknown as { libsodium: SodiumModule }).libsodium;

/** The largest message the preallocated heap area takes, MAC included. */
export const MAX_MESSAGE_BYTES = 4096;
/** The most associated data a call takes. */
export const MAX_ADDITIONAL_DATA_BYTES = 64;
/**
 * Room before and after the message area. A source holding a few bytes
 * before and after the message (a packet header, a token's MAC space) is
 * copied onto the heap whole, so no `subarray` view is made per call.
 */
const HEADROOM = 16;
const TAILROOM = 64;

const keyPointer = lib._malloc(KEY_BYTES);
const noncePointer = lib._malloc(XCHACHA_NONCE_BYTES);
const additionalDataPointer = lib._malloc(MAX_ADDITIONAL_DATA_BYTES);
const messagePointer = lib._malloc(HEADROOM + MAX_MESSAGE_BYTES + TAILROOM) +
  HEADROOM;

/**
 * Views of the first `length` bytes of the message area, made once per
 * length and reused, so copying a result out allocates nothing. They are
 * remade if the WASM memory grows (which replaces its buffer). The array is
 * preallocated: grown index by index it would turn sparse, and slow.
 */
const heapViews: (Uint8Array | undefined)[] = new Array(MAX_MESSAGE_BYTES + 1)
  .fill(undefined);
/** The heap the views were made on: Emscripten replaces `HEAPU8` on growth. */
let heapViewsHeap: Uint8Array = lib.HEAPU8;

function messageView(length: number): Uint8Array {
  const heap = lib.HEAPU8;
  if (heap !== heapViewsHeap) {
    heapViews.fill(undefined);
    heapViewsHeap = heap;
  }
  let view = heapViews[length];
  if (view === undefined) {
    view = new Uint8Array(heap.buffer, messagePointer, length);
    heapViews[length] = view;
  }
  return view;
}

/** Copies the message (and what fits around it) onto the heap. */
function loadMessage(
  heap: Uint8Array,
  source: Uint8Array,
  sourceOffset: number,
  sourceLength: number,
): void {
  if (
    sourceOffset <= HEADROOM &&
    source.length - sourceOffset - sourceLength <= TAILROOM
  ) {
    // The bytes around the message land in the head and tail room.
    heap.set(source, messagePointer - sourceOffset);
  } else {
    heap.set(
      source.subarray(sourceOffset, sourceOffset + sourceLength),
      messagePointer,
    );
  }
}

function loadInputs(
  source: Uint8Array,
  sourceOffset: number,
  sourceLength: number,
  additionalData: Uint8Array,
  additionalDataLength: number,
  nonce: Uint8Array,
  key: Uint8Array,
): void {
  const heap = lib.HEAPU8;
  heap.set(key, keyPointer);
  heap.set(nonce, noncePointer);
  if (additionalDataLength > 0) {
    if (additionalDataLength === additionalData.length) {
      heap.set(additionalData, additionalDataPointer);
    } else {
      heap.set(
        additionalData.subarray(0, additionalDataLength),
        additionalDataPointer,
      );
    }
  }
  loadMessage(heap, source, sourceOffset, sourceLength);
}

/** libsodium compiled to WebAssembly: the default backend. */
export const wasmBackend: AeadBackend = {
  name: "wasm",
  seal(
    construction,
    source,
    sourceOffset,
    length,
    additionalData,
    additionalDataLength,
    nonce,
    key,
    destination,
    destinationOffset,
  ) {
    loadInputs(
      source,
      sourceOffset,
      length,
      additionalData,
      additionalDataLength,
      nonce,
      key,
    );
    const aead = construction === CHACHA
      ? lib._crypto_aead_chacha20poly1305_ietf_encrypt
      : lib._crypto_aead_xchacha20poly1305_ietf_encrypt;
    aead(
      messagePointer,
      0,
      messagePointer,
      length,
      0,
      additionalDataLength > 0 ? additionalDataPointer : 0,
      additionalDataLength,
      0,
      0,
      noncePointer,
      keyPointer,
    );
    destination.set(messageView(length + MAC_BYTES), destinationOffset);
  },
  open(
    construction,
    source,
    sourceOffset,
    length,
    additionalData,
    additionalDataLength,
    nonce,
    key,
    destination,
    destinationOffset,
  ) {
    loadInputs(
      source,
      sourceOffset,
      length,
      additionalData,
      additionalDataLength,
      nonce,
      key,
    );
    const aead = construction === CHACHA
      ? lib._crypto_aead_chacha20poly1305_ietf_decrypt
      : lib._crypto_aead_xchacha20poly1305_ietf_decrypt;
    const result = aead(
      messagePointer,
      0,
      0,
      messagePointer,
      length,
      0,
      additionalDataLength > 0 ? additionalDataPointer : 0,
      additionalDataLength,
      0,
      noncePointer,
      keyPointer,
    );
    if (result !== 0) return false;
    destination.set(messageView(length - MAC_BYTES), destinationOffset);
    return true;
  },
};

// ---------------------------------------------------------------------------
// Packets: ChaCha20-Poly1305-IETF with the packet's associated data (version
// info, protocol id, prefix byte) and nonce (four zero bytes, then the
// sequence as a u64 little-endian) kept in their own heap area. Only the
// prefix byte and the sequence change from packet to packet, so they are
// the only bytes written per call: two `set` copies fewer than the general
// path, which is most of its fixed cost at 100 bytes.

/** Bytes of a packet's associated data: version info, protocol id, prefix. */
const PACKET_ADDITIONAL_DATA_BYTES = 13 + 8 + 1;
const PACKET_PREFIX_OFFSET = PACKET_ADDITIONAL_DATA_BYTES - 1;
const packetAdditionalDataPointer = lib._malloc(PACKET_ADDITIONAL_DATA_BYTES);
const packetNoncePointer = lib._malloc(CHACHA_NONCE_BYTES);
lib.HEAPU8.fill(0, packetNoncePointer, packetNoncePointer + 4);

/**
 * Puts the packet associated data's first 21 bytes (version info and
 * protocol id) on the heap, for the packet functions below. Called when the
 * protocol id changes.
 *
 * @param additionalData At least the 21 bytes; the prefix byte is not used.
 */
export function loadPacketAdditionalData(additionalData: Uint8Array): void {
  lib.HEAPU8.set(
    additionalData.subarray(0, PACKET_PREFIX_OFFSET),
    packetAdditionalDataPointer,
  );
}

/** Writes prefix, nonce and key; copies the message onto the heap. */
function loadPacket(
  prefix: number,
  sequenceLow: number,
  sequenceHigh: number,
  key: Uint8Array,
  source: Uint8Array,
  sourceOffset: number,
  sourceLength: number,
): void {
  const heap = lib.HEAPU8;
  heap[packetAdditionalDataPointer + PACKET_PREFIX_OFFSET] = prefix;
  const n = packetNoncePointer;
  heap[n + 4] = sequenceLow;
  heap[n + 5] = sequenceLow >>> 8;
  heap[n + 6] = sequenceLow >>> 16;
  heap[n + 7] = sequenceLow >>> 24;
  heap[n + 8] = sequenceHigh;
  heap[n + 9] = sequenceHigh >>> 8;
  heap[n + 10] = sequenceHigh >>> 16;
  heap[n + 11] = sequenceHigh >>> 24;
  heap.set(key, keyPointer);
  loadMessage(heap, source, sourceOffset, sourceLength);
}

/**
 * Encrypts a packet body: `length` bytes of `source` at `sourceOffset`,
 * ciphertext and MAC to `destination` at `destinationOffset`. The
 * associated data must have been loaded with
 * {@linkcode loadPacketAdditionalData}.
 */
export function sealPacketBody(
  prefix: number,
  sequenceLow: number,
  sequenceHigh: number,
  key: Uint8Array,
  source: Uint8Array,
  sourceOffset: number,
  length: number,
  destination: Uint8Array,
  destinationOffset: number,
): void {
  loadPacket(
    prefix,
    sequenceLow,
    sequenceHigh,
    key,
    source,
    sourceOffset,
    length,
  );
  lib._crypto_aead_chacha20poly1305_ietf_encrypt(
    messagePointer,
    0,
    messagePointer,
    length,
    0,
    packetAdditionalDataPointer,
    PACKET_ADDITIONAL_DATA_BYTES,
    0,
    0,
    packetNoncePointer,
    keyPointer,
  );
  destination.set(messageView(length + MAC_BYTES), destinationOffset);
}

/**
 * Verifies and decrypts a packet body of `length` bytes (MAC included);
 * writes the plaintext only when it verified, and returns whether it did.
 */
export function openPacketBody(
  prefix: number,
  sequenceLow: number,
  sequenceHigh: number,
  key: Uint8Array,
  source: Uint8Array,
  sourceOffset: number,
  length: number,
  destination: Uint8Array,
  destinationOffset: number,
): boolean {
  loadPacket(
    prefix,
    sequenceLow,
    sequenceHigh,
    key,
    source,
    sourceOffset,
    length,
  );
  const result = lib._crypto_aead_chacha20poly1305_ietf_decrypt(
    messagePointer,
    0,
    0,
    messagePointer,
    length,
    0,
    packetAdditionalDataPointer,
    PACKET_ADDITIONAL_DATA_BYTES,
    0,
    packetNoncePointer,
    keyPointer,
  );
  if (result !== 0) return false;
  destination.set(messageView(length - MAC_BYTES), destinationOffset);
  return true;
}
