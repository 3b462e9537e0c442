/**
 * Internal: the connection requests a server decrypts in one update, chosen
 * fairly from those that passed every check needing no cryptography.
 *
 * Decrypting a request's private token is the only expensive thing a sender
 * without a token can make the server do, so each update decrypts at most
 * `capacity` of them. Which ones does not depend on where they stand in the
 * receive queue: the sample is a uniform random choice among the update's
 * candidates (reservoir sampling), so a client whose requests always land
 * behind a flood still gets its share, tick after tick. Each source address
 * offers at most one candidate per update; its other requests in that
 * update are shed at once, so one sender cannot take more than one
 * decryption an update however fast it sends.
 *
 * Memory is bounded: at most `capacity` request-sized slots, each allocated
 * the first time an update needs it and reused after, and the set of this
 * update's source addresses (cleared each update).
 *
 * @module
 */

import type { Address } from "./address.ts";
import { CONNECTION_REQUEST_PACKET_BYTES } from "./packet.ts";

/** The sample of one update; see the module documentation. */
export interface RequestSample {
  /** Requests decrypted per update at most. */
  readonly capacity: number;
  /** Candidates held, `0..capacity`. */
  count: number;
  /** Candidates offered this update (one per source address). */
  offered: number;
  /** Request bytes of each held candidate, 1078 bytes a slot. */
  readonly slots: Uint8Array[];
  /** Source of each held candidate. */
  readonly from: (Address | undefined)[];
  /** Address key of each held candidate. */
  readonly fromKeys: string[];
  /** Address keys that offered a candidate this update. */
  readonly sources: Set<string>;
  /** xorshift32 state. */
  random: number;
}

/**
 * Creates an empty sample of `capacity` slots.
 *
 * @param capacity Requests decrypted per update at most.
 * @param seed Nonzero 32-bit seed for the choice.
 * @returns The sample.
 */
export function createRequestSample(
  capacity: number,
  seed: number,
): RequestSample {
  return {
    capacity,
    count: 0,
    offered: 0,
    slots: [],
    from: [],
    fromKeys: [],
    sources: new Set(),
    random: (seed >>> 0) || 1,
  };
}

/**
 * Offers a request that passed the checks needing no cryptography. Of the
 * update's offers, `offered - count` are shed when the update ends.
 *
 * @param sample The sample.
 * @param data The 1078-byte request (copied if kept).
 * @param from Its source.
 * @param fromKey `addressKey(from)`.
 * @returns `false` when the address already offered one this update: this
 * one is shed at once.
 */
export function offerRequest(
  sample: RequestSample,
  data: Uint8Array,
  from: Address,
  fromKey: string,
): boolean {
  const sources = sample.sources;
  if (sources.has(fromKey)) return false;
  sources.add(fromKey);
  sample.offered++;
  let slot = sample.count;
  if (slot < sample.capacity) {
    sample.count++;
  } else {
    // Kept with probability capacity / offered, in place of a random one.
    slot = nextRandom(sample) % sample.offered;
    if (slot >= sample.capacity) return true;
  }
  (sample.slots[slot] ??= new Uint8Array(CONNECTION_REQUEST_PACKET_BYTES))
    .set(data);
  sample.from[slot] = from;
  sample.fromKeys[slot] = fromKey;
  return true;
}

/**
 * Empties the sample for the next update.
 *
 * @param sample The sample.
 */
export function clearRequestSample(sample: RequestSample): void {
  sample.count = 0;
  sample.offered = 0;
  sample.sources.clear();
  sample.from.fill(undefined);
}

function nextRandom(sample: RequestSample): number {
  let x = sample.random;
  x ^= x << 13;
  x ^= x >>> 17;
  x ^= x << 5;
  sample.random = x >>> 0;
  return sample.random;
}
