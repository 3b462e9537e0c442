/**
 * Internal: the UDP socket of Node.js and Bun behind the
 * {@linkcode DatagramSocket} interface, for `listenUdpNode`
 * (socket_node.ts) and for `listenUdp` where there is no Deno.
 *
 * On Node.js it is a `node:dgram` socket. It binds synchronously: the
 * address is an IP literal, so a lookup that answers at once replaces the
 * DNS lookup, and `dgram` then binds inside `bind()` (an `exclusive` bind,
 * so a cluster worker does not ask its primary). Received datagrams arrive
 * as `message` events into a bounded queue that `poll()` drains; sends go
 * to the system at once, at most `maxSendQueue` unconfirmed.
 *
 * On Bun, whose `node:dgram` binds only after `bind()` returned (so the
 * bound port and bind errors would come too late), it is a `Bun.udpSocket`,
 * which is bound when it is returned. A send the system cannot take yet
 * waits, copied, in a bounded queue until Bun says it can (`drain`).
 *
 * The shapes of the two APIs used here are declared below, so this module
 * imports neither runtime's types and the browser bundle can carry it.
 *
 * @module
 */

import { type Address, formatAddress, parseAddress } from "./address.ts";
import {
  checkUdpSend,
  readListenTarget,
  readUdpLimits,
  type UdpLimits,
} from "./_listen.ts";
// The shapes of socket.ts's types, repeated: socket.ts imports this module,
// and importing its types back would make a cycle. `listenUdp` and
// `listenUdpNode` return these as socket.ts's `UdpSocket` (a type check).

/** A received datagram (socket.ts's `Datagram`). */
interface Datagram {
  readonly data: Uint8Array;
  readonly from: Address;
}

/** `listenUdp`'s options (socket.ts's `ListenUdpOptions`). */
export interface NodeUdpOptions {
  readonly hostname?: string;
  readonly port?: number;
  readonly maxQueue?: number;
  readonly maxSendQueue?: number;
  readonly maxDatagramBytes?: number;
}

/** socket.ts's `UdpSocketStats`. */
interface UdpSocketStats {
  received: number;
  dropped: number;
  oversized: number;
  receiveErrors: number;
  sent: number;
  sendErrors: number;
  sendDropped: number;
}

/** socket.ts's `UdpSocket`. */
export interface NodeUdpSocket {
  readonly address: Address;
  readonly stats: Readonly<UdpSocketStats>;
  readonly closed: Promise<void>;
  send(data: Uint8Array, to: Address): void;
  poll(): Datagram | undefined;
  close(): void;
  [Symbol.dispose](): void;
  [Symbol.asyncDispose](): Promise<void>;
}

/** The part of `node:dgram` used here. */
export interface DgramModule {
  /** Makes a socket (`udp4` or `udp6`). */
  createSocket(options: {
    type: "udp4" | "udp6";
    lookup?: (
      hostname: string,
      options: unknown,
      callback: (error: Error | null, address: string, family: number) => void,
    ) => void;
  }): DgramSocket;
}

/** The part of a `node:dgram` socket used here. */
export interface DgramSocket {
  /** Adds an event listener. */
  on(event: string, listener: (...args: never[]) => void): unknown;
  /** Removes an event listener. */
  off(event: string, listener: (...args: never[]) => void): unknown;
  /** Binds. */
  bind(options: { port: number; address: string; exclusive: boolean }): void;
  /** The bound address; throws before the socket is bound. */
  address(): { address: string; port: number };
  /** Sends one datagram. */
  send(
    data: Uint8Array,
    port: number,
    address: string,
    callback: (error: Error | null) => void,
  ): void;
  /** Closes the socket, calling back once it is closed. */
  close(callback?: () => void): void;
}

/** A `node:dgram` `message` event's sender. */
interface RemoteInfo {
  address: string;
  port: number;
}

/** The part of `Bun.udpSocket` used here. */
interface BunUdpSocket {
  readonly port: number;
  readonly address: { address: string; port: number };
  send(data: Uint8Array, port: number, address: string): boolean;
  close(): void;
}

type BunUdpSocketFactory = (options: {
  hostname: string;
  port: number;
  binaryType: "uint8array";
  socket: {
    data(
      socket: BunUdpSocket,
      data: Uint8Array,
      port: number,
      address: string,
    ): void;
    drain(socket: BunUdpSocket): void;
    error(socket: BunUdpSocket, error: Error): void;
  };
}) => Promise<BunUdpSocket>;

interface BunRuntime {
  udpSocket: BunUdpSocketFactory;
  peek: ((promise: Promise<unknown>) => unknown) & {
    status(promise: Promise<unknown>): "pending" | "fulfilled" | "rejected";
  };
}

