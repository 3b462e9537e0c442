import assert from "node:assert/strict";
import {
  connectionQuality,
  createMessageConnection,
  type MessageConfig,
  type MessageConnection,
  messagePartBytes,
  receiveMessage,
  receiveMessagePacket,
  resetMessageConnection,
  resolveMessageConfig,
  sendMessage,
  sendMessagePackets,
  updateMessageConnection,
} from "../channel.ts";
import { readPacketHeader, writePacketHeader } from "../reliable.ts";

/** A small seeded PRNG (mulberry32), so every run sees the same link. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface LinkOptions {
  /** One-way latency, seconds. */
  latency: number;
  /** Extra random delay, 0..jitter seconds. */
  jitter: number;
  /** Share of datagrams lost. */
  loss: number;
  /** Share of datagrams delivered twice. */
  duplicate: number;
}

interface InFlight {
  at: number;
  data: Uint8Array;
}

/** Two connections over a lossy, jittery, duplicating (so reordering) link. */
function createPair(config: MessageConfig, link: LinkOptions, seed = 1) {
  const next = random(seed);
  const toA: InFlight[] = [];
  const toB: InFlight[] = [];
  let time = 0;
  const queue = (list: InFlight[], data: Uint8Array) => {
    if (next() < link.loss) return;
    const copies = next() < link.duplicate ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      list.push({
        at: time + link.latency + next() * link.jitter,
        data: data.slice(),
      });
    }
  };
  const a = createMessageConnection(config, 0, (d) => queue(toB, d));
  const b = createMessageConnection(config, 0, (d) => queue(toA, d));
  const deliver = (list: InFlight[], to: MessageConnection) => {
    // Arrival order, which reorders datagrams whose delays differ.
    list.sort((x, y) => x.at - y.at);
    let due = 0;
    while (due < list.length && list[due].at <= time) due++;
    for (const { data } of list.splice(0, due)) receiveMessagePacket(to, data);
  };
  return {
    a,
    b,
    get time() {
      return time;
    },
    tick(dt = 1 / 60) {
      time += dt;
      updateMessageConnection(a, time);
      updateMessageConnection(b, time);
      deliver(toB, b);
      deliver(toA, a);
      sendMessagePackets(a);
      sendMessagePackets(b);
    },
  };
}

const CHANNELS: MessageConfig = {
  channels: [
    { kind: "reliable-ordered", onSendQueueFull: "drop" },
    { kind: "unreliable-unordered" },
  ],
};

function message(index: number, length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) bytes[i] = (index * 31 + i * 7) & 0xff;
  if (length >= 4) new DataView(bytes.buffer).setUint32(0, index);
  return bytes;
}

Deno.test("sendMessage() delivers reliable messages once and in order over 20% loss, duplicates and reordering", () => {
  const pair = createPair(CHANNELS, {
    latency: 0.05,
    jitter: 0.03,
    loss: 0.2,
    duplicate: 0.1,
  });
  const lengths = [0, 1, 5, 200, 1011, 1012, 1013, 3000, 51200, 9, 65536];
  const sent: Uint8Array[] = [];
  const received: Uint8Array[] = [];
  for (let tick = 0; tick < 3000 && received.length < 300; tick++) {
    if (sent.length < 300) {
      const m = message(sent.length, lengths[sent.length % lengths.length]);
      // A full send queue refuses it (counted); offered again next tick.
      if (sendMessage(pair.a, 0, m)) sent.push(m);
    }
    pair.tick();
    for (let m = receiveMessage(pair.b, 0); m; m = receiveMessage(pair.b, 0)) {
      received.push(m);
    }
  }
  assert.equal(received.length, 300);
  for (let i = 0; i < sent.length; i++) assert.deepEqual(received[i], sent[i]);
  assert.equal(receiveMessage(pair.b, 0), undefined);
  assert.ok(pair.a.counters.partsResent > 0, "some parts were resent");
  assert.ok(pair.b.counters.partsDuplicate > 0, "some parts arrived twice");
  assert.equal(pair.b.counters.packetsMalformed, 0);
  assert.equal(pair.b.counters.packetsOutOfWindow, 0);
});

Deno.test("sendMessage() on an unreliable channel delivers what arrives, at most once per datagram copy", () => {
  const pair = createPair(CHANNELS, {
    latency: 0.02,
    jitter: 0.02,
    loss: 0.1,
    duplicate: 0,
  });
  const seen = new Set<number>();
  for (let tick = 0; tick < 600; tick++) {
    if (tick < 500) sendMessage(pair.a, 1, message(tick, 100));
    pair.tick();
    for (let m = receiveMessage(pair.b, 1); m; m = receiveMessage(pair.b, 1)) {
      const index = new DataView(m.buffer).getUint32(0);
      assert.deepEqual(m, message(index, 100));
      assert.ok(!seen.has(index), `message ${index} delivered twice`);
      seen.add(index);
    }
  }
  // About 10% lost; every delivered one was byte-exact.
  assert.ok(seen.size > 400 && seen.size < 490, `${seen.size} delivered`);
});

