/**
 * Internal: what `crypto.ts` and every AEAD backend share (the WebAssembly
 * default `_sodium_wasm.ts`, native `sodium_native.ts`): the backend
 * interface, the sizes of keys, nonces and MACs, the limits a call takes and
 * the head and tail room of a backend's message buffer, and the layout of a
 * packet's nonce and associated data for the optional packet fast path.
 *
 * It imports nothing, so any of them can import it. `crypto.ts` re-exports
 * the public names.
 *
 * @module
 */

/** Bytes in a symmetric key (ChaCha20-Poly1305 and XChaCha20-Poly1305). */
export const KEY_BYTES = 32;
/** Bytes in a Poly1305 authentication tag appended to every ciphertext. */
export const MAC_BYTES = 16;
/** Bytes in a ChaCha20-Poly1305-IETF nonce. */
export const CHACHA_NONCE_BYTES = 12;
/** Bytes in an XChaCha20-Poly1305-IETF nonce (the connect token nonce). */
export const XCHACHA_NONCE_BYTES = 24;

/**
 * The AEAD construction of a backend call: {@linkcode AEAD_CHACHA20POLY1305_IETF}
 * or {@linkcode AEAD_XCHACHA20POLY1305_IETF}.
 */
export type AeadConstruction = 0 | 1;
/** ChaCha20-Poly1305-IETF: 12-byte nonce, for packets and challenge tokens. */
export const AEAD_CHACHA20POLY1305_IETF = 0;
/** XChaCha20-Poly1305-IETF: 24-byte nonce, for private connect tokens. */
export const AEAD_XCHACHA20POLY1305_IETF = 1;

/** The largest message a backend call takes, MAC included. */
export const MAX_MESSAGE_BYTES = 4096;
/** The most associated data a backend call takes. */
export const MAX_ADDITIONAL_DATA_BYTES = 64;
/**
 * Room before the message in a backend's input buffer. A source holding at
 * most this many bytes before the message (a packet header) and at most
 * {@linkcode TAILROOM} after it (a token's MAC space) is copied in whole, so
 * no `subarray` view is made per call.
 */
export const HEADROOM = 16;
/** Room after the message in a backend's input buffer: see {@linkcode HEADROOM}. */
export const TAILROOM = 64;

/** The 13 bytes `"NETCODE 1.02"` plus a NUL that begin tokens and requests. */
export const VERSION_INFO: Uint8Array = new TextEncoder().encode(
  "NETCODE 1.02\0",
);
/** Bytes of {@linkcode VERSION_INFO}. */
export const VERSION_INFO_BYTES = 13;
/**
 * Bytes of a packet's associated data: {@linkcode VERSION_INFO}, the
 * protocol id (u64 little-endian), the prefix byte.
 */
export const PACKET_ADDITIONAL_DATA_BYTES: number = VERSION_INFO_BYTES + 8 + 1;

/**
 * An implementation of the two AEAD constructions. The functions of
 * `crypto.ts` check every argument, then call the current backend (see
 * `setAeadBackend`): a backend gets valid arguments only.
 */
export interface AeadBackend {
  /** A short name for logs: `"wasm"` or `"native"`. */
  readonly name: string;
  /**
   * Encrypts `length` bytes of `source` at `sourceOffset` and writes
   * ciphertext and MAC to `destination` at `destinationOffset`. The ranges
   * may overlap.
   */
  seal(
    construction: AeadConstruction,
    source: Uint8Array,
    sourceOffset: number,
    length: number,
    additionalData: Uint8Array,
    additionalDataLength: number,
    nonce: Uint8Array,
    key: Uint8Array,
    destination: Uint8Array,
    destinationOffset: number,
  ): void;
  /**
   * Verifies and decrypts `length` bytes (ciphertext and MAC); writes the
   * plaintext only when it verified, and returns whether it did.
   */
  open(
    construction: AeadConstruction,
    source: Uint8Array,
    sourceOffset: number,
    length: number,
    additionalData: Uint8Array,
    additionalDataLength: number,
    nonce: Uint8Array,
    key: Uint8Array,
    destination: Uint8Array,
    destinationOffset: number,
  ): boolean;
  /**
   * Optional fast path for a packet body: {@linkcode AeadBackend.seal} with
   * ChaCha20-Poly1305-IETF, the associated data the version info
   * (`VERSION_INFO` of `packet.ts`), protocol id (u64 little-endian) and
   * `prefix` byte, and the nonce four zero bytes, then the sequence (u64
   * little-endian); protocol id and sequence given as 32-bit halves, not
   * buffers. It must give the same bytes as that `seal` call; a
   * backend keeping nonce and associated data in its own memory writes only
   * what changed since the last call. `packet.ts` uses it when the backend
   * has it (both or neither of the packet methods), `seal` when not.
   */
  sealPacket?(
    source: Uint8Array,
    sourceOffset: number,
    length: number,
    prefix: number,
    protocolIdLow: number,
    protocolIdHigh: number,
    sequenceLow: number,
    sequenceHigh: number,
    key: Uint8Array,
    destination: Uint8Array,
    destinationOffset: number,
  ): void;
  /**
   * Optional fast path for a packet body: {@linkcode AeadBackend.open} with
   * the nonce and associated data of {@linkcode AeadBackend.sealPacket}.
   * Writes the plaintext only when it verified, and returns whether it did.
   */
  openPacket?(
    source: Uint8Array,
    sourceOffset: number,
    length: number,
    prefix: number,
    protocolIdLow: number,
    protocolIdHigh: number,
    sequenceLow: number,
    sequenceHigh: number,
    key: Uint8Array,
    destination: Uint8Array,
    destinationOffset: number,
  ): boolean;
}
