/**
 * Server benchmarks: one server `update()` with N connected clients (N = 64,
 * 256, 1024) over an in-memory socket, each update receiving one genuine
 * encrypted 100-byte payload packet from every client, and echoing it.
 *
 * Setup (not timed): N real clients connect through an in-memory hub, with
 * connect tokens whose keys are known here. Then, before each iteration, the
 * bench writes one payload packet per client with that client's
 * client-to-server key and a fresh sequence (replay protection would drop a
 * repeated one). The server's socket hands them out one at a time, making
 * each datagram object when `poll()` reads it, as the UDP transports do.
 * (Building the 1024 objects ahead and holding them across the update made
 * V8 pretenure them. The young views they point to then survived every
 * scavenge, and the figures swung by 20-30% with unrelated code changes.)
 * Timed:
 *
 * - `update`: `server.update(now)` draining the N datagrams: address
 *   lookup, packet checks, replay check, ChaCha20-Poly1305 decryption, the
 *   payload copy into its client's queue. (The echo follows, untimed.)
 * - `update + echo`: the same, then `receive()` every payload and `send()`
 *   it back: encryption and the socket's `send`, which here only counts.
 * - `update + echo with receiveInto`: the echo takes each payload with
 *   `receiveInto()` into one buffer instead, allocating nothing.
 *
 * Per-packet cost = time per iteration / N. The socket hands out the same
 * frozen `Address` object for every datagram of a client, as the FFI
 * transport's address cache does; the `new Address per datagram` item makes
 * a new `{ hostname, port }` each time, as the `Deno.listenDatagram` adapter
 * does.
 *
 * The `ffi transport` group measures the FFI socket alone on loopback, per
 * batch of 64 datagrams of 118 bytes (a 100-byte payload packet): `poll()`
 * of 64 datagrams already waiting (one `recvmmsg`, then the copies into the
 * slab and the cached addresses) in each `receiveBuffers` mode, and 64
 * `send()` calls plus `flush()` (one `sendmmsg`), or 64 `sendto`-like
 * single sends (`sendBatch: 1`). It is skipped without FFI permission.
 *
 * Run with `deno bench -A bench/server_bench.ts`.
 *
 * @module
 */

import { type Address, addressKey, formatAddress } from "../address.ts";
import { ClientState, createClient } from "../client.ts";
import { generateKey } from "../crypto.ts";
import { MAX_PACKET_BYTES, writePayloadPacket } from "../packet.ts";
import { createServer, type Server } from "../server.ts";
import type { Datagram, DatagramSocket } from "../socket.ts";
import { ffiTransportUnavailable, listenUdpFfi } from "../socket_ffi.ts";
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

interface ServerWorld {
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

/** Connects `count` real clients to a server through an in-memory hub. */
function connectWorld(count: number): ServerWorld {
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

for (const count of [64, 256, 1024]) {
  const world = connectWorld(count);
  Deno.bench({
    name: `update, ${count} clients (receive ${count} payloads)`,
    group: `server ${count}`,
    baseline: true,
    fn(b) {
      world.prepareBatch(false);
      b.start();
      world.server.update(world.time);
      b.end();
      world.echo();
    },
  });
  Deno.bench({
    name: `update + echo, ${count} clients`,
    group: `server ${count}`,
    fn(b) {
      world.prepareBatch(false);
      b.start();
      world.server.update(world.time);
      world.echo();
      b.end();
    },
  });
  Deno.bench({
    name: `update + echo with receiveInto, ${count} clients`,
    group: `server ${count}`,
    fn(b) {
      world.prepareBatch(false);
      b.start();
      world.server.update(world.time);
      world.echoInto();
      b.end();
    },
  });
  if (count === 256) {
    Deno.bench({
      name: `update + echo, ${count} clients, new Address per datagram`,
      group: `server ${count}`,
      fn(b) {
        world.prepareBatch(true);
        b.start();
        world.server.update(world.time);
        world.echo();
        b.end();
      },
    });
  }
}

const ffiUnavailable = ffiTransportUnavailable();
if (ffiUnavailable !== undefined) {
  console.log(
    `server_bench: skipping the ffi transport group: ${ffiUnavailable}`,
  );
} else {
  const BATCH = 64;
  const datagram = new Uint8Array(118).fill(1);
  const sender = listenUdpFfi({ hostname: "127.0.0.1" });
  const single = listenUdpFfi({ hostname: "127.0.0.1", sendBatch: 1 });
  const sink = listenUdpFfi({ hostname: "127.0.0.1" });
  const drain = (socket: DatagramSocket) => {
    for (let i = 0; i < 4 * BATCH && socket.poll(); i++);
  };
  for (const mode of ["slab", "copy", "shared"] as const) {
    const receiver = listenUdpFfi({
      hostname: "127.0.0.1",
      receiveBuffers: mode,
    });
    Deno.bench({
      name: `poll ${BATCH} datagrams, receiveBuffers "${mode}"`,
      group: "ffi transport",
      baseline: mode === "slab",
      fn(b) {
        for (let i = 0; i < BATCH; i++) sender.send(datagram, receiver.address);
        sender.flush();
        b.start();
        let received = 0;
        while (receiver.poll() !== undefined) received++;
        b.end();
        if (received !== BATCH) {
          throw new Error(`${received} of ${BATCH} arrived`);
        }
      },
    });
  }
  Deno.bench({
    name: `send ${BATCH} datagrams + flush (one sendmmsg)`,
    group: "ffi transport",
    fn(b) {
      b.start();
      for (let i = 0; i < BATCH; i++) sender.send(datagram, sink.address);
      sender.flush();
      b.end();
      drain(sink);
    },
  });
  Deno.bench({
    name: `send ${BATCH} datagrams, sendBatch 1 (a syscall each)`,
    group: "ffi transport",
    fn(b) {
      b.start();
      for (let i = 0; i < BATCH; i++) single.send(datagram, sink.address);
      b.end();
      drain(sink);
    },
  });
}