Deno.test("sendMessage() sends an unreliable message larger than a packet alone, fragmented", () => {
  const config: MessageConfig = {
    channels: [{ kind: "unreliable-unordered", maxMessageBytes: 8000 }],
  };
  const pair = createPair(config, {
    latency: 0.01,
    jitter: 0,
    loss: 0,
    duplicate: 0,
  });
  const big = message(7, 8000);
  sendMessage(pair.a, 0, big);
  sendMessage(pair.a, 0, message(8, 10));
  for (let tick = 0; tick < 5; tick++) pair.tick();
  assert.deepEqual(receiveMessage(pair.b, 0), big);
  assert.deepEqual(receiveMessage(pair.b, 0), message(8, 10));
  assert.equal(pair.b.endpoint.counters.fragmentsReceived, 8);
});

Deno.test("connectionQuality() converges on the link's round trip and loss", () => {
  // 95 ms each way: datagrams are taken at the first tick after they
  // arrive, so the round trip the endpoints see is 12 ticks, 200 ms.
  const pair = createPair(CHANNELS, {
    latency: 0.095,
    jitter: 0,
    loss: 0.1,
    duplicate: 0,
  });
  let lossSum = 0;
  let samples = 0;
  for (let tick = 0; tick < 60 * 40; tick++) {
    sendMessage(pair.a, 1, message(tick, 50));
    sendMessage(pair.b, 1, message(tick, 50));
    pair.tick();
    while (receiveMessage(pair.a, 1));
    while (receiveMessage(pair.b, 1));
    // The estimate looks at the last 128 packets: average it over the last
    // 30 s of readings.
    if (tick >= 60 * 10) {
      lossSum += connectionQuality(pair.a).packetLoss;
      samples++;
    }
  }
  const quality = connectionQuality(pair.a);
  assert.ok(
    Math.abs(quality.rtt - 200) <= 20,
    `rtt ${quality.rtt} ms, expected about 200`,
  );
  const loss = lossSum / samples;
  assert.ok(
    Math.abs(loss - 10) <= 3,
    `packet loss ${loss}%, expected about 10`,
  );
  assert.ok(quality.sentBandwidthKbps > 0);
});

Deno.test("receiveMessagePacket() never throws and stays bounded under random and mutated packets", () => {
  const config: MessageConfig = CHANNELS;
  const next = random(99);
  const captured: Uint8Array[] = [];
  const honest = createMessageConnection(
    config,
    0,
    (d) => captured.push(d.slice()),
  );
  for (let i = 0; i < 50; i++) {
    sendMessage(honest, 0, message(i, 1 + ((i * 397) % 3000)));
    sendMessage(honest, 1, message(i, 1 + ((i * 13) % 200)));
    updateMessageConnection(honest, i / 60);
    sendMessagePackets(honest);
  }
  // Random framing behind valid, fresh reliable headers, so every datagram
  // reaches the message layer.
  const random1 = createMessageConnection(config, 0, () => {});
  const header = new Uint8Array(9);
  for (let i = 0; i < 10000; i++) {
    const h = writePacketHeader(header, 0, i & 0xffff, 0, 0);
    const datagram = new Uint8Array(h + Math.floor(next() * 1100));
    datagram.set(header.subarray(0, h));
    for (let k = h; k < datagram.length; k++) datagram[k] = next() * 256;
    // Some start as a valid packet would: flags 1, channel 0 or 1.
    if (i % 2 === 0 && datagram.length > h + 2) {
      datagram[h] = 1;
      datagram[h + 1] = i & 1;
    }
    receiveMessagePacket(random1, datagram);
  }
  assert.equal(random1.endpoint.counters.packetsReceived, 10000);
  assert.ok(
    random1.counters.packetsMalformed + random1.counters.packetsOutOfWindow >
      9000,
    JSON.stringify(random1.counters),
  );
  // Honest packets with a few bits flipped anywhere.
  const mutated = createMessageConnection(config, 0, () => {});
  const unfragmented = captured.filter((d) => (d[0] & 1) === 0);
  for (let i = 0; i < 20000; i++) {
    // The payload of an honest packet behind a fresh header (so it is not
    // stale), with a few bits flipped in the payload, and sometimes in the
    // header too.
    const honestPacket = unfragmented[i % unfragmented.length];
    const payload = honestPacket.subarray(
      readPacketHeader(honestPacket)!.headerBytes,
    );
    const h = writePacketHeader(header, 0, i & 0xffff, 0, 0);
    const datagram = new Uint8Array(h + payload.length);
    datagram.set(header.subarray(0, h));
    datagram.set(payload, h);
    const flips = 1 + Math.floor(next() * 4);
    for (let f = 0; f < flips; f++) {
      const at = i % 10 === 0
        ? Math.floor(next() * datagram.length)
        : h + Math.floor(next() * payload.length);
      datagram[at] ^= 1 << Math.floor(next() * 8);
    }
    receiveMessagePacket(mutated, datagram);
    if (i % 100 === 0) {
      updateMessageConnection(mutated, i / 6000);
      sendMessagePackets(mutated);
    }
  }
  // Most still parse as reliable packets; many no longer parse as
  // messages.
  assert.ok(mutated.endpoint.counters.packetsReceived > 19000);
  assert.ok(mutated.counters.packetsMalformed > 100);
  // Whatever arrived, each side holds at most its receive queues' worth
  // of messages (and its window of parts).
  for (const target of [random1, mutated]) {
    let held = 0;
    while (receiveMessage(target, 0)) held++;
    while (receiveMessage(target, 1)) held++;
    assert.ok(held <= 2 * 1024, `${held} messages held`);
  }
});