/** Bun's UDP API when this is Bun, else `undefined`. */
function bunRuntime(): BunRuntime | undefined {
  const bun = (globalThis as { Bun?: Partial<BunRuntime> }).Bun;
  return typeof bun?.udpSocket === "function" && typeof bun.peek === "function"
    ? bun as BunRuntime
    : undefined;
}

/**
 * `node:dgram` from the runtime without importing it (so this module stays
 * loadable in a browser): `process.getBuiltinModule`, in Node.js 20.16+,
 * 22.3+ and Bun. `undefined` elsewhere.
 */
export function builtinDgram(): DgramModule | undefined {
  const process = (globalThis as {
    process?: { getBuiltinModule?: (name: string) => unknown };
  }).process;
  if (typeof process?.getBuiltinModule !== "function") return undefined;
  try {
    return process.getBuiltinModule("node:dgram") as DgramModule | undefined;
  } catch {
    return undefined;
  }
}

const ERROR_NAMES: Record<string, [name: string, text: string]> = {
  EADDRINUSE: ["AddrInUse", "address in use"],
  EADDRNOTAVAIL: [
    "AddrNotAvailable",
    "address not available on this machine",
  ],
  EACCES: ["PermissionDenied", "permission denied"],
  EPERM: ["PermissionDenied", "permission denied"],
};

/**
 * A bind error naming the address and cause, named like Deno's errors
 * (`AddrInUse`, ...: `createServer`'s dual-stack fallback reads the name),
 * with the system's `code` kept.
 */
function listenError(label: string, error: unknown): Error {
  const code = (error as { code?: unknown } | null)?.code;
  const known = typeof code === "string" ? ERROR_NAMES[code] : undefined;
  const message = error instanceof Error ? error.message : String(error);
  const result = new Error(
    `Cannot listen on ${label}: ${known?.[1] ?? message}`,
    { cause: error },
  );
  if (known !== undefined) result.name = known[0];
  if (typeof code === "string") {
    Object.defineProperty(result, "code", { value: code });
  }
  return result;
}

/** `dgram`'s lookup for an IP literal: answers at once, with no DNS. */
function literalLookup(
  hostname: string,
  _options: unknown,
  callback: (error: Error | null, address: string, family: number) => void,
): void {
  callback(null, hostname, hostname.includes(":") ? 6 : 4);
}

const MAX_CANONICAL_CACHE = 4096;

/**
 * Received hostnames in `parseAddress`'s canonical form, so `addressKey`
 * matches (both runtimes print IPv6 about as RFC 5952 does; this makes
 * sure). Cached: the same peers send again and again.
 */
function createCanonicalHostnames(): (hostname: string) => string {
  const cache = new Map<string, string>();
  return (hostname: string): string => {
    if (!hostname.includes(":")) return hostname;
    let canonical = cache.get(hostname);
    if (canonical === undefined) {
      try {
        canonical = parseAddress(`[${hostname}]`).hostname;
      } catch {
        canonical = hostname; // a zone index (fe80::1%eth0): kept as it is
      }
      if (cache.size === MAX_CANONICAL_CACHE) cache.clear();
      cache.set(hostname, canonical);
    }
    return canonical;
  };
}

/**
 * An IPv4 destination as an IPv6 socket must name it, `::ffff:a.b.c.d`
 * (Deno and Bun do this themselves; `dgram` refuses a bare IPv4 address on
 * a `udp6` socket). Cached: the same peers are sent to again and again.
 */
function createIpv4Mapping(): (hostname: string) => string {
  const cache = new Map<string, string>();
  return (hostname: string): string => {
    if (hostname.includes(":")) return hostname;
    let mapped = cache.get(hostname);
    if (mapped === undefined) {
      mapped = `::ffff:${hostname}`;
      if (cache.size === MAX_CANONICAL_CACHE) cache.clear();
      cache.set(hostname, mapped);
    }
    return mapped;
  };
}

/** The receive side both implementations share: a ring of datagrams. */
interface ReceiveQueue {
  push(data: Uint8Array, hostname: string, port: number): void;
  poll(): Datagram | undefined;
  clear(): void;
}

