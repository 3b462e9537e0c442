import { parseAddress } from "../address.ts";
import {
  createNetworkSimulator,
  createRandom,
  type NetworkSimulator,
  type NetworkSimulatorOptions,
  type SimulatedSocket,
} from "../simulator.ts";
import type { Datagram } from "../socket.ts";
import {
  assert,
  assertEquals,
  assertNotEquals,
  assertStrictEquals,
  assertThrows,
} from "./_assert.ts";

function drain(socket: SimulatedSocket): Datagram[] {
  const datagrams: Datagram[] = [];
  for (let d = socket.poll(); d !== undefined; d = socket.poll()) {
    datagrams.push(d);
  }
  return datagrams;
}

function checkInvariant(network: NetworkSimulator): void {
  const s = network.stats;
  assertStrictEquals(
    s.sent + s.duplicated,
    s.lost + s.delivered + s.undeliverable + s.dropped + s.inFlight,
  );
}

/**
 * Two clients talk to a server for a simulated second, stepping 1 ms at a
 * time; returns one line per delivery: time, receiver, sender, payload.
 */
function trace(options: NetworkSimulatorOptions): string[] {
  const network = createNetworkSimulator(options);
  using server = network.createSocket("10.0.0.1:40000");
  using a = network.createSocket("10.0.0.2:0");
  using b = network.createSocket("[fd00::2]:0");
  const lines: string[] = [];
  const record = (name: string, socket: SimulatedSocket) => {
    for (const d of drain(socket)) {
      lines.push(
        `${
          network.now.toFixed(3)
        } ${name} <- ${d.from.hostname}:${d.from.port} ${d.data.join(",")}`,
      );
    }
  };
  for (let ms = 1; ms <= 1000; ms++) {
    if (ms <= 500 && ms % 5 === 0) {
      a.send(new Uint8Array([1, ms & 255]), server.address);
      b.send(new Uint8Array([2, ms & 255]), server.address);
      server.send(new Uint8Array([3, ms & 255]), a.address);
    }
    network.update(ms / 1000);
    record("server", server);
    record("a", a);
  }
  checkInvariant(network);
  return lines;
}

Deno.test("createRandom() returns a seeded sequence in [0, 1)", () => {
  const a = createRandom(12345);
  const b = createRandom(12345);
  const c = createRandom(12346);
  const first = Array.from({ length: 1000 }, a);
  assertEquals(Array.from({ length: 1000 }, b), first);
  assertNotEquals(Array.from({ length: 1000 }, c), first);
  let sum = 0;
  for (const value of first) {
    assert(value >= 0 && value < 1, `${value} is outside [0, 1)`);
    sum += value;
  }
  const mean = sum / first.length;
  assert(mean > 0.45 && mean < 0.55, `mean ${mean} is far from 0.5`);
  // Seeds are reduced to 32 bits.
  assertStrictEquals(createRandom(2 ** 32 + 7)(), createRandom(7)());
  assertThrows(() => createRandom(NaN), RangeError);
});

Deno.test("createNetworkSimulator() delivers after the configured latency", () => {
  const network = createNetworkSimulator({ latencyMs: 100 });
  using server = network.createSocket("10.0.0.1:40000");
  using client = network.createSocket("10.0.0.2:50000");

  client.send(new Uint8Array([1, 2, 3]), server.address);
  network.update(0.099);
  assertStrictEquals(server.poll(), undefined);
  network.update(0.1);
  const datagram = server.poll();
  assertEquals(datagram?.data, new Uint8Array([1, 2, 3]));
  assertEquals(datagram?.from, { hostname: "10.0.0.2", port: 50000 });
  assertStrictEquals(server.poll(), undefined);

  // A datagram sent after update(t) is stamped t; 0.2 + 0.1 !== 0.3 in
  // floating point, and it still arrives at 0.3.
  network.update(0.2);
  server.send(new Uint8Array([4]), client.address);
  network.update(0.29);
  assertStrictEquals(client.poll(), undefined);
  network.update(0.3);
  assertEquals(client.poll()?.data, new Uint8Array([4]));
  assertStrictEquals(network.now, 0.3);
  assertEquals(network.stats, {
    sent: 2,
    delivered: 2,
    lost: 0,
    duplicated: 0,
    undeliverable: 0,
    dropped: 0,
    inFlight: 0,
  });
});

Deno.test("createNetworkSimulator() without latency delivers at the next update()", () => {
  const network = createNetworkSimulator();
  using a = network.createSocket("127.0.0.1:40000");
  using b = network.createSocket("127.0.0.1:40001");
  network.update(5);
  a.send(new Uint8Array([9]), b.address);
  assertStrictEquals(b.poll(), undefined);
  assertStrictEquals(network.stats.inFlight, 1);
  network.update(5);
  assertEquals(b.poll()?.data, new Uint8Array([9]));
});

