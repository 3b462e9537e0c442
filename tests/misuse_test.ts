// Issue #5, item 4: misuse of the public API. Wrong types, keys of the
// wrong size, oversized payloads, out-of-range client indexes and calls
// after close throw at once: a TypeError or RangeError (an Error after
// close) whose message names the problem. Where it makes sense the object
// is still usable afterwards.

import {
  assert,
  assertEquals,
  assertFalse,
  assertStrictEquals,
  assertThrows,
} from "./_assert.ts";
import {
  connected,
  createWorld,
  PRIVATE_KEY,
  PROTOCOL_ID,
  token,
  type World,
} from "./_harness.ts";
import { formatAddress, parseAddress } from "../address.ts";
import { ClientState, createClient } from "../client.ts";
import {
  chachaDecrypt,
  chachaEncrypt,
  randomBytes,
  xchachaDecrypt,
  xchachaEncrypt,
} from "../crypto.ts";
import {
  ALL_PACKET_TYPES,
  readPacket,
  writePacket,
  writePayloadPacket,
} from "../packet.ts";
import { createServer, MAX_CLIENTS_LIMIT, type Server } from "../server.ts";
import { createNetworkSimulator, createRandom } from "../simulator.ts";
import {
  createMultiSocket,
  type DatagramSocket,
  listenUdp,
} from "../socket.ts";
import {
  generateConnectToken,
  type GenerateConnectTokenOptions,
  writePrivateConnectToken,
} from "../token.ts";

// deno-lint-ignore no-explicit-any
type Any = any;

const TOKEN_OPTIONS: GenerateConnectTokenOptions = {
  serverAddresses: ["127.0.0.1:40000"],
  clientId: 1n,
  protocolId: PROTOCOL_ID,
  privateKey: PRIVATE_KEY,
};

/** A world with one connected client (slot 0) on a 4-slot server. */
function connectedWorld(): World {
  const world = createWorld({ server: { maxClients: 4 } });
  const client = world.addClient();
  client.connect(token());
  assert(world.run(() => connected(client), 60) > 0, client.stateName);
  return world;
}

/** Steps until the server has a payload in `slot`; returns it. */
function serverReceives(world: World, slot: number): Uint8Array | undefined {
  for (let i = 0; i < 10; i++) {
    world.step();
    const payload = world.server.receive(slot);
    if (payload) return payload;
  }
  return undefined;
}

/** Steps until the client has a payload; returns it. */
function clientReceives(world: World): Uint8Array | undefined {
  for (let i = 0; i < 10; i++) {
    world.step();
    const payload = world.clients[0].receive();
    if (payload) return payload;
  }
  return undefined;
}

// --- generateConnectToken ---------------------------------------------------

Deno.test("generateConnectToken() rejects keys of the wrong size or type", () => {
  for (const size of [0, 16, 31, 33, 64]) {
    assertThrows(
      () =>
        generateConnectToken({
          ...TOKEN_OPTIONS,
          privateKey: new Uint8Array(size),
        }),
      RangeError,
      `private key: ${size} bytes, expected 32`,
    );
  }
  for (const key of ["x".repeat(32), new Array(32).fill(0), undefined]) {
    assertThrows(
      () => generateConnectToken({ ...TOKEN_OPTIONS, privateKey: key as Any }),
      TypeError,
      "private key",
    );
  }
  assertThrows(
    () =>
      generateConnectToken({
        ...TOKEN_OPTIONS,
        clientToServerKey: new Uint8Array(31),
      }),
    RangeError,
    "client-to-server key",
  );
  assertThrows(
    () => generateConnectToken({ ...TOKEN_OPTIONS, nonce: new Uint8Array(23) }),
    RangeError,
    "nonce",
  );
});

Deno.test("generateConnectToken() rejects ids that are not 64-bit bigints", () => {
  for (const clientId of [1, "1", undefined, null]) {
    assertThrows(
      () =>
        generateConnectToken({ ...TOKEN_OPTIONS, clientId: clientId as Any }),
      TypeError,
      "client id",
    );
  }
  for (const clientId of [-1n, 1n << 64n]) {
    assertThrows(
      () => generateConnectToken({ ...TOKEN_OPTIONS, clientId }),
      RangeError,
      "client id",
    );
  }
  assertThrows(
    () => generateConnectToken({ ...TOKEN_OPTIONS, protocolId: 1 as Any }),
    TypeError,
    "protocol id",
  );
});

