// Where a server binds, apart from the addresses its tokens name: the
// default (wildcard; loopback binds itself), bindAddress, the dual-stack
// case, and a client reaching a server whose configured address is on none
// of this machine's interfaces (as behind NAT).

import { assert, assertEquals, assertThrows } from "./_assert.ts";
import { stepUntil } from "./_loopback.ts";
import { type Address, formatAddress, parseAddress } from "../address.ts";
import { ClientState, createClient } from "../client.ts";
import { createServer } from "../server.ts";
import type { UdpSocket } from "../socket.ts";
import { generateConnectToken } from "../token.ts";
import {
  defaultBindAddress,
  isLoopbackAddress,
  listenServerSockets,
  resolvePublicAddresses,
} from "../_bind.ts";
import { PRIVATE_KEY, PROTOCOL_ID, UNIX_NOW } from "./_harness.ts";

/** A documentation address (RFC 5737): on no interface of this machine. */
const UNREACHABLE = "192.0.2.1";

function fakeSocket(address: Address, closed: string[]): UdpSocket {
  return {
    address,
    close: () => closed.push(formatAddress(address)),
  } as unknown as UdpSocket;
}

Deno.test("defaultBindAddress() binds the wildcard of the address's family on its port; loopback binds itself", () => {
  assertEquals(
    defaultBindAddress(parseAddress("203.0.113.7:40000")),
    parseAddress("0.0.0.0:40000"),
  );
  assertEquals(
    defaultBindAddress(parseAddress("[2001:db8::1]:40000")),
    { hostname: "::", port: 40000 },
  );
  assertEquals(
    defaultBindAddress(parseAddress("127.0.0.1:40000")),
    parseAddress("127.0.0.1:40000"),
  );
  assertEquals(
    defaultBindAddress(parseAddress("127.3.0.1:0")),
    parseAddress("127.3.0.1:0"),
  );
  assertEquals(
    defaultBindAddress(parseAddress("[::1]:9")),
    parseAddress("[::1]:9"),
  );
  assertEquals(isLoopbackAddress(parseAddress("10.0.0.1:1")), false);
});

Deno.test("listenServerSockets() lets a dual-stack [::] socket take the IPv4 wildcard of its port", () => {
  const bound: string[] = [];
  const closed: string[] = [];
  const sockets = listenServerSockets(
    [parseAddress("0.0.0.0:40000"), { hostname: "::", port: 40000 }],
    (address) => {
      if (address.hostname === "0.0.0.0" && bound.includes("[::]:40000")) {
        const error = new Error(
          "Cannot listen on 0.0.0.0:40000: address in use",
        );
        error.name = "AddrInUse";
        throw error;
      }
      bound.push(formatAddress(address));
      return fakeSocket(address, closed);
    },
  );
  assertEquals(bound, ["[::]:40000"], "IPv6 wildcards bind first");
  assertEquals(sockets.map((socket) => formatAddress(socket.address)), [
    "[::]:40000",
  ]);
  // Either family of public address resolves through that one socket.
  assertEquals(
    resolvePublicAddresses(
      [parseAddress("203.0.113.7:40000"), parseAddress("[2001:db8::1]:40000")],
      sockets,
    ).map(formatAddress),
    ["203.0.113.7:40000", "[2001:db8::1]:40000"],
  );
  assertEquals(closed, []);
});

Deno.test("listenServerSockets() closes what it bound when an address cannot be bound, and rethrows", () => {
  const closed: string[] = [];
  const error = assertThrows(() =>
    listenServerSockets(
      [parseAddress("127.0.0.1:1"), parseAddress("127.0.0.1:2")],
      (address) => {
        if (address.port === 2) {
          const error = new Error(
            "Cannot listen on 127.0.0.1:2: address in use",
          );
          error.name = "AddrInUse";
          throw error;
        }
        return fakeSocket(address, closed);
      },
    ), Error);
  assertEquals(error.message, "Cannot listen on 127.0.0.1:2: address in use");
  assertEquals(closed, ["127.0.0.1:1"]);
});

