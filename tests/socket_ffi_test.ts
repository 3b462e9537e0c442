// The FFI transport (socket_ffi.ts): the transport on its own over loopback,
// then the client/server behaviours of udp_test.ts over it (IPv4, IPv6,
// dual stack through createMultiSocket, echo). Skipped, with a message, when
// FFI is not permitted or this is not Linux. Every wait is bounded (2 s).

import {
  assert,
  assertEquals,
  assertInstanceOf,
  assertNotEquals,
  assertStrictEquals,
  assertStringIncludes,
  assertThrows,
} from "./_assert.ts";
import { PRIVATE_KEY, PROTOCOL_ID } from "./_harness.ts";
import {
  connectAndEcho,
  dualStackAvailable,
  receive,
  WAIT_MS,
  yieldToSockets,
} from "./_loopback.ts";
import { addressKey, formatAddress, parseAddress } from "../address.ts";
import { createClient } from "../client.ts";
import { createServer } from "../server.ts";
import {
  createMultiSocket,
  type Datagram,
  type DatagramSocket,
} from "../socket.ts";
import {
  ffiTransportUnavailable,
  type FfiUdpSocket,
  listenUdpFfi,
} from "../socket_ffi.ts";

const unavailable = ffiTransportUnavailable();
if (unavailable !== undefined) {
  console.log(`socket_ffi_test: skipping every test: ${unavailable}`);
}
const noFfi = unavailable !== undefined;

function probeIpv6(): boolean {
  if (noFfi) return false;
  try {
    listenUdpFfi("[::1]:0").close();
    return true;
  } catch {
    return false;
  }
}
const hasIpv6 = probeIpv6();
if (!noFfi && !hasIpv6) {
  console.log("socket_ffi_test: no IPv6 on this machine, skipping ::1 tests");
}
const hasDualStack = dualStackAvailable(hasIpv6);

/** Polls until `count` datagrams arrived (or 2 s passed). */
async function receiveAll(
  socket: DatagramSocket,
  count: number,
): Promise<Datagram[]> {
  const out: Datagram[] = [];
  const deadline = performance.now() + WAIT_MS;
  while (out.length < count) {
    const datagram = socket.poll();
    if (datagram !== undefined) {
      out.push(datagram);
      continue;
    }
    if (performance.now() > deadline) {
      throw new Error(
        `${out.length} of ${count} datagrams within ${WAIT_MS} ms`,
      );
    }
    await yieldToSockets();
  }
  return out;
}

function ffiTest(
  name: string,
  fn: () => void | Promise<void>,
  needs: { ipv6?: boolean; dualStack?: boolean } = {},
): void {
  Deno.test({
    name,
    ignore: noFfi || (needs.ipv6 === true && !hasIpv6) ||
      (needs.dualStack === true && !hasDualStack),
    fn,
  });
}

// ---------------------------------------------------------------------------
// The transport.

async function exchange(hostname: string): Promise<void> {
  using a = listenUdpFfi({ hostname, port: 0 });
  using b = listenUdpFfi({ hostname, port: 0 });
  assertStrictEquals(a.address.hostname, hostname);
  assert(a.address.port > 0, "port 0 was not resolved");
  assertNotEquals(a.address.port, b.address.port);
  assertStrictEquals(a.poll(), undefined, "an empty socket polls undefined");

  const buffer = new Uint8Array([9, 1, 2, 3, 9]);
  b.send(buffer.subarray(1, 4), a.address); // a view with an offset
  buffer.fill(0); // Sent at once: reusing the buffer is safe.
  const request = await receive(a);
  assertEquals(request.data, new Uint8Array([1, 2, 3]));
  assertEquals(request.from, b.address);
  assertStrictEquals(
    addressKey(request.from),
    addressKey(parseAddress(addressKey(b.address))),
  );

  a.send(new Uint8Array([4, 5]), request.from);
  const reply = await receive(b);
  assertEquals(reply.data, new Uint8Array([4, 5]));
  assertEquals(reply.from, a.address);
  assertStrictEquals(a.poll(), undefined);
  assertStrictEquals(b.poll(), undefined);
  assertEquals(a.stats, {
    received: 1,
    oversized: 0,
    receiveErrors: 0,
    sent: 1,
    sendErrors: 0,
    sendDropped: 0,
    addressCacheMisses: 1,
  });
}

ffiTest(
  "listenUdpFfi() exchanges datagrams over IPv4",
  () => exchange("127.0.0.1"),
);

