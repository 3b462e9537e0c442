// The internal payload queue: first in, first out through the arena and its
// copies, against a plain array as the model.

import {
  clearPayloadQueue,
  createPayloadQueue,
  PAYLOAD_ARENA_BYTES,
  PAYLOAD_QUEUE_ENTRIES,
  peekPayloadLength,
  pushPayload,
  shiftPayload,
  shiftPayloadInto,
} from "../_payload_queue.ts";
import { createRandom } from "../simulator.ts";
import { assert, assertEquals, assertFalse } from "./_assert.ts";

Deno.test("payload queue returns every payload intact, in order, under random traffic", () => {
  const random = createRandom(7);
  const queue = createPayloadQueue();
  const model: Uint8Array[] = [];
  const into = new Uint8Array(1200);
  let stamp = 0;
  let copiesSeen = 0;
  for (let step = 0; step < 20_000; step++) {
    if (random() < 0.5) {
      const length = random() < 0.2
        ? 1 + Math.floor(random() * 1200)
        : 1 + Math.floor(random() * 160);
      const payload = new Uint8Array(length).fill(++stamp & 255);
      payload[0] = stamp >> 8 & 255;
      const queued = pushPayload(queue, payload);
      assertEquals(queued, model.length < PAYLOAD_QUEUE_ENTRIES);
      if (queued) model.push(payload.slice());
      payload.fill(0); // the queue holds a copy
      if (
        queue.count > 0 && queue.offsets[
            (queue.head + queue.count - 1) % PAYLOAD_QUEUE_ENTRIES
          ] < 0
      ) copiesSeen++;
    } else {
      const expected = model.shift();
      assertEquals(peekPayloadLength(queue), expected?.length ?? 0);
      if (random() < 0.5) {
        assertEquals(shiftPayload(queue), expected);
      } else {
        const bytes = shiftPayloadInto(queue, into);
        assertEquals(bytes, expected?.length ?? 0);
        if (expected) assertEquals(into.subarray(0, bytes), expected);
      }
    }
    assertEquals(queue.count, model.length);
    assert(queue.arenaCount <= queue.count);
    assert(queue.arenaTail <= PAYLOAD_ARENA_BYTES);
  }
  // Large payloads overflowed the arena now and then, and were kept as copies.
  assert(copiesSeen > 0);
});

Deno.test("payload queue: a payload owned by the caller does not change with later traffic", () => {
  const queue = createPayloadQueue();
  pushPayload(queue, new Uint8Array(100).fill(1));
  const first = shiftPayload(queue)!;
  for (let i = 0; i < 100; i++) {
    pushPayload(queue, new Uint8Array(100).fill(2));
    shiftPayload(queue);
  }
  assertEquals(first, new Uint8Array(100).fill(1));
  assertEquals(first.buffer.byteLength, 100);
});

Deno.test("payload queue: full at 256 entries; cleared, it starts over", () => {
  const queue = createPayloadQueue();
  for (let i = 0; i < PAYLOAD_QUEUE_ENTRIES; i++) {
    assert(pushPayload(queue, new Uint8Array([i & 255])));
  }
  assertFalse(pushPayload(queue, new Uint8Array([0])));
  clearPayloadQueue(queue);
  assertEquals(queue.count, 0);
  assertEquals(shiftPayload(queue), undefined);
  assertEquals(shiftPayloadInto(queue, new Uint8Array(1)), 0);
  assert(pushPayload(queue, new Uint8Array([9])));
  assertEquals(shiftPayload(queue), new Uint8Array([9]));
});

Deno.test("payload queue: short queues of small payloads stay in the arena, wrapping around it", () => {
  const random = createRandom(11);
  const queue = createPayloadQueue();
  let wraps = 0;
  for (let step = 0; step < 20_000; step++) {
    if (queue.count < 20 && (queue.count === 0 || random() < 0.5)) {
      const wasWrapped = queue.wrapped;
      pushPayload(queue, new Uint8Array(1 + Math.floor(random() * 160)));
      const last = (queue.head + queue.count - 1) % PAYLOAD_QUEUE_ENTRIES;
      assert(queue.offsets[last] >= 0, `step ${step}: queued as a copy`);
      if (!wasWrapped && queue.wrapped) wraps++;
    } else {
      shiftPayload(queue);
    }
  }
  assert(wraps > 100, `${wraps} wraps`);
});
