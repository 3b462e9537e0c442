// The cheap-junk flood of tests/flood_test.ts over real loopback UDP, on
// both transports: Deno.listenDatagram (listenUdp) and the FFI socket
// (listenUdpFfi, skipped without FFI). Honest clients connect one after
// another at different phases of the server's tick while one sender queues
// 300 junk datagrams ahead of them every tick.

import { assert, assertEquals } from "./_assert.ts";
import {
  cheapJunkTick,
  PRIVATE_KEY,
  PROTOCOL_ID,
  token,
  UNIX_NOW,
} from "./_harness.ts";
import { yieldToSockets } from "./_loopback.ts";
import { formatAddress } from "../address.ts";
import { ClientState, createClient } from "../client.ts";
import { createServer } from "../server.ts";
import { type DatagramSocket, listenUdp } from "../socket.ts";
import { ffiTransportUnavailable, listenUdpFfi } from "../socket_ffi.ts";

const noFfi = ffiTransportUnavailable();

for (
  const [transport, listen] of [
    [
      "Deno.listenDatagram",
      (port: number) =>
        listenUdp({ hostname: "127.0.0.1", port, maxQueue: 4096 }),
    ],
    ["FFI", (port: number) => listenUdpFfi({ hostname: "127.0.0.1", port })],
  ] as const
) {
  Deno.test({
    name:
      `cheap junk at 18,000 datagrams a second does not keep honest clients from connecting (${transport})`,
    ignore: transport === "FFI" && noFfi !== undefined,
    async fn() {
      const socket: DatagramSocket = listen(0);
      const server = createServer({
        address: formatAddress(socket.address),
        socket,
        protocolId: PROTOCOL_ID,
        privateKey: PRIVATE_KEY,
        unixTime: () => UNIX_NOW,
      });
      const junk = listenUdp({ hostname: "127.0.0.1", port: 0 });
      const kinds = cheapJunkTick();
      const clients: ReturnType<typeof createClient>[] = [];
      const echoed: number[] = [];
      let time = 0;
      try {
        for (let tick = 0; tick < 900; tick++) {
          if (tick % 37 === 0 && clients.length < 6) {
            const client = createClient({ bindAddress: "127.0.0.1:0" });
            client.connect(token({
              serverAddresses: [formatAddress(server.address)],
              clientId: BigInt(clients.length + 1),
              timeoutSeconds: 5,
            }));
            clients.push(client);
            echoed.push(0);
          }
          time += 1 / 60;
          for (const bytes of kinds) junk.send(bytes, server.address);
          await yieldToSockets(); // the junk lands ahead of the clients
          clients.forEach((client, i) => {
            client.update(time);
            while (client.receive()) echoed[i]++;
            if (client.state === ClientState.CONNECTED) {
              client.send(new Uint8Array([i, tick & 255]));
            }
          });
          await yieldToSockets();
          server.update(time);
          for (const i of server.connectedClients()) {
            for (let p = server.receive(i); p; p = server.receive(i)) {
              server.send(i, p);
            }
          }
          if (clients.length === 6 && echoed.every((n) => n >= 20)) break;
        }
        for (const client of clients) {
          assertEquals(client.stateName, "connected");
        }
        for (const count of echoed) assert(count >= 20, `echoes ${echoed}`);
        const dropped = server.stats.dropped;
        // No junk was shed (it never competed for the budget); a few honest
        // requests may be, when two from one client reach the same update.
        assert(
          dropped.connectionRequestsShed < 10,
          `${dropped.connectionRequestsShed}`,
        );
        assert(dropped.badLength > 0 && dropped.tokenExpired > 0);
      } finally {
        for (const client of clients) await client.close();
        junk.close();
        await server.close();
      }
    },
  });
}