Deno.test("generateConnectToken() takes 1..32 parsable server addresses", () => {
  assertThrows(
    () => generateConnectToken({ ...TOKEN_OPTIONS, serverAddresses: [] }),
    RangeError,
    "0 server addresses, expected 1..32",
  );
  const many = Array.from({ length: 33 }, (_, i) => `10.0.0.1:${i + 1}`);
  assertThrows(
    () => generateConnectToken({ ...TOKEN_OPTIONS, serverAddresses: many }),
    RangeError,
    "33 server addresses, expected 1..32",
  );
  // 32 is fine.
  generateConnectToken({ ...TOKEN_OPTIONS, serverAddresses: many.slice(1) });
  for (const bad of ["localhost:40000", "1.2.3.4:70000", "1.2.3", "[::1"]) {
    assertThrows(
      () => generateConnectToken({ ...TOKEN_OPTIONS, serverAddresses: [bad] }),
      TypeError,
      `Cannot parse address "${bad}"`,
    );
  }
  assertThrows(
    () =>
      generateConnectToken({
        ...TOKEN_OPTIONS,
        serverAddresses: "127.0.0.1:40000" as Any,
      }),
    TypeError,
    "server addresses is not an array",
  );
  assertThrows(
    () =>
      generateConnectToken({
        ...TOKEN_OPTIONS,
        internalServerAddresses: ["10.0.0.1:1", "10.0.0.1:2"],
      }),
    RangeError,
    "2 internal server addresses for 1 public ones",
  );
});

Deno.test("generateConnectToken() names a server address that is not an address", () => {
  // Not a string and not { hostname, port }: the message must say which
  // argument is wrong, not "Cannot read properties of null".
  for (const entry of [null, 5, {}, { hostname: 1, port: 2 }]) {
    assertThrows(
      () =>
        generateConnectToken({
          ...TOKEN_OPTIONS,
          serverAddresses: [entry as Any],
        }),
      TypeError,
      "server address",
    );
  }
});

Deno.test("generateConnectToken() rejects oversized user data and non-integer times", () => {
  assertThrows(
    () =>
      generateConnectToken({
        ...TOKEN_OPTIONS,
        userData: new Uint8Array(257),
      }),
    RangeError,
    "user data: 257 bytes exceeds the 256 byte limit",
  );
  assertThrows(
    () => generateConnectToken({ ...TOKEN_OPTIONS, userData: [1, 2] as Any }),
    TypeError,
    "user data",
  );
  for (const expireSeconds of [1.5, NaN, Infinity, "30"]) {
    assertThrows(
      () =>
        generateConnectToken({
          ...TOKEN_OPTIONS,
          expireSeconds: expireSeconds as Any,
        }),
      RangeError,
      "expire seconds",
    );
  }
  assertThrows(
    () => generateConnectToken({ ...TOKEN_OPTIONS, expireSeconds: 2 ** 64 }),
    RangeError,
    "expire timestamp",
  );
  for (const timeoutSeconds of [0.5, 2 ** 31, "5"]) {
    assertThrows(
      () =>
        generateConnectToken({
          ...TOKEN_OPTIONS,
          timeoutSeconds: timeoutSeconds as Any,
        }),
      RangeError,
      "timeout seconds",
    );
  }
  assertThrows(
    () => generateConnectToken({ ...TOKEN_OPTIONS, now: -1 }),
    RangeError,
    "now -1 is not a time",
  );
  assertThrows(
    () => generateConnectToken(null as Any),
    TypeError,
    "options is not an object",
  );
  // 256 bytes exactly is fine.
  generateConnectToken({ ...TOKEN_OPTIONS, userData: new Uint8Array(256) });
});

// --- createServer -----------------------------------------------------------

Deno.test("createServer() rejects bad keys, slot counts, addresses, protocol ids and request budgets", () => {
  const network = createNetworkSimulator();
  let port = 41000;
  const options = () => ({
    protocolId: PROTOCOL_ID,
    privateKey: PRIVATE_KEY,
    socket: network.createSocket(`127.0.0.1:${port++}`),
  });
  assertThrows(
    () => createServer({ ...options(), privateKey: new Uint8Array(31) }),
    RangeError,
    "private key: 31 bytes, expected 32",
  );
  assertThrows(
    () => createServer({ ...options(), privateKey: "k".repeat(32) as Any }),
    TypeError,
    "private key",
  );
  for (const maxClients of [0, -1, MAX_CLIENTS_LIMIT + 1, 1.5, NaN, "8"]) {
    assertThrows(
      () => createServer({ ...options(), maxClients: maxClients as Any }),
      RangeError,
      "max clients",
    );
  }
  for (const address of ["nowhere", "1.2.3.4:99999", "[::1"]) {
    assertThrows(
      () => createServer({ ...options(), address }),
      TypeError,
      `Cannot parse address "${address}"`,
    );
  }
  assertThrows(
    () => createServer({ ...options(), address: 5 as Any }),
    TypeError,
    "address must be a string or { hostname, port }",
  );
  for (const protocolId of [1, "1", undefined, -1n, 1n << 64n]) {
    assertThrows(
      () => createServer({ ...options(), protocolId: protocolId as Any }),
      TypeError,
      "protocol id must be a bigint",
    );
  }
  for (const budget of [-1, 1.5, NaN, "5"]) {
    assertThrows(
      () =>
        createServer({
          ...options(),
          maxConnectionRequestsPerUpdate: budget as Any,
        }),
      RangeError,
      "max connection requests per update",
    );
  }
  assertThrows(
    () => createServer({ protocolId: PROTOCOL_ID, privateKey: PRIVATE_KEY }),
    TypeError,
    "give an address or a socket",
  );
  assertThrows(
    () => createServer(undefined as Any),
    TypeError,
    "options is not an object",
  );
  // The simulator still works for a valid server after all that.
  using server = createServer(options());
  assert(server.running);
});

