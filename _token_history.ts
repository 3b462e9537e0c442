/**
 * Internal: the server's connect token history (the reference's connect
 * token entries). A connect token's MAC, the last 16 bytes of its encrypted
 * private part, is remembered with the address that first used it; the same
 * token from another address is refused, so a token sniffed off the wire
 * cannot be replayed from elsewhere. The table is bounded: when full, the
 * oldest entry makes room (a `Map` keeps insertion order).
 *
 * @module
 */

import { MAC_BYTES } from "./crypto.ts";
import { CONNECT_TOKEN_PRIVATE_BYTES } from "./packet.ts";

/** Connect token MACs remembered, each with the address that used it first. */
export interface TokenHistory {
  /** Address key by MAC (as a 16-character string), oldest first. */
  readonly entries: Map<string, string>;
  /** Entries kept at most; the oldest makes room for a new one. */
  readonly capacity: number;
}

/**
 * Creates an empty history.
 *
 * @param capacity Entries kept at most (the server keeps 8 per slot).
 * @returns The history.
 */
export function createTokenHistory(capacity: number): TokenHistory {
  return { entries: new Map(), capacity };
}

/**
 * The MAC of an encrypted private connect token, as a map key.
 *
 * @param encryptedPrivateToken The 1024 bytes as they arrived.
 * @returns A 16-character string, one character per MAC byte.
 */
export function tokenMacKey(encryptedPrivateToken: Uint8Array): string {
  let key = "";
  const start = CONNECT_TOKEN_PRIVATE_BYTES - MAC_BYTES;
  for (let i = start; i < CONNECT_TOKEN_PRIVATE_BYTES; i++) {
    key += String.fromCharCode(encryptedPrivateToken[i]);
  }
  return key;
}

/**
 * Finds the token's entry, or adds one for `addressKey` (as
 * `netcode_connect_token_entries_find_or_add` does).
 *
 * @param history The history.
 * @param encryptedPrivateToken The request's encrypted private token.
 * @param addressKey The sender's address key (`addressKey()`).
 * @returns `false` when the token was first used from another address.
 */
export function findOrAddTokenUse(
  history: TokenHistory,
  encryptedPrivateToken: Uint8Array,
  addressKey: string,
): boolean {
  const mac = tokenMacKey(encryptedPrivateToken);
  const first = history.entries.get(mac);
  if (first !== undefined) return first === addressKey;
  if (history.entries.size >= history.capacity) {
    history.entries.delete(history.entries.keys().next().value!);
  }
  history.entries.set(mac, addressKey);
  return true;
}

/**
 * Forgets every entry (the server stopped).
 *
 * @param history The history.
 */
export function clearTokenHistory(history: TokenHistory): void {
  history.entries.clear();
}
