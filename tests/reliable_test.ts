// reliable.ts beyond the C reference's vectors (tests/reliable_conformance_test.ts):
// config validation, misuse, the sender's limits, 256-fragment packets, and a
// hostile peer that cannot make an endpoint throw or grow.

import {
  clearAcks,
  createReliableEndpoint,
  DEFAULT_RELIABLE_CONFIG,
  getAcks,
  MAX_PACKET_HEADER_BYTES,
  nextPacketSequence,
  readFragmentHeader,
  readPacketHeader,
  receivePacket,
  RELIABLE_COUNTER_NAMES,
  RELIABLE_STATS_NAMES,
  type ReliableCallbacks,
  type ReliableConfig,
  type ReliableEndpoint,
  reset,
  sendPacket,
  sequenceGreaterThan,
  sequenceLessThan,
  update,
  writePacketHeader,
} from "../reliable.ts";
import { createRandom } from "../simulator.ts";
import {
  assert,
  assertEquals,
  assertFalse,
  assertLessOrEqual,
  assertStrictEquals,
  assertThrows,
} from "./_assert.ts";

const NOOP: ReliableCallbacks = { transmit() {}, process: () => true };

/** A wired endpoint: what it transmitted and what it processed. */
interface Probe {
  endpoint: ReliableEndpoint;
  sent: Uint8Array[];
  processed: { sequence: number; payload: Uint8Array }[];
}

function probe(
  config: ReliableConfig = {},
  accept: (sequence: number) => boolean = () => true,
): Probe {
  const sent: Uint8Array[] = [];
  const processed: Probe["processed"] = [];
  const endpoint = createReliableEndpoint(config, 0, {
    transmit: (_sequence, datagram) => sent.push(datagram.slice()),
    process: (sequence, payload) => {
      processed.push({ sequence, payload: payload.slice() });
      return accept(sequence);
    },
  });
  return { endpoint, sent, processed };
}

function counters(endpoint: ReliableEndpoint): number[] {
  return RELIABLE_COUNTER_NAMES.map((name) => endpoint.counters[name]);
}

function randomBytes(random: () => number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = Math.floor(random() * 256);
  return out;
}

/** The endpoint's internal buffers (not part of the API; for bounds checks). */
interface Internals {
  acks: Uint16Array;
  numAcks: number;
  sent: { entries: Int32Array };
  sentTime: Float64Array;
  sentBytes: Float64Array;
  sentAcked: Uint8Array;
  received: { entries: Int32Array };
  receivedTime: Float64Array;
  receivedBytes: Float64Array;
  reassembly: { entries: Int32Array };
  reassemblyFlags: Uint8Array;
  reassemblyData: (Uint8Array | undefined)[];
  rttHistory: Float32Array;
  transmitBuffer: Uint8Array;
}

function internals(endpoint: ReliableEndpoint): Internals {
  return endpoint as unknown as Internals;
}

/** Sizes of every buffer the endpoint holds, and the reassembly bytes. */
function footprint(endpoint: ReliableEndpoint) {
  const s = internals(endpoint);
  return {
    keys: Object.keys(endpoint).length,
    fixed: [
      s.acks.length,
      s.sent.entries.length,
      s.sentTime.length,
      s.sentBytes.length,
      s.sentAcked.length,
      s.received.entries.length,
      s.receivedTime.length,
      s.receivedBytes.length,
      s.reassembly.entries.length,
      s.reassemblyFlags.length,
      s.reassemblyData.length,
      s.rttHistory.length,
      s.transmitBuffer.length,
    ],
    reassemblyBytes: s.reassemblyData.reduce(
      (sum, data) => sum + (data?.length ?? 0),
      0,
    ),
  };
}

/** The most reassembly memory the config allows. */
function reassemblyBound(endpoint: ReliableEndpoint): number {
  const c = endpoint.config;
  return c.fragmentReassemblyBufferSize *
    (MAX_PACKET_HEADER_BYTES +
      Math.min(c.maxFragments * c.fragmentSize, c.maxPacketSize));
}

// ---------------------------------------------------------------------------
// Config

