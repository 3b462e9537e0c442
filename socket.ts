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
 * import assert from "node:assert/strict";
 * import { listenUdp } from "./socket.ts";
 *
 * using socket = listenUdp({ hostname: "127.0.0.1", port: 0 });
 * assert.ok(socket.address.port > 0); // the port the system picked
 * ```
 *
 * @module
 */

import { type Address, formatAddress, isIpv6 } from "./address.ts";
import {
  checkUdpSend,
  readListenTarget,
  readUdpLimits,
  validateDestination,
} from "./_listen.ts";
import { builtinDgram, listenUdpNodeWith } from "./_udp_node.ts";

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
  /**
   * For a transport whose peers are sessions (WebTransport): whether `to`
   * is one of its peers. {@linkcode createMultiSocket} sends to such a peer
   * through this socket.
   */
  hasPeer?(to: Address): boolean;
  /**
   * For a transport that carries smaller datagrams than netcode's 1225-byte
   * payload packets (WebTransport in Chromium: 1211): the largest datagram it
   * carries now. `createClient` refuses payloads that would not fit.
   */
  readonly maxDatagramBytes?: number;
  /**
   * For a transport whose close finishes later (queued sends still going
   * out): settles once `close()` has finished. Servers and clients wait for
   * it in their own `close()`.
   */
  readonly closed?: Promise<void>;
}

/** Options for {@linkcode listenUdp}. An {@linkcode Address} is valid options. */
export interface ListenUdpOptions {
  /**
   * The local IPv4 or IPv6 address to bind, without brackets: `"127.0.0.1"`,
   * `"::1"`, `"0.0.0.0"` (all IPv4 interfaces) or `"::"` (all interfaces; on
   * most systems also IPv4, whose senders then appear as `::ffff:a.b.c.d`).
   *
   * @default {"0.0.0.0"}
   */
  readonly hostname?: string;
  /**
   * The local UDP port; 0 lets the system pick a free one, which
   * {@linkcode DatagramSocket.address} then reports.
   *
   * @default {0}
   */
  readonly port?: number;
  /**
   * How many received datagrams wait for {@linkcode DatagramSocket.poll} at
   * most, 1 to 1048576. When the queue is full a newly arriving datagram is
   * dropped and counted in {@linkcode UdpSocketStats.dropped}.
   *
   * @default {1024}
   */
  readonly maxQueue?: number;
  /**
   * How many datagrams wait to be handed to the system at most, 1 to
   * 1048576. Sends go out one at a time, in order, at about 100 000 a second;
   * when this many are waiting, {@linkcode DatagramSocket.send} drops the
   * datagram and counts it in {@linkcode UdpSocketStats.sendDropped}. The
   * default covers a server with 256 clients sending each its 10 redundant
   * disconnect packets at once.
   *
   * @default {4096}
   */
  readonly maxSendQueue?: number;
  /**
   * The largest datagram sent or received, in bytes, 1 to 65507. Larger
   * received datagrams are dropped and counted in
   * {@linkcode UdpSocketStats.oversized}; sending a larger one throws a
   * `RangeError`. netcode never needs more than 1300.
   *
   * @default {1300}
   */
  readonly maxDatagramBytes?: number;
}

/** Counters kept by a {@linkcode UdpSocket}; they only grow. */
export interface UdpSocketStats {
  /** Datagrams received and queued for {@linkcode DatagramSocket.poll}. */
  readonly received: number;
  /** Datagrams dropped on arrival because the receive queue was full. */
  readonly dropped: number;
  /** Datagrams dropped on arrival because they exceeded `maxDatagramBytes`. */
  readonly oversized: number;
  /** Errors reported by the system while receiving (the loop carries on). */
  readonly receiveErrors: number;
  /** Datagrams the system accepted for sending. */
  readonly sent: number;
  /**
   * Datagrams the system refused to send (unreachable network, an IPv6
   * destination on an IPv4 socket, ...).
   */
  readonly sendErrors: number;
  /** Datagrams {@linkcode DatagramSocket.send} dropped: the send queue was full. */
  readonly sendDropped: number;
}

/** A UDP socket from {@linkcode listenUdp}. */
export interface UdpSocket extends DatagramSocket {
  /** Live counters for this socket. */
  readonly stats: UdpSocketStats;
  /**
   * Settles once {@linkcode DatagramSocket.close} was called, the datagrams
   * already queued for sending went out, and the system socket is closed (its
   * port free again). Never rejects.
   */
  readonly closed: Promise<void>;
  /** Closes the socket, as {@linkcode DatagramSocket.close} does. */
  [Symbol.dispose](): void;
  /** Closes the socket and waits for {@linkcode UdpSocket.closed}. */
  [Symbol.asyncDispose](): Promise<void>;
}

function listenError(label: string, error: unknown): Error {
  const options = { cause: error };
  if (error instanceof Deno.errors.AddrInUse) {
    return new Deno.errors.AddrInUse(
      `Cannot listen on ${label}: address in use`,
      options,
    );
  }
  if (error instanceof Deno.errors.AddrNotAvailable) {
    return new Deno.errors.AddrNotAvailable(
      `Cannot listen on ${label}: address not available on this machine`,
      options,
    );
  }
  if (error instanceof Deno.errors.PermissionDenied) {
    return new Deno.errors.PermissionDenied(
      `Cannot listen on ${label}: permission denied`,
      options,
    );
  }
  const message = error instanceof Error ? error.message : String(error);
  if (error instanceof Deno.errors.NotCapable) {
    return new Deno.errors.NotCapable(
      `Cannot listen on ${label}: ${message}`,
      options,
    );
  }
  return new Error(`Cannot listen on ${label}: ${message}`, options);
}

/**
 * Opens a UDP socket with `Deno.listenDatagram`. A background loop receives
 * into a bounded queue that {@linkcode DatagramSocket.poll} drains
 * synchronously. {@linkcode DatagramSocket.send} copies the data into a
 * bounded send queue and returns at once; a second loop hands the queued
 * datagrams to the system one at a time, in order, counting failures in
 * {@linkcode UdpSocketStats.sendErrors}. ({@linkcode DatagramSocket.close}
 * still sends what is queued, such as disconnect packets, before closing.)
 *
 * Deno 2 still marks UDP as unstable: run with `--unstable-net` or add
 * `"unstable": ["net"]` to `deno.json`, and grant `--allow-net`.
 *
 * On Node.js (20.16+) and Bun, where there is no `Deno`, it opens the
 * socket as `listenUdpNode` (`@netcode/netcode/socket_node`) does, with the
 * same options, counters and behaviour; its bind errors have the same
 * messages and names, with the system's `code`.
 *
 * Received `from` addresses carry canonical hostnames (the same text
 * `parseAddress` produces), so `addressKey(from)` matches keys made from
 * parsed addresses. A socket bound to `"::"` sees IPv4 senders as
 * `::ffff:a.b.c.d`.
 *
 * @param options Where to bind and how much to queue: options, an
 * {@linkcode Address}, or an address string such as `"127.0.0.1:40000"`.
 * @returns The open socket.
 * @throws {Error} When `Deno.listenDatagram` is unavailable (no
 * `--unstable-net`; not Deno: no UDP this runtime offers), or binding fails, e.g. `Cannot listen on
 * 127.0.0.1:40000: address in use` (a `Deno.errors.AddrInUse`, with the
 * system's error as `cause`).
 * @throws {TypeError} When the hostname is not an IP address.
 * @throws {RangeError} When the port, `maxQueue`, `maxSendQueue` or
 * `maxDatagramBytes` is out of range.
 *
 * @example
 * ```ts ignore
 * import { listenUdp } from "./socket.ts";
 *
 * using server = listenUdp({ hostname: "127.0.0.1", port: 0 });
 * using client = listenUdp("127.0.0.1:0");
 * client.send(new Uint8Array([1, 2, 3]), server.address);
 *
 * // Later, from a tick: drain what arrived.
 * for (let d = server.poll(); d !== undefined; d = server.poll()) {
 *   console.log(d.data, d.from);
 * }
 * ```
 */
export function listenUdp(
  options: ListenUdpOptions | Address | string = {},
): UdpSocket {
  if ((globalThis as { Deno?: unknown }).Deno === undefined) {
    // Node.js or Bun: their own UDP (socket_node.ts).
    return listenUdpNodeWith(builtinDgram(), options);
  }
  const { options: opts, hostname, port, label } = readListenTarget<
    ListenUdpOptions
  >(options);
  const { maxQueue, maxSendQueue, maxDatagramBytes } = readUdpLimits(
    label,
    opts,
  );

  const deno = (globalThis as { Deno?: typeof Deno }).Deno;
  if (typeof deno?.listenDatagram !== "function") {
    throw new Error(
      `Cannot listen on ${label}: UDP needs Deno's unstable net API; run with --unstable-net or add "unstable": ["net"] to deno.json`,
    );
  }
  let conn: Deno.DatagramConn;
  try {
    conn = deno.listenDatagram({ transport: "udp", hostname, port });
  } catch (error) {
    throw listenError(label, error);
  }
  const bound = conn.addr as Deno.NetAddr;
  const address: Address = Object.freeze({
    hostname: bound.hostname,
    port: bound.port,
  });
  const closedMessage = `Cannot send datagram: the socket on ${
    formatAddress(address)
  } is closed`;

  const stats = {
    received: 0,
    dropped: 0,
    oversized: 0,
    receiveErrors: 0,
    sent: 0,
    sendErrors: 0,
    sendDropped: 0,
  };
  let isClosed = false;
  const { promise: closed, resolve: resolveClosed } = Promise
    .withResolvers<void>();

  // Receiving: one receive in flight, into a ring buffer of datagrams.
  const queue: (Datagram | undefined)[] = new Array(maxQueue).fill(undefined);
  let head = 0;
  let count = 0;
  // One byte more than the limit, so a larger datagram shows as truncated.
  const buffer = new Uint8Array(maxDatagramBytes + 1);

  async function receiveLoop(): Promise<void> {
    while (!isClosed) {
      let length: number;
      let from: Deno.NetAddr;
      try {
        const [data, remote] = await conn.receive(buffer);
        length = data.length;
        from = remote as Deno.NetAddr;
      } catch (error) {
        if (
          isClosed || error instanceof Deno.errors.BadResource ||
          error instanceof Deno.errors.Interrupted
        ) {
          return;
        }
        stats.receiveErrors++;
        continue;
      }
      if (isClosed) return;
      if (length > maxDatagramBytes) {
        stats.oversized++;
        continue;
      }
      if (count === maxQueue) {
        stats.dropped++;
        continue;
      }
      let tail = head + count;
      if (tail >= maxQueue) tail -= maxQueue;
      queue[tail] = {
        data: buffer.slice(0, length),
        from: { hostname: from.hostname, port: from.port },
      };
      count++;
      stats.received++;
    }
  }
  const receiving = receiveLoop();

  // Sending: Deno runs concurrent sends in reverse order, so one send is in
  // flight at a time and the rest wait, in order, in a ring buffer.
  const sendData: (Uint8Array | undefined)[] = new Array(maxSendQueue).fill(
    undefined,
  );
  const sendTo: (Address | undefined)[] = new Array(maxSendQueue).fill(
    undefined,
  );
  let sendHead = 0;
  let sendCount = 0;
  let sending = false;

  async function sendLoop(): Promise<void> {
    sending = true;
    while (sendCount > 0) {
      const data = sendData[sendHead]!;
      const to = sendTo[sendHead]!;
      sendData[sendHead] = undefined;
      sendTo[sendHead] = undefined;
      sendHead++;
      if (sendHead === maxSendQueue) sendHead = 0;
      sendCount--;
      try {
        await conn.send(data, {
          transport: "udp",
          hostname: to.hostname,
          port: to.port,
        });
        stats.sent++;
      } catch {
        stats.sendErrors++;
      }
    }
    sending = false;
    if (isClosed) finish();
  }

  function finish(): void {
    try {
      conn.close();
    } catch {
      // Already closed by the runtime; nothing left to release.
    }
    receiving.then(() => resolveClosed());
  }

  function close(): void {
    if (isClosed) return;
    isClosed = true;
    queue.fill(undefined);
    count = 0;
    if (!sending) finish();
  }

  return {
    address,
    stats,
    closed,
    send(data: Uint8Array, to: Address): void {
      if (isClosed) throw new TypeError(closedMessage);
      checkUdpSend(data, to, maxDatagramBytes);
      if (sendCount === maxSendQueue) {
        stats.sendDropped++;
        return;
      }
      let tail = sendHead + sendCount;
      if (tail >= maxSendQueue) tail -= maxSendQueue;
      // Copy now: the caller reuses its buffer as soon as this returns, and
      // Deno reads the bytes only when the send runs.
      sendData[tail] = data.slice();
      sendTo[tail] = to;
      sendCount++;
      if (!sending) sendLoop();
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
    close,
    [Symbol.dispose]: close,
    [Symbol.asyncDispose](): Promise<void> {
      close();
      return closed;
    },
  };
}

