/**
 * The small datagram socket interface the server and client run over, and
 * its adapter for Deno's UDP sockets.
 *
 * The state machines never touch Deno APIs: they `send` and `poll` through a
 * {@linkcode DatagramSocket}, so the same code runs over real UDP, the
 * simulator or a faster transport.
 *
 * @example
 * ```ts ignore
 * import { listenUdp } from "./socket.ts";
 *
 * using socket = listenUdp({ hostname: "127.0.0.1", port: 0 });
 * console.log(socket.address.port > 0); // true
 * ```
 *
 * @module
 */

import type { Address } from "./address.ts";

/** A received datagram and where it came from. */
export interface Datagram {
  /** The datagram's bytes; the receiver may keep or modify them. */
  readonly data: Uint8Array;
  /** The sender's address. */
  readonly from: Address;
}

/**
 * A datagram socket: synchronous at the edges so an `update()` tick stays
 * synchronous.
 */
export interface DatagramSocket {
  /** The bound address, with the port resolved when bound to port 0. */
  readonly address: Address;
  /**
   * Sends a datagram, fire and forget. The socket must not keep a reference
   * to `data` after returning (the caller reuses its buffer).
   */
  send(data: Uint8Array, to: Address): void;
  /** The next queued datagram, or `undefined` when none is waiting. */
  poll(): Datagram | undefined;
  /** Closes the socket and releases everything it holds. */
  close(): void;
}
