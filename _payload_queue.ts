/**
 * Internal: the queue of received payloads of one connection, waiting for
 * `receive()`. Payload bytes are copied into a ring of bytes the queue owns
 * (its arena), so queueing a payload allocates nothing; `shiftPayload` makes
 * the copy a caller owns when it takes it, `shiftPayloadInto` copies into
 * the caller's buffer and allocates nothing at all.
 *
 * Payloads are taken in the order they were queued, so the arena is used
 * first in, first out: live bytes are one run, or two when they wrapped
 * around. A payload that does not fit in the arena's free run is queued as
 * a copy of its own instead: slower, never lost.
 *
 * @module
 */

import { PACKET_QUEUE_SIZE } from "./packet.ts";

/** Payloads a queue holds: the reference's packet queue size, 256. */
export const PAYLOAD_QUEUE_ENTRIES: number = PACKET_QUEUE_SIZE;
/** Bytes of a queue's arena: 40 payloads of 100 bytes, or 3 of 1200. */
export const PAYLOAD_ARENA_BYTES = 4096;

/** One connection's received payloads; see the module documentation. */
export interface PayloadQueue {
  /** Index of the oldest entry. */
  head: number;
  /** Entries queued. */
  count: number;
  /** Each entry's offset in the arena, or -1 for a copy in `copies`. */
  readonly offsets: Int32Array;
  /** Each entry's length in bytes. */
  readonly lengths: Uint16Array;
  /** Each entry's packet sequence (exact below 2^53). */
  readonly sequences: Float64Array;
  /** The sequence of the payload taken last, or -1 before the first. */
  lastSequence: number;
  /** Entries that did not fit in the arena. */
  readonly copies: (Uint8Array | undefined)[];
  /** The arena, made when the first payload arrives. */
  arena: Uint8Array | undefined;
  /** Arena offset of the oldest queued byte. */
  arenaHead: number;
  /** Arena offset the next payload is written at. */
  arenaTail: number;
  /** When wrapped: where the older run ends (it began at `arenaHead`). */
  arenaEnd: number;
  /** Whether the live bytes wrapped: `[arenaHead, arenaEnd)` then `[0, arenaTail)`. */
  wrapped: boolean;
  /** Entries held in the arena. */
  arenaCount: number;
}

/**
 * Creates an empty queue.
 *
 * @returns The queue.
 */
export function createPayloadQueue(): PayloadQueue {
  return {
    head: 0,
    count: 0,
    offsets: new Int32Array(PAYLOAD_QUEUE_ENTRIES),
    lengths: new Uint16Array(PAYLOAD_QUEUE_ENTRIES),
    sequences: new Float64Array(PAYLOAD_QUEUE_ENTRIES),
    lastSequence: -1,
    copies: new Array(PAYLOAD_QUEUE_ENTRIES).fill(undefined),
    arena: undefined,
    arenaHead: 0,
    arenaTail: 0,
    arenaEnd: 0,
    wrapped: false,
    arenaCount: 0,
  };
}

/**
 * Empties the queue (the arena is kept for the slot's next connection).
 *
 * @param queue The queue.
 */
export function clearPayloadQueue(queue: PayloadQueue): void {
  queue.copies.fill(undefined);
  queue.head = 0;
  queue.count = 0;
  queue.lastSequence = -1;
  resetArena(queue);
}

function resetArena(queue: PayloadQueue): void {
  queue.arenaHead = 0;
  queue.arenaTail = 0;
  queue.arenaEnd = 0;
  queue.wrapped = false;
  queue.arenaCount = 0;
}

/** Where `length` bytes fit in the arena's free run, or -1. */
function arenaOffset(queue: PayloadQueue, length: number): number {
  if (queue.wrapped) {
    // Free: [arenaTail, arenaHead).
    return queue.arenaTail + length <= queue.arenaHead ? queue.arenaTail : -1;
  }
  // Free: [arenaTail, end of arena), then [0, arenaHead) by wrapping.
  if (queue.arenaTail + length <= PAYLOAD_ARENA_BYTES) return queue.arenaTail;
  if (length <= queue.arenaHead) {
    queue.arenaEnd = queue.arenaTail;
    queue.wrapped = true;
    return 0;
  }
  return -1;
}