Deno.test("resolvePublicAddresses() takes a port 0 from its socket and refuses a family nothing serves", () => {
  const sockets = [{ address: parseAddress("0.0.0.0:41234") }];
  assertEquals(
    resolvePublicAddresses([parseAddress("203.0.113.7:0")], sockets),
    [parseAddress("203.0.113.7:41234")],
  );
  assertEquals(
    resolvePublicAddresses([parseAddress("203.0.113.7:40000")], sockets),
    [parseAddress("203.0.113.7:40000")],
    "a port given stays (a NAT may forward another port)",
  );
  const error = assertThrows(
    () =>
      resolvePublicAddresses(
        [parseAddress("1.2.3.4:0"), parseAddress("[2001:db8::1]:0")],
        sockets,
      ),
    RangeError,
  );
  assertEquals(
    error.message,
    "Cannot create server: no bind address of the family of [2001:db8::1]:0 (give an IPv6 bindAddress too)",
  );
});

/** Connects a real UDP client that sends to `reach`, with a token naming `internal`. */
function connectThrough(reach: string, internal: string) {
  const client = createClient({ bindAddress: "127.0.0.1:0" });
  client.connect(generateConnectToken({
    serverAddresses: [reach],
    internalServerAddresses: [internal],
    clientId: 5n,
    protocolId: PROTOCOL_ID,
    privateKey: PRIVATE_KEY,
    now: UNIX_NOW,
  }));
  return client;
}

Deno.test("createServer() on an address of no local interface binds the wildcard, and a client reaches it", async () => {
  const server = createServer({
    address: `${UNREACHABLE}:0`,
    protocolId: PROTOCOL_ID,
    privateKey: PRIVATE_KEY,
    unixTime: () => UNIX_NOW,
  });
  const client = connectThrough(
    `127.0.0.1:${server.address.port}`,
    formatAddress(server.address),
  );
  try {
    assertEquals(server.localAddresses, [
      { hostname: "0.0.0.0", port: server.address.port },
    ]);
    assertEquals(server.address.hostname, UNREACHABLE);
    const steps = await stepUntil(
      server,
      [client],
      { time: 0 },
      () => client.state === ClientState.CONNECTED,
      300,
    );
    assert(steps > 0, client.stateName);
    assertEquals(server.numConnectedClients, 1);
  } finally {
    await client.close();
    await server.close();
  }
});

Deno.test("createServer({ bindAddress }) binds there and accepts tokens naming its address", async () => {
  const server = createServer({
    address: `${UNREACHABLE}:0`,
    bindAddress: "127.0.0.1:0",
    protocolId: PROTOCOL_ID,
    privateKey: PRIVATE_KEY,
    unixTime: () => UNIX_NOW,
  });
  const local = server.localAddresses[0];
  const client = connectThrough(
    formatAddress(local),
    formatAddress(server.address),
  );
  try {
    assertEquals(local.hostname, "127.0.0.1");
    assertEquals(server.address, { hostname: UNREACHABLE, port: local.port });
    const steps = await stepUntil(
      server,
      [client],
      { time: 0 },
      () => client.state === ClientState.CONNECTED,
      300,
    );
    assert(steps > 0, client.stateName);
    assertEquals(server.numConnectedClients, 1);
  } finally {
    await client.close();
    await server.close();
  }
  assertThrows(
    () =>
      createServer({
        address: "127.0.0.1:0",
        bindAddress: "127.0.0.1:0",
        socket: server.localAddresses as never,
        protocolId: PROTOCOL_ID,
        privateKey: PRIVATE_KEY,
      }),
    TypeError,
  );
});

Deno.test("createServer() on a loopback address binds that address, not the wildcard", async () => {
  await using server = createServer({
    address: "127.0.0.1:0",
    protocolId: PROTOCOL_ID,
    privateKey: PRIVATE_KEY,
  });
  assertEquals(server.localAddresses, [server.address]);
  assert(server.address.port > 0);
});
