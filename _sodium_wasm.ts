/**
 * Internal: libsodium compiled to WebAssembly (`npm:libsodium-wrappers`),
 * called on memory preallocated on its heap: the default AEAD backend. The
 * packet fast path (`sealPacket`, `openPacket`) keeps a packet's nonce and
 * associated data on the heap between calls. `crypto.ts` wraps the backend
 * with argument checks; `packet.ts` calls the packet methods through the
 * backend interface.
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
import {
  AEAD_CHACHA20POLY1305_IETF as CHACHA,
  type AeadBackend,
  CHACHA_NONCE_BYTES,
  HEADROOM,
  KEY_BYTES,
  MAC_BYTES,
  MAX_ADDITIONAL_DATA_BYTES,
  MAX_MESSAGE_BYTES,
  PACKET_ADDITIONAL_DATA_BYTES,
  TAILROOM,
  VERSION_INFO,
  VERSION_INFO_BYTES,
  XCHACHA_NONCE_BYTES,
} from "./_aead.ts";

await sodium.ready;

/** The Emscripten module behind the wrappers: raw functions and the heap. */
export interface SodiumModule {
  /** The WASM memory; replaced by a new view when the memory grows. */
  HEAPU8: Uint8Array;
  /** Allocates `size` bytes on the heap; returns the pointer. */
  _malloc(size: number): number;
  /** libsodium's function of that name; 64-bit lengths as two numbers. */
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
  /** libsodium's function of that name; 64-bit lengths as two numbers. */
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
  /** libsodium's function of that name; 64-bit lengths as two numbers. */
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
  /** libsodium's function of that name; 64-bit lengths as two numbers. */
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

// ---------------------------------------------------------------------------
// Packets: ChaCha20-Poly1305-IETF with the packet's associated data (version
// info, protocol id, prefix byte) and nonce (four zero bytes, then the
// sequence as a u64 little-endian) kept in their own heap area. The version
// info never changes and the protocol id rarely does, so per packet only the
// prefix byte and the sequence are written, byte by byte: two `set` copies
// fewer than the general path, which is most of its fixed cost at 100 bytes.

const PACKET_PROTOCOL_ID_OFFSET = VERSION_INFO_BYTES;
const PACKET_PREFIX_OFFSET = PACKET_ADDITIONAL_DATA_BYTES - 1;
const packetAdditionalDataPointer = lib._malloc(PACKET_ADDITIONAL_DATA_BYTES);
const packetNoncePointer = lib._malloc(CHACHA_NONCE_BYTES);
lib.HEAPU8.set(VERSION_INFO, packetAdditionalDataPointer);
lib.HEAPU8.fill(
  0,
  packetAdditionalDataPointer + PACKET_PROTOCOL_ID_OFFSET,
  packetAdditionalDataPointer + PACKET_PREFIX_OFFSET,
);
lib.HEAPU8.fill(0, packetNoncePointer, packetNoncePointer + 4);
/** The protocol id on the heap, as 32-bit halves (0 to begin with). */
let packetProtocolIdLow = 0;
let packetProtocolIdHigh = 0;

/** Writes a 32-bit value little-endian at `offset` of the heap. */
function writeUint32(heap: Uint8Array, offset: number, value: number): void {
  heap[offset] = value;
  heap[offset + 1] = value >>> 8;
  heap[offset + 2] = value >>> 16;
  heap[offset + 3] = value >>> 24;
}

/** Writes what changed of associated data and nonce, the key, the message. */
function loadPacket(
  source: Uint8Array,
  sourceOffset: number,
  sourceLength: number,
  prefix: number,
  protocolIdLow: number,
  protocolIdHigh: number,
  sequenceLow: number,
  sequenceHigh: number,
  key: Uint8Array,
): void {
  const heap = lib.HEAPU8;
  if (
    protocolIdLow !== packetProtocolIdLow ||
    protocolIdHigh !== packetProtocolIdHigh
  ) {
    const offset = packetAdditionalDataPointer + PACKET_PROTOCOL_ID_OFFSET;
    writeUint32(heap, offset, protocolIdLow);
    writeUint32(heap, offset + 4, protocolIdHigh);
    packetProtocolIdLow = protocolIdLow;
    packetProtocolIdHigh = protocolIdHigh;
  }
  heap[packetAdditionalDataPointer + PACKET_PREFIX_OFFSET] = prefix;
  writeUint32(heap, packetNoncePointer + 4, sequenceLow);
  writeUint32(heap, packetNoncePointer + 8, sequenceHigh);
  heap.set(key, keyPointer);
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
  sealPacket(
    source,
    sourceOffset,
    length,
    prefix,
    protocolIdLow,
    protocolIdHigh,
    sequenceLow,
    sequenceHigh,
    key,
    destination,
    destinationOffset,
  ) {
    loadPacket(
      source,
      sourceOffset,
      length,
      prefix,
      protocolIdLow,
      protocolIdHigh,
      sequenceLow,
      sequenceHigh,
      key,
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
  },
  openPacket(
    source,
    sourceOffset,
    length,
    prefix,
    protocolIdLow,
    protocolIdHigh,
    sequenceLow,
    sequenceHigh,
    key,
    destination,
    destinationOffset,
  ) {
    loadPacket(
      source,
      sourceOffset,
      length,
      prefix,
      protocolIdLow,
      protocolIdHigh,
      sequenceLow,
      sequenceHigh,
      key,
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
  },
};