Deno.test("createServer() rejects a socket that is not a socket and callbacks that are not functions", () => {
  // Caught at creation, not as "x is not a function" from inside update().
  const network = createNetworkSimulator();
  let port = 41000;
  const options = () => ({
    protocolId: PROTOCOL_ID,
    privateKey: PRIVATE_KEY,
    socket: network.createSocket(`127.0.0.1:${port++}`),
  });
  for (const socket of [{}, 5, { address: { hostname: "1.2.3.4", port: 1 } }]) {
    assertThrows(
      () => createServer({ ...options(), socket: socket as Any }),
      TypeError,
      "socket",
    );
  }
  for (
    const name of [
      "onConnect",
      "onDisconnect",
      "unixTime",
      "sendLoopbackPacket",
    ]
  ) {
    assertThrows(
      () => createServer({ ...options(), [name]: 5 }),
      TypeError,
      name,
    );
  }
});

Deno.test("createServer() with a bad option binds no UDP socket", async () => {
  const probe = listenUdp("127.0.0.1:0");
  const address = formatAddress(probe.address);
  probe.close();
  await probe.closed;
  const base = {
    address,
    protocolId: PROTOCOL_ID,
    privateKey: PRIVATE_KEY,
  };
  assertThrows(
    () => createServer({ ...base, maxClients: 0 }),
    RangeError,
    "max clients",
  );
  assertThrows(
    () => createServer({ ...base, maxConnectionRequestsPerUpdate: -1 }),
    RangeError,
    "max connection requests per update",
  );
  // The port is still free: nothing was left bound by the failed calls.
  await using socket = listenUdp(address);
  assertEquals(formatAddress(socket.address), address);
});

// --- Server methods ---------------------------------------------------------

const BAD_INDEXES: unknown[] = [-1, 4, 1.5, "0", NaN, undefined, null, 0n];

Deno.test("server methods reject client indexes outside 0..maxClients-1", () => {
  const world = connectedWorld();
  const server = world.server;
  const calls: [string, (index: Any) => unknown][] = [
    ["send payload", (i) => server.send(i, new Uint8Array(1))],
    ["receive payload", (i) => server.receive(i)],
    ["disconnect client", (i) => server.disconnect(i)],
    ["query client", (i) => server.clientId(i)],
    ["query client", (i) => server.clientConnected(i)],
    ["query client", (i) => server.clientConfirmed(i)],
    ["query client", (i) => server.clientLoopback(i)],
    ["query client", (i) => server.clientAddress(i)],
    ["query client", (i) => server.clientUserData(i)],
    ["query client", (i) => server.nextPacketSequence(i)],
    ["connect loopback client", (i) => server.connectLoopbackClient(i, 99n)],
    ["disconnect loopback client", (i) => server.disconnectLoopbackClient(i)],
    [
      "process loopback packet",
      (i) => server.processLoopbackPacket(i, new Uint8Array(1), 0),
    ],
  ];
  for (const [what, call] of calls) {
    for (const index of BAD_INDEXES) {
      const error = assertThrows(
        () => call(index),
        RangeError,
        `Cannot ${what}: client index`,
      );
      assert(error.message.includes("0..3"), error.message);
    }
  }
  // Nothing changed: the client is still there and payloads still flow.
  assertEquals(server.numConnectedClients, 1);
  assertEquals(server.clientId(0), 1n);
  world.clients[0].send(new Uint8Array([7]));
  assertEquals(serverReceives(world, 0), new Uint8Array([7]));
  world.close();
});

Deno.test("server.send() rejects non-Uint8Array, empty and oversized payloads, then still sends", () => {
  const world = connectedWorld();
  const server = world.server;
  for (const payload of ["abc", [1, 2, 3], new Uint16Array(4), undefined]) {
    assertThrows(
      () => server.send(0, payload as Any),
      TypeError,
      "Cannot send payload: expected a Uint8Array",
    );
  }
  assertThrows(
    () => server.send(0, new Uint8Array(0)),
    RangeError,
    "0 bytes is outside the 1..1200 byte limit",
  );
  assertThrows(
    () => server.send(0, new Uint8Array(1201)),
    RangeError,
    "1201 bytes is outside the 1..1200 byte limit",
  );
  // Checked before the slot: an empty slot does not hide the mistake.
  assertThrows(
    () => server.send(3, new Uint8Array(1201)),
    RangeError,
    "1201 bytes",
  );
  const payload = new Uint8Array(1200).fill(9);
  server.send(0, payload);
  assertEquals(clientReceives(world), payload);
  assert(connected(world.clients[0]));
  world.close();
});

