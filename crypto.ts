/**
 * The cryptography netcode needs, on libsodium compiled to WebAssembly
 * (`npm:libsodium-wrappers`).
 *
 * libsodium is initialised once, when this module is first imported (top-level
 * `await`), so every function here is synchronous. The AEAD functions copy
 * their input into memory preallocated on the WASM heap, run the raw libsodium
 * function there and copy the result out into a buffer the caller owns: no
 * allocation per call, unlike the wrapper functions of libsodium-wrappers.
 *
 * @example Encrypt and decrypt in place
 * ```ts
 * import assert from "node:assert/strict";
 * import { chachaEncrypt, chachaDecrypt, generateKey, MAC_BYTES } from "./crypto.ts";
 *
 * const key = generateKey();
 * const nonce = new Uint8Array(12);
 * const buffer = new Uint8Array(5 + MAC_BYTES);
 * buffer.set([1, 2, 3, 4, 5]);
 * chachaEncrypt(buffer, 0, 5, new Uint8Array(0), 0, nonce, key, buffer, 0);
 * const ok = chachaDecrypt(buffer, 0, 5 + MAC_BYTES, new Uint8Array(0), 0, nonce, key, buffer, 0);
 * assert.equal(ok, true);
 * assert.deepEqual(buffer.subarray(0, 5), new Uint8Array([1, 2, 3, 4, 5]));
 * ```
 *
 * @module
 */

import {
  AEAD_CHACHA20POLY1305_IETF as CHACHA,
  AEAD_XCHACHA20POLY1305_IETF as XCHACHA,
  type AeadBackend,
  type AeadConstruction,
  CHACHA_NONCE_BYTES,
  KEY_BYTES,
  MAC_BYTES,
  MAX_ADDITIONAL_DATA_BYTES,
  MAX_MESSAGE_BYTES,
  XCHACHA_NONCE_BYTES,
} from "./_aead.ts";
import { wasmBackend } from "./_sodium_wasm.ts";

export {
  AEAD_CHACHA20POLY1305_IETF,
  AEAD_XCHACHA20POLY1305_IETF,
  type AeadBackend,
  type AeadConstruction,
  CHACHA_NONCE_BYTES,
  KEY_BYTES,
  MAC_BYTES,
  XCHACHA_NONCE_BYTES,
} from "./_aead.ts";

function typeName(value: unknown): string {
  if (value === null) return "null";
  if (typeof value === "object") {
    return (value as object).constructor?.name ?? "an object";
  }
  return typeof value;
}

function checkCall(
  verb: string,
  source: Uint8Array,
  sourceOffset: number,
  sourceLength: number,
  length: number,
  additionalData: Uint8Array,
  additionalDataLength: number,
  nonce: Uint8Array,
  nonceBytes: number,
  key: Uint8Array,
): void {
  // Type checks first: a 32-character string has a length of 32, and its
  // characters would reach the heap as zeros, an all-zero key.
  if (!(key instanceof Uint8Array)) {
    throw new TypeError(
      `Cannot use key: expected a Uint8Array, got ${typeName(key)}`,
    );
  }
  if (!(nonce instanceof Uint8Array)) {
    throw new TypeError(
      `Cannot use nonce: expected a Uint8Array, got ${typeName(nonce)}`,
    );
  }
  if (!(source instanceof Uint8Array)) {
    throw new TypeError(
      `Cannot ${verb}: the source is ${typeName(source)}, not a Uint8Array`,
    );
  }
  if (!(additionalData instanceof Uint8Array)) {
    throw new TypeError(
      `Cannot ${verb}: the associated data is ${
        typeName(additionalData)
      }, not a Uint8Array`,
    );
  }
  if (
    !Number.isInteger(length) || !Number.isInteger(sourceOffset) ||
    !Number.isInteger(additionalDataLength)
  ) {
    throw new RangeError(
      `Cannot ${verb} ${length} bytes at offset ${sourceOffset} with ${additionalDataLength} bytes of associated data: expected integers`,
    );
  }
  if (key.length !== KEY_BYTES) {
    throw new RangeError(
      `Cannot use key: ${key.length} bytes, expected ${KEY_BYTES}`,
    );
  }
  if (nonce.length !== nonceBytes) {
    throw new RangeError(
      `Cannot use nonce: ${nonce.length} bytes, expected ${nonceBytes}`,
    );
  }
  if (!(length >= 0 && length + MAC_BYTES <= MAX_MESSAGE_BYTES)) {
    throw new RangeError(
      `Cannot ${verb} ${length} bytes: the limit is 0..${
        MAX_MESSAGE_BYTES - MAC_BYTES
      } (plus the ${MAC_BYTES}-byte MAC)`,
    );
  }
  if (
    !(sourceOffset >= 0 && sourceOffset + sourceLength <= source.length)
  ) {
    throw new RangeError(
      `Cannot ${verb} ${sourceLength} bytes at offset ${sourceOffset}: the source has ${source.length}`,
    );
  }
  if (
    !(additionalDataLength >= 0 &&
      additionalDataLength <= MAX_ADDITIONAL_DATA_BYTES &&
      additionalDataLength <= additionalData.length)
  ) {
    throw new RangeError(
      `Cannot use ${additionalDataLength} bytes of associated data: ${additionalData.length} given, the limit is ${MAX_ADDITIONAL_DATA_BYTES}`,
    );
  }
}