Deno.test("createNetworkSimulator() copies data on send", () => {
  const network = createNetworkSimulator({ duplicatePercent: 100 });
  using a = network.createSocket("10.0.0.1:1");
  using b = network.createSocket("10.0.0.2:2");
  const buffer = new Uint8Array([1, 2, 3]);
  a.send(buffer, b.address);
  buffer.fill(0);
  network.update(0);
  const [first, second] = drain(b);
  assertEquals(first.data, new Uint8Array([1, 2, 3]));
  assertEquals(second.data, new Uint8Array([1, 2, 3]));
  assert(first.data.buffer !== second.data.buffer, "copies share a buffer");
});

Deno.test("createNetworkSimulator() loses about packetLossPercent of datagrams", () => {
  const network = createNetworkSimulator({
    seed: 1,
    packetLossPercent: 10,
    maxQueue: 20000,
  });
  using a = network.createSocket("10.0.0.1:1");
  using b = network.createSocket("10.0.0.2:2");
  const data = new Uint8Array(1);
  for (let i = 0; i < 10000; i++) a.send(data, b.address);
  network.update(1);
  const { lost, delivered } = network.stats;
  assert(lost > 900 && lost < 1100, `lost ${lost} of 10000 at 10%`);
  assertStrictEquals(lost, 1020); // Exact for seed 1: the simulator is deterministic.
  assertStrictEquals(delivered, 10000 - lost);
  assertStrictEquals(drain(b).length, delivered);
  checkInvariant(network);
});

Deno.test("createNetworkSimulator() duplicates about duplicatePercent of datagrams", () => {
  const network = createNetworkSimulator({
    seed: 3,
    duplicatePercent: 5,
    maxQueue: 20000,
  });
  using a = network.createSocket("10.0.0.1:1");
  using b = network.createSocket("10.0.0.2:2");
  for (let i = 0; i < 10000; i++) {
    a.send(new Uint8Array([i & 255, i >> 8]), b.address);
  }
  network.update(1);
  const { duplicated, delivered } = network.stats;
  assert(duplicated > 400 && duplicated < 600, `duplicated ${duplicated}`);
  assertStrictEquals(duplicated, 510); // Exact for seed 3.
  assertStrictEquals(delivered, 10000 + duplicated);
  const counts = new Map<number, number>();
  for (const { data } of drain(b)) {
    const i = data[0] | (data[1] << 8);
    counts.set(i, (counts.get(i) ?? 0) + 1);
  }
  assertStrictEquals(counts.size, 10000);
  assertStrictEquals(
    [...counts.values()].filter((n) => n === 2).length,
    duplicated,
  );
});

Deno.test("createNetworkSimulator() jitter reorders datagrams within latency ± jitter", () => {
  const network = createNetworkSimulator({ latencyMs: 50, jitterMs: 40 });
  using a = network.createSocket("10.0.0.1:1");
  using b = network.createSocket("10.0.0.2:2");
  const arrivals: { index: number; delayMs: number }[] = [];
  for (let ms = 0; ms <= 300; ms++) {
    network.update(ms / 1000);
    for (const { data } of drain(b)) {
      arrivals.push({ index: data[0], delayMs: ms - data[0] });
    }
    if (ms < 100) a.send(new Uint8Array([ms]), b.address);
  }
  assertStrictEquals(arrivals.length, 100);
  const order = arrivals.map((arrival) => arrival.index);
  assertNotEquals(order, [...order].sort((x, y) => x - y));
  for (const { index, delayMs } of arrivals) {
    // Delivered at the first whole millisecond on or after the due time.
    assert(delayMs >= 10 && delayMs <= 91, `datagram ${index}: ${delayMs} ms`);
  }
  const spread = Math.max(...arrivals.map((a) => a.delayMs)) -
    Math.min(...arrivals.map((a) => a.delayMs));
  assert(spread > 40, `delays spread over only ${spread} ms`);
});

Deno.test("createNetworkSimulator() is deterministic for a seed", () => {
  const options = {
    latencyMs: 30,
    jitterMs: 20,
    packetLossPercent: 20,
    duplicatePercent: 10,
  };
  const first = trace({ ...options, seed: 42 });
  assert(first.length > 200, `only ${first.length} deliveries`);
  assertEquals(trace({ ...options, seed: 42 }), first);
  assertNotEquals(trace({ ...options, seed: 43 }), first);
});

Deno.test("createNetworkSimulator() counts datagrams nobody receives as undeliverable", () => {
  const network = createNetworkSimulator({ latencyMs: 10 });
  using a = network.createSocket("10.0.0.1:1");
  const b = network.createSocket("10.0.0.2:2");
  a.send(new Uint8Array([1]), { hostname: "10.0.0.3", port: 3 });
  a.send(new Uint8Array([2]), b.address);
  b.close(); // Before the datagram arrives.
  network.update(0.01);
  assertStrictEquals(network.stats.undeliverable, 2);
  assertStrictEquals(network.stats.delivered, 0);
  checkInvariant(network);
});

