/**
 * Internal: the addresses whose clients left their slots in the last
 * {@linkcode RECENT_DISCONNECT_SECONDS}, so the server can tell the
 * redundant disconnect packets of a client that just left (the reference
 * client sends 10; the first frees the slot) from other stray packets.
 *
 * A ring of fixed capacity, allocated once per server start: remembering an
 * address overwrites the oldest entry, and looking one up is one `Map` get
 * with the address key the caller already holds, allocating nothing. The
 * address is not authenticated (the slot's keys are gone), so the count it
 * feeds is a classification of drops, never a decision.
 *
 * @module
 */

/** Seconds an address is remembered after its client left. */
export const RECENT_DISCONNECT_SECONDS = 2;

/** The ring of recently disconnected addresses; see the module documentation. */
export interface RecentDisconnects {
  /** Entries kept at most. */
  readonly capacity: number;
  /** Address key of each ring entry, `""` when empty. */
  readonly keys: string[];
  /** Server time each ring entry was remembered at. */
  readonly times: Float64Array;
  /** The ring entry written next. */
  next: number;
  /** Ring entry by address key. */
  readonly byKey: Map<string, number>;
}

/**
 * Creates an empty ring.
 *
 * @param capacity Entries kept at most (the server keeps one per slot).
 * @returns The ring.
 */
export function createRecentDisconnects(capacity: number): RecentDisconnects {
  return {
    capacity,
    keys: new Array(capacity).fill(""),
    times: new Float64Array(capacity),
    next: 0,
    byKey: new Map(),
  };
}

/**
 * Remembers that the client at an address left at `time`, forgetting the
 * oldest entry when the ring is full.
 *
 * @param recent The ring.
 * @param key The address key.
 * @param time Server time, in seconds.
 */
export function rememberDisconnect(
  recent: RecentDisconnects,
  key: string,
  time: number,
): void {
  if (recent.capacity === 0) return;
  const existing = recent.byKey.get(key);
  if (existing !== undefined) {
    recent.times[existing] = time;
    return;
  }
  const entry = recent.next;
  const old = recent.keys[entry];
  if (old !== "") recent.byKey.delete(old);
  recent.keys[entry] = key;
  recent.times[entry] = time;
  recent.byKey.set(key, entry);
  recent.next = (entry + 1) % recent.capacity;
}

/**
 * Whether the client at an address left within the last
 * {@linkcode RECENT_DISCONNECT_SECONDS}.
 *
 * @param recent The ring.
 * @param key The address key.
 * @param time Server time, in seconds.
 * @returns `true` when it did.
 */
export function recentlyDisconnected(
  recent: RecentDisconnects,
  key: string,
  time: number,
): boolean {
  const entry = recent.byKey.get(key);
  return entry !== undefined &&
    time - recent.times[entry] <= RECENT_DISCONNECT_SECONDS;
}

/**
 * Forgets every entry.
 *
 * @param recent The ring.
 */
export function clearRecentDisconnects(recent: RecentDisconnects): void {
  recent.keys.fill("");
  recent.times.fill(0);
  recent.next = 0;
  recent.byKey.clear();
}