let backend: AeadBackend = wasmBackend;

/**
 * Selects the AEAD backend every function of this module (and so every
 * packet and token) uses from now on; without an argument, back to the
 * default WebAssembly one. Backends must produce the same bytes: see
 * `loadNativeSodium()` in `sodium_native.ts` for native libsodium. Packets
 * go through the backend's `sealPacket` and `openPacket` when it has them
 * (the WebAssembly one does), through `seal` and `open` otherwise.
 *
 * @param next The backend, or `undefined` for the WebAssembly default.
 * @throws {TypeError} When `next` lacks `seal` or `open`, or has only one of `sealPacket` and `openPacket`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { aeadBackend, setAeadBackend } from "./crypto.ts";
 * setAeadBackend(undefined);
 * assert.equal(aeadBackend().name, "wasm");
 * ```
 */
export function setAeadBackend(next?: AeadBackend): void {
  if (next === undefined) {
    backend = wasmBackend;
    return;
  }
  if (
    typeof next !== "object" || next === null ||
    typeof next.seal !== "function" || typeof next.open !== "function"
  ) {
    throw new TypeError(
      "Cannot set AEAD backend: expected an object with seal and open",
    );
  }
  if (
    (next.sealPacket !== undefined || next.openPacket !== undefined) &&
    (typeof next.sealPacket !== "function" ||
      typeof next.openPacket !== "function")
  ) {
    throw new TypeError(
      "Cannot set AEAD backend: sealPacket and openPacket must both be functions, or both absent",
    );
  }
  backend = next;
}

/**
 * The AEAD backend in use.
 *
 * @returns The current backend.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { aeadBackend } from "./crypto.ts";
 * assert.equal(aeadBackend().name, "wasm"); // the default
 * ```
 */
export function aeadBackend(): AeadBackend {
  return backend;
}

function encrypt(
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
): void {
  checkCall(
    "encrypt",
    source,
    sourceOffset,
    length,
    length,
    additionalData,
    additionalDataLength,
    nonce,
    construction === CHACHA ? CHACHA_NONCE_BYTES : XCHACHA_NONCE_BYTES,
    key,
  );
  if (
    !(destination instanceof Uint8Array &&
      Number.isInteger(destinationOffset) && destinationOffset >= 0 &&
      destinationOffset + length + MAC_BYTES <= destination.length)
  ) {
    throw new RangeError(
      `Cannot encrypt into ${destination.length} bytes at offset ${destinationOffset}: ${
        length + MAC_BYTES
      } needed`,
    );
  }
  backend.seal(
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
  );
}