Deno.test("sendMessage() refuses a full send queue by throwing or dropping, as configured", () => {
  const throwing = createMessageConnection(
    {
      channels: [{ kind: "unreliable-unordered", sendQueueSize: 1 }],
    },
    0,
    () => {},
  );
  sendMessage(throwing, 0, new Uint8Array(1));
  assert.throws(() => sendMessage(throwing, 0, new Uint8Array(1)), {
    name: "RangeError",
    message:
      "Cannot send message: channel 0's send queue is full (1 messages waiting)",
  });
  const parts = Math.ceil(65536 / messagePartBytes(1024));
  const dropping = createMessageConnection(
    {
      channels: [{
        kind: "reliable-ordered",
        sendQueueSize: parts,
        onSendQueueFull: "drop",
      }],
    },
    0,
    () => {},
  );
  assert.equal(sendMessage(dropping, 0, new Uint8Array(65536)), true);
  assert.equal(sendMessage(dropping, 0, new Uint8Array(1)), false);
  assert.equal(dropping.counters.messagesDroppedSendQueueFull, 1);
});

Deno.test("sendMessage() frees reliable send-queue room as parts are acked", () => {
  const pair = createPair({
    channels: [{
      kind: "reliable-ordered",
      maxMessageBytes: 100,
      sendQueueSize: 4,
    }],
  }, { latency: 0.01, jitter: 0, loss: 0, duplicate: 0 });
  let delivered = 0;
  for (let i = 0; i < 40; i++) {
    sendMessage(pair.a, 0, message(i, 100));
    // Four in flight at most: wait for acks before the next round.
    if (i % 4 === 3) {
      for (let t = 0; t < 4; t++) pair.tick();
      while (receiveMessage(pair.b, 0)) delivered++;
    }
  }
  assert.equal(delivered, 40);
});

Deno.test("resolveMessageConfig() checks channels and sizes with clear errors", () => {
  assert.throws(() => resolveMessageConfig({ channels: [] }), {
    name: "RangeError",
    message: "Cannot create message connection: 0 channels is outside 1..64",
  });
  assert.throws(
    // deno-lint-ignore no-explicit-any
    () => resolveMessageConfig({ channels: [{ kind: "ordered" as any }] }),
    TypeError,
  );
  assert.throws(
    () =>
      resolveMessageConfig({
        channels: [{ kind: "unreliable-unordered", maxMessageBytes: 20000 }],
      }),
    RangeError,
  );
  assert.throws(
    () =>
      resolveMessageConfig({
        channels: [{ kind: "reliable-ordered", receiveWindowSize: 8 }],
      }),
    /receiveWindowSize 8 is outside 65\.\.16384/,
  );
  assert.throws(
    () =>
      resolveMessageConfig({
        channels: [{ kind: "reliable-ordered" }],
        packetBudgetBytes: 2000,
      }),
    /packetBudgetBytes 2000 is outside 13\.\.1024/,
  );
});

Deno.test("resetMessageConnection() forgets queued and received messages", () => {
  const pair = createPair(CHANNELS, {
    latency: 0,
    jitter: 0,
    loss: 0,
    duplicate: 0,
  });
  sendMessage(pair.a, 0, message(1, 10));
  pair.tick();
  pair.tick();
  resetMessageConnection(pair.b);
  assert.equal(receiveMessage(pair.b, 0), undefined);
  assert.equal(pair.b.counters.messagesReceived, 0);
});

Deno.test("sendMessagePackets() keeps an unreliable channel flowing behind a reliable backlog", () => {
  const pair = createPair(CHANNELS, {
    latency: 0.05,
    jitter: 0,
    loss: 0.3,
    duplicate: 0,
  });
  // A backlog of reliable parts: 1000 of them, resent over 30% loss.
  for (let i = 0; i < 15; i++) sendMessage(pair.a, 0, message(i, 65536));
  let state = 0;
  for (let tick = 0; tick < 120; tick++) {
    sendMessage(pair.a, 1, message(tick, 200));
    pair.tick();
    while (receiveMessage(pair.b, 1)) state++;
  }
  // About 70% of 120 arrive; none wait behind the backlog for long.
  assert.ok(state > 70, `${state} of 120 state messages arrived`);
});