ffiTest(
  "listenUdpFfi() exchanges datagrams over IPv6",
  () => exchange("::1"),
  { ipv6: true },
);

ffiTest(
  "listenUdpFfi() on :: sees IPv4 senders as IPv4-mapped IPv6 addresses",
  async () => {
    using server = listenUdpFfi({ hostname: "::", port: 0 });
    using client = listenUdpFfi("127.0.0.1:0");
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
    // Replying to the mapped address, or to the plain IPv4 one, reaches the
    // IPv4 socket.
    server.send(new Uint8Array([2]), from);
    assertEquals((await receive(client)).data, new Uint8Array([2]));
    server.send(new Uint8Array([3]), client.address);
    assertEquals((await receive(client)).data, new Uint8Array([3]));
  },
  { dualStack: true },
);

ffiTest(
  "listenUdpFfi() with ipv6Only shares a port with an IPv4 socket",
  async () => {
    using v4 = listenUdpFfi("0.0.0.0:0");
    using v6 = listenUdpFfi({
      hostname: "::",
      port: v4.address.port,
      ipv6Only: true,
    });
    assertStrictEquals(v6.address.port, v4.address.port);
    using peer = listenUdpFfi("[::1]:0");
    peer.send(new Uint8Array([6]), { hostname: "::1", port: v6.address.port });
    assertEquals((await receive(v6)).data, new Uint8Array([6]));
    assertStrictEquals(v4.poll(), undefined);
  },
  { ipv6: true },
);

ffiTest("listenUdpFfi() accepts an address string or an Address", () => {
  using a = listenUdpFfi("127.0.0.1:0");
  using b = listenUdpFfi({ ...a.address, port: 0 });
  assertStrictEquals(a.address.hostname, "127.0.0.1");
  assertStrictEquals(b.address.hostname, "127.0.0.1");
  assert(Object.isFrozen(a.address), "address is mutable");
  assert(a.receiveBufferBytes > 0 && a.sendBufferBytes > 0);
});

ffiTest("listenUdpFfi() rejects bad options with clear errors", () => {
  assertThrows(
    () => listenUdpFfi({ hostname: "localhost" }),
    TypeError,
    "hostname must be an IPv4 or IPv6 address",
  );
  assertThrows(
    () => listenUdpFfi({ hostname: "127.0.0.1", port: 70000 }),
    RangeError,
    "port must be an integer from 0 to 65535",
  );
  assertThrows(
    () => listenUdpFfi({ maxDatagramBytes: 0 }),
    RangeError,
    "maxDatagramBytes",
  );
  assertThrows(
    // deno-lint-ignore no-explicit-any
    () => listenUdpFfi({ receiveBuffers: "pool" as any }),
    TypeError,
    "receiveBuffers",
  );
});

ffiTest("listenUdpFfi() names the address when it is in use", () => {
  using taken = listenUdpFfi("127.0.0.1:0");
  const address = formatAddress(taken.address);
  const error = assertThrows(
    () => listenUdpFfi(address),
    Deno.errors.AddrInUse,
    `Cannot listen on ${address}: address in use`,
  );
  assertInstanceOf(error.cause, Error);
});

ffiTest(
  "listenUdpFfi() drops and counts datagrams over maxDatagramBytes",
  async () => {
    using receiver = listenUdpFfi({
      hostname: "127.0.0.1",
      port: 0,
      maxDatagramBytes: 100,
    });
    using sender = listenUdpFfi("127.0.0.1:0");
    sender.send(new Uint8Array(101), receiver.address);
    sender.send(new Uint8Array(1300), receiver.address);
    sender.send(new Uint8Array(100).fill(7), receiver.address);
    // Not truncated to 100 bytes: the two larger ones are dropped whole.
    const datagram = await receive(receiver);
    assertEquals(datagram.data, new Uint8Array(100).fill(7));
    assertStrictEquals(receiver.stats.oversized, 2);
    assertStrictEquals(receiver.stats.received, 1);
    assertStrictEquals(receiver.poll(), undefined);
    assertThrows(
      () => receiver.send(new Uint8Array(101), sender.address),
      RangeError,
      "Cannot send datagram: 101 bytes exceeds the 100 byte limit",
    );
  },
);

