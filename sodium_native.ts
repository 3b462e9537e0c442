/**
 * Native libsodium as the AEAD backend, through `Deno.dlopen`: about three
 * times faster than the WebAssembly build for a packet, with the same bytes
 * out (the conformance vectors run through it).
 *
 * Opt-in: it needs `--allow-ffi` and the system's libsodium (Debian:
 * `apt-get install libsodium23`). Select it once at startup; every packet and
 * token after that uses it.
 *
 * @example
 * ```ts ignore
 * import { useNativeSodium } from "./sodium_native.ts";
 *
 * useNativeSodium(); // throws a clear Error when it cannot be loaded
 * ```
 *
 * @module
 */

import {
  AEAD_CHACHA20POLY1305_IETF as CHACHA,
  type AeadBackend,
  type AeadConstruction,
  HEADROOM,
  MAC_BYTES,
  MAX_MESSAGE_BYTES,
  TAILROOM,
} from "./_aead.ts";
import { setAeadBackend } from "./crypto.ts";

/** Options of {@linkcode loadNativeSodium}. */
export interface LoadNativeSodiumOptions {
  /**
   * The shared library to load: a path or a name the system's loader finds.
   * @default {"libsodium.so.23", then "libsodium.so" (on macOS "libsodium.23.dylib", then "libsodium.dylib"; on Windows "libsodium.dll")}
   */
  path?: string;
}

// `unsigned long long` lengths are usize (the same 64 bits on the 64-bit
// platforms Deno runs on), passed as bigints from a table made once (see
// LENGTHS): Deno converts a number for a 64-bit parameter on a slow path that
// costs about 300 ns a call, half the cost of a 100-byte packet.
const SYMBOLS = {
  sodium_init: { parameters: [], result: "i32" },
  crypto_aead_chacha20poly1305_ietf_encrypt: {
    parameters: [
      "pointer",
      "pointer",
      "pointer",
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
      "pointer",
      "pointer",
      "pointer",
      "pointer",
      "usize",
      "buffer",
      "usize",
      "buffer",
      "buffer",
    ],
    result: "i32",
  },
  crypto_aead_xchacha20poly1305_ietf_encrypt: {
    parameters: [
      "pointer",
      "pointer",
      "pointer",
      "usize",
      "buffer",
      "usize",
      "pointer",
      "buffer",
      "buffer",
    ],
    result: "i32",
  },
  crypto_aead_xchacha20poly1305_ietf_decrypt: {
    parameters: [
      "pointer",
      "pointer",
      "pointer",
      "pointer",
      "usize",
      "buffer",
      "usize",
      "buffer",
      "buffer",
    ],
    result: "i32",
  },
} as const;

/** Backends already loaded, by path ("" for the default names). */
const loaded = new Map<string, AeadBackend>();

/** `BigInt(i)` for every length a call can take: no bigint made per call. */
const LENGTHS: readonly bigint[] = Array.from(
  { length: MAX_MESSAGE_BYTES + 1 },
  (_, i) => BigInt(i),
);

function defaultNames(): string[] {
  switch (Deno.build.os) {
    case "darwin":
      return ["libsodium.23.dylib", "libsodium.dylib"];
    case "windows":
      return ["libsodium.dll"];
    default:
      return ["libsodium.so.23", "libsodium.so"];
  }
}

function open(path: string | undefined) {
  const names = path === undefined ? defaultNames() : [path];
  const failures: string[] = [];
  for (const name of names) {
    try {
      return Deno.dlopen(name, SYMBOLS);
    } catch (error) {
      if (error instanceof Deno.errors.NotCapable) {
        throw new Error(
          "Cannot load native libsodium: run with --allow-ffi",
          { cause: error },
        );
      }
      failures.push(`${name}: ${(error as Error).message}`);
    }
  }
  throw new Error(
    `Cannot load native libsodium (install libsodium, e.g. apt-get install libsodium23, or give its path): ${
      failures.join("; ")
    }`,
  );
}

/**
 * Loads the system's libsodium and returns an AEAD backend on it, for
 * {@linkcode setAeadBackend}. The library is loaded once per path; later
 * calls return the same backend.
 *
 * @param options Where the library is.
 * @returns The backend, named `"native"`.
 * @throws {Error} Without `--allow-ffi`, without `Deno.dlopen` (Node.js, Bun), or when the library cannot be loaded or initialised.
 *
 * @example
 * ```ts ignore
 * import { setAeadBackend } from "./crypto.ts";
 * import { loadNativeSodium } from "./sodium_native.ts";
 *
 * setAeadBackend(loadNativeSodium({ path: "/usr/lib/x86_64-linux-gnu/libsodium.so.23" }));
 * ```
 */
