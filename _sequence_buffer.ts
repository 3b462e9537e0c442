/**
 * Internal: the window of 16-bit sequences that reliable 1.0 keeps for sent
 * packets, received packets and packets under reassembly. Each buffer has a
 * power-of-two number of entries; entry `sequence & mask` remembers which
 * sequence it holds (or -1), and the buffer's `sequence` is one past the
 * newest sequence it has been moved to, modulo 2^16.
 *
 * The comparisons and the window rules are those of the C reference
 * (mas-bandwidth/reliable), including its asymmetry at a difference of
 * exactly 32768, because they decide which datagrams a byte-compatible
 * endpoint accepts. The data kept per entry lives in the caller's parallel
 * typed arrays, indexed by the entry index these functions return.
 *
 * @module
 */

/** One window of sequences; see the module documentation. */
export interface SequenceBuffer {
  /** One past the newest sequence the window moved to, 0..65535. */
  sequence: number;
  /** Entries: a power of two. */
  readonly size: number;
  /** `size - 1`: the entry of sequence `s` is `s & mask`. */
  readonly mask: number;
  /** The sequence each entry holds, or -1 for an empty entry. */
  readonly entries: Int32Array;
}

/**
 * Creates an empty buffer at sequence 0.
 *
 * @param size Entries, a power of two (the caller checks).
 * @returns The buffer.
 */
export function createSequenceBuffer(size: number): SequenceBuffer {
  const entries = new Int32Array(size);
  entries.fill(-1);
  return { sequence: 0, size, mask: size - 1, entries };
}

/**
 * Empties every entry and moves the window back to sequence 0.
 *
 * @param buffer The buffer.
 */
export function resetSequenceBuffer(buffer: SequenceBuffer): void {
  buffer.sequence = 0;
  buffer.entries.fill(-1);
}

/**
 * Whether `a` is newer than `b` in 16-bit wrapping order. At a distance of
 * exactly 32768 the numerically larger one counts as newer, so
 * `greater(32768, 0)` and `greater(0, 32768)` are `true` and `false`.
 *
 * @param a A sequence, 0..65535.
 * @param b A sequence, 0..65535.
 * @returns `true` when `a` is newer.
 */
export function sequenceGreaterThan(a: number, b: number): boolean {
  return a > b ? a - b <= 32768 : a < b && b - a > 32768;
}

/**
 * Whether `a` is older than `b`: `sequenceGreaterThan(b, a)`.
 *
 * @param a A sequence, 0..65535.
 * @param b A sequence, 0..65535.
 * @returns `true` when `a` is older.
 */
export function sequenceLessThan(a: number, b: number): boolean {
  return sequenceGreaterThan(b, a);
}

/**
 * Whether `sequence` is too old for the window: older than the buffer's
 * sequence minus its size.
 *
 * @param buffer The buffer.
 * @param sequence The sequence, 0..65535.
 * @returns `true` when it falls behind the window.
 */
export function isStaleSequence(
  buffer: SequenceBuffer,
  sequence: number,
): boolean {
  return sequenceLessThan(
    sequence,
    (buffer.sequence - buffer.size) & 0xffff,
  );
}

/**
 * Whether the entry of `sequence` holds exactly that sequence.
 *
 * @param buffer The buffer.
 * @param sequence The sequence, 0..65535.
 * @returns `true` when it is held.
 */
export function holdsSequence(
  buffer: SequenceBuffer,
  sequence: number,
): boolean {
  return buffer.entries[sequence & buffer.mask] === sequence;
}

/**
 * Empties the entries from `first` to `last` inclusive, in wrapping order;
 * all of them when that run is as long as the buffer or longer.
 */
function emptyRun(buffer: SequenceBuffer, first: number, last: number): void {
  if (last < first) last += 65536;
  if (last - first < buffer.size) {
    // Sizes are powers of two at most 2^16, so masking the unwrapped
    // sequence picks the same entry as masking the wrapped one.
    for (let sequence = first; sequence <= last; sequence++) {
      buffer.entries[sequence & buffer.mask] = -1;
    }
  } else {
    buffer.entries.fill(-1);
  }
}

/**
 * Moves the window so that `sequence` is its newest, when `sequence + 1` is
 * newer than the buffer's sequence, emptying the entries it moves over.
 * Older sequences leave it unchanged.
 *
 * @param buffer The buffer.
 * @param sequence The sequence, 0..65535.
 */
export function advanceSequenceBuffer(
  buffer: SequenceBuffer,
  sequence: number,
): void {
  const next = (sequence + 1) & 0xffff;
  if (sequenceGreaterThan(next, buffer.sequence)) {
    emptyRun(buffer, buffer.sequence, sequence);
    buffer.sequence = next;
  }
}

/**
 * Enters `sequence`: refused when stale, otherwise the window advances to it
 * when it is newer and its entry is claimed.
 *
 * @param buffer The buffer.
 * @param sequence The sequence, 0..65535.
 * @returns The entry index, or -1 when the sequence is stale.
 */
export function insertSequence(
  buffer: SequenceBuffer,
  sequence: number,
): number {
  if (isStaleSequence(buffer, sequence)) return -1;
  advanceSequenceBuffer(buffer, sequence);
  const index = sequence & buffer.mask;
  buffer.entries[index] = sequence;
  return index;
}

/**
 * Enters `sequence` testing the other way round, as the reference does for
 * its reassembly buffer: a sequence whose successor is newer always advances
 * the window and is entered; only otherwise is a stale one refused. The two
 * orders differ for sequences that are both (e.g. 32767 on a fresh buffer).
 *
 * @param buffer The buffer.
 * @param sequence The sequence, 0..65535.
 * @returns The entry index, or -1 when the sequence is stale.
 */
export function insertSequenceAdvancingFirst(
  buffer: SequenceBuffer,
  sequence: number,
): number {
  const next = (sequence + 1) & 0xffff;
  if (sequenceGreaterThan(next, buffer.sequence)) {
    emptyRun(buffer, buffer.sequence, sequence);
    buffer.sequence = next;
  } else if (isStaleSequence(buffer, sequence)) {
    return -1;
  }
  const index = sequence & buffer.mask;
  buffer.entries[index] = sequence;
  return index;
}

/**
 * Empties the entry of `sequence`, whichever sequence it holds.
 *
 * @param buffer The buffer.
 * @param sequence The sequence, 0..65535.
 */
export function removeSequence(buffer: SequenceBuffer, sequence: number): void {
  buffer.entries[sequence & buffer.mask] = -1;
}