ffiTest("listenUdpFfi() counts send errors instead of throwing", () => {
  using socket = listenUdpFfi("127.0.0.1:0");
  // An IPv4 socket cannot reach an IPv6 address.
  socket.send(new Uint8Array([1]), { hostname: "::1", port: 9 });
  assertStrictEquals(socket.stats.sendErrors, 1);
  assertStrictEquals(socket.stats.sent, 0);
  assertThrows(
    () =>
      socket.send(new Uint8Array([1]), { hostname: "example.com", port: 9 }),
    TypeError,
    '"example.com" is not an IP address',
  );
  assertThrows(
    () => socket.send(new Uint8Array([1]), { hostname: "127.0.0.1", port: 0 }),
    RangeError,
    "port 0 is not from 1 to 65535",
  );
});

ffiTest("listenUdpFfi() sends datagrams in order", async () => {
  using receiver = listenUdpFfi("127.0.0.1:0");
  using sender = listenUdpFfi("127.0.0.1:0");
  const buffer = new Uint8Array(1);
  for (let i = 0; i < 100; i++) {
    buffer[0] = i;
    sender.send(buffer, receiver.address);
  }
  const order = (await receiveAll(receiver, 100)).map((d) => d.data[0]);
  assertEquals(order, Array.from({ length: 100 }, (_, i) => i));
  assertStrictEquals(sender.stats.sent, 100);
});

