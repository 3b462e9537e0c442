/**
 * UDP on Node.js and Bun: {@linkcode listenUdpNode} opens a
 * {@linkcode UdpSocket} over `node:dgram` (on Bun, over `Bun.udpSocket`),
 * with the options, counters and behaviour of Deno's `listenUdp`.
 *
 * You rarely need to import it: on Node.js 20.16+ and Bun, `listenUdp`,
 * and so `createServer` and `createClient` without a `socket`, already use
 * it. Import it to choose it explicitly, or on Node.js 20.0 to 20.15 (which
 * lack `process.getBuiltinModule`, through which `listenUdp` finds
 * `node:dgram`).
 *
 * @example
 * ```ts ignore
 * import assert from "node:assert/strict";
 * import { createServer } from "@netcode/netcode";
 * import { listenUdpNode } from "@netcode/netcode/socket_node";
 *
 * const socket = listenUdpNode({ hostname: "127.0.0.1", port: 40000 });
 * assert.equal(socket.address.port, 40000);
 * const server = createServer({
 *   address: "127.0.0.1:40000",
 *   protocolId: 0x1122334455667788n,
 *   privateKey: new Uint8Array(32), // yours
 *   socket,
 * });
 * ```
 *
 * @module
 */

import * as dgram from "node:dgram";
import type { Address } from "./address.ts";
import { listenUdp, type ListenUdpOptions, type UdpSocket } from "./socket.ts";
import { type DgramModule, listenUdpNodeWith } from "./_udp_node.ts";

export type { ListenUdpOptions, UdpSocket, UdpSocketStats } from "./socket.ts";

/**
 * Opens a UDP socket with Node.js's `node:dgram`, or on Bun with
 * `Bun.udpSocket` (Bun's `node:dgram` binds only after `bind()` returns, too
 * late for a port picked by the system or a bind error to be known). It is
 * bound when this returns, so {@linkcode DatagramSocket.address} holds the
 * port the system picked for port 0, and a bind error is thrown here. On
 * Deno it returns {@linkcode listenUdp}'s socket (`Deno.listenDatagram`):
 * Deno's `node:dgram` never reports that a socket so bound has closed.
 *
 * Received datagrams wait in a bounded queue for
 * {@linkcode DatagramSocket.poll}; a datagram arriving at a full queue is
 * dropped and counted in {@linkcode UdpSocketStats.dropped}.
 * {@linkcode DatagramSocket.send} hands the datagram to the system at once;
 * at most `maxSendQueue` wait for the system (on Node.js: not yet confirmed;
 * on Bun: not yet taken), and one more is dropped and counted in
 * {@linkcode UdpSocketStats.sendDropped}. {@linkcode DatagramSocket.close}
 * lets those go out, then closes the system socket and settles
 * {@linkcode UdpSocket.closed}.
 *
 * Received `from` addresses carry canonical hostnames (as `parseAddress`
 * writes them). A socket bound to `"::"` also takes IPv4 where the system
 * allows it (Linux by default), whose senders appear as `::ffff:a.b.c.d`.
 *
 * @param options Where to bind and how much to queue: options, an
 * {@linkcode Address}, or an address string such as `"127.0.0.1:40000"`.
 * @returns The open, bound socket.
 * @throws {Error} When binding fails, naming the address and cause, e.g.
 * `Cannot listen on 127.0.0.1:40000: address in use` (named `AddrInUse`,
 * with the system's error as `cause` and its `code`, `EADDRINUSE`).
 * @throws {TypeError} When the hostname is not an IP address.
 * @throws {RangeError} When the port, `maxQueue`, `maxSendQueue` or
 * `maxDatagramBytes` is out of range.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { listenUdpNode } from "./socket_node.ts";
 *
 * using socket = listenUdpNode({ hostname: "127.0.0.1", port: 0 });
 * assert.ok(socket.address.port > 0); // bound: the port the system picked
 * assert.throws(() => listenUdpNode(socket.address), {
 *   name: "AddrInUse",
 *   message: `Cannot listen on 127.0.0.1:${socket.address.port}: address in use`,
 * });
 * ```
 */
export function listenUdpNode(
  options: ListenUdpOptions | Address | string = {},
): UdpSocket {
  if ((globalThis as { Deno?: unknown }).Deno !== undefined) {
    return listenUdp(options);
  }
  return listenUdpNodeWith(dgram as unknown as DgramModule, options);
}