Deno.test("server.update() rejects times that are not numbers", () => {
  const world = connectedWorld();
  for (const time of [NaN, "1", undefined, 1n]) {
    assertThrows(
      () => world.server.update(time as Any),
      TypeError,
      "Cannot update server: time",
    );
  }
  world.step();
  assertEquals(world.server.numConnectedClients, 1);
  world.close();
});

Deno.test("server.start() rejects bad slot counts and keeps its clients", () => {
  const world = connectedWorld();
  for (const maxClients of [0, MAX_CLIENTS_LIMIT + 1, 2.5, "8"]) {
    assertThrows(
      () => world.server.start(maxClients as Any),
      RangeError,
      "max clients",
    );
  }
  assert(world.server.running);
  assertEquals(world.server.numConnectedClients, 1);
  world.close();
});

Deno.test("server loopback calls reject bad ids, user data and payloads", () => {
  const world = connectedWorld();
  const server = world.server;
  assertThrows(
    () => server.connectLoopbackClient(1, 5 as Any),
    TypeError,
    "client id must be a bigint",
  );
  assertThrows(
    () => server.connectLoopbackClient(1, 5n, new Uint8Array(257)),
    RangeError,
    "user data",
  );
  assertThrows(
    () => server.connectLoopbackClient(0, 5n),
    RangeError,
    "slot 0 is taken",
  );
  assertThrows(
    () => server.connectLoopbackClient(1, 1n),
    RangeError,
    "client id 1 is connected",
  );
  server.connectLoopbackClient(1, 5n);
  for (const payload of [new Uint8Array(0), new Uint8Array(1201), "x"]) {
    assertThrows(
      () => server.processLoopbackPacket(1, payload as Any, 0),
      RangeError,
      "Cannot process loopback packet: payload must be 1..1200 bytes",
    );
  }
  server.processLoopbackPacket(1, new Uint8Array([4]), 0);
  assertEquals(server.receive(1), new Uint8Array([4]));
  world.close();
});

Deno.test("server.processLoopbackPacket() checks the payload before the slot", () => {
  // As send() does: an oversized payload is a mistake whatever the slot holds.
  const world = connectedWorld();
  assertThrows(
    () => world.server.processLoopbackPacket(2, new Uint8Array(1201), 0),
    RangeError,
    "payload must be 1..1200 bytes",
  );
  world.close();
});

Deno.test("a closed server throws on update() and start(), and close() is idempotent", () => {
  const world = connectedWorld();
  const server: Server = world.server;
  server.close();
  assertThrows(
    () => server.update(1),
    Error,
    "Cannot update server: it is closed",
  );
  assertThrows(
    () => server.start(),
    Error,
    "Cannot start server: it is closed",
  );
  assertThrows(
    () => server.connectLoopbackClient(0, 2n),
    Error,
    "server is not running",
  );
  server.close();
  assertFalse(server.running);
  assertEquals(server.numConnectedClients, 0);
  assertStrictEquals(server.receive(0), undefined);
  for (const client of world.clients) client.close();
});

// --- createClient and client methods -----------------------------------------

Deno.test("createClient() rejects options that are not an object", () => {
  for (const options of [null, 5, "x"]) {
    assertThrows(
      () => createClient(options as Any),
      TypeError,
      "Cannot create client: options is not an object",
    );
  }
});

Deno.test("createClient() rejects a socket that is not a socket and callbacks that are not functions", () => {
  for (const socket of [{}, 5, { address: { hostname: "1.2.3.4", port: 1 } }]) {
    assertThrows(
      () => createClient({ socket: socket as Any }),
      TypeError,
      "socket",
    );
  }
  for (const name of ["onStateChange", "sendLoopbackPacket"]) {
    assertThrows(() => createClient({ [name]: 5 }), TypeError, name);
  }
});

Deno.test("client.connect() rejects tokens that are not bytes; unreadable bytes are an invalid token", () => {
  const world = createWorld();
  const client = world.addClient();
  for (const bad of ["token", [1, 2], undefined, new ArrayBuffer(2048)]) {
    assertThrows(
      () => client.connect(bad as Any),
      TypeError,
      "Cannot connect: connect token must be a Uint8Array",
    );
  }
  assertEquals(client.state, ClientState.DISCONNECTED);
  // Bytes that are not a token are the protocol's case, not misuse.
  client.connect(new Uint8Array(10));
  assertEquals(client.state, ClientState.INVALID_CONNECT_TOKEN);
  client.connect(token());
  assert(world.run(() => connected(client), 60) > 0, client.stateName);
  world.close();
});

