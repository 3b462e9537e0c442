// The suite Node.js and Bun run against dist/node/ (the JavaScript that
// `deno task build:node` makes): the package's entry points stay imports of
// dist/node/<entry>.js, so this tests what a Node.js or Bun user gets.
//
//   deno task build:node && deno task test:node   # node dist/node/tests/_runtime_suite.js
//   deno task build:node && deno task test:bun    # bun dist/node/tests/_runtime_suite.js
//
// It runs the netcode conformance vectors, token generation and the
// examples/token_backend_node.ts backend, the UDP socket's contract
// (bound port, bounded queue, drops, bind errors, close), and a server and
// client connecting and echoing over real loopback UDP on IPv4, IPv6 and a
// dual-stack server, on the runtime's default sockets. Exit code 0 when
// every test passed, 1 otherwise. Every test is bounded (10 s each).

import { Buffer } from "node:buffer";
import { readFileSync } from "node:fs";
import process from "node:process";
import * as frontDoor from "../mod.ts";
import { formatAddress, parseAddress } from "../address.ts";
import { ClientState, createClient } from "../client.ts";
import { generateKey } from "../crypto.ts";
import { createServer } from "../server.ts";
import { listenUdp, type UdpSocket } from "../socket.ts";
import { listenUdpNode } from "../socket_node.ts";
import { ffiTransportUnavailable, listenUdpFfi } from "../socket_ffi.ts";
import { nativeSodiumUnavailable, useNativeSodium } from "../sodium_native.ts";
import {
  decryptPrivateConnectToken,
  generateConnectToken,
  readConnectToken,
  readPrivateConnectToken,
} from "../token.ts";
import { startTokenBackend } from "../examples/token_backend_node.ts";
import {
  assert,
  assertEquals,
  assertMatch,
  assertStrictEquals,
  assertThrows,
} from "./_assert.ts";
import { defineConformanceTests } from "./_conformance.ts";
import { connectAndEcho, PRIVATE_KEY, PROTOCOL_ID } from "./_loopback.ts";
import type { Vectors } from "./_vectors.ts";

const RUNTIME = typeof (globalThis as { Bun?: unknown }).Bun === "object"
  ? `Bun ${process.versions.bun}`
  : `Node.js ${process.versions.node}`;
const TEST_TIMEOUT_MS = 10_000;

const tests: { name: string; fn: () => void | Promise<void> }[] = [];
function test(name: string, fn: () => void | Promise<void>): void {
  tests.push({ name, fn });
}

const yieldToSockets = (): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, 1));

/** Polls `socket` until `count` datagrams came or 2 s passed. */
async function pollUntil(
  socket: UdpSocket,
  count: number,
): Promise<Uint8Array[]> {
  const got: Uint8Array[] = [];
  const deadline = performance.now() + 2000;
  while (got.length < count && performance.now() < deadline) {
    for (let d = socket.poll(); d !== undefined; d = socket.poll()) {
      got.push(d.data);
    }
    if (got.length < count) await yieldToSockets();
  }
  return got;
}

function ipv6Available(): boolean {
  try {
    listenUdp("[::1]:0").close();
    return true;
  } catch {
    return false;
  }
}
const hasIpv6 = ipv6Available();

// ---------------------------------------------------------------------------
// The front door and the modules that need Deno.

test("dist/node/mod.js is the front door and loads without Deno", () => {
  assertStrictEquals((globalThis as { Deno?: unknown }).Deno, undefined);
  for (
    const name of [
      "createServer",
      "createClient",
      "generateConnectToken",
      "generateKey",
      "keyFromHex",
      "listenUdp",
      "createNetworkSimulator",
      "parseAddress",
    ] as const
  ) {
    assertStrictEquals(typeof frontDoor[name], "function", name);
  }
  assertStrictEquals(frontDoor.createServer, createServer);
  assertStrictEquals(frontDoor.MAX_PAYLOAD_BYTES, 1200);
  assertEquals(
    frontDoor.keyFromHex("00".repeat(31) + "ff"),
    new Uint8Array(32).fill(0, 0, 31).fill(255, 31),
  );
});