export function loadNativeSodium(
  options: LoadNativeSodiumOptions = {},
): AeadBackend {
  if (typeof options !== "object" || options === null) {
    throw new TypeError(
      "Cannot load native libsodium: options is not an object",
    );
  }
  if (options.path !== undefined && typeof options.path !== "string") {
    throw new TypeError("Cannot load native libsodium: path must be a string");
  }
  const cached = loaded.get(options.path ?? "");
  if (cached !== undefined) return cached;
  if (
    typeof (globalThis as { Deno?: { dlopen?: unknown } }).Deno?.dlopen !==
      "function"
  ) {
    throw new Error(
      "Cannot load native libsodium: it needs Deno.dlopen, which this runtime lacks (the default WebAssembly libsodium works on every runtime)",
    );
  }
  const library = open(options.path);
  const sodium = library.symbols;
  if (sodium.sodium_init() < 0) {
    library.close();
    throw new Error("Cannot load native libsodium: sodium_init() failed");
  }
  // Scratch memory for inputs and outputs. At 4 KiB and more, V8 keeps an
  // ArrayBuffer's bytes off its heap, where they never move: the pointers
  // taken here stay valid as long as the closure keeps the arrays alive.
  const input = new Uint8Array(HEADROOM + MAX_MESSAGE_BYTES + TAILROOM);
  const output = new Uint8Array(MAX_MESSAGE_BYTES);
  const inputPointer = Deno.UnsafePointer.offset(
    Deno.UnsafePointer.of(input)!,
    HEADROOM,
  );
  const outputPointer = Deno.UnsafePointer.of(output);
  // Views of the first `length` output bytes, made once per length.
  const outputViews: (Uint8Array | undefined)[] = new Array(
    MAX_MESSAGE_BYTES + 1,
  ).fill(undefined);
  const outputView = (length: number): Uint8Array =>
    outputViews[length] ??= output.subarray(0, length);

  function load(source: Uint8Array, sourceOffset: number, length: number) {
    if (length > MAX_MESSAGE_BYTES) {
      throw new RangeError(
        `Cannot use native libsodium on ${length} bytes: the limit is ${MAX_MESSAGE_BYTES}`,
      );
    }
    if (
      sourceOffset <= HEADROOM &&
      source.length - sourceOffset - length <= TAILROOM
    ) {
      input.set(source, HEADROOM - sourceOffset);
    } else {
      input.set(source.subarray(sourceOffset, sourceOffset + length), HEADROOM);
    }
  }

  // No packet fast path (sealPacket, openPacket): nonce and associated data
  // reach libsodium as pointers to the caller's buffers, so there is no copy
  // for it to save, and packet.ts builds them for seal and open instead.
  const nativeBackend: AeadBackend = {
    name: "native",
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
    ): void {
      load(source, sourceOffset, length);
      const aead = construction === CHACHA
        ? sodium.crypto_aead_chacha20poly1305_ietf_encrypt
        : sodium.crypto_aead_xchacha20poly1305_ietf_encrypt;
      aead(
        outputPointer,
        null,
        inputPointer,
        LENGTHS[length],
        additionalDataLength > 0 ? additionalData : null,
        LENGTHS[additionalDataLength],
        null,
        nonce,
        key,
      );
      destination.set(outputView(length + MAC_BYTES), destinationOffset);
    },
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
    ): boolean {
      load(source, sourceOffset, length);
      const aead = construction === CHACHA
        ? sodium.crypto_aead_chacha20poly1305_ietf_decrypt
        : sodium.crypto_aead_xchacha20poly1305_ietf_decrypt;
      // libsodium zeroes its output on failure: it decrypts into scratch
      // memory, and the destination is written only when the MAC verified.
      const result = aead(
        outputPointer,
        null,
        null,
        inputPointer,
        LENGTHS[length],
        additionalDataLength > 0 ? additionalData : null,
        LENGTHS[additionalDataLength],
        nonce,
        key,
      );
      if (result !== 0) return false;
      destination.set(outputView(length - MAC_BYTES), destinationOffset);
      return true;
    },
  };
  loaded.set(options.path ?? "", nativeBackend);
  return nativeBackend;
}

/**
 * Loads the system's libsodium and makes it the AEAD backend for everything
 * from now on (see {@linkcode loadNativeSodium}).
 *
 * @param options Where the library is.
 * @throws {Error} Without `--allow-ffi`, without `Deno.dlopen` (Node.js, Bun), or when the library cannot be loaded.
 *
 * @example
 * ```ts ignore
 * import { useNativeSodium } from "./sodium_native.ts";
 * useNativeSodium();
 * ```
 */
export function useNativeSodium(options: LoadNativeSodiumOptions = {}): void {
  setAeadBackend(loadNativeSodium(options));
}

/**
 * Why native libsodium cannot be used here, or `undefined` when it can: for
 * tools and tests that skip or fall back.
 *
 * @param options Where the library is.
 * @returns The reason, or `undefined`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadNativeSodium, nativeSodiumUnavailable } from "./sodium_native.ts";
 * const reason = nativeSodiumUnavailable();
 * if (reason === undefined) assert.equal(loadNativeSodium().name, "native");
 * else assert.match(reason, /^Cannot load native libsodium/);
 * ```
 */
export function nativeSodiumUnavailable(
  options: LoadNativeSodiumOptions = {},
): string | undefined {
  try {
    loadNativeSodium(options);
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}
