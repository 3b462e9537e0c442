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

import { connectWorld } from "./_server_world.ts";
import type { DatagramSocket } from "../socket.ts";
import { ffiTransportUnavailable, listenUdpFfi } from "../socket_ffi.ts";

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