test("the FFI modules say clearly that they need Deno.dlopen", () => {
  assertMatch(
    ffiTransportUnavailable() ?? "",
    /^Cannot listen with the FFI transport: it needs Deno\.dlopen, and this is not Deno/,
  );
  assertThrows(() => listenUdpFfi("127.0.0.1:0"), Error, "needs Deno.dlopen");
  assertMatch(
    nativeSodiumUnavailable() ?? "",
    /^Cannot load native libsodium: it needs Deno\.dlopen/,
  );
  assertThrows(() => useNativeSodium(), Error, "needs Deno.dlopen");
});

// ---------------------------------------------------------------------------
// Conformance vectors and tokens.

const vectorsUrl = new URL(
  "../../../tests/vectors/netcode-1.02.json",
  import.meta.url,
);
const vectors = JSON.parse(readFileSync(vectorsUrl, "utf8")) as Vectors;
defineConformanceTests(vectors, vectorsUrl, test);

test("generateConnectToken() makes a token the servers' key opens", () => {
  const privateKey = generateKey();
  const bytes = generateConnectToken({
    serverAddresses: ["127.0.0.1:40000", "[::1]:40000"],
    clientId: 7n,
    protocolId: PROTOCOL_ID,
    privateKey,
  });
  assertStrictEquals(bytes.length, 2048);
  const token = readConnectToken(bytes);
  assert(token, "readConnectToken rejected it");
  assertEquals(token.serverAddresses, [
    parseAddress("127.0.0.1:40000"),
    parseAddress("[::1]:40000"),
  ]);
  const decrypted = token.encryptedPrivateToken.slice();
  assert(
    decryptPrivateConnectToken(
      decrypted,
      PROTOCOL_ID,
      token.expireTimestamp,
      token.nonce,
      privateKey,
    ),
    "the private token did not decrypt",
  );
  assertStrictEquals(readPrivateConnectToken(decrypted)?.clientId, 7n);
});