function createReceiveQueue(
  limits: UdpLimits,
  stats: { received: number; dropped: number; oversized: number },
): ReceiveQueue {
  const { maxQueue, maxDatagramBytes } = limits;
  const queue: (Datagram | undefined)[] = new Array(maxQueue).fill(undefined);
  const canonical = createCanonicalHostnames();
  let head = 0;
  let count = 0;
  return {
    push(data: Uint8Array, hostname: string, port: number): void {
      if (data.length > maxDatagramBytes) {
        stats.oversized++;
        return;
      }
      if (count === maxQueue) {
        stats.dropped++;
        return;
      }
      let tail = head + count;
      if (tail >= maxQueue) tail -= maxQueue;
      queue[tail] = { data, from: { hostname: canonical(hostname), port } };
      count++;
      stats.received++;
    },
    poll(): Datagram | undefined {
      if (count === 0) return undefined;
      const datagram = queue[head];
      queue[head] = undefined;
      head++;
      if (head === maxQueue) head = 0;
      count--;
      return datagram;
    },
    clear(): void {
      queue.fill(undefined);
      head = 0;
      count = 0;
    },
  };
}

function newStats(): UdpSocketStats {
  return {
    received: 0,
    dropped: 0,
    oversized: 0,
    receiveErrors: 0,
    sent: 0,
    sendErrors: 0,
    sendDropped: 0,
  };
}

/**
 * Opens a UDP socket on Node.js (`dgram`, given) or Bun (`Bun.udpSocket`),
 * with `listenUdp`'s options and behaviour.
 *
 * @param dgram `node:dgram`, or `undefined` when the runtime has none.
 * @param options Where to bind and how much to queue.
 * @returns The open socket.
 */
export function listenUdpNodeWith(
  dgram: DgramModule | undefined,
  options: NodeUdpOptions | Address | string,
): NodeUdpSocket {
  const { options: opts, hostname, port, label } = readListenTarget<
    NodeUdpOptions
  >(options);
  const limits = readUdpLimits(label, opts);
  const bun = bunRuntime();
  if (bun !== undefined) return listenBun(bun, hostname, port, label, limits);
  if (dgram === undefined) {
    throw new Error(
      `Cannot listen on ${label}: this runtime has no UDP netcode can use (Deno.listenDatagram, node:dgram or Bun.udpSocket); on Node.js before 20.16 use listenUdpNode from @netcode/netcode/socket_node, elsewhere pass a socket`,
    );
  }
  return listenDgram(dgram, hostname, port, label, limits);
}

function listenDgram(
  dgram: DgramModule,
  hostname: string,
  port: number,
  label: string,
  limits: UdpLimits,
): NodeUdpSocket {
  const { maxSendQueue, maxDatagramBytes } = limits;
  const ipv6 = hostname.includes(":");
  const socket = dgram.createSocket({
    type: ipv6 ? "udp6" : "udp4",
    lookup: literalLookup,
  });
  let bindError: unknown;
  const onBindError = (error: Error) => {
    bindError ??= error;
  };
  socket.on("error", onBindError);
  let bound: { address: string; port: number } | undefined;
  try {
    socket.bind({ port, address: hostname, exclusive: true });
    if (bindError === undefined) bound = socket.address();
  } catch (error) {
    bindError ??= error;
  }
  if (bindError !== undefined || bound === undefined) {
    try {
      socket.close();
    } catch {
      // Never bound: nothing to release.
    }
    throw bindError !== undefined ? listenError(label, bindError) : new Error(
      `Cannot listen on ${label}: node:dgram did not bind synchronously on this runtime`,
    );
  }
  socket.off("error", onBindError);

  const address: Address = Object.freeze({
    hostname: parseAddress(
      bound.address.includes(":") ? `[${bound.address}]` : bound.address,
    ).hostname,
    port: bound.port,
  });
  const closedMessage = `Cannot send datagram: the socket on ${
    formatAddress(address)
  } is closed`;
  const stats = newStats();
  const queue = createReceiveQueue(limits, stats);
  const mapIpv4 = createIpv4Mapping();
  let isClosed = false;
  let inFlight = 0;
  let resolveClosed!: () => void;
  const closed = new Promise<void>((resolve) => resolveClosed = resolve);

  socket.on("message", (message: Uint8Array, from: RemoteInfo) => {
    if (isClosed) return;
    // A plain Uint8Array over the Buffer's own memory (each datagram has
    // its own): a Buffer's slice() would share bytes where callers expect
    // a copy.
    queue.push(
      new Uint8Array(message.buffer, message.byteOffset, message.byteLength),
      from.address,
      from.port,
    );
  });
  // Errors after binding are counted; without a listener dgram would throw
  // them out of the event loop.
  socket.on("error", () => {
    stats.receiveErrors++;
  });

  function finish(): void {
    try {
      socket.close(() => resolveClosed());
    } catch {
      resolveClosed(); // already closed
    }
  }
  // One callback for every send: no closure per datagram.
  function onSent(error: Error | null): void {
    inFlight--;
    if (error) stats.sendErrors++;
    else stats.sent++;
    if (isClosed && inFlight === 0) finish();
  }
  function close(): void {
    if (isClosed) return;
    isClosed = true;
    queue.clear();
    // What was handed to dgram still goes out (disconnect packets) first.
    if (inFlight === 0) finish();
  }

  return {
    address,
    stats,
    closed,
    send(data: Uint8Array, to: Address): void {
      if (isClosed) throw new TypeError(closedMessage);
      checkUdpSend(data, to, maxDatagramBytes);
      if (inFlight === maxSendQueue) {
        stats.sendDropped++;
        return;
      }
      inFlight++;
      try {
        // Copied: dgram may still read the bytes after this returns, when
        // the system could not take them at once, and the caller reuses
        // its buffer.
        socket.send(
          data.slice(),
          to.port,
          ipv6 ? mapIpv4(to.hostname) : to.hostname,
          onSent,
        );
      } catch {
        onSent(new Error("send failed"));
      }
    },
    poll: queue.poll,
    close,
    [Symbol.dispose]: close,
    [Symbol.asyncDispose](): Promise<void> {
      close();
      return closed;
    },
  };
}