function decrypt(
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
): boolean {
  checkCall(
    "decrypt",
    source,
    sourceOffset,
    length,
    length - MAC_BYTES,
    additionalData,
    additionalDataLength,
    nonce,
    construction === CHACHA ? CHACHA_NONCE_BYTES : XCHACHA_NONCE_BYTES,
    key,
  );
  if (
    !(destination instanceof Uint8Array &&
      Number.isInteger(destinationOffset) && destinationOffset >= 0 &&
      destinationOffset + length - MAC_BYTES <= destination.length)
  ) {
    throw new RangeError(
      `Cannot decrypt into ${destination.length} bytes at offset ${destinationOffset}: ${
        length - MAC_BYTES
      } needed`,
    );
  }
  return backend.open(
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
  );
}

/**
 * Encrypts `length` bytes of `source` from `sourceOffset` with
 * ChaCha20-Poly1305-IETF and writes the ciphertext followed by the 16-byte MAC
 * to `destination` at `destinationOffset`. Source and destination may be the
 * same buffer (in-place encryption).
 *
 * @param source Buffer holding the plaintext.
 * @param sourceOffset Where the plaintext starts in `source`.
 * @param length Plaintext bytes.
 * @param additionalData Associated data that is authenticated, not encrypted.
 * @param additionalDataLength Bytes of `additionalData` to use (at most 64).
 * @param nonce 12-byte nonce.
 * @param key 32-byte key.
 * @param destination Buffer receiving `length + MAC_BYTES` bytes.
 * @param destinationOffset Where the ciphertext starts in `destination`.
 * @throws {RangeError} On a key, nonce or length of the wrong size.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { chachaDecrypt, chachaEncrypt, generateKey } from "./crypto.ts";
 * const key = generateKey();
 * const nonce = new Uint8Array(12);
 * const out = new Uint8Array(3 + 16);
 * chachaEncrypt(new Uint8Array([1, 2, 3]), 0, 3, new Uint8Array(0), 0, nonce, key, out, 0);
 * const plain = new Uint8Array(3);
 * assert.ok(chachaDecrypt(out, 0, out.length, new Uint8Array(0), 0, nonce, key, plain, 0));
 * assert.deepEqual(plain, new Uint8Array([1, 2, 3]));
 * ```
 */
export function chachaEncrypt(
  source: Uint8Array,
  sourceOffset: number,
  length: number,
  additionalData: Uint8Array,
  additionalDataLength: number,
  nonce: Uint8Array,
  key: Uint8Array,
  destination: Uint8Array,
  destinationOffset: number,
): void {
  encrypt(
    CHACHA,
    source,
    sourceOffset,
    length,
    additionalData,
    additionalDataLength,
    nonce,
    key,
    destination,
    destinationOffset,
  );
}

/**
 * Verifies and decrypts `length` bytes (ciphertext followed by its 16-byte
 * MAC) of `source` from `sourceOffset` with ChaCha20-Poly1305-IETF, writing
 * `length - MAC_BYTES` plaintext bytes to `destination` at
 * `destinationOffset`. Nothing is written when verification fails.
 *
 * @param source Buffer holding ciphertext and MAC.
 * @param sourceOffset Where the ciphertext starts in `source`.
 * @param length Ciphertext bytes including the MAC (at least 16).
 * @param additionalData Associated data the sender authenticated.
 * @param additionalDataLength Bytes of `additionalData` to use (at most 64).
 * @param nonce 12-byte nonce.
 * @param key 32-byte key.
 * @param destination Buffer receiving the plaintext.
 * @param destinationOffset Where the plaintext starts in `destination`.
 * @returns `true` when the MAC verified and the plaintext was written.
 * @throws {RangeError} On a key, nonce or length of the wrong size.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { chachaDecrypt, generateKey } from "./crypto.ts";
 * const forged = new Uint8Array(19);
 * const ok = chachaDecrypt(forged, 0, 19, new Uint8Array(0), 0, new Uint8Array(12), generateKey(), forged, 0);
 * assert.equal(ok, false);
 * ```
 */
export function chachaDecrypt(
  source: Uint8Array,
  sourceOffset: number,
  length: number,
  additionalData: Uint8Array,
  additionalDataLength: number,
  nonce: Uint8Array,
  key: Uint8Array,
  destination: Uint8Array,
  destinationOffset: number,
): boolean {
  return decrypt(
    CHACHA,
    source,
    sourceOffset,
    length,
    additionalData,
    additionalDataLength,
    nonce,
    key,
    destination,
    destinationOffset,
  );
}