Deno.test("createNetworkSimulator() allocates a free port for port 0", () => {
  const network = createNetworkSimulator();
  using taken = network.createSocket("10.0.0.1:49153");
  using first = network.createSocket("10.0.0.1:0");
  using second = network.createSocket({ hostname: "10.0.0.1", port: 0 });
  assertEquals(taken.address, { hostname: "10.0.0.1", port: 49153 });
  assertEquals(first.address, { hostname: "10.0.0.1", port: 49152 });
  assertEquals(second.address, { hostname: "10.0.0.1", port: 49154 });
  using v6 = network.createSocket("[fd00::1]:0");
  assert(v6.address.port >= 49152, `port ${v6.address.port}`);
  assertThrows(() => network.createSocket("10.0.0.1:49153"), {
    name: "Error",
    message: "Cannot bind 10.0.0.1:49153 on the simulator: address in use",
  });
});

Deno.test("createNetworkSimulator() unbinds a closed socket", () => {
  const network = createNetworkSimulator();
  using sender = network.createSocket("10.0.0.1:1");
  const receiver = network.createSocket("10.0.0.2:2");
  sender.send(new Uint8Array([1]), receiver.address);
  network.update(1);
  receiver.close();
  receiver.close(); // Closing twice is fine.
  assertStrictEquals(receiver.poll(), undefined); // Queued datagrams are gone.
  assertThrows(
    () => receiver.send(new Uint8Array([1]), sender.address),
    TypeError,
  );
  sender.send(new Uint8Array([2]), { hostname: "10.0.0.2", port: 2 });
  network.update(2);
  assertStrictEquals(network.stats.undeliverable, 1);

  using again = network.createSocket("10.0.0.2:2"); // The address is free again.
  sender.send(new Uint8Array([3]), again.address);
  network.update(3);
  assertEquals(again.poll()?.data, new Uint8Array([3]));
});

Deno.test("createNetworkSimulator() works with canonical IPv6 addresses", () => {
  const network = createNetworkSimulator();
  using a = network.createSocket("[0:0:0:0:0:0:0:1]:40000");
  using b = network.createSocket({ hostname: "FD00:0::2", port: 5 });
  assertEquals(a.address, parseAddress("[::1]:40000"));
  assertEquals(b.address, { hostname: "fd00::2", port: 5 });
  // A non-canonical destination still reaches the bound socket.
  b.send(new Uint8Array([7]), { hostname: "0::1", port: 40000 });
  network.update(0);
  const datagram = a.poll();
  assertEquals(datagram?.data, new Uint8Array([7]));
  assertEquals(datagram?.from, { hostname: "fd00::2", port: 5 });
});

Deno.test("createNetworkSimulator() drops datagrams beyond maxQueue", () => {
  const network = createNetworkSimulator({ maxQueue: 2 });
  using a = network.createSocket("10.0.0.1:1");
  using b = network.createSocket("10.0.0.2:2");
  for (let i = 0; i < 5; i++) a.send(new Uint8Array([i]), b.address);
  network.update(0);
  assertEquals(drain(b).map((d) => d.data[0]), [0, 1]);
  assertStrictEquals(network.stats.dropped, 3);
  checkInvariant(network);
});

Deno.test("createNetworkSimulator() rejects misuse", () => {
  assertThrows(() => createNetworkSimulator({ packetLossPercent: 101 }), {
    name: "RangeError",
    message:
      "Cannot create network simulator: packetLossPercent must be from 0 to 100, got 101",
  });
  assertThrows(() => createNetworkSimulator({ latencyMs: -1 }), RangeError);
  assertThrows(() => createNetworkSimulator({ jitterMs: NaN }), RangeError);
  assertThrows(() => createNetworkSimulator({ seed: Infinity }), RangeError);
  assertThrows(() => createNetworkSimulator({ maxQueue: 0 }), RangeError);

  const network = createNetworkSimulator();
  using a = network.createSocket("10.0.0.1:1");
  assertThrows(() => a.send(new Uint8Array(1301), a.address), {
    name: "RangeError",
    message: "Cannot send datagram: 1301 bytes exceeds the 1300 byte limit",
  });
  assertThrows(
    () => a.send(new Uint8Array(1), { hostname: "10.0.0.2", port: 0 }),
    RangeError,
  );
  assertThrows(() => network.createSocket("example.com:1"), TypeError);
  assertThrows(() => network.createSocket("0.0.0.0:1"), TypeError);
  assertThrows(() => network.createSocket("[::]:1"), TypeError);
  assertThrows(
    () => network.createSocket({ hostname: "10.0.0.1", port: 70000 }),
    RangeError,
  );
  network.update(2);
  assertThrows(() => network.update(1), {
    name: "RangeError",
    message: "Cannot update network simulator: time went backwards from 2 to 1",
  });
  assertThrows(() => network.update(NaN), RangeError);
  assertStrictEquals(network.stats.sent, 0);
});