Deno.test("client.send() rejects non-Uint8Array, empty and oversized payloads, then still sends", () => {
  const world = connectedWorld();
  const client = world.clients[0];
  assertThrows(
    () => client.send([1] as Any),
    TypeError,
    "Cannot send payload: expected a Uint8Array",
  );
  assertThrows(
    () => client.send(new Uint8Array(0)),
    RangeError,
    "0 bytes is outside the 1..1200 byte limit",
  );
  assertThrows(
    () => client.send(new Uint8Array(1201)),
    RangeError,
    "1201 bytes is outside the 1..1200 byte limit",
  );
  // Checked whatever the state: a disconnected client says so too.
  assertThrows(
    () => createClient().send(new Uint8Array(1201)),
    RangeError,
    "1201 bytes",
  );
  const payload = new Uint8Array(1200).fill(3);
  client.send(payload);
  assertEquals(serverReceives(world, 0), payload);
  assert(connected(client));
  world.close();
});

Deno.test("client.update() rejects times that are not numbers", () => {
  const world = connectedWorld();
  for (const time of [NaN, "1", undefined]) {
    assertThrows(
      () => world.clients[0].update(time as Any),
      TypeError,
      "Cannot update client: time",
    );
  }
  world.step();
  assert(connected(world.clients[0]));
  world.close();
});

Deno.test("client.connectLoopback() rejects bad indexes and slot counts, then still connects", () => {
  using client = createClient();
  for (const index of [-1, 4, 1.5, "0", NaN]) {
    assertThrows(
      () => client.connectLoopback(index as Any, 4),
      RangeError,
      "Cannot connect loopback: client index",
    );
  }
  for (const slots of [0, -1, 1.5, "4"]) {
    assertThrows(
      () => client.connectLoopback(0, slots as Any),
      RangeError,
      "Cannot connect loopback: max clients",
    );
  }
  assertEquals(client.state, ClientState.DISCONNECTED);
  client.connectLoopback(3, 4);
  assertEquals(client.state, ClientState.CONNECTED);
  assertEquals(client.clientIndex, 3);
  for (const payload of [new Uint8Array(0), new Uint8Array(1201), "x"]) {
    assertThrows(
      () => client.processLoopbackPacket(payload as Any, 0),
      RangeError,
      "payload must be 1..1200 bytes",
    );
  }
  client.processLoopbackPacket(new Uint8Array([5]), 0);
  assertEquals(client.receive(), new Uint8Array([5]));
});

Deno.test("client.processLoopbackPacket() checks the payload outside loopback mode too", () => {
  using client = createClient();
  assertThrows(
    () => client.processLoopbackPacket(new Uint8Array(1201), 0),
    RangeError,
    "payload must be 1..1200 bytes",
  );
});

Deno.test("a closed client throws on update(), connect() and connectLoopback(), and close() is idempotent", () => {
  const world = connectedWorld();
  const client = world.clients[0];
  client.close();
  assertThrows(
    () => client.update(1),
    Error,
    "Cannot update client: it is closed",
  );
  assertThrows(
    () => client.connect(token()),
    Error,
    "Cannot connect: client is closed",
  );
  assertThrows(
    () => client.connectLoopback(0, 1),
    Error,
    "Cannot connect loopback: client is closed",
  );
  client.close();
  assertEquals(client.state, ClientState.DISCONNECTED);
  assertStrictEquals(client.receive(), undefined);
  world.server.close();
});

// --- Addresses ----------------------------------------------------------------

Deno.test("parseAddress() rejects garbage with the text in the message", () => {
  const garbage = [
    "",
    " ",
    "garbage",
    "localhost:40000",
    "1.2.3:4",
    "1.2.3.4.5:6",
    "256.1.1.1:1",
    "1.2.3.4:",
    "1.2.3.4:65536",
    "1.2.3.4:-1",
    "1.2.3.4:0x10",
    "[::1",
    "[::1]x",
    "[::1]:",
    "[zz::1]:1",
    "::1::2",
    "1:2:3:4:5:6:7:8:9",
    "[1.2.3.4]:5",
  ];
  for (const text of garbage) {
    assertThrows(
      () => parseAddress(text),
      TypeError,
      `Cannot parse address "${text}"`,
    );
  }
  for (const value of [5, null, undefined, {}]) {
    assertThrows(
      () => parseAddress(value as Any),
      TypeError,
      "Cannot parse address: expected a string",
    );
  }
  assertEquals(parseAddress("1.2.3.4:5"), { hostname: "1.2.3.4", port: 5 });
});

Deno.test("formatAddress() names a value that is not an address", () => {
  for (const value of [null, undefined, {}, 5]) {
    assertThrows(
      () => formatAddress(value as Any),
      TypeError,
      "address",
    );
  }
});

// --- Packets ------------------------------------------------------------------