/** A {@linkcode DatagramSocket} over several sockets, from {@linkcode createMultiSocket}. */
export interface MultiSocket extends DatagramSocket {
  /** The sockets it combines, in the order given. */
  readonly sockets: readonly DatagramSocket[];
  /** Closes every socket, as {@linkcode DatagramSocket.close} does. */
  [Symbol.dispose](): void;
}

/**
 * Checks that `value` has the shape of a {@linkcode DatagramSocket} (an
 * `address` and `send`, `poll` and `close` functions) and throws a clear
 * `TypeError` naming `what` otherwise.
 *
 * @param value The value to check.
 * @param what What is being done, for the message ("create server").
 * @returns The value, typed.
 * @throws {TypeError} When `value` is not a socket.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkDatagramSocket } from "./socket.ts";
 * assert.throws(() => checkDatagramSocket({}, "create server"), {
 *   name: "TypeError",
 *   message: "Cannot create server: the socket has no address, send, poll and close",
 * });
 * ```
 */
export function checkDatagramSocket(
  value: unknown,
  what: string,
): DatagramSocket {
  const socket = value as Partial<DatagramSocket> | null;
  if (
    typeof socket !== "object" || socket === null ||
    typeof socket.send !== "function" || typeof socket.poll !== "function" ||
    typeof socket.close !== "function" || typeof socket.address !== "object" ||
    socket.address === null
  ) {
    throw new TypeError(
      `Cannot ${what}: the socket has no address, send, poll and close`,
    );
  }
  return socket as DatagramSocket;
}