test("examples/token_backend_node.ts hands alice a token and refuses a stranger", async () => {
  const { server, url } = await startTokenBackend("127.0.0.1:0");
  try {
    const ok = await fetch(url, {
      method: "POST",
      headers: { authorization: "Bearer alice" },
    });
    assertStrictEquals(ok.status, 200);
    const { connectToken } = await ok.json() as { connectToken: string };
    const token = readConnectToken(
      new Uint8Array(Buffer.from(connectToken, "base64")),
    );
    assert(token, "not a connect token");
    assertEquals(token.serverAddresses, [parseAddress("127.0.0.1:40000")]);
    const stranger = await fetch(url, {
      method: "POST",
      headers: { authorization: "Bearer mallory" },
    });
    assertStrictEquals(stranger.status, 401);
    await stranger.body?.cancel();
    const wrong = await fetch(url);
    assertStrictEquals(wrong.status, 404);
    await wrong.body?.cancel();
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
});

// ---------------------------------------------------------------------------
// The UDP socket.

test("listenUdp() binds with the runtime's UDP, the port readable at once", async () => {
  await using a = listenUdp("127.0.0.1:0");
  await using b = listenUdpNode({ hostname: "127.0.0.1", port: 0 });
  assert(a.address.port > 0 && b.address.port > 0);
  assertStrictEquals(a.address.hostname, "127.0.0.1");
  a.send(new Uint8Array([1, 2, 3]), b.address);
  const [got] = await pollUntil(b, 1);
  assertEquals(got, new Uint8Array([1, 2, 3]));
  assertStrictEquals(Object.getPrototypeOf(got), Uint8Array.prototype);
  assertStrictEquals(a.stats.sent, 1);
  assertStrictEquals(b.stats.received, 1);
});

test("the receive queue is bounded and counts what it drops", async () => {
  await using receiver = listenUdp({ hostname: "127.0.0.1", maxQueue: 2 });
  await using sender = listenUdp({
    hostname: "127.0.0.1",
    maxDatagramBytes: 1400,
  });
  for (let i = 0; i < 5; i++) {
    sender.send(new Uint8Array([i]), receiver.address);
  }
  sender.send(new Uint8Array(1400), receiver.address); // over 1300: oversized
  const deadline = performance.now() + 2000;
  while (
    receiver.stats.dropped + receiver.stats.oversized < 4 &&
    performance.now() < deadline
  ) {
    await yieldToSockets();
  }
  assertStrictEquals(receiver.stats.received, 2);
  assertStrictEquals(receiver.stats.dropped, 3);
  assertStrictEquals(receiver.stats.oversized, 1);
  assertEquals(await pollUntil(receiver, 2), [
    new Uint8Array([0]),
    new Uint8Array([1]),
  ]);
  assertStrictEquals(receiver.poll(), undefined);
});

test("a bind error names the address and cause", async () => {
  await using taken = listenUdp("127.0.0.1:0");
  const address = formatAddress(taken.address);
  const error = assertThrows(() => listenUdp(address), Error, address);
  assertStrictEquals(
    error.message,
    `Cannot listen on ${address}: address in use`,
  );
  assertStrictEquals(error.name, "AddrInUse");
  assertStrictEquals((error as { code?: string }).code, "EADDRINUSE");
  assert(error.cause instanceof Error, "the system's error is the cause");
  assertThrows(
    () =>
      createServer({
        address,
        protocolId: PROTOCOL_ID,
        privateKey: PRIVATE_KEY,
      }),
    Error,
    address,
  );
  assertThrows(
    () => listenUdp({ hostname: "localhost", port: 0 }),
    TypeError,
    "Cannot listen on localhost:0: hostname must be an IPv4 or IPv6 address",
  );
  assertThrows(
    () => listenUdp({ hostname: "127.0.0.1", maxQueue: 0 }),
    RangeError,
    "maxQueue",
  );
});

test("close() releases the port and sends what was queued first", async () => {
  const receiver = listenUdp("127.0.0.1:0");
  const socket = listenUdp("127.0.0.1:0");
  const port = socket.address.port;
  for (let i = 0; i < 10; i++) {
    socket.send(new Uint8Array([i]), receiver.address);
  }
  socket.close();
  assertThrows(
    () => socket.send(new Uint8Array(1), receiver.address),
    TypeError,
    "closed",
  );
  assertStrictEquals(socket.poll(), undefined);
  await socket.closed;
  assertStrictEquals(socket.stats.sent, 10);
  assertStrictEquals((await pollUntil(receiver, 10)).length, 10);
  receiver.close();
  await receiver.closed;
  const again = listenUdp({ hostname: "127.0.0.1", port });
  assertStrictEquals(again.address.port, port);
  await again[Symbol.asyncDispose]();
});

test("IPv6 senders arrive with canonical hostnames", async () => {
  if (!hasIpv6) return console.log("  (no IPv6 on this machine: skipped)");
  await using a = listenUdp("[::1]:0");
  await using b = listenUdp({ hostname: "0:0:0:0:0:0:0:1", port: 0 });
  assertStrictEquals(b.address.hostname, "::1");
  a.send(new Uint8Array([6]), { hostname: "::1", port: b.address.port });
  const deadline = performance.now() + 2000;
  let from;
  while (from === undefined && performance.now() < deadline) {
    from = b.poll()?.from;
    if (from === undefined) await yieldToSockets();
  }
  assertEquals(from, { hostname: "::1", port: a.address.port });
});

test("a client connects and echoes on the simulator (the front door's example)", () => {
  const network = frontDoor.createNetworkSimulator({ latencyMs: 20 });
  using server = createServer({
    address: "127.0.0.1:40000",
    protocolId: PROTOCOL_ID,
    privateKey: PRIVATE_KEY,
    socket: network.createSocket("127.0.0.1:40000"),
  });
  using client = createClient({
    socket: network.createSocket("127.0.0.1:50000"),
  });
  client.connect(generateConnectToken({
    serverAddresses: ["127.0.0.1:40000"],
    clientId: 42n,
    protocolId: PROTOCOL_ID,
    privateKey: PRIVATE_KEY,
  }));
  let echoed: Uint8Array | undefined;
  for (let tick = 1; tick <= 120 && !echoed; tick++) {
    const now = tick / 60;
    network.update(now);
    client.update(now);
    server.update(now);
    if (client.state === ClientState.CONNECTED) {
      client.send(new Uint8Array([1, 2, 3]));
    }
    for (const i of server.connectedClients()) {
      for (let p = server.receive(i); p; p = server.receive(i)) {
        server.send(i, p);
      }
    }
    echoed = client.receive();
  }
  assertStrictEquals(client.state, ClientState.CONNECTED);
  assertEquals(echoed, new Uint8Array([1, 2, 3]));
});

test("a dual-stack [::] socket sends to and hears from IPv4 addresses", async () => {
  if (!hasIpv6) return console.log("  (no IPv6 on this machine: skipped)");
  await using v4 = listenUdp("127.0.0.1:0");
  await using dual = listenUdp({ hostname: "::", port: 0 });
  dual.send(new Uint8Array([4]), v4.address);
  assertEquals(await pollUntil(v4, 1), [new Uint8Array([4])]);
  assertStrictEquals(dual.stats.sendErrors, 0);
  v4.send(new Uint8Array([6]), {
    hostname: "127.0.0.1",
    port: dual.address.port,
  });
  const deadline = performance.now() + 2000;
  let from;
  while (from === undefined && performance.now() < deadline) {
    from = dual.poll()?.from;
    if (from === undefined) await yieldToSockets();
  }
  assertEquals(from, { hostname: "::ffff:127.0.0.1", port: v4.address.port });
});

test("a server binds both wildcards of one port (a dual-stack [::] takes IPv4)", async () => {
  if (!hasIpv6) return console.log("  (no IPv6 on this machine: skipped)");
  const probe = listenUdp("[::]:0");
  const port = probe.address.port;
  probe.close();
  await probe.closed;
  // Public addresses bind the wildcards of their port: [::] first, then
  // 0.0.0.0, refused as in use where [::] is dual-stack.
  await using server = createServer({
    address: [`203.0.113.7:${port}`, `[2001:db8::1]:${port}`],
    protocolId: PROTOCOL_ID,
    privateKey: PRIVATE_KEY,
  });
  assertEquals(server.addresses, [
    { hostname: "203.0.113.7", port },
    { hostname: "2001:db8::1", port },
  ]);
});

// ---------------------------------------------------------------------------
// A server and a client over real loopback UDP, on the default sockets.

async function connectAndEchoUdp(addresses: string[]): Promise<void> {
  await using server = createServer({
    address: addresses,
    protocolId: PROTOCOL_ID,
    privateKey: PRIVATE_KEY,
  });
  await connectAndEcho(server, () => createClient());
}

test("a client connects and echoes over IPv4 UDP on 127.0.0.1", async () => {
  await connectAndEchoUdp(["127.0.0.1:0"]);
});

test("a client connects and echoes over IPv6 UDP on ::1", async () => {
  if (!hasIpv6) return console.log("  (no IPv6 on this machine: skipped)");
  await connectAndEchoUdp(["[::1]:0"]);
});

test("a dual-stack server takes IPv4 and IPv6 clients at once", async () => {
  if (!hasIpv6) return console.log("  (no IPv6 on this machine: skipped)");
  await connectAndEchoUdp(["127.0.0.1:0", "[::1]:0"]);
});

test("a client on a dual-stack [::] socket connects to an IPv4 server", async () => {
  if (!hasIpv6) return console.log("  (no IPv6 on this machine: skipped)");
  await using server = createServer({
    address: "127.0.0.1:0",
    protocolId: PROTOCOL_ID,
    privateKey: PRIVATE_KEY,
  });
  // Replies reach this socket from ::ffff:127.0.0.1, not 127.0.0.1.
  await connectAndEcho(
    server,
    () => createClient({ socket: listenUdp("[::]:0") }),
  );
});

// ---------------------------------------------------------------------------

async function run(): Promise<number> {
  console.log(`runtime suite on ${RUNTIME}: ${tests.length} tests`);
  const started = performance.now();
  let failed = 0;
  for (const { name, fn } of tests) {
    const start = performance.now();
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await Promise.race([
        fn(),
        new Promise((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`timed out after ${TEST_TIMEOUT_MS} ms`)),
            TEST_TIMEOUT_MS,
          );
        }),
      ]);
      console.log(`ok   ${name} (${Math.round(performance.now() - start)} ms)`);
    } catch (error) {
      failed++;
      console.log(`FAIL ${name}`);
      console.log(
        String(error instanceof Error ? error.stack ?? error : error)
          .split("\n").map((line) => `     ${line}`).join("\n"),
      );
    } finally {
      clearTimeout(timer);
    }
  }
  console.log(
    `${failed === 0 ? "ok" : "FAILED"} | ${
      tests.length - failed
    } passed | ${failed} failed on ${RUNTIME} (${
      Math.round(performance.now() - started)
    } ms)`,
  );
  return failed === 0 ? 0 : 1;
}

process.exitCode = await run();