Deno.test("writePayloadPacket() rejects bad payloads, keys, sequences and buffers", () => {
  const out = new Uint8Array(1300);
  const key = new Uint8Array(32);
  assertThrows(
    () => writePayloadPacket(out, 0, key, 1n, new Uint8Array(0)),
    RangeError,
    "0 bytes is outside the 1..1200 byte limit",
  );
  assertThrows(
    () => writePayloadPacket(out, 0, key, 1n, new Uint8Array(1201)),
    RangeError,
    "1201 bytes is outside the 1..1200 byte limit",
  );
  assertThrows(
    () => writePayloadPacket(out, 0, key, 1n, [1] as Any),
    TypeError,
    "expected a Uint8Array",
  );
  for (const size of [0, 31, 33]) {
    assertThrows(
      () =>
        writePayloadPacket(out, 0, new Uint8Array(size), 1n, new Uint8Array(1)),
      RangeError,
      `key is ${size} bytes, expected 32`,
    );
  }
  assertThrows(
    () =>
      writePayloadPacket(new Uint8Array(10), 0, key, 1n, new Uint8Array(100)),
    RangeError,
    "118 bytes do not fit in 10",
  );
  assertThrows(
    () => writePayloadPacket([] as Any, 0, key, 1n, new Uint8Array(1)),
    TypeError,
    "output is not a Uint8Array",
  );
  for (const sequence of [-1, 1.5, 2 ** 53, -1n, 1n << 64n]) {
    assertThrows(
      () => writePayloadPacket(out, sequence, key, 1n, new Uint8Array(1)),
      RangeError,
      "Cannot use sequence",
    );
  }
  assertThrows(
    () => writePayloadPacket(out, 0, key, 1 as Any, new Uint8Array(1)),
    TypeError,
    "protocol id",
  );
  // The shared scratch state is fine afterwards: a good packet reads back.
  const bytes = writePayloadPacket(out, 5, key, 1n, new Uint8Array([1, 2]));
  const packet = readPacket(out.subarray(0, bytes), {
    protocolId: 1n,
    allowedPackets: ALL_PACKET_TYPES,
    readKey: key,
  });
  assert(typeof packet !== "number" && packet.type === 5);
  assertEquals(packet.payload, new Uint8Array([1, 2]));
});

Deno.test("writePacket() rejects fields out of their wire range", () => {
  const out = new Uint8Array(1300);
  const key = new Uint8Array(32);
  assertThrows(
    () => writePacket(out, { type: 9 } as Any, 0, key, 1n),
    TypeError,
    "type 9 is not an encrypted packet type",
  );
  assertThrows(
    () =>
      writePacket(
        out,
        {
          type: 2,
          challengeTokenSequence: 0n,
          challengeTokenData: new Uint8Array(10),
        },
        0,
        key,
        1n,
      ),
    RangeError,
    "challenge token is 10 bytes, expected 300",
  );
  // Not silently wrapped into 32 bits, nor a bare "Cannot convert to BigInt".
  for (const [clientIndex, maxClients] of [[-1, 4], [0, 2 ** 32], [0.5, 4]]) {
    assertThrows(
      () => writePacket(out, { type: 4, clientIndex, maxClients }, 0, key, 1n),
      RangeError,
      clientIndex === 0 ? "max clients" : "client index",
    );
  }
  assertThrows(
    () =>
      writePacket(
        out,
        {
          type: 2,
          challengeTokenSequence: 0 as Any,
          challengeTokenData: new Uint8Array(300),
        },
        0,
        key,
        1n,
      ),
    TypeError,
    "challenge token sequence",
  );
});

// --- Crypto -------------------------------------------------------------------

Deno.test("chachaEncrypt() and friends reject keys and nonces of the wrong size", () => {
  const buffer = new Uint8Array(64);
  const key = new Uint8Array(32);
  for (const size of [0, 16, 31, 33]) {
    assertThrows(
      () =>
        chachaEncrypt(
          buffer,
          0,
          3,
          buffer,
          0,
          new Uint8Array(12),
          new Uint8Array(size),
          buffer,
          0,
        ),
      RangeError,
      `Cannot use key: ${size} bytes, expected 32`,
    );
  }
  for (const size of [0, 8, 24]) {
    assertThrows(
      () =>
        chachaEncrypt(
          buffer,
          0,
          3,
          buffer,
          0,
          new Uint8Array(size),
          key,
          buffer,
          0,
        ),
      RangeError,
      `Cannot use nonce: ${size} bytes, expected 12`,
    );
  }
  assertThrows(
    () =>
      xchachaEncrypt(
        buffer,
        0,
        3,
        buffer,
        0,
        new Uint8Array(12),
        key,
        buffer,
        0,
      ),
    RangeError,
    "Cannot use nonce: 12 bytes, expected 24",
  );
  assertThrows(
    () =>
      chachaDecrypt(
        buffer,
        0,
        20,
        buffer,
        0,
        new Uint8Array(12),
        new Uint8Array(31),
        buffer,
        0,
      ),
    RangeError,
    "Cannot use key: 31 bytes",
  );
  assertThrows(
    () =>
      xchachaDecrypt(
        buffer,
        0,
        20,
        buffer,
        0,
        new Uint8Array(24),
        new Uint8Array(33),
        buffer,
        0,
      ),
    RangeError,
    "Cannot use key: 33 bytes",
  );
  assertThrows(
    () =>
      chachaEncrypt(
        buffer,
        0,
        3,
        buffer,
        0,
        new Uint8Array(12),
        key,
        new Uint8Array(5),
        0,
      ),
    RangeError,
    "Cannot encrypt into 5 bytes",
  );
  assertThrows(
    () =>
      chachaEncrypt(
        new Uint8Array(2),
        0,
        30,
        buffer,
        0,
        new Uint8Array(12),
        key,
        buffer,
        0,
      ),
    RangeError,
    "Cannot encrypt 30 bytes",
  );
  assertThrows(
    () =>
      chachaEncrypt(
        buffer,
        0,
        3,
        new Uint8Array(65),
        65,
        new Uint8Array(12),
        key,
        buffer,
        0,
      ),
    RangeError,
    "associated data",
  );
  // Still works after all that.
  const sealed = new Uint8Array(3 + 16);
  const nonce = new Uint8Array(12);
  chachaEncrypt(
    new Uint8Array([1, 2, 3]),
    0,
    3,
    buffer,
    0,
    nonce,
    key,
    sealed,
    0,
  );
  const opened = new Uint8Array(3);
  assert(chachaDecrypt(sealed, 0, 19, buffer, 0, nonce, key, opened, 0));
  assertEquals(opened, new Uint8Array([1, 2, 3]));
});