/**
 * Encrypts with XChaCha20-Poly1305-IETF (24-byte nonce), as used for the
 * private connect token. Parameters as {@linkcode chachaEncrypt}.
 *
 * @param source Buffer holding the plaintext.
 * @param sourceOffset Where the plaintext starts in `source`.
 * @param length Plaintext bytes.
 * @param additionalData Associated data that is authenticated, not encrypted.
 * @param additionalDataLength Bytes of `additionalData` to use (at most 64).
 * @param nonce 24-byte nonce.
 * @param key 32-byte key.
 * @param destination Buffer receiving `length + MAC_BYTES` bytes.
 * @param destinationOffset Where the ciphertext starts in `destination`.
 * @throws {RangeError} On a key, nonce or length of the wrong size.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { generateKey, xchachaDecrypt, xchachaEncrypt } from "./crypto.ts";
 * const key = generateKey();
 * const nonce = new Uint8Array(24);
 * const out = new Uint8Array(3 + 16);
 * xchachaEncrypt(new Uint8Array([1, 2, 3]), 0, 3, new Uint8Array(0), 0, nonce, key, out, 0);
 * const plain = new Uint8Array(3);
 * assert.ok(xchachaDecrypt(out, 0, out.length, new Uint8Array(0), 0, nonce, key, plain, 0));
 * assert.deepEqual(plain, new Uint8Array([1, 2, 3]));
 * ```
 */
export function xchachaEncrypt(
  source: Uint8Array,
  sourceOffset: number,
  length: number,
  additionalData: Uint8Array,
  additionalDataLength: number,
  nonce: Uint8Array,
  key: Uint8Array,
  destination: Uint8Array,
  destinationOffset: number,
): void {
  encrypt(
    XCHACHA,
    source,
    sourceOffset,
    length,
    additionalData,
    additionalDataLength,
    nonce,
    key,
    destination,
    destinationOffset,
  );
}

/**
 * Verifies and decrypts with XChaCha20-Poly1305-IETF (24-byte nonce).
 * Parameters as {@linkcode chachaDecrypt}.
 *
 * @param source Buffer holding ciphertext and MAC.
 * @param sourceOffset Where the ciphertext starts in `source`.
 * @param length Ciphertext bytes including the MAC (at least 16).
 * @param additionalData Associated data the sender authenticated.
 * @param additionalDataLength Bytes of `additionalData` to use (at most 64).
 * @param nonce 24-byte nonce.
 * @param key 32-byte key.
 * @param destination Buffer receiving the plaintext.
 * @param destinationOffset Where the plaintext starts in `destination`.
 * @returns `true` when the MAC verified and the plaintext was written.
 * @throws {RangeError} On a key, nonce or length of the wrong size.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { xchachaDecrypt, generateKey } from "./crypto.ts";
 * const forged = new Uint8Array(19);
 * assert.equal(xchachaDecrypt(forged, 0, 19, new Uint8Array(0), 0, new Uint8Array(24), generateKey(), forged, 0), false);
 * ```
 */
export function xchachaDecrypt(
  source: Uint8Array,
  sourceOffset: number,
  length: number,
  additionalData: Uint8Array,
  additionalDataLength: number,
  nonce: Uint8Array,
  key: Uint8Array,
  destination: Uint8Array,
  destinationOffset: number,
): boolean {
  return decrypt(
    XCHACHA,
    source,
    sourceOffset,
    length,
    additionalData,
    additionalDataLength,
    nonce,
    key,
    destination,
    destinationOffset,
  );
}

/**
 * Fills `buffer` with cryptographically secure random bytes.
 *
 * @param buffer The buffer to fill.
 * @returns The same buffer.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { randomBytes } from "./crypto.ts";
 * const buffer = new Uint8Array(24);
 * const nonce = randomBytes(buffer);
 * assert.equal(nonce, buffer); // filled in place
 * ```
 */