ffiTest(
  "listenUdpFfi() receives in batches of receiveBatch, in order",
  async () => {
    using receiver = listenUdpFfi({ hostname: "127.0.0.1", receiveBatch: 3 });
    using sender = listenUdpFfi("127.0.0.1:0");
    for (let i = 0; i < 10; i++) {
      sender.send(new Uint8Array([i]), receiver.address);
    }
    const order = (await receiveAll(receiver, 10)).map((d) => d.data[0]);
    assertEquals(order, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assertStrictEquals(receiver.poll(), undefined);
  },
);

ffiTest(
  "listenUdpFfi() batches sends until the task ends, flush() or a full batch",
  async () => {
    using receiver = listenUdpFfi("127.0.0.1:0");
    using batched = listenUdpFfi("127.0.0.1:0");
    batched.send(new Uint8Array([1]), receiver.address);
    assertStrictEquals(batched.stats.sent, 0, "sent before the task ended");
    batched.flush();
    assertStrictEquals(batched.stats.sent, 1);
    batched.send(new Uint8Array([2]), receiver.address);
    await Promise.resolve(); // the microtask that flushes has run
    assertStrictEquals(batched.stats.sent, 2);

    using small = listenUdpFfi({ hostname: "127.0.0.1", sendBatch: 4 });
    for (let i = 0; i < 5; i++) {
      small.send(new Uint8Array([3]), receiver.address);
    }
    assertStrictEquals(small.stats.sent, 4, "a full batch goes out at once");
    small.flush();

    using single = listenUdpFfi({ hostname: "127.0.0.1", sendBatch: 1 });
    single.send(new Uint8Array([4]), receiver.address);
    assertStrictEquals(single.stats.sent, 1, "sendBatch 1 sends at once");

    const closing = listenUdpFfi("127.0.0.1:0");
    closing.send(new Uint8Array([5]), receiver.address);
    closing.close(); // close() sends what is batched first
    const got = (await receiveAll(receiver, 9)).map((d) => d.data[0]);
    assertEquals(got.sort(), [1, 2, 3, 3, 3, 3, 3, 4, 5]);
    assertStrictEquals(small.stats.sent, 5);
  },
);

ffiTest(
  "listenUdpFfi() buffers the kernel writes into survive garbage collection",
  async () => {
    using receiver = listenUdpFfi({ hostname: "127.0.0.1", receiveBatch: 8 });
    using sender = listenUdpFfi({ hostname: "127.0.0.1", sendBatch: 8 });
    let garbage: ArrayBuffer[] = [];
    for (let round = 0; round < 150; round++) {
      for (let i = 0; i < 10; i++) {
        sender.send(
          new Uint8Array(64).fill((round + i) & 255),
          receiver.address,
        );
      }
      const got = await receiveAll(receiver, 10);
      got.forEach((d, i) =>
        assert(
          d.data.length === 64 &&
            d.data.every((b) => b === ((round + i) & 255)),
          `round ${round}: datagram ${i} corrupted`,
        )
      );
      // Churn the heap so that collected buffers' memory is reused.
      garbage = Array.from({ length: 64 }, () => new ArrayBuffer(16384));
    }
    assert(garbage.length === 64);
    assertStrictEquals(receiver.stats.receiveErrors, 0);
    assertStrictEquals(sender.stats.sendErrors, 0);
    assertStrictEquals(receiver.stats.received, 1500);
  },
);

ffiTest(
  "listenUdpFfi() reuses the Address of a peer that keeps sending",
  async () => {
    using receiver = listenUdpFfi("127.0.0.1:0");
    using a = listenUdpFfi("127.0.0.1:0");
    using b = listenUdpFfi("127.0.0.1:0");
    for (let i = 0; i < 5; i++) {
      a.send(new Uint8Array([1]), receiver.address);
      b.send(new Uint8Array([2]), receiver.address);
    }
    const got = await receiveAll(receiver, 10);
    const fromA = got.filter((d) => d.data[0] === 1).map((d) => d.from);
    const fromB = got.filter((d) => d.data[0] === 2).map((d) => d.from);
    assert(fromA.every((from) => from === fromA[0]), "a new Address for a");
    assert(fromB.every((from) => from === fromB[0]), "a new Address for b");
    assertEquals(fromA[0], a.address);
    assertEquals(fromB[0], b.address);
    assertStrictEquals(receiver.stats.addressCacheMisses, 2);

    // With room for one peer, alternating peers miss every time.
    using small = listenUdpFfi({
      hostname: "127.0.0.1",
      maxCachedAddresses: 1,
    });
    for (let i = 0; i < 3; i++) {
      a.send(new Uint8Array([1]), small.address);
      a.flush(); // in this order, not batched per sender
      b.send(new Uint8Array([2]), small.address);
      b.flush();
    }
    const alternating = await receiveAll(small, 6);
    assertStrictEquals(small.stats.addressCacheMisses, 6);
    assertEquals(alternating.map((d) => d.from.port), [
      a.address.port,
      b.address.port,
      a.address.port,
      b.address.port,
      a.address.port,
      b.address.port,
    ]);
  },
);

ffiTest("listenUdpFfi() caches IPv6 peers and tells them apart", async () => {
  using receiver = listenUdpFfi("[::1]:0");
  using a = listenUdpFfi("[::1]:0");
  using b = listenUdpFfi("[::1]:0");
  for (let i = 0; i < 3; i++) {
    a.send(new Uint8Array([1]), receiver.address);
    b.send(new Uint8Array([2]), receiver.address);
  }
  const got = await receiveAll(receiver, 6);
  for (const d of got) {
    assertEquals(d.from, d.data[0] === 1 ? a.address : b.address);
  }
  assertStrictEquals(receiver.stats.addressCacheMisses, 2);
}, { ipv6: true });

ffiTest(
  "listenUdpFfi() datagrams survive later polls in slab and copy modes",
  async () => {
    using sender = listenUdpFfi("127.0.0.1:0");
    for (const mode of ["slab", "copy"] as const) {
      using receiver = listenUdpFfi({
        hostname: "127.0.0.1",
        receiveBuffers: mode,
      });
      // 1500 datagrams of 100..163 bytes cross several 64 KB slabs.
      const count = 1500;
      const kept: Datagram[] = [];
      for (let sent = 0; sent < count;) {
        // Bursts of 100, drained between them, stay within the socket buffer.
        for (let i = 0; i < 100; i++, sent++) {
          const data = new Uint8Array(100 + (sent % 64)).fill(sent & 255);
          data[0] = sent >> 8;
          sender.send(data, receiver.address);
        }
        kept.push(...await receiveAll(receiver, 100));
      }
      for (let i = 0; i < count; i++) {
        const data = kept[i].data;
        assertStrictEquals(data.length, 100 + (i % 64), `${mode} length ${i}`);
        assertStrictEquals(data[0], i >> 8, `${mode} first byte ${i}`);
        assert(
          data.subarray(1).every((byte) => byte === (i & 255)),
          `${mode}: datagram ${i} was overwritten`,
        );
      }
    }
  },
);

ffiTest(
  "listenUdpFfi() shared mode hands out a view valid until the next poll",
  async () => {
    using receiver = listenUdpFfi({
      hostname: "127.0.0.1",
      receiveBuffers: "shared",
      receiveBatch: 1, // one receive area: the next datagram overwrites it
    });
    using sender = listenUdpFfi("127.0.0.1:0");
    sender.send(new Uint8Array([1, 1]), receiver.address);
    sender.send(new Uint8Array([2, 2]), receiver.address);
    const first = await receive(receiver);
    assertEquals(first.data, new Uint8Array([1, 1]));
    const second = await receive(receiver);
    assertEquals(second.data, new Uint8Array([2, 2]));
    assertStrictEquals(first.data.buffer, second.data.buffer);
    assertEquals(first.data, new Uint8Array([2, 2])); // overwritten, as documented
  },
);

ffiTest(
  "listenUdpFfi() close() releases the port and stops polling",
  async () => {
    const first = listenUdpFfi("127.0.0.1:0");
    const port = first.address.port;
    using peer = listenUdpFfi("127.0.0.1:0");
    peer.send(new Uint8Array([1]), first.address);
    await receive(first);
    peer.send(new Uint8Array([2]), first.address);
    first.close();
    first.close(); // idempotent
    assertStrictEquals(first.poll(), undefined);
    assertThrows(
      () => first.send(new Uint8Array([1]), peer.address),
      TypeError,
      `the socket on 127.0.0.1:${port} is closed`,
    );
    // The port is free again at once.
    using again = listenUdpFfi({ hostname: "127.0.0.1", port });
    assertStrictEquals(again.address.port, port);
    {
      using scoped = listenUdpFfi("127.0.0.1:0");
      assert(scoped.address.port > 0);
    }
  },
);

Deno.test({
  name: "listenUdpFfi() without --allow-ffi says which flag to add",
  ignore: noFfi,
  fn: async () => {
    const url = new URL("../socket_ffi.ts", import.meta.url).href;
    // `deno run` from standard input: no permissions at all.
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--no-config", "--no-prompt", "-"],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(
      `import { listenUdpFfi } from ${JSON.stringify(url)};
       try { listenUdpFfi("127.0.0.1:0"); console.log("opened"); }
       catch (e) { console.log(e.name + ": " + e.message); }`,
    ));
    await writer.close();
    const timer = setTimeout(() => child.kill(), 20_000);
    const output = await child.output();
    clearTimeout(timer);
    const text = new TextDecoder().decode(output.stdout);
    assertStringIncludes(text, "NotCapable");
    assertStringIncludes(text, "--allow-ffi");
  },
});