Deno.test("chachaEncrypt() rejects a key or nonce that is not a Uint8Array", () => {
  // A 32-character string has a length of 32; its bytes would silently
  // become zeros: an all-zero key.
  const buffer = new Uint8Array(64);
  for (const key of ["k".repeat(32), new Array(32).fill(1), undefined]) {
    assertThrows(
      () =>
        chachaEncrypt(
          buffer,
          0,
          3,
          buffer,
          0,
          new Uint8Array(12),
          key as Any,
          buffer,
          0,
        ),
      TypeError,
      "key",
    );
  }
  assertThrows(
    () =>
      chachaEncrypt(
        buffer,
        0,
        3,
        buffer,
        0,
        "n".repeat(12) as Any,
        new Uint8Array(32),
        buffer,
        0,
      ),
    TypeError,
    "nonce",
  );
});

Deno.test("chachaEncrypt() rejects lengths and offsets that are not integers", () => {
  const buffer = new Uint8Array(64);
  const key = new Uint8Array(32);
  for (const length of [1.5, NaN]) {
    assertThrows(
      () =>
        chachaEncrypt(
          buffer,
          0,
          length,
          buffer,
          0,
          new Uint8Array(12),
          key,
          buffer,
          0,
        ),
      RangeError,
      "bytes",
    );
  }
});

Deno.test("randomBytes() rejects a buffer that is not a Uint8Array", () => {
  for (const buffer of [[], {}, "abc"]) {
    assertThrows(() => randomBytes(buffer as Any), TypeError, "Uint8Array");
  }
});

// --- Tokens -------------------------------------------------------------------

Deno.test("writePrivateConnectToken() takes 1..32 server addresses", () => {
  const fields = {
    clientId: 1n,
    timeoutSeconds: 5,
    clientToServerKey: new Uint8Array(32),
    serverToClientKey: new Uint8Array(32),
    userData: new Uint8Array(256),
  };
  assertThrows(
    () => writePrivateConnectToken({ ...fields, serverAddresses: [] }),
    RangeError,
    "0 server addresses",
  );
});

// --- Sockets and the simulator ------------------------------------------------

Deno.test("listenUdp() rejects bad hostnames and ports before binding", () => {
  for (const hostname of ["localhost", "example.com", "1.2.3", 5, "::1::"]) {
    assertThrows(
      () => listenUdp({ hostname: hostname as Any, port: 0 }),
      TypeError,
      "hostname must be an IPv4 or IPv6 address",
    );
  }
  for (const port of [-1, 65536, 1.5, NaN, "0"]) {
    assertThrows(
      () => listenUdp({ hostname: "127.0.0.1", port: port as Any }),
      RangeError,
      "port must be an integer from 0 to 65535",
    );
  }
  for (
    const [option, value] of [["maxQueue", 0], ["maxDatagramBytes", 70000]]
  ) {
    assertThrows(
      () => listenUdp({ hostname: "127.0.0.1", [option]: value }),
      RangeError,
      `${option} must be an integer`,
    );
  }
  assertThrows(
    () => listenUdp("garbage"),
    TypeError,
    `Cannot parse address "garbage"`,
  );
  assertThrows(
    () => listenUdp(5 as Any),
    TypeError,
    "Cannot listen: expected options, an address or an address string",
  );
});