Deno.test("reliable config: defaults are the reference's", () => {
  const endpoint = createReliableEndpoint({}, 0, NOOP);
  assertEquals(endpoint.config, DEFAULT_RELIABLE_CONFIG);
  assertEquals({ ...DEFAULT_RELIABLE_CONFIG }, {
    maxPacketSize: 16384,
    fragmentAbove: 1024,
    maxFragments: 16,
    fragmentSize: 1024,
    ackBufferSize: 256,
    sentPacketsBufferSize: 256,
    receivedPacketsBufferSize: 256,
    fragmentReassemblyBufferSize: 64,
    rttSmoothingFactor: Math.fround(0.0025),
    rttHistorySize: 512,
    packetLossSmoothingFactor: Math.fround(0.1),
    bandwidthSmoothingFactor: Math.fround(0.1),
    packetHeaderSize: 28,
  });
  assert(Object.isFrozen(endpoint.config));
  // Factors are held as float32, as the reference's config holds them.
  assertStrictEquals(
    createReliableEndpoint({ rttSmoothingFactor: 0.3 }, 0, NOOP).config
      .rttSmoothingFactor,
    Math.fround(0.3),
  );
});

Deno.test("reliable config: values of the wrong type or out of range are refused", () => {
  const create = (config: unknown) => () =>
    createReliableEndpoint(config as ReliableConfig, 0, NOOP);
  assertThrows(
    create(null),
    TypeError,
    "Cannot create reliable endpoint: config is not an object",
  );
  assertThrows(
    create({ fragmentsize: 512 }),
    TypeError,
    "unknown config option fragmentsize",
  );
  for (
    const [name, bad] of [
      ["maxPacketSize", 0],
      ["maxPacketSize", 1.5],
      ["maxPacketSize", 2 ** 30],
      ["maxPacketSize", "16384"],
      ["fragmentAbove", 0],
      ["maxFragments", 0],
      ["maxFragments", 257],
      ["fragmentSize", 0],
      ["fragmentSize", -1024],
      ["ackBufferSize", 0],
      ["rttHistorySize", 0],
      ["packetHeaderSize", -1],
      ["packetHeaderSize", NaN],
    ] as const
  ) {
    assertThrows(
      create({ [name]: bad }),
      RangeError,
      `Cannot create reliable endpoint: ${name} ${
        String(bad)
      } is not an integer`,
    );
  }
  for (
    const name of [
      "rttSmoothingFactor",
      "packetLossSmoothingFactor",
      "bandwidthSmoothingFactor",
    ]
  ) {
    for (const bad of [-0.1, 1.5, NaN, Infinity, "0.1"]) {
      assertThrows(
        create({ [name]: bad }),
        RangeError,
        `${name} ${String(bad)} is not a number 0..1`,
      );
    }
  }
  // The edges are accepted.
  createReliableEndpoint(
    {
      maxFragments: 256,
      packetHeaderSize: 0,
      rttSmoothingFactor: 0,
      packetLossSmoothingFactor: 1,
      fragmentAbove: 1,
      fragmentSize: 1,
    },
    0,
    NOOP,
  );
});

Deno.test("reliable config: the three sequence buffer sizes must be powers of two up to 16384", () => {
  for (
    const name of [
      "sentPacketsBufferSize",
      "receivedPacketsBufferSize",
      "fragmentReassemblyBufferSize",
    ]
  ) {
    for (const bad of [3, 100, 255, 257, 1000, 12288]) {
      assertThrows(
        () => createReliableEndpoint({ [name]: bad }, 0, NOOP),
        RangeError,
        `Cannot create reliable endpoint: ${name} ${bad} is not a power of two (1..16384)`,
      );
    }
    for (const bad of [0, -256, 32768, 65536, 2.5]) {
      assertThrows(
        () => createReliableEndpoint({ [name]: bad }, 0, NOOP),
        RangeError,
        `${name} ${bad} is not an integer 1..16384`,
      );
    }
    for (const good of [1, 2, 64, 1024, 16384]) {
      const endpoint = createReliableEndpoint({ [name]: good }, 0, NOOP);
      assertStrictEquals(
        endpoint.config[name as keyof ReliableConfig],
        good,
      );
    }
  }
  // The RTT history and the ack buffer are not sequence buffers: any size.
  createReliableEndpoint({ rttHistorySize: 500, ackBufferSize: 100 }, 0, NOOP);
});

