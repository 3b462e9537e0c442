// The client and server over real UDP on loopback: IPv4, IPv6 and a
// dual-stack server. Time is still driven by hand; each step yields to the
// event loop so the sockets' receive loops can run. Every loop is bounded.

import { assert, assertEquals, assertThrows } from "./_assert.ts";
import { PRIVATE_KEY, PROTOCOL_ID, TICK, token } from "./_harness.ts";
import { formatAddress } from "../address.ts";
import { type Client, ClientState, createClient } from "../client.ts";
import { createServer, type Server } from "../server.ts";
import { listenUdp } from "../socket.ts";

function ipv6Available(): boolean {
  try {
    listenUdp("[::1]:0").close();
    return true;
  } catch {
    return false;
  }
}
const hasIpv6 = ipv6Available();
if (!hasIpv6) {
  console.log("udp_test: no IPv6 on this machine, skipping ::1 tests");
}

const yieldToSockets = () => new Promise((resolve) => setTimeout(resolve, 1));

/** Steps client and server until `done` or `maxSteps`; returns the steps. */
async function run(
  server: Server,
  clients: Client[],
  state: { time: number },
  done: () => boolean,
  maxSteps: number,
): Promise<number> {
  for (let step = 1; step <= maxSteps; step++) {
    state.time += TICK;
    for (const client of clients) client.update(state.time);
    server.update(state.time);
    if (done()) return step;
    await yieldToSockets();
  }
  return -1;
}

async function connectAndEcho(
  serverAddresses: string[],
  tokenAddresses: (server: Server) => string[],
): Promise<void> {
  using server = createServer({
    address: serverAddresses,
    protocolId: PROTOCOL_ID,
    privateKey: PRIVATE_KEY,
  });
  const clients = tokenAddresses(server).map((address, i) => {
    const client = createClient();
    client.connect(
      token({ serverAddresses: [address], clientId: BigInt(i + 1) }),
    );
    return client;
  });
  try {
    const state = { time: 0 };
    const connected = await run(
      server,
      clients,
      state,
      () => clients.every((c) => c.state === ClientState.CONNECTED),
      500,
    );
    assert(connected > 0, clients.map((c) => c.stateName).join(", "));
    const echoes = clients.map(() => 0);
    await run(server, clients, state, () => {
      for (let i = 0; i < server.maxClients; i++) {
        for (let p = server.receive(i); p; p = server.receive(i)) {
          server.send(i, p);
        }
      }
      clients.forEach((client, i) => {
        for (let p = client.receive(); p; p = client.receive()) {
          assertEquals(p, new Uint8Array(100).fill(i + 1));
          echoes[i]++;
        }
        if (echoes[i] < 10) client.send(new Uint8Array(100).fill(i + 1));
      });
      return echoes.every((count) => count >= 10);
    }, 1000);
    for (const count of echoes) assert(count >= 10, `echoes ${echoes}`);
  } finally {
    for (const client of clients) client.close();
  }
}

Deno.test("client connects to server over IPv4 UDP on 127.0.0.1", async () => {
  await connectAndEcho(
    ["127.0.0.1:0"],
    (server) => [formatAddress(server.address)],
  );
});

Deno.test({
  name: "client connects to server over IPv6 UDP on ::1",
  ignore: !hasIpv6,
  fn: async () => {
    await connectAndEcho(
      ["[::1]:0"],
      (server) => [formatAddress(server.address)],
    );
  },
});

Deno.test({
  name: "a dual-stack server takes IPv4 and IPv6 clients at once",
  ignore: !hasIpv6,
  fn: async () => {
    await connectAndEcho(
      ["127.0.0.1:0", "[::1]:0"],
      (server) => server.addresses.map(formatAddress),
    );
  },
});

Deno.test("createServer() names the address and cause when it cannot bind", () => {
  using taken = listenUdp("127.0.0.1:0");
  const address = formatAddress(taken.address);
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
});

Deno.test({
  name: "a client on a dual-stack [::] socket connects to an IPv4 server",
  ignore: !hasIpv6,
  fn: async () => {
    using server = createServer({
      address: "127.0.0.1:0",
      protocolId: PROTOCOL_ID,
      privateKey: PRIVATE_KEY,
    });
    // Replies reach this socket from ::ffff:127.0.0.1, not 127.0.0.1.
    using client = createClient({ socket: listenUdp("[::]:0") });
    client.connect(token({ serverAddresses: [formatAddress(server.address)] }));
    const steps = await run(
      server,
      [client],
      { time: 0 },
      () => client.state === ClientState.CONNECTED,
      500,
    );
    assert(steps > 0, client.stateName);
  },
});