// ---------------------------------------------------------------------------
// Client and server over the FFI transport, as in udp_test.ts.

/** Connects and echoes over FFI sockets on the server and every client. */
async function connectAndEchoFfi(
  serverSocket: () => DatagramSocket,
  serverAddresses: (socket: DatagramSocket) => string[],
  clientHostnames: string[],
): Promise<void> {
  const socket = serverSocket();
  using server = createServer({
    address: serverAddresses(socket),
    protocolId: PROTOCOL_ID,
    privateKey: PRIVATE_KEY,
    socket,
  });
  await connectAndEcho(
    server,
    (i) =>
      createClient({
        socket: listenUdpFfi({ hostname: clientHostnames[i], port: 0 }),
      }),
  );
}

ffiTest(
  "client connects to server over the FFI transport on 127.0.0.1",
  () =>
    connectAndEchoFfi(
      () => listenUdpFfi("127.0.0.1:0"),
      (socket) => [formatAddress(socket.address)],
      ["127.0.0.1"],
    ),
);

ffiTest(
  "client connects to server over the FFI transport on ::1",
  () =>
    connectAndEchoFfi(
      () => listenUdpFfi("[::1]:0"),
      (socket) => [formatAddress(socket.address)],
      ["::1"],
    ),
  { ipv6: true },
);

ffiTest(
  "a dual-stack FFI server (createMultiSocket) takes IPv4 and IPv6 clients",
  () =>
    connectAndEchoFfi(
      () =>
        createMultiSocket([
          listenUdpFfi("127.0.0.1:0"),
          listenUdpFfi("[::1]:0"),
        ]),
      (socket) =>
        (socket as ReturnType<typeof createMultiSocket>).sockets.map((s) =>
          formatAddress(s.address)
        ),
      ["127.0.0.1", "::1"],
    ),
  { ipv6: true },
);

ffiTest("the server's FFI socket is closed with the server", () => {
  const socket: FfiUdpSocket = listenUdpFfi("127.0.0.1:0");
  const server = createServer({
    protocolId: PROTOCOL_ID,
    privateKey: PRIVATE_KEY,
    socket,
  });
  assertEquals(server.address, socket.address);
  server.close();
  assertThrows(
    () => socket.send(new Uint8Array([1]), socket.address),
    TypeError,
    "is closed",
  );
});
