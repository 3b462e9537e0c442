// The client and server over real UDP on loopback: IPv4, IPv6 and a
// dual-stack server. Time is still driven by hand; each step yields to the
// event loop so the sockets' receive loops can run. Every loop is bounded.

import { assert, assertThrows } from "./_assert.ts";
import { token } from "./_harness.ts";
import {
  connectAndEcho,
  PRIVATE_KEY,
  PROTOCOL_ID,
  stepUntil,
} from "./_loopback.ts";
import { formatAddress } from "../address.ts";
import { ClientState, createClient } from "../client.ts";
import { createServer } from "../server.ts";
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

async function connectAndEchoUdp(addresses: string[]): Promise<void> {
  using server = createServer({
    address: addresses,
    protocolId: PROTOCOL_ID,
    privateKey: PRIVATE_KEY,
  });
  await connectAndEcho(server, () => createClient());
}

Deno.test("client connects to server over IPv4 UDP on 127.0.0.1", async () => {
  await connectAndEchoUdp(["127.0.0.1:0"]);
});

Deno.test({
  name: "client connects to server over IPv6 UDP on ::1",
  ignore: !hasIpv6,
  fn: async () => {
    await connectAndEchoUdp(["[::1]:0"]);
  },
});

Deno.test({
  name: "a dual-stack server takes IPv4 and IPv6 clients at once",
  ignore: !hasIpv6,
  fn: async () => {
    await connectAndEchoUdp(["127.0.0.1:0", "[::1]:0"]);
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
    const steps = await stepUntil(
      server,
      [client],
      { time: 0 },
      () => client.state === ClientState.CONNECTED,
      500,
    );
    assert(steps > 0, client.stateName);
  },
});
