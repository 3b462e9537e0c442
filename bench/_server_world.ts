/**
 * The server bench's world: a server with N real clients connected over an
 * in-memory socket, and a batch of genuine encrypted payload packets per
 * iteration (see `bench/server_bench.ts`). It uses only the public API, so
 * `tools/server_ab.ts` can run this file against another checkout's
 * modules.
 *
 * @module
 */

import { type Address, addressKey, formatAddress } from "../address.ts";
import { ClientState, createClient } from "../client.ts";
import { generateKey } from "../crypto.ts";
import { MAX_PACKET_BYTES, writePayloadPacket } from "../packet.ts";
import { createServer, type Server } from "../server.ts";
import type { Datagram, DatagramSocket } from "../socket.ts";
import { generateConnectToken } from "../token.ts";

const PROTOCOL_ID = 0x1122334455667788n;
const PRIVATE_KEY = generateKey();
const SERVER_ADDRESS: Address = Object.freeze({
  hostname: "10.0.0.1",
  port: 40000,
});
const UNIX_NOW = 1_800_000_000;
const TICK = 1 / 60;
const PAYLOAD_BYTES = 100;
/** Sequences the bench writes start here, past those used while connecting. */
const FIRST_SEQUENCE = 1_000_000;

/**
 * The server's socket: `poll()` hands out the queued batch, in order.
 * `send()` routes to a client's socket while connecting, and afterwards
 * only counts (a real socket's cost is the transport's, measured by
 * `deno task load`).
 */
interface BenchSocket extends DatagramSocket {
  batch: Datagram[];
  next: number;
  sent: number;
  route: ((data: Uint8Array, to: Address) => void) | undefined;
  /**
   * When set, `poll()` makes datagram `next` of `count` with this, as a
   * transport does when it reads one, instead of taking `batch[next]`.
   */
  make: ((index: number) => Datagram) | undefined;
  count: number;
}

function createBenchSocket(address: Address): BenchSocket {
  const socket: BenchSocket = {
    address,
    batch: [],
    next: 0,
    sent: 0,
    route: undefined,
    make: undefined,
    count: 0,
    send(data, to) {
      socket.sent++;
      socket.route?.(data, to);
    },
    poll() {
      if (socket.make !== undefined) {
        if (socket.next === socket.count) return undefined;
        return socket.make(socket.next++);
      }
      if (socket.next === socket.batch.length) return undefined;
      return socket.batch[socket.next++];
    },
    close() {},
  };
  return socket;
}

/** A server with N connected clients and the means to feed it a batch. */
export interface ServerWorld {
  server: Server;
  socket: BenchSocket;
  time: number;
  /** Writes one fresh payload packet per client and queues them. */
  prepareBatch(freshAddresses: boolean): void;
  /** Receives and echoes every queued payload; returns how many. */
  echo(): number;
  /** The same with `receiveInto` (no allocation per payload). */
  echoInto(): number;
}

/**
 * Connects `count` real clients to a server through an in-memory hub, then
 * checks one round: every payload accepted and echoed.
 *
 * @param count Clients (and the server's slots).
 * @returns The world, ready for `prepareBatch` and `server.update`.
 */
export function connectWorld(count: number): ServerWorld {
  const socket = createBenchSocket(SERVER_ADDRESS);
  const server = createServer({
    address: SERVER_ADDRESS,
    protocolId: PROTOCOL_ID,
    privateKey: PRIVATE_KEY,
    maxClients: count,
    socket,
    unixTime: () => UNIX_NOW,
  });
  const addresses: Address[] = [];
  const keys: Uint8Array[] = [];
  const inboxes = new Map<string, Datagram[]>();
  const clients = [];
  for (let i = 0; i < count; i++) {
    const address: Address = Object.freeze({
      hostname: `10.1.${i >> 8}.${i & 255}`,
      port: 50000 + i,
    });
    const inbox: Datagram[] = [];
    inboxes.set(addressKey(address), inbox);
    const clientToServerKey = generateKey();
    addresses.push(address);
    keys.push(clientToServerKey);
    const client = createClient({
      socket: {
        address,
        send(data, to) {
          if (addressKey(to) !== addressKey(SERVER_ADDRESS)) return;
          socket.batch.push({ data: data.slice(), from: address });
        },
        poll: () => inbox.shift(),
        close() {},
      },
    });
    client.connect(generateConnectToken({
      serverAddresses: [formatAddress(SERVER_ADDRESS)],
      clientId: BigInt(i + 1),
      protocolId: PROTOCOL_ID,
      privateKey: PRIVATE_KEY,
      now: UNIX_NOW,
      clientToServerKey,
      timeoutSeconds: 3600,
    }));
    clients.push(client);
  }
  socket.route = (data, to) => {
    inboxes.get(addressKey(to))?.push({
      data: data.slice(),
      from: SERVER_ADDRESS,
    });
  };
  let time = 0;
  for (let tick = 0; tick < 600; tick++) {
    time += TICK;
    for (const client of clients) client.update(time);
    server.update(time);
    socket.batch.length = 0;
    socket.next = 0;
    if (clients.every((client) => client.state === ClientState.CONNECTED)) {
      break;
    }
  }
  if (
    server.numConnectedClients !== count ||
    clients.some((client) => client.state !== ClientState.CONNECTED)
  ) {
    throw new Error(
      `bench setup: ${server.numConnectedClients} of ${count} clients connected`,
    );
  }
  socket.route = undefined;
  for (const client of clients) client.close();

  const buffers = addresses.map(() => new Uint8Array(MAX_PACKET_BYTES));
  const lengths = new Int32Array(count);
  const sequences = addresses.map(() => FIRST_SEQUENCE);
  const payload = new Uint8Array(PAYLOAD_BYTES).fill(7);
  let fresh = false;
  const makeDatagram = (i: number): Datagram => {
    const from = addresses[i];
    return {
      data: buffers[i].subarray(0, lengths[i]),
      from: fresh ? { hostname: from.hostname, port: from.port } : from,
    };
  };
  const into = new Uint8Array(1200);
  const intoViews: Uint8Array[] = [];
  const world: ServerWorld = {
    server,
    socket,
    time,
    prepareBatch(freshAddresses) {
      for (let i = 0; i < count; i++) {
        lengths[i] = writePayloadPacket(
          buffers[i],
          sequences[i]++,
          keys[i],
          PROTOCOL_ID,
          payload,
        );
      }
      fresh = freshAddresses;
      socket.make = makeDatagram;
      socket.count = count;
      socket.next = 0;
      world.time += TICK;
    },
    echo() {
      let echoed = 0;
      for (let i = 0; i < count; i++) {
        for (let p = server.receive(i); p; p = server.receive(i)) {
          server.send(i, p);
          echoed++;
        }
      }
      return echoed;
    },
    echoInto() {
      let echoed = 0;
      for (let i = 0; i < count; i++) {
        for (
          let bytes = server.receiveInto(i, into);
          bytes > 0;
          bytes = server.receiveInto(i, into)
        ) {
          server.send(i, intoViews[bytes] ??= into.subarray(0, bytes));
          echoed++;
        }
      }
      return echoed;
    },
  };
  // One round, checked: every packet is accepted and echoed.
  world.prepareBatch(false);
  server.update(world.time);
  const echoed = world.echo();
  if (echoed !== count) {
    throw new Error(
      `bench setup: ${echoed} of ${count} payloads echoed; dropped ${
        JSON.stringify(server.stats.dropped)
      }`,
    );
  }
  return world;
}
