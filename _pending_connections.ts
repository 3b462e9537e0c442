/**
 * Internal: the server's pending connections (the reference's encryption
 * manager). A connection request that passes every check adds an entry for
 * its source address holding the token's keys; the connection response from
 * that address is decrypted with them. The entry goes when the client takes
 * a slot (the slot holds the keys from then on), when it is denied, or when
 * it expires: after the token's timeout without traffic, or at its expire
 * time, whichever comes first.
 *
 * Bounded: a full table first forgets expired entries, then refuses new
 * addresses (an address already pending is refreshed in place).
 *
 * @module
 */

/** One challenged address waiting for its connection response. */
export interface PendingConnection {
  /** Key for packets to the client (the token's server-to-client key). */
  sendKey: Uint8Array;
  /** Key for packets from the client (the token's client-to-server key). */
  receiveKey: Uint8Array;
  /** The token's timeout; the slot's timeout once connected. <= 0: never. */
  timeoutSeconds: number;
  /** Server time after which the entry is gone, whatever the traffic. */
  expireTime: number;
  /** Server time of the last request or response from the address. */
  lastAccessTime: number;
}

/** The pending connections by address key, with their bound. */
export interface PendingConnections {
  /** Entries by address key (`addressKey()`). */
  readonly entries: Map<string, PendingConnection>;
  /** Entries kept at most (the server keeps 4 per slot). */
  readonly capacity: number;
}

/**
 * Creates an empty table.
 *
 * @param capacity Entries kept at most.
 * @returns The table.
 */
export function createPendingConnections(
  capacity: number,
): PendingConnections {
  return { entries: new Map(), capacity };
}

/**
 * Whether the entry has expired at `time`.
 *
 * @param entry The entry.
 * @param time Server time, in seconds.
 * @returns `true` past its timeout without traffic, or past its expire time.
 */
export function pendingConnectionExpired(
  entry: PendingConnection,
  time: number,
): boolean {
  return (entry.timeoutSeconds > 0 &&
    entry.lastAccessTime + entry.timeoutSeconds < time) ||
    entry.expireTime < time;
}

/**
 * The live entry for an address; an expired one is forgotten on the way.
 *
 * @param table The table.
 * @param key The address key.
 * @param time Server time, in seconds.
 * @returns The entry, or `undefined`.
 */
export function findPendingConnection(
  table: PendingConnections,
  key: string,
  time: number,
): PendingConnection | undefined {
  const entry = table.entries.get(key);
  if (entry === undefined) return undefined;
  if (pendingConnectionExpired(entry, time)) {
    table.entries.delete(key);
    return undefined;
  }
  return entry;
}

/**
 * Adds or refreshes the entry of an address (a connection request passed).
 * A live entry for the address takes the new keys and times in place.
 *
 * @param table The table.
 * @param key The address key.
 * @param sendKey The token's server-to-client key.
 * @param receiveKey The token's client-to-server key.
 * @param timeoutSeconds The token's timeout.
 * @param expireTime Server time at which the entry goes at the latest.
 * @param time Server time, in seconds.
 * @returns `false` when the table is full of live entries of other addresses.
 */
export function addPendingConnection(
  table: PendingConnections,
  key: string,
  sendKey: Uint8Array,
  receiveKey: Uint8Array,
  timeoutSeconds: number,
  expireTime: number,
  time: number,
): boolean {
  const existing = findPendingConnection(table, key, time);
  if (existing !== undefined) {
    existing.sendKey = sendKey;
    existing.receiveKey = receiveKey;
    existing.timeoutSeconds = timeoutSeconds;
    existing.expireTime = expireTime;
    existing.lastAccessTime = time;
    return true;
  }
  if (table.entries.size >= table.capacity) {
    sweepPendingConnections(table, time);
  }
  if (table.entries.size >= table.capacity) return false;
  table.entries.set(key, {
    sendKey,
    receiveKey,
    timeoutSeconds,
    expireTime,
    lastAccessTime: time,
  });
  return true;
}

/**
 * Marks traffic from the entry's address (a connection response arrived).
 *
 * @param entry The entry.
 * @param time Server time, in seconds.
 */
export function touchPendingConnection(
  entry: PendingConnection,
  time: number,
): void {
  entry.lastAccessTime = time;
}

/**
 * Forgets the entry of an address, if any.
 *
 * @param table The table.
 * @param key The address key.
 */
export function removePendingConnection(
  table: PendingConnections,
  key: string,
): void {
  table.entries.delete(key);
}

/**
 * Forgets every expired entry.
 *
 * @param table The table.
 * @param time Server time, in seconds.
 */
export function sweepPendingConnections(
  table: PendingConnections,
  time: number,
): void {
  for (const [key, entry] of table.entries) {
    if (pendingConnectionExpired(entry, time)) table.entries.delete(key);
  }
}

/**
 * Forgets every entry (the server stopped).
 *
 * @param table The table.
 */
export function clearPendingConnections(table: PendingConnections): void {
  table.entries.clear();
}