Deno.test("reliable: a one-entry window still acks and measures", () => {
  const config = {
    sentPacketsBufferSize: 1,
    receivedPacketsBufferSize: 1,
    fragmentReassemblyBufferSize: 1,
  };
  const a = probe(config);
  const b = probe(config);
  for (let i = 0; i < 5; i++) {
    update(a.endpoint, i / 10);
    update(b.endpoint, i / 10);
    sendPacket(a.endpoint, new Uint8Array(2000)); // 2 fragments
    for (const d of a.sent.splice(0)) receivePacket(b.endpoint, d);
    sendPacket(b.endpoint, new Uint8Array([i]));
    for (const d of b.sent.splice(0)) receivePacket(a.endpoint, d);
    assertEquals([...getAcks(a.endpoint)], [i]);
    clearAcks(a.endpoint);
  }
  assertStrictEquals(b.processed.length, 5);
});

Deno.test("reliable: callbacks and time are checked at creation", () => {
  assertThrows(
    () =>
      createReliableEndpoint({}, 0, undefined as unknown as ReliableCallbacks),
    TypeError,
    "callbacks is not an object",
  );
  assertThrows(
    () =>
      createReliableEndpoint(
        {},
        0,
        { transmit() {} } as unknown as ReliableCallbacks,
      ),
    TypeError,
    "process must be a function",
  );
  assertThrows(
    () => createReliableEndpoint({}, NaN, NOOP),
    TypeError,
    "time NaN is not a number",
  );
  assertThrows(
    () => createReliableEndpoint({}, Infinity, NOOP),
    RangeError,
    "time Infinity is not finite",
  );
});

// ---------------------------------------------------------------------------
// Misuse

Deno.test("reliable: functions refuse objects that are not endpoints", () => {
  const fake = {
    config: DEFAULT_RELIABLE_CONFIG,
  } as unknown as ReliableEndpoint;
  assertThrows(
    () => sendPacket(fake, new Uint8Array(1)),
    TypeError,
    "Cannot send packet: not an endpoint made by createReliableEndpoint",
  );
  assertThrows(() => receivePacket(fake, new Uint8Array(1)), TypeError);
  assertThrows(() => update(fake, 1), TypeError);
  assertThrows(() => getAcks(fake), TypeError);
  assertThrows(() => clearAcks(fake), TypeError);
  assertThrows(() => reset(fake), TypeError);
  assertThrows(() => nextPacketSequence(fake), TypeError);
  const endpoint = createReliableEndpoint({}, 0, NOOP);
  assertThrows(
    () => sendPacket(endpoint, [1, 2] as unknown as Uint8Array),
    TypeError,
    "Cannot send packet: expected a Uint8Array",
  );
  assertThrows(
    () => receivePacket(endpoint, "data" as unknown as Uint8Array),
    TypeError,
    "Cannot receive packet: expected a Uint8Array",
  );
});

Deno.test("reliable: update refuses a time that is not a number, not finite or going backwards", () => {
  const endpoint = createReliableEndpoint({}, 5, NOOP);
  assertThrows(() => update(endpoint, NaN), TypeError, "is not a number");
  assertThrows(
    () => update(endpoint, "6" as unknown as number),
    TypeError,
    "time 6 is not a number",
  );
  assertThrows(() => update(endpoint, Infinity), RangeError, "is not finite");
  assertThrows(
    () => update(endpoint, 4.5),
    RangeError,
    "Cannot update endpoint: time 4.5 is before its time 5",
  );
  update(endpoint, 5); // the same time is fine
  update(endpoint, 6);
});

Deno.test("reliable: too large to send is counted as the reference counts it, throws and takes no sequence", () => {
  const { endpoint, sent } = probe();
  assertThrows(
    () => sendPacket(endpoint, new Uint8Array(20000)),
    RangeError,
    "Cannot send packet: 20000 bytes exceeds the 16384 byte limit",
  );
  assertStrictEquals(endpoint.counters.packetsTooLargeToSend, 1);
  assertStrictEquals(endpoint.counters.packetsSent, 0);
  assertStrictEquals(nextPacketSequence(endpoint), 0);
  assertStrictEquals(sent.length, 0);
  // The limit itself goes.
  assertStrictEquals(sendPacket(endpoint, new Uint8Array(16384)), 0);
  assertStrictEquals(sent.length, 16);
});

