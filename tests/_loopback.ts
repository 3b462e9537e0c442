// Shared by the tests that run the client and server over real sockets on
// loopback (udp_test.ts, socket_ffi_test.ts). Time is driven by hand; each
// step yields to the event loop so sockets with background work can run.
// Every loop is bounded.

import { assert, assertEquals, assertStrictEquals } from "./_assert.ts";
import { PRIVATE_KEY, PROTOCOL_ID, TICK, token } from "./_harness.ts";
import { formatAddress } from "../address.ts";
import { type Client, ClientState } from "../client.ts";
import type { Server } from "../server.ts";
import type { Datagram, DatagramSocket } from "../socket.ts";

export { PRIVATE_KEY, PROTOCOL_ID };

/** Lets the event loop run once (the sockets' receive loops, timers). */
export const yieldToSockets = (): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, 1));

/** Steps clients and server until `done` or `maxSteps`; returns the steps. */
export async function stepUntil(
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

/**
 * Connects one client (made by `makeClient`) to each of the server's
 * addresses, then has every client send payloads until ten echoes each came
 * back byte for byte. Closes the clients.
 */
export async function connectAndEcho(
  server: Server,
  makeClient: (index: number) => Client,
): Promise<void> {
  const clients = server.addresses.map((address, i) => {
    const client = makeClient(i);
    client.connect(
      token({
        serverAddresses: [formatAddress(address)],
        clientId: BigInt(i + 1),
      }),
    );
    return client;
  });
  try {
    const state = { time: 0 };
    const connected = await stepUntil(
      server,
      clients,
      state,
      () => clients.every((c) => c.state === ClientState.CONNECTED),
      500,
    );
    assert(connected > 0, clients.map((c) => c.stateName).join(", "));
    const echoes = clients.map(() => 0);
    await stepUntil(server, clients, state, () => {
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
    assertStrictEquals(server.stats.dropped.decryptFailed, 0);
  } finally {
    for (const client of clients) client.close();
  }
}

/** How long the socket tests wait for a datagram or a condition. */
export const WAIT_MS = 2000;

/** The next datagram on `socket`, waiting up to {@link WAIT_MS} for it. */
export async function receive(socket: DatagramSocket): Promise<Datagram> {
  const deadline = performance.now() + WAIT_MS;
  while (true) {
    const datagram = socket.poll();
    if (datagram !== undefined) return datagram;
    if (performance.now() > deadline) {
      throw new Error(`No datagram arrived within ${WAIT_MS} ms`);
    }
    await yieldToSockets();
  }
}

/**
 * Whether a socket bound to "::" also receives IPv4 here (Linux with
 * bindv6only off); false where that cannot be read.
 */
export function dualStackAvailable(hasIpv6: boolean): boolean {
  try {
    return hasIpv6 &&
      Deno.readTextFileSync("/proc/sys/net/ipv6/bindv6only").trim() === "0";
  } catch {
    return false;
  }
}