export function randomBytes(buffer: Uint8Array): Uint8Array {
  if (!(buffer instanceof Uint8Array)) {
    throw new TypeError(
      `Cannot fill random bytes: expected a Uint8Array, got ${
        typeName(buffer)
      }`,
    );
  }
  // crypto.getRandomValues takes at most 65536 bytes a call.
  for (let offset = 0; offset < buffer.length; offset += 65536) {
    crypto.getRandomValues(
      buffer.subarray(offset, Math.min(buffer.length, offset + 65536)),
    );
  }
  return buffer;
}

/**
 * Generates a random 32-byte key, for a server's private key or the per-token
 * client-to-server and server-to-client keys.
 *
 * @returns A new 32-byte key.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { generateKey } from "./crypto.ts";
 * const privateKey = generateKey();
 * assert.equal(privateKey.length, 32);
 * ```
 */
export function generateKey(): Uint8Array {
  return randomBytes(new Uint8Array(KEY_BYTES));
}

/**
 * Reads a 32-byte key written as 64 hex characters, as `netcode keygen`
 * prints it and as a server's private key is usually kept in a secret store
 * or environment variable. Surrounding whitespace is ignored. The error
 * never repeats the text, which may be a secret.
 *
 * @param hex 64 hex characters, upper or lower case.
 * @returns The 32-byte key.
 * @throws {TypeError} When `hex` is not a string.
 * @throws {RangeError} When it is not exactly 64 hex characters, as in
 * `Cannot read key: expected 64 hex characters (32 bytes), got 63`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { keyFromHex } from "./crypto.ts";
 *
 * const privateKey = keyFromHex("606abe6ec91910ea9a6562f66f2b30e44371d62cd19927266b3c60f4b715aba1");
 * assert.equal(privateKey.length, 32);
 * assert.equal(privateKey[0], 0x60);
 * assert.throws(() => keyFromHex("606a"), RangeError);
 * ```
 */
export function keyFromHex(hex: string): Uint8Array {
  if (typeof hex !== "string") {
    throw new TypeError("Cannot read key: expected a string of hex characters");
  }
  const text = hex.trim();
  if (text.length !== KEY_BYTES * 2) {
    throw new RangeError(
      `Cannot read key: expected ${
        KEY_BYTES * 2
      } hex characters (${KEY_BYTES} bytes), got ${text.length}`,
    );
  }
  const key = new Uint8Array(KEY_BYTES);
  for (let i = 0; i < KEY_BYTES; i++) {
    const high = hexDigit(text.charCodeAt(2 * i));
    const low = hexDigit(text.charCodeAt(2 * i + 1));
    if (high < 0 || low < 0) {
      throw new RangeError(
        `Cannot read key: character ${
          high < 0 ? 2 * i : 2 * i + 1
        } is not a hex digit`,
      );
    }
    key[i] = (high << 4) | low;
  }
  return key;
}

/** The value of a hex digit's character code, or -1. */
function hexDigit(code: number): number {
  if (code >= 48 && code <= 57) return code - 48; // 0-9
  if (code >= 97 && code <= 102) return code - 87; // a-f
  if (code >= 65 && code <= 70) return code - 55; // A-F
  return -1;
}

/**
 * Checks that `key` is a 32-byte `Uint8Array` and throws a clear error naming
 * `what` if it is not.
 *
 * @param key The value to check.
 * @param what What the key is, for the error message ("private key").
 * @returns The key, typed.
 * @throws {TypeError} When `key` is not a `Uint8Array`.
 * @throws {RangeError} When `key` is not 32 bytes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkKey } from "./crypto.ts";
 * const key = new Uint8Array(32);
 * assert.equal(checkKey(key, "private key"), key);
 * assert.throws(() => checkKey(new Uint8Array(16), "private key"), RangeError);
 * assert.throws(() => checkKey("key", "private key"), TypeError);
 * ```
 */
export function checkKey(key: unknown, what: string): Uint8Array {
  if (!(key instanceof Uint8Array)) {
    throw new TypeError(`Cannot use ${what}: expected a Uint8Array`);
  }
  if (key.length !== KEY_BYTES) {
    throw new RangeError(
      `Cannot use ${what}: ${key.length} bytes, expected ${KEY_BYTES}`,
    );
  }
  return key;
}