Deno.test("reliable: a payload needing more than maxFragments is a RangeError, counted, no sequence", () => {
  // The reference only asserts here; its config asks max_fragments to cover
  // max_packet_size / fragment_size, which this one does not.
  const { endpoint, sent } = probe({ fragmentSize: 512, maxFragments: 16 });
  assertStrictEquals(sendPacket(endpoint, new Uint8Array(8192)), 0);
  assertStrictEquals(sent.length, 16);
  sent.length = 0;
  assertThrows(
    () => sendPacket(endpoint, new Uint8Array(8193)),
    RangeError,
    "Cannot send packet: 8193 bytes needs 17 fragments of 512 bytes, over the limit of 16",
  );
  assertStrictEquals(endpoint.counters.packetsTooLargeToSend, 1);
  assertStrictEquals(nextPacketSequence(endpoint), 1);
  assertStrictEquals(sent.length, 0);
  // Unfragmented packets are not limited by maxFragments.
  const single = probe({ maxFragments: 1, fragmentAbove: 4000 });
  sendPacket(single.endpoint, new Uint8Array(4000));
  assertThrows(
    () => sendPacket(single.endpoint, new Uint8Array(4001)),
    RangeError,
    "needs 4 fragments of 1024 bytes, over the limit of 1",
  );
});

Deno.test("reliable: an empty payload goes as a header alone and arrives empty", () => {
  const a = probe();
  const b = probe();
  sendPacket(a.endpoint, new Uint8Array(0));
  assertStrictEquals(a.sent[0].length, 8);
  receivePacket(b.endpoint, a.sent[0]);
  assertStrictEquals(b.processed.length, 1);
  assertStrictEquals(b.processed[0].payload.length, 0);
});