/**
 * Combines sockets, typically one IPv4 and one IPv6, into one
 * {@linkcode DatagramSocket}, so a dual-stack server runs over two sockets.
 * `poll()` takes turns between the sockets; `send()` goes to a session
 * transport (one with `hasPeer`, such as WebTransport) when the destination
 * is one of its peers, and otherwise through the first socket whose family (IPv4 or IPv6, by its bound address) matches the
 * destination, or through the first socket when none matches; `close()`
 * closes them all. Its `address` is the first socket's.
 *
 * @param sockets The sockets, at least one. The multi-socket owns them.
 * @returns The combined socket.
 * @throws {RangeError} When `sockets` is empty.
 *
 * @example
 * ```ts ignore
 * import assert from "node:assert/strict";
 * import { createMultiSocket, listenUdp } from "./socket.ts";
 *
 * using socket = createMultiSocket([
 *   listenUdp({ hostname: "127.0.0.1", port: 40000 }),
 *   listenUdp({ hostname: "::1", port: 40000 }),
 * ]);
 * assert.deepEqual(socket.address, { hostname: "127.0.0.1", port: 40000 }); // the first socket's
 * socket.send(new Uint8Array([1]), { hostname: "::1", port: 50000 }); // via the IPv6 socket
 * ```
 */
