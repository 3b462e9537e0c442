// Real UDP on loopback. Datagrams arrive asynchronously, so the tests wait for
// them in bounded loops of short timeouts (at most 2 s); nothing asserts on a
// fixed sleep.

import { addressKey, parseAddress } from "../address.ts";
import { createNetworkSimulator } from "../simulator.ts";
import { createMultiSocket, listenUdp, type UdpSocket } from "../socket.ts";
import {
  assert,
  assertEquals,
  assertInstanceOf,
  assertStrictEquals,
  assertThrows,
} from "./_assert.ts";
import {
  dualStackAvailable,
  receive,
  WAIT_MS,
  yieldToSockets,
} from "./_loopback.ts";

async function probeIpv6(): Promise<boolean> {
  try {
    await using _socket = listenUdp("[::1]:0");
    return true;
  } catch {
    return false;
  }
}
const hasIpv6 = await probeIpv6();
if (!hasIpv6) {
  console.log("socket_test: no IPv6 on this machine, skipping the ::1 tests");
}
const hasDualStack = dualStackAvailable(hasIpv6);

/** Waits up to 2 s for `done()`. */
async function until(done: () => boolean, what: string): Promise<void> {
  const deadline = performance.now() + WAIT_MS;
  while (!done()) {
    if (performance.now() > deadline) {
      throw new Error(`Timed out after ${WAIT_MS} ms waiting for ${what}`);
    }
    await yieldToSockets();
  }
}

async function exchange(hostname: string): Promise<void> {
  await using a = listenUdp({ hostname, port: 0 });
  await using b = listenUdp({ hostname, port: 0 });
  assertStrictEquals(a.address.hostname, hostname);
  assert(a.address.port > 0, "port 0 was not resolved");
  assert(a.address.port !== b.address.port, "both sockets got one port");

  const buffer = new Uint8Array([1, 2, 3]);
  b.send(buffer, a.address);
  buffer.fill(0); // The socket copied the data; reusing the buffer is safe.
  const request = await receive(a);
  assertEquals(request.data, new Uint8Array([1, 2, 3]));
  assertEquals(request.from, b.address);
  // Canonical hostnames: keys match those of parsed addresses.
  assertStrictEquals(
    addressKey(request.from),
    addressKey(parseAddress(addressKey(b.address))),
  );

  a.send(new Uint8Array([4, 5]), request.from);
  const reply = await receive(b);
  assertEquals(reply.data, new Uint8Array([4, 5]));
  assertEquals(reply.from, a.address);
  assertStrictEquals(a.poll(), undefined);

  await until(() => a.stats.sent === 1 && b.stats.sent === 1, "sends");
  assertEquals(a.stats, {
    received: 1,
    dropped: 0,
    oversized: 0,
    receiveErrors: 0,
    sent: 1,
    sendErrors: 0,
    sendDropped: 0,
  });
}

Deno.test("listenUdp() exchanges datagrams over IPv4", async () => {
  await exchange("127.0.0.1");
});

Deno.test({
  name: "listenUdp() exchanges datagrams over IPv6",
  ignore: !hasIpv6,
  fn: () => exchange("::1"),
});

Deno.test({
  name: "listenUdp() on :: sees IPv4 senders as IPv4-mapped IPv6 addresses",
  ignore: !hasDualStack,
  fn: async () => {
    await using server = listenUdp({ hostname: "::", port: 0 });
    await using client = listenUdp("127.0.0.1:0");
    assertStrictEquals(server.address.hostname, "::");
    client.send(new Uint8Array([1]), {
      hostname: "127.0.0.1",
      port: server.address.port,
    });
    const { from } = await receive(server);
    assertEquals(from, {
      hostname: "::ffff:127.0.0.1",
      port: client.address.port,
    });
    assertEquals(from, parseAddress(`[::ffff:127.0.0.1]:${from.port}`));
    // Replying to the mapped address reaches the IPv4 socket.
    server.send(new Uint8Array([2]), from);
    assertEquals((await receive(client)).data, new Uint8Array([2]));
  },
});