/**
 * Queues a copy of `payload`.
 *
 * @param queue The queue.
 * @param payload 1..1200 bytes; copied, so the caller may reuse it.
 * @param sequence The packet sequence it came with.
 * @returns `false` when the queue is full and the payload was not queued.
 */
export function pushPayload(
  queue: PayloadQueue,
  payload: Uint8Array,
  sequence: number | bigint = 0,
): boolean {
  if (queue.count === PAYLOAD_QUEUE_ENTRIES) return false;
  const entry = (queue.head + queue.count) % PAYLOAD_QUEUE_ENTRIES;
  const length = payload.length;
  queue.arena ??= new Uint8Array(PAYLOAD_ARENA_BYTES);
  const offset = arenaOffset(queue, length);
  if (offset < 0) {
    queue.copies[entry] = payload.slice();
  } else {
    queue.arena.set(payload, offset);
    queue.arenaTail = offset + length;
    queue.arenaCount++;
  }
  queue.offsets[entry] = offset;
  queue.lengths[entry] = length;
  queue.sequences[entry] = Number(sequence);
  queue.count++;
  return true;
}

/** Forgets the oldest entry (already copied out). */
function dropHead(queue: PayloadQueue, entry: number): void {
  queue.lastSequence = queue.sequences[entry];
  const offset = queue.offsets[entry];
  if (offset < 0) {
    queue.copies[entry] = undefined;
  } else if (--queue.arenaCount === 0) {
    resetArena(queue);
  } else {
    queue.arenaHead = offset + queue.lengths[entry];
    if (queue.wrapped && queue.arenaHead === queue.arenaEnd) {
      queue.arenaHead = 0;
      queue.wrapped = false;
    }
  }
  queue.head = (entry + 1) % PAYLOAD_QUEUE_ENTRIES;
  queue.count--;
}

/**
 * Takes the oldest payload as a copy the caller owns.
 *
 * @param queue The queue.
 * @returns The payload, or `undefined` when the queue is empty.
 */
export function shiftPayload(queue: PayloadQueue): Uint8Array | undefined {
  if (queue.count === 0) return undefined;
  const entry = queue.head;
  const offset = queue.offsets[entry];
  const payload = offset < 0
    ? queue.copies[entry]!
    : queue.arena!.slice(offset, offset + queue.lengths[entry]);
  dropHead(queue, entry);
  return payload;
}

/**
 * The length of the oldest payload, or 0 when the queue is empty.
 *
 * @param queue The queue.
 * @returns Bytes of the payload `shiftPayloadInto` would copy next.
 */
export function peekPayloadLength(queue: PayloadQueue): number {
  return queue.count === 0 ? 0 : queue.lengths[queue.head];
}

/**
 * Throws the `TypeError` of `receiveInto` when `buffer` is not a
 * `Uint8Array`.
 *
 * @param buffer The caller's buffer.
 */
export function checkReceiveBuffer(buffer: unknown): void {
  if (!(buffer instanceof Uint8Array)) {
    throw new TypeError(
      "Cannot receive payload: the buffer is not a Uint8Array",
    );
  }
}

/**
 * Copies the oldest payload into `buffer` at offset 0 and takes it off the
 * queue. A payload longer than the buffer stays queued.
 *
 * @param queue The queue.
 * @param buffer Where to copy it.
 * @returns Bytes copied, or 0 when the queue is empty.
 * @throws {RangeError} When the payload does not fit in `buffer`.
 */
export function shiftPayloadInto(
  queue: PayloadQueue,
  buffer: Uint8Array,
): number {
  if (queue.count === 0) return 0;
  const entry = queue.head;
  const offset = queue.offsets[entry];
  const length = queue.lengths[entry];
  if (length > buffer.length) {
    throw new RangeError(
      `Cannot receive payload: ${length} bytes do not fit in a ${buffer.length} byte buffer`,
    );
  }
  buffer.set(
    offset < 0
      ? queue.copies[entry]!
      : queue.arena!.subarray(offset, offset + length),
    0,
  );
  dropHead(queue, entry);
  return length;
}