export function createMultiSocket(
  sockets: readonly DatagramSocket[],
): MultiSocket {
  if (!Array.isArray(sockets) || sockets.length === 0) {
    throw new RangeError(
      "Cannot create a multi-socket: expected at least one socket",
    );
  }
  sockets.forEach((socket, index) =>
    checkDatagramSocket(socket, `create a multi-socket: socket ${index}`)
  );
  const all = Object.freeze([...sockets]);
  const first = all[0];
  const ipv4 = all.find((socket) => !isIpv6(socket.address)) ?? first;
  const ipv6 = all.find((socket) => isIpv6(socket.address)) ?? first;
  const sessionSockets = all.filter((socket) =>
    typeof socket.hasPeer === "function"
  );
  const ipv4Plain =
    all.find((socket) =>
      !isIpv6(socket.address) && socket.hasPeer === undefined
    ) ?? ipv4;
  const ipv6Plain =
    all.find((socket) =>
      isIpv6(socket.address) && socket.hasPeer === undefined
    ) ?? ipv6;
  let next = 0;
  function close(): void {
    for (const socket of all) socket.close();
  }
  // Settles when every socket's close has finished; never rejects (nobody
  // may be waiting for it).
  const closed = Promise.all(
    all.map((socket) => socket.closed?.then(() => {}, () => {})),
  ).then(() => {});
  return {
    address: first.address,
    sockets: all,
    closed,
    send(data: Uint8Array, to: Address): void {
      validateDestination(to);
      for (let i = 0; i < sessionSockets.length; i++) {
        if (sessionSockets[i].hasPeer!(to)) {
          sessionSockets[i].send(data, to);
          return;
        }
      }
      (isIpv6(to) ? ipv6Plain : ipv4Plain).send(data, to);
    },
    poll(): Datagram | undefined {
      for (let i = 0; i < all.length; i++) {
        const socket = all[next];
        next++;
        if (next === all.length) next = 0;
        const datagram = socket.poll();
        if (datagram !== undefined) return datagram;
      }
      return undefined;
    },
    close,
    [Symbol.dispose]: close,
  };
}
