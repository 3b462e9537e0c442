/**
 * The conformance prober's UDP endpoints and clock: every datagram sent or
 * received is kept with the time it went or arrived, so checks judge rates,
 * gaps and replies after the fact. A pump drains the sockets every
 * millisecond; waits are bounded polls of a condition.
 *
 * @module
 */

import type { Address } from "../address.ts";
import { listenUdp, type UdpSocket } from "../socket.ts";
import { sleep } from "./_common.ts";

/** A datagram as the probe saw it go or arrive. */
export interface Seen {
  /** Its bytes. */
  readonly data: Uint8Array;
  /** The peer: where it came from, or where it went. */
  readonly peer: Address;
  /** Seconds since the probe started. */
  readonly at: number;
}

/** One of the probe's UDP sockets, with everything it sent and received. */
export interface Endpoint {
  /** The bound address, port resolved. */
  readonly address: Address;
  /** Everything received, in order of arrival. */
  readonly received: Seen[];
  /** Everything sent, in order. */
  readonly sent: Seen[];
  /** Sends a datagram now. */
  send(data: Uint8Array, to: Address): void;
  /** Closes the socket (it keeps its records). */
  close(): void;
}

/** The probe's clock and sockets. */
export interface Net {
  /** Seconds since the probe started. */
  now(): number;
  /** Binds a socket. */
  open(bind: Address): Endpoint;
  /** Drains every socket into its records now. */
  pump(): void;
  /**
   * Waits until `done()` is true or `seconds` passed.
   *
   * @returns Whether `done()` became true.
   */
  until(done: () => boolean, seconds: number): Promise<boolean>;
  /** Waits `seconds`, draining the sockets meanwhile. */
  wait(seconds: number): Promise<void>;
  /** Closes every socket and stops the pump; settles once they are closed. */
  close(): Promise<void>;
}

/** How often waits look at their condition, in milliseconds. */
const POLL_MS = 2;

/**
 * Starts a clock and a pump for the probe's sockets.
 *
 * @returns The net.
 */
export function createNet(): Net {
  const start = performance.now();
  const sockets: { socket: UdpSocket; endpoint: Endpoint }[] = [];
  const now = () => (performance.now() - start) / 1000;
  const pump = () => {
    for (const { socket, endpoint } of sockets) {
      for (let d = socket.poll(); d !== undefined; d = socket.poll()) {
        endpoint.received.push({ data: d.data, peer: d.from, at: now() });
      }
    }
  };
  const timer = setInterval(pump, 1);
  let closed = false;
  return {
    now,
    open(bind) {
      if (closed) throw new Error("Cannot open a socket: the probe is closed");
      const socket = listenUdp({ ...bind, maxQueue: 8192 });
      let open = true;
      const endpoint: Endpoint = {
        address: socket.address,
        received: [],
        sent: [],
        send(data, to) {
          if (!open) return;
          endpoint.sent.push({ data: data.slice(), peer: to, at: now() });
          socket.send(data, to);
        },
        close() {
          if (open) {
            open = false;
            pump();
            socket.close();
          }
        },
      };
      sockets.push({ socket, endpoint });
      return endpoint;
    },
    pump,
    async until(done, seconds) {
      const deadline = now() + seconds;
      while (true) {
        pump();
        if (done()) return true;
        if (now() >= deadline) return false;
        await sleep(POLL_MS);
      }
    },
    async wait(seconds) {
      const deadline = now() + seconds;
      while (now() < deadline) {
        pump();
        await sleep(Math.min(POLL_MS, (deadline - now()) * 1000));
      }
      pump();
    },
    async close() {
      if (closed) return;
      closed = true;
      clearInterval(timer);
      for (const { endpoint } of sockets) endpoint.close();
      await Promise.all(sockets.map(({ socket }) => socket.closed));
    },
  };
}

/**
 * Seconds as milliseconds for messages: `"117 ms"`.
 *
 * @param seconds Seconds.
 * @returns The text.
 */
export function ms(seconds: number): string {
  return `${Math.round(seconds * 1000)} ms`;
}