function listenBun(
  bun: BunRuntime,
  hostname: string,
  port: number,
  label: string,
  limits: UdpLimits,
): NodeUdpSocket {
  const { maxSendQueue, maxDatagramBytes } = limits;
  const stats = newStats();
  const queue = createReceiveQueue(limits, stats);
  let isClosed = false;
  let resolveClosed!: () => void;
  const closed = new Promise<void>((resolve) => resolveClosed = resolve);

  // Sends the system could not take yet, in order, until `drain`.
  const waitingData: (Uint8Array | undefined)[] = [];
  const waitingTo: (Address | undefined)[] = [];
  let waitingHead = 0;
  let waitingCount = 0;

  let pending: Promise<BunUdpSocket>;
  try {
    pending = bun.udpSocket({
      hostname,
      port,
      binaryType: "uint8array",
      socket: {
        data(_socket, data, fromPort, fromHostname): void {
          if (!isClosed) queue.push(data, fromHostname, fromPort);
        },
        drain: flush,
        error(): void {
          stats.receiveErrors++;
        },
      },
    });
  } catch (error) {
    throw listenError(label, error);
  }
  const status = bun.peek.status(pending);
  if (status !== "fulfilled") {
    if (status === "rejected") {
      const error = bun.peek(pending);
      pending.catch(() => {});
      throw listenError(label, error);
    }
    pending.then((socket) => socket.close(), () => {});
    throw new Error(
      `Cannot listen on ${label}: Bun.udpSocket did not bind synchronously`,
    );
  }
  const socket = bun.peek(pending) as BunUdpSocket;
  const address: Address = Object.freeze({
    hostname: parseAddress(
      socket.address.address.includes(":")
        ? `[${socket.address.address}]`
        : socket.address.address,
    ).hostname,
    port: socket.port,
  });
  const closedMessage = `Cannot send datagram: the socket on ${
    formatAddress(address)
  } is closed`;

  /** Hands one datagram to the system: true if taken (sent or failed). */
  function trySend(data: Uint8Array, to: Address): boolean {
    try {
      if (!socket.send(data, to.port, to.hostname)) return false;
      stats.sent++;
    } catch {
      stats.sendErrors++; // EAFNOSUPPORT, EMSGSIZE, ...
    }
    return true;
  }
  function flush(): void {
    while (waitingCount > 0) {
      if (!trySend(waitingData[waitingHead]!, waitingTo[waitingHead]!)) return;
      waitingData[waitingHead] = undefined;
      waitingTo[waitingHead] = undefined;
      waitingHead++;
      if (waitingHead === maxSendQueue) waitingHead = 0;
      waitingCount--;
    }
    if (isClosed) finish();
  }
  function finish(): void {
    socket.close();
    resolveClosed();
  }
  function close(): void {
    if (isClosed) return;
    isClosed = true;
    queue.clear();
    // What waits for the system still goes out (disconnect packets) first.
    if (waitingCount === 0) finish();
  }

  return {
    address,
    stats,
    closed,
    send(data: Uint8Array, to: Address): void {
      if (isClosed) throw new TypeError(closedMessage);
      checkUdpSend(data, to, maxDatagramBytes);
      if (waitingCount === 0 && trySend(data, to)) return;
      if (waitingCount === maxSendQueue) {
        stats.sendDropped++;
        return;
      }
      let tail = waitingHead + waitingCount;
      if (tail >= maxSendQueue) tail -= maxSendQueue;
      waitingData[tail] = data.slice(); // the caller reuses its buffer
      waitingTo[tail] = to;
      waitingCount++;
    },
    poll: queue.poll,
    close,
    [Symbol.dispose]: close,
    [Symbol.asyncDispose](): Promise<void> {
      close();
      return closed;
    },
  };
}