Deno.test("reliable: an empty datagram counts as received and invalid", () => {
  const { endpoint, processed } = probe();
  receivePacket(endpoint, new Uint8Array(0));
  assertEquals(counters(endpoint), [0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
  assertStrictEquals(processed.length, 0);
});

Deno.test("reliable: callbacks may not re-enter the endpoint, except sending from process", () => {
  const a = probe();
  sendPacket(a.endpoint, new Uint8Array([1]));
  const datagram = a.sent[0];

  let inner: unknown;
  const replies: Uint8Array[] = [];
  let mode = "send";
  const b: ReliableEndpoint = createReliableEndpoint({}, 0, {
    transmit(_sequence, bytes) {
      replies.push(bytes.slice());
      if (mode === "send from transmit") {
        try {
          sendPacket(b, new Uint8Array(1));
        } catch (error) {
          inner = error;
        }
      }
    },
    process() {
      if (mode === "send") sendPacket(b, new Uint8Array([9])); // allowed
      if (mode === "receive") receivePacket(b, datagram);
      if (mode === "reset") reset(b);
      return true;
    },
  });
  receivePacket(b, datagram);
  assertStrictEquals(replies.length, 1);
  // Sent from inside process, before the packet is entered as received (the
  // reference's order): the reply does not ack it yet.
  assertEquals(readPacketHeader(replies[0])?.ack, 65535);

  const fresh = () => {
    reset(b);
    replies.length = 0;
  };
  for (const m of ["receive", "reset"]) {
    fresh();
    mode = m;
    const error = assertThrows(() => receivePacket(b, datagram), Error);
    assertEquals(
      error.message,
      m === "receive"
        ? "Cannot receive packet: called from inside this endpoint's callback"
        : "Cannot reset endpoint: called from inside this endpoint's callback",
    );
    // The endpoint is usable after a callback threw.
    mode = "none";
    receivePacket(b, datagram);
    assertStrictEquals(b.counters.packetsDuplicate, 0);
    receivePacket(b, datagram);
    assertStrictEquals(b.counters.packetsDuplicate, 1);
  }
  fresh();
  mode = "send from transmit";
  sendPacket(b, new Uint8Array(1));
  assert(inner instanceof Error);
  assertEquals(
    inner.message,
    "Cannot send packet: called from inside this endpoint's transmit callback",
  );
});

Deno.test("reliable: datagrams handed to transmit are views of one reused buffer", () => {
  const views: Uint8Array[] = [];
  const endpoint = createReliableEndpoint({}, 0, {
    transmit: (_sequence, datagram) => views.push(datagram),
    process: () => true,
  });
  sendPacket(endpoint, new Uint8Array(10).fill(1));
  sendPacket(endpoint, new Uint8Array(3000).fill(2));
  assertStrictEquals(views.length, 4);
  for (const view of views) assertStrictEquals(view.buffer, views[0].buffer);
});

// ---------------------------------------------------------------------------
// Sequences and headers

Deno.test("reliable sequences: wrapping order with the reference's asymmetry at 32768", () => {
  assert(sequenceGreaterThan(1, 0));
  assert(sequenceGreaterThan(0, 65535));
  assert(sequenceLessThan(65535, 0));
  assert(sequenceGreaterThan(32768, 0));
  assertFalse(sequenceGreaterThan(0, 32768));
  assertFalse(sequenceLessThan(32768, 0));
  assert(sequenceLessThan(0, 32768));
  assert(sequenceGreaterThan(40000, 7232)); // distance 32768 again
  assertFalse(sequenceGreaterThan(7232, 40000));
  assertFalse(sequenceGreaterThan(5, 5));
  assertFalse(sequenceLessThan(5, 5));
  assertThrows(() => sequenceGreaterThan(65536, 0), RangeError, "65536");
  assertThrows(() => sequenceLessThan(0, -1), RangeError, "-1");
});

Deno.test("reliable headers: writePacketHeader refuses bad values and a buffer too small", () => {
  const buffer = new Uint8Array(9);
  assertThrows(
    () => writePacketHeader(buffer, 0, 65536, 0, 0),
    RangeError,
    "Cannot write packet header: sequence 65536 is not an integer 0..65535",
  );
  assertThrows(() => writePacketHeader(buffer, 0, 0, -1, 0), RangeError, "ack");
  assertThrows(
    () => writePacketHeader(buffer, 0, 0, 0, 2 ** 32),
    RangeError,
    "ack bits",
  );
  assertThrows(
    () => writePacketHeader(buffer, 1, 1000, 0, 0),
    RangeError,
    "does not fit in a 9 byte buffer at offset 1",
  );
  assertThrows(
    () => writePacketHeader([] as unknown as Uint8Array, 0, 0, 0, 0),
    TypeError,
  );
  // 4 bytes fit at offset 5 of 9.
  assertStrictEquals(writePacketHeader(buffer, 5, 7, 6, 0xffffffff), 4);
  assertEquals(readPacketHeader(buffer.subarray(5)), {
    sequence: 7,
    ack: 6,
    ackBits: 0xffffffff,
    headerBytes: 4,
  });
  assertThrows(
    () => readFragmentHeader(new Uint8Array(5), 300),
    RangeError,
    "maxFragments 300",
  );
});

// ---------------------------------------------------------------------------
// Fragments

/** Sends `payload` from a to b, delivering its fragments in a shuffled order. */
function roundTrip(config: ReliableConfig, length: number, seed: number) {
  const random = createRandom(seed);
  const a = probe(config);
  const b = probe(config);
  const payload = randomBytes(random, length);
  const sequence = sendPacket(a.endpoint, payload);
  const datagrams = a.sent.splice(0);
  // Shuffle, and send some twice.
  for (let i = datagrams.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [datagrams[i], datagrams[j]] = [datagrams[j], datagrams[i]];
  }
  const delivered = [...datagrams, ...datagrams.slice(0, 10)];
  for (const datagram of delivered) receivePacket(b.endpoint, datagram);
  // b acks it.
  sendPacket(b.endpoint, new Uint8Array([1]));
  receivePacket(a.endpoint, b.sent[0]);
  return { a, b, payload, sequence, datagrams };
}

Deno.test("reliable fragments: 256 fragments of 1024 bytes round trip, in any order", () => {
  const config = {
    maxPacketSize: 256 * 1024,
    maxFragments: 256,
    fragmentSize: 1024,
  };
  for (const length of [256 * 1024, 255 * 1024 + 1, 2000]) {
    const { a, b, payload, sequence, datagrams } = roundTrip(
      config,
      length,
      length,
    );
    const fragments = Math.ceil(length / 1024);
    assertStrictEquals(datagrams.length, fragments);
    assertStrictEquals(a.endpoint.counters.fragmentsSent, fragments);
    for (const datagram of datagrams) {
      assertStrictEquals(
        readFragmentHeader(datagram, 256, 1024)?.numFragments,
        fragments,
      );
    }
    assertStrictEquals(b.processed.length, 1);
    assertStrictEquals(b.processed[0].sequence, sequence);
    assertEquals(b.processed[0].payload, payload);
    // Each fragment counted once; the repeats (after completion) silently.
    assertStrictEquals(b.endpoint.counters.fragmentsReceived, fragments);
    assertStrictEquals(b.endpoint.counters.fragmentsInvalid, 0);
    assertEquals([...getAcks(a.endpoint)], [sequence]);
  }
});

Deno.test("reliable fragments: 256 fragments of 16 bytes, as in the vectors, with a fragmentSize a receiver refuses", () => {
  const config = {
    maxPacketSize: 4096,
    fragmentAbove: 16,
    maxFragments: 256,
    fragmentSize: 16,
  };
  const { b, payload, datagrams } = roundTrip(config, 4096, 1);
  assertStrictEquals(datagrams.length, 256);
  assertEquals(b.processed[0].payload, payload);
  // A receiver with a smaller maxFragments drops every fragment as invalid.
  const strict = probe({ ...config, maxFragments: 255 });
  for (const datagram of datagrams) receivePacket(strict.endpoint, datagram);
  assertStrictEquals(strict.endpoint.counters.fragmentsInvalid, 256);
  assertStrictEquals(strict.processed.length, 0);
});

Deno.test("reliable fragments: reassembly keeps at most maxPacketSize per entry, and a larger packet is too large to receive", () => {
  // The sender may send 256 KB; the receiver takes at most 16 KB.
  const sender = probe({
    maxPacketSize: 256 * 1024,
    maxFragments: 256,
    fragmentSize: 1024,
  });
  const receiver = probe({ maxFragments: 256, fragmentSize: 1024 });
  sendPacket(sender.endpoint, new Uint8Array(256 * 1024).fill(7));
  for (const datagram of sender.sent) {
    receivePacket(receiver.endpoint, datagram);
  }
  // Completed, then refused as the reference refuses it: the rebuilt packet
  // is over maxPacketSize + 14, so it counts only as too large.
  assertStrictEquals(receiver.processed.length, 0);
  assertStrictEquals(receiver.endpoint.counters.fragmentsReceived, 256);
  assertStrictEquals(receiver.endpoint.counters.packetsTooLargeToReceive, 1);
  assertStrictEquals(receiver.endpoint.counters.packetsReceived, 0);
  const { reassemblyBytes } = footprint(receiver.endpoint);
  assertStrictEquals(reassemblyBytes, MAX_PACKET_HEADER_BYTES + 16384);
});

Deno.test("reliable fragments: packets that never complete cannot hold more than the reassembly bound", () => {
  const random = createRandom(99);
  const receiver = probe({ fragmentReassemblyBufferSize: 8 });
  const before = footprint(receiver.endpoint);
  const bound = reassemblyBound(receiver.endpoint);
  assertStrictEquals(bound, 8 * (9 + 16384));
  for (let sequence = 0; sequence < 3000; sequence++) {
    // Fragment 1 of 16 (no embedded header needed), never the rest.
    const fragment = new Uint8Array(5 + 1024);
    fragment.set([1, sequence & 0xff, sequence >> 8, 1, 15]);
    fragment.set(randomBytes(random, 16), 5);
    receivePacket(receiver.endpoint, fragment);
    const now = footprint(receiver.endpoint);
    assertEquals(now.fixed, before.fixed);
    assertLessOrEqual(now.reassemblyBytes, bound);
  }
  assertStrictEquals(footprint(receiver.endpoint).reassemblyBytes, bound);
  // The window moved with them and stale ones are refused.
  assertStrictEquals(receiver.endpoint.counters.fragmentsReceived, 3000);
  const stale = new Uint8Array(5 + 1024);
  stale.set([1, 0, 0, 1, 15]);
  receivePacket(receiver.endpoint, stale);
  assertStrictEquals(receiver.endpoint.counters.fragmentsInvalid, 1);
  assertStrictEquals(receiver.processed.length, 0);
});

// ---------------------------------------------------------------------------
// A hostile peer

Deno.test("reliable: 20,000 random and mutated datagrams cannot make an endpoint throw or grow", () => {
  const random = createRandom(0x5eed);
  const int = (n: number) => Math.floor(random() * n);
  // A real peer, so that mutations start from valid packets, and the victim.
  const peer = probe();
  const victim = probe({}, () => random() < 0.9);
  const bound = reassemblyBound(victim.endpoint);
  const start = footprint(victim.endpoint);
  const limit = victim.endpoint.config.maxPacketSize + 14;
  const pool: Uint8Array[] = [];
  let oversize = 0;
  let fragments = 0;
  let regular = 0;
  let time = 0;

  const fromPeer = () => {
    sendPacket(
      peer.endpoint,
      randomBytes(random, int(4) === 0 ? int(6000) : int(200)),
    );
    for (const datagram of peer.sent.splice(0)) {
      if (pool.length < 256) pool.push(datagram);
      else pool[int(pool.length)] = datagram;
    }
  };
  const mutate = (datagram: Uint8Array): Uint8Array => {
    const out = datagram.slice();
    switch (int(5)) {
      case 0: // flip bits
        for (let i = 1 + int(4); i > 0; i--) {
          out[int(out.length)] ^= 1 << int(8);
        }
        return out;
      case 1: // truncate
        return out.subarray(0, int(out.length + 1));
      case 2: // rewrite a header byte
        out[int(Math.min(out.length, 14))] = int(256);
        return out;
      case 3: { // extend with junk
        const longer = new Uint8Array(out.length + 1 + int(1100));
        longer.set(out);
        longer.set(randomBytes(random, longer.length - out.length), out.length);
        return longer;
      }
      default: // a forged fragment header on the same data
        out[0] = 1 | (int(4) === 0 ? int(256) : 0);
        out[3] = int(256);
        out[4] = int(4) === 0 ? int(256) : int(16);
        return out;
    }
  };

  for (let i = 0; i < 20_000; i++) {
    if (i % 10 === 0) {
      time += 1 / 60;
      update(peer.endpoint, time);
      update(victim.endpoint, time);
      // The victim talks too, so forged headers can ack its packets.
      sendPacket(victim.endpoint, randomBytes(random, int(100)));
      for (const datagram of victim.sent.splice(0)) {
        receivePacket(peer.endpoint, datagram);
      }
      clearAcks(peer.endpoint);
      if (int(4) === 0) clearAcks(victim.endpoint);
      fromPeer();
    }
    let datagram: Uint8Array;
    const kind = int(10);
    if (kind < 2) datagram = randomBytes(random, int(1300));
    else if (kind === 2) datagram = randomBytes(random, limit + 1 + int(2000));
    else if (kind < 5) datagram = pool[int(pool.length)];
    else datagram = mutate(pool[int(pool.length)]);

    if (datagram.length > limit) oversize++;
    else if (datagram.length > 0 && (datagram[0] & 1) === 1) fragments++;
    else regular++;
    receivePacket(victim.endpoint, datagram);

    const c = victim.endpoint.counters;
    assertLessOrEqual(getAcks(victim.endpoint).length, 256);
    if (i % 500 === 0) {
      const now = footprint(victim.endpoint);
      assertEquals(now.fixed, start.fixed, "buffers keep their sizes");
      assertStrictEquals(now.keys, start.keys);
      assertLessOrEqual(now.reassemblyBytes, bound);
      for (const name of RELIABLE_STATS_NAMES) {
        const value = victim.endpoint.stats[name];
        assert(Number.isFinite(value) && value >= 0, `${name} ${value}`);
      }
      assertLessOrEqual(victim.endpoint.stats.packetLoss, 100);
    }
    // Every regular datagram, and every reassembled packet, counts as
    // received once and ends in exactly one place.
    assertStrictEquals(
      c.packetsInvalid + c.packetsStale + c.packetsDuplicate +
        (c.packetsTooLargeToReceive - oversize) + victim.processed.length,
      c.packetsReceived,
    );
    assert(c.packetsReceived >= regular);
    assertLessOrEqual(c.packetsReceived - regular, c.fragmentsReceived);
    assertLessOrEqual(c.fragmentsReceived + c.fragmentsInvalid, fragments);
  }
  const c = victim.endpoint.counters;
  // The traffic reached every outcome.
  for (
    const name of [
      "packetsInvalid",
      "packetsStale",
      "packetsDuplicate",
      "packetsTooLargeToReceive",
      "fragmentsReceived",
      "fragmentsInvalid",
      "packetsAcked",
    ] as const
  ) {
    assert(c[name] > 0, `no ${name}`);
  }
  assert(victim.processed.length > 1000);
  assert(c.packetsTooLargeToReceive >= oversize);
});