Deno.test("listenUdp() accepts an address string or an Address", async () => {
  await using a = listenUdp("127.0.0.1:0");
  await using b = listenUdp({ ...a.address, port: 0, maxQueue: 8 });
  assertStrictEquals(a.address.hostname, "127.0.0.1");
  assertStrictEquals(b.address.hostname, "127.0.0.1");
  assert(Object.isFrozen(a.address), "address is mutable");
});

Deno.test("listenUdp() drops datagrams beyond maxQueue and counts them", async () => {
  await using receiver = listenUdp({
    hostname: "127.0.0.1",
    port: 0,
    maxQueue: 4,
  });
  await using sender = listenUdp("127.0.0.1:0");
  for (let i = 0; i < 10; i++) {
    sender.send(new Uint8Array([i]), receiver.address);
  }
  await until(
    () => receiver.stats.received + receiver.stats.dropped === 10,
    "10 datagrams",
  );
  assertStrictEquals(receiver.stats.received, 4);
  assertStrictEquals(receiver.stats.dropped, 6);
  const kept: number[] = [];
  for (let d = receiver.poll(); d !== undefined; d = receiver.poll()) {
    kept.push(d.data[0]);
  }
  assertEquals(kept, [0, 1, 2, 3]); // The newest were dropped.

  // Drained, the queue takes datagrams again.
  sender.send(new Uint8Array([10]), receiver.address);
  assertEquals((await receive(receiver)).data, new Uint8Array([10]));
});

Deno.test("listenUdp() drops oversized datagrams and counts them", async () => {
  await using receiver = listenUdp({
    hostname: "127.0.0.1",
    port: 0,
    maxDatagramBytes: 100,
  });
  await using sender = listenUdp("127.0.0.1:0");
  sender.send(new Uint8Array(101), receiver.address);
  sender.send(new Uint8Array(100).fill(7), receiver.address);
  const datagram = await receive(receiver);
  assertEquals(datagram.data, new Uint8Array(100).fill(7));
  await until(() => receiver.stats.oversized === 1, "the oversized count");
  assertStrictEquals(receiver.stats.received, 1);
  assertThrows(() => receiver.send(new Uint8Array(101), sender.address), {
    name: "RangeError",
    message: "Cannot send datagram: 101 bytes exceeds the 100 byte limit",
  });
});

Deno.test("listenUdp() counts send errors instead of throwing", async () => {
  await using socket = listenUdp("127.0.0.1:0");
  // An IPv4 socket cannot reach an IPv6 address: the system refuses.
  socket.send(new Uint8Array([1]), { hostname: "::1", port: 9 });
  await until(() => socket.stats.sendErrors === 1, "a send error");
  assertStrictEquals(socket.stats.sent, 0);
});

Deno.test("listenUdp() sends datagrams in order", async () => {
  await using receiver = listenUdp("127.0.0.1:0");
  await using sender = listenUdp("127.0.0.1:0");
  const buffer = new Uint8Array(1);
  for (let i = 0; i < 100; i++) {
    buffer[0] = i;
    sender.send(buffer, receiver.address);
  }
  const order: number[] = [];
  while (order.length < 100) order.push((await receive(receiver)).data[0]);
  assertEquals(order, Array.from({ length: 100 }, (_, i) => i));
});

Deno.test("listenUdp() drops sends beyond maxSendQueue and counts them", async () => {
  await using receiver = listenUdp("127.0.0.1:0");
  await using sender = listenUdp({ hostname: "127.0.0.1", maxSendQueue: 2 });
  // The first send starts at once; two more wait; the last two are dropped.
  for (let i = 0; i < 5; i++) {
    sender.send(new Uint8Array([i]), receiver.address);
  }
  assertStrictEquals(sender.stats.sendDropped, 2);
  const order: number[] = [];
  while (order.length < 3) order.push((await receive(receiver)).data[0]);
  assertEquals(order, [0, 1, 2]);
  assertStrictEquals(sender.stats.sent, 3);
});