Deno.test("a UDP socket rejects oversized datagrams and bad destinations, then still sends; send after close throws", async () => {
  await using a = listenUdp("127.0.0.1:0");
  const b = listenUdp("127.0.0.1:0");
  assertThrows(
    () => b.send(new Uint8Array(1301), a.address),
    RangeError,
    "1301 bytes exceeds the 1300 byte limit",
  );
  assertThrows(
    () => b.send(new Uint8Array(1), { hostname: "127.0.0.1", port: 0 }),
    RangeError,
    "port 0 is not from 1 to 65535",
  );
  assertThrows(
    () => b.send(new Uint8Array(1), { hostname: "localhost", port: 1 }),
    TypeError,
    `"localhost" is not an IP address`,
  );
  assertThrows(
    () => b.send("x" as Any, a.address),
    TypeError,
    "data is not a Uint8Array",
  );
  b.send(new Uint8Array([1, 2]), a.address);
  let datagram;
  for (let i = 0; i < 200 && !datagram; i++) {
    await new Promise((resolve) => setTimeout(resolve, 1));
    datagram = a.poll();
  }
  assertEquals(datagram?.data, new Uint8Array([1, 2]));
  b.close();
  await b.closed;
  assertThrows(
    () => b.send(new Uint8Array(1), a.address),
    TypeError,
    "is closed",
  );
});

Deno.test("createMultiSocket() rejects an empty list and things that are not sockets", () => {
  assertThrows(
    () => createMultiSocket([]),
    RangeError,
    "expected at least one socket",
  );
  assertThrows(
    () => createMultiSocket([{} as DatagramSocket]),
    TypeError,
    "socket",
  );
});

Deno.test("createNetworkSimulator() rejects options out of range", () => {
  const cases: [string, unknown][] = [
    ["latencyMs", -1],
    ["latencyMs", NaN],
    ["jitterMs", "5"],
    ["packetLossPercent", 101],
    ["packetLossPercent", -0.1],
    ["duplicatePercent", NaN],
    ["seed", NaN],
    ["seed", "1"],
    ["maxQueue", 0],
    ["maxQueue", 1.5],
    ["maxDatagramBytes", 70000],
  ];
  for (const [name, value] of cases) {
    assertThrows(
      () => createNetworkSimulator({ [name]: value }),
      RangeError,
      name === "seed" ? "seed must be a finite number" : name,
    );
  }
  for (const options of [null, 5, "x"]) {
    assertThrows(
      () => createNetworkSimulator(options as Any),
      TypeError,
      "Cannot create network simulator: expected options",
    );
  }
  assertThrows(() => createRandom(NaN), RangeError, "seed must be a finite");
});

Deno.test("the simulator rejects bad binds, sends and times, and keeps working", () => {
  const network = createNetworkSimulator();
  assertThrows(
    () => network.createSocket("garbage"),
    TypeError,
    `Cannot bind "garbage" on the simulator`,
  );
  assertThrows(
    () => network.createSocket("0.0.0.0:1"),
    TypeError,
    "not the unspecified one",
  );
  assertThrows(
    () => network.createSocket({ hostname: "10.0.0.1", port: 70000 }),
    RangeError,
    "port must be an integer from 0 to 65535",
  );
  using a = network.createSocket("10.0.0.1:1");
  assertThrows(
    () => network.createSocket("10.0.0.1:1"),
    Error,
    "address in use",
  );
  const b = network.createSocket("10.0.0.2:1");
  assertThrows(
    () => b.send(new Uint8Array(1301), a.address),
    RangeError,
    "1301 bytes exceeds the 1300 byte limit",
  );
  assertThrows(
    () => b.send(new Uint8Array(1), null as Any),
    TypeError,
    "the destination is not an address",
  );
  network.update(1);
  assertThrows(() => network.update(0.5), RangeError, "time went backwards");
  assertThrows(() => network.update(NaN), RangeError, "finite number");
  b.send(new Uint8Array([8]), a.address);
  network.update(1);
  assertEquals(a.poll()?.data, new Uint8Array([8]));
  b.close();
  assertThrows(
    () => b.send(new Uint8Array(1), a.address),
    TypeError,
    "is closed",
  );
});

// --- Reading hostile bytes is not misuse --------------------------------------

Deno.test("readPacket() never throws on hostile bytes, only on a key of the wrong size", () => {
  const random = createRandom(5);
  const options = {
    protocolId: 1n,
    allowedPackets: ALL_PACKET_TYPES,
    readKey: new Uint8Array(32),
    privateKey: new Uint8Array(32),
    currentTimestamp: 0,
  };
  for (let i = 0; i < 2000; i++) {
    const data = new Uint8Array(Math.floor(random() * 1400));
    for (let j = 0; j < data.length; j++) data[j] = random() * 256;
    if (data.length > 0 && i % 2) data[0] = (1 + (i % 8)) << 4 | (i % 7);
    assertEquals(typeof readPacket(data, options), "number");
  }
  const data = new Uint8Array(40).fill(0x14);
  assertThrows(
    () => readPacket(data, { ...options, readKey: new Uint8Array(31) }),
    RangeError,
    "Cannot use key: 31 bytes",
  );
});