Deno.test("listenUdp() close() still sends what is queued", async () => {
  await using receiver = listenUdp("127.0.0.1:0");
  const sender = listenUdp("127.0.0.1:0");
  for (let i = 0; i < 10; i++) {
    sender.send(new Uint8Array([i]), receiver.address);
  }
  sender.close();
  await sender.closed;
  assertStrictEquals(sender.stats.sent, 10);
  const order: number[] = [];
  while (order.length < 10) order.push((await receive(receiver)).data[0]);
  assertEquals(order, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
});

Deno.test("listenUdp() close() releases the port and stops polling", async () => {
  const first = listenUdp("127.0.0.1:0");
  const port = first.address.port;
  const peer = listenUdp("127.0.0.1:0");
  try {
    peer.send(new Uint8Array([1]), first.address);
    await until(() => first.stats.received === 1, "a datagram");
    first.close();
    first.close(); // Closing twice is fine.
    assertStrictEquals(first.poll(), undefined); // Queued datagrams are gone.
    assertThrows(() => first.send(new Uint8Array([1]), peer.address), {
      name: "TypeError",
      message:
        `Cannot send datagram: the socket on 127.0.0.1:${port} is closed`,
    });
    await first.closed;

    await using again = listenUdp({ hostname: "127.0.0.1", port });
    assertStrictEquals(again.address.port, port);
    peer.send(new Uint8Array([2]), again.address);
    assertEquals((await receive(again)).data, new Uint8Array([2]));
  } finally {
    first.close();
    peer.close();
    await Promise.all([first.closed, peer.closed]);
  }
});

Deno.test("listenUdp() names the address and cause when the port is in use", async () => {
  await using taken = listenUdp("127.0.0.1:0");
  const port = taken.address.port;
  const error = assertThrows(() => listenUdp({ hostname: "127.0.0.1", port }), {
    name: "AddrInUse",
    message: `Cannot listen on 127.0.0.1:${port}: address in use`,
  });
  assertInstanceOf(error, Deno.errors.AddrInUse);
  assertInstanceOf(error.cause, Deno.errors.AddrInUse);
});

Deno.test("listenUdp() rejects misuse with clear errors", async () => {
  assertThrows(() => listenUdp({ hostname: "localhost", port: 0 }), {
    name: "TypeError",
    message:
      "Cannot listen on localhost:0: hostname must be an IPv4 or IPv6 address",
  });
  assertThrows(() => listenUdp({ hostname: "127.0.0.1", port: 70000 }), {
    name: "RangeError",
    message:
      "Cannot listen on 127.0.0.1:70000: port must be an integer from 0 to 65535, got 70000",
  });
  assertThrows(() => listenUdp({ hostname: "127.0.0.1", maxQueue: 0 }), {
    name: "RangeError",
  });
  assertThrows(
    () => listenUdp({ hostname: "127.0.0.1", maxSendQueue: 1.5 }),
    { name: "RangeError" },
  );
  assertThrows(
    () => listenUdp({ hostname: "127.0.0.1", maxDatagramBytes: 70000 }),
    { name: "RangeError" },
  );
  assertThrows(() => listenUdp("127.0.0.1:x"), TypeError);

  await using socket = listenUdp("127.0.0.1:0");
  assertThrows(() => socket.send(new Uint8Array(1301), socket.address), {
    name: "RangeError",
    message: "Cannot send datagram: 1301 bytes exceeds the 1300 byte limit",
  });
  assertThrows(
    () => socket.send(new Uint8Array(1), { hostname: "127.0.0.1", port: 0 }),
    { name: "RangeError" },
  );
  assertThrows(
    () => socket.send([1] as unknown as Uint8Array, socket.address),
    { name: "TypeError" },
  );
  assertThrows(
    () => socket.send(new Uint8Array(1), { hostname: "example.com", port: 9 }),
    {
      name: "TypeError",
      message: 'Cannot send datagram: "example.com" is not an IP address',
    },
  );
  assertEquals(socket.stats.sent + socket.stats.sendErrors, 0);
});

Deno.test({
  name: "listenUdp() explains how to enable UDP without --unstable-net",
  ignore: Deno.permissions.querySync({ name: "run" }).state !== "granted",
  fn: async () => {
    const url = new URL("../socket.ts", import.meta.url).href;
    const script = `
      import { listenUdp } from ${JSON.stringify(url)};
      try { listenUdp("127.0.0.1:0"); console.log("no error"); }
      catch (error) { console.log(error.message); }`;
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["eval", "--no-config", "--quiet", script],
      cwd: Deno.makeTempDirSync(),
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    assertStrictEquals(
      new TextDecoder().decode(output.stdout).trim(),
      'Cannot listen on 127.0.0.1:0: UDP needs Deno\'s unstable net API; run with --unstable-net or add "unstable": ["net"] to deno.json',
    );
  },
});

Deno.test("createMultiSocket() routes each datagram by address family", () => {
  const network = createNetworkSimulator();
  using socket = createMultiSocket([
    network.createSocket("10.0.0.1:40000"),
    network.createSocket("[fd00::1]:40000"),
  ]);
  using peer4 = network.createSocket("10.0.0.2:5");
  using peer6 = network.createSocket("[fd00::2]:5");
  assertEquals(socket.address, { hostname: "10.0.0.1", port: 40000 });

  socket.send(new Uint8Array([4]), peer4.address);
  socket.send(new Uint8Array([6]), peer6.address);
  network.update(0);
  assertEquals(peer4.poll()?.from, { hostname: "10.0.0.1", port: 40000 });
  assertEquals(peer6.poll()?.from, { hostname: "fd00::1", port: 40000 });

  // poll() takes turns between the sockets.
  for (let i = 0; i < 2; i++) {
    peer4.send(new Uint8Array([4, i]), socket.sockets[0].address);
    peer6.send(new Uint8Array([6, i]), socket.sockets[1].address);
  }
  network.update(0);
  const polled = [];
  for (let d = socket.poll(); d !== undefined; d = socket.poll()) {
    polled.push([...d.data]);
  }
  assertEquals(polled, [[4, 0], [6, 0], [4, 1], [6, 1]]);

  socket.close();
  assertThrows(() => socket.sockets[1].send(new Uint8Array(1), peer6.address));
  assertThrows(() => createMultiSocket([]), RangeError);
});

Deno.test({
  name: "createMultiSocket() routes by address family over real UDP",
  ignore: !hasIpv6,
  fn: async () => {
    const v4 = listenUdp("127.0.0.1:0");
    const v6 = listenUdp("[::1]:0");
    await using peer4 = listenUdp("127.0.0.1:0");
    await using peer6 = listenUdp("[::1]:0");
    try {
      const socket = createMultiSocket([v4, v6]);
      socket.send(new Uint8Array([4]), peer4.address);
      socket.send(new Uint8Array([6]), peer6.address);
      assertEquals((await receive(peer4)).from, v4.address);
      assertEquals((await receive(peer6)).from, v6.address);

      peer6.send(new Uint8Array([60]), v6.address);
      peer4.send(new Uint8Array([40]), v4.address);
      const first = await receive(socket);
      const second = await receive(socket);
      assertEquals(
        [first.data[0], second.data[0]].sort((a, b) => a - b),
        [40, 60],
      );
      socket.close();
      assertStrictEquals(socket.poll(), undefined);
    } finally {
      v4.close();
      v6.close();
      await Promise.all([v4.closed, v6.closed]);
    }
  },
});

Deno.test("listenUdp() closed settles after close() with sends queued", async () => {
  const socket: UdpSocket = listenUdp("127.0.0.1:0");
  for (let i = 0; i < 100; i++) {
    socket.send(new Uint8Array([i]), socket.address);
  }
  socket.close();
  await socket.closed;
  assertStrictEquals(socket.stats.sent + socket.stats.sendErrors, 100);
});
