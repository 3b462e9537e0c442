/**
 * WebTransport transports for browser players: netcode 1.02 packets,
 * unchanged, each carried as one WebTransport (HTTP/3) datagram.
 *
 * - {@linkcode listenWebTransport}: the server side, a
 *   {@linkcode DatagramSocket} over a Deno QUIC endpoint (`--unstable-net`).
 *   Each session is a peer whose address is the QUIC connection's remote
 *   address, so `createServer` serves it like a UDP client.
 * - {@linkcode connectWebTransport}: the client side, for browsers and Deno.
 *   It opens a session to a server address on the first datagram sent there,
 *   so `createClient` falls back through a token's servers as over UDP.
 *
 * @example
 * ```ts ignore
 * import assert from "node:assert/strict";
 * import { generateCertificate } from "./certificate.ts";
 * import { listenWebTransport } from "./socket_webtransport.ts";
 *
 * const certificate = await generateCertificate();
 * using socket = listenWebTransport({ address: "127.0.0.1:40001", certificate });
 * assert.equal(socket.url, "https://127.0.0.1:40001/netcode"); // what browsers connect to
 * ```
 *
 * @module
 */

import { type Address, formatAddress, parseAddress } from "./address.ts";
import type { WebTransportCertificate } from "./certificate.ts";
import type { Datagram, DatagramSocket } from "./socket.ts";
import { checkListenCount, readListenTarget } from "./_listen.ts";

/** The path WebTransport sessions are accepted on by default. */
export const DEFAULT_WEBTRANSPORT_PATH = "/netcode";

/**
 * Bytes a netcode payload packet adds to its payload at most: the prefix
 * byte, 8 sequence bytes and the 16-byte MAC. A transport carrying datagrams
 * of at most `n` bytes carries payloads of at most `n - 25` bytes.
 */
export const PAYLOAD_PACKET_OVERHEAD_BYTES = 25;

const DEFAULT_MAX_QUEUE = 1024;
const DEFAULT_MAX_SESSIONS = 1024;
const DEFAULT_MAX_SESSIONS_PER_IP = 16;
const DEFAULT_IDLE_TIMEOUT_SECONDS = 10;
const MAX_NETCODE_DATAGRAM_BYTES = 1300;
const ALPN = ["h3"];

/** Options of {@linkcode listenWebTransport}. */
export interface ListenWebTransportOptions {
  /**
   * The local address of the QUIC endpoint, `"127.0.0.1:40001"` or
   * `"[::]:40001"`; port 0 picks a free port. It is a UDP port of its own,
   * not the netcode UDP socket's.
   */
  readonly address: string | Address;
  /** The certificate sessions are served with. */
  readonly certificate: WebTransportCertificate;
  /**
   * The certificate that comes next; its hash is in
   * {@linkcode WebTransportServerSocket.certificateHashes} so a backend can
   * hand out both before {@linkcode WebTransportServerSocket.rotateCertificate}.
   * @default {undefined}
   */
  readonly nextCertificate?: WebTransportCertificate;
  /** The URL path sessions must ask for. @default {"/netcode"} */
  readonly path?: string;
  /**
   * Sessions open at once at most, 1..65536; more are refused and counted in
   * `stats.sessionsRefused`.
   * @default {1024}
   */
  readonly maxSessions?: number;
  /**
   * Sessions open at once from one remote IP at most; more are refused and
   * counted in `stats.sessionsRefused`.
   * @default {16}
   */
  readonly maxSessionsPerIp?: number;
  /**
   * Received datagrams waiting for `poll()` at most; when full, arriving
   * datagrams are dropped and counted in `stats.dropped`.
   * @default {1024}
   */
  readonly maxQueue?: number;
  /**
   * Seconds without any QUIC traffic before a session is closed (a browser
   * sends QUIC keep-alives only while netcode does, every 100 ms).
   * @default {10}
   */
  readonly idleTimeoutSeconds?: number;
}

/** Counters of a {@linkcode WebTransportServerSocket}; they only grow. */
export interface WebTransportServerStats {
  /** Sessions opened and ready. */
  sessionsOpened: number;
  /** Sessions that ended (closed by either side, failed or idled out). */
  sessionsClosed: number;
  /** Connections refused: too many sessions in total or from one IP. */
  sessionsRefused: number;
  /** Sessions closed at once because they asked for another path. */
  wrongPath: number;
  /** Connections whose QUIC handshake or WebTransport upgrade failed. */
  handshakeFailed: number;
  /** Datagrams received and queued for `poll()`. */
  received: number;
  /** Datagrams dropped on arrival: the receive queue was full. */
  dropped: number;
  /** Datagrams dropped on arrival: larger than a netcode packet can be. */
  oversized: number;
  /** Datagrams handed to a session for sending. */
  sent: number;
  /** Datagrams not sent: larger than the session's datagram limit. */
  sendOversized: number;
  /** Datagrams not sent: no open session has that address. */
  sendNoSession: number;
  /** Datagrams the session refused to send. */
  sendErrors: number;
}

/** The server side of the WebTransport transport, from {@linkcode listenWebTransport}. */
export interface WebTransportServerSocket extends DatagramSocket {
  /** The URL browsers connect to, `https://127.0.0.1:40001/netcode`. */
  readonly url: string;
  /** The current certificate's hash, then the next one's when there is one. */
  readonly certificateHashes: readonly Uint8Array[];
  /** Sessions open now. */
  readonly numSessions: number;
  /** Live counters. */
  readonly stats: Readonly<WebTransportServerStats>;
  /** Whether `to` is the address of one of this socket's open sessions. */
  hasPeer(to: Address): boolean;
  /**
   * The largest datagram the session at `to` carries, or 0 when there is no
   * session at that address.
   */
  maxDatagramBytesTo(to: Address): number;
  /**
   * Serves new sessions with the next certificate (the one given, or the
   * `nextCertificate` given earlier); open sessions carry on. The certificate
   * after it, when given, becomes the next one.
   */
  rotateCertificate(
    next?: WebTransportCertificate,
    after?: WebTransportCertificate,
  ): void;
  /** Settles when every session and the endpoint are closed. */
  readonly closed: Promise<void>;
  /** Same as `close()`. */
  [Symbol.dispose](): void;
}

interface Session {
  readonly address: Address;
  readonly transport: WebTransport;
  readonly writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly maxDatagramBytes: number;
}

/**
 * Listens for WebTransport sessions on a QUIC endpoint (Deno, with
 * `--unstable-net`) and presents each session as a peer of a
 * {@linkcode DatagramSocket}: one netcode packet per datagram. Hand it to
 * `createServer` as `webTransport` (beside UDP) or as its `socket`.
 *
 * Hostile input never throws: datagrams too large for netcode, sessions on
 * another path, failed handshakes and sessions over the limits are dropped
 * or refused and counted in `stats`. A session that closes or idles out
 * leaves no peer behind.
 *
 * @param options The address, the certificate and the limits.
 * @returns The open socket.
 * @throws {Error} When Deno's QUIC API is missing (no `--unstable-net`) or
 * the endpoint cannot listen, naming the address.
 * @throws {TypeError} On an unparsable address or a missing certificate.
 * @throws {RangeError} On a limit out of range.
 *
 * @example
 * ```ts ignore
 * import assert from "node:assert/strict";
 * import { generateCertificate } from "./certificate.ts";
 * import { listenWebTransport } from "./socket_webtransport.ts";
 *
 * using socket = listenWebTransport({
 *   address: "127.0.0.1:0",
 *   certificate: await generateCertificate(),
 * });
 * assert.ok(socket.address.port > 0); // the port the system picked
 * ```
 */
export function listenWebTransport(
  options: ListenWebTransportOptions,
): WebTransportServerSocket {
  if (typeof options !== "object" || options === null) {
    throw new TypeError("Cannot listen for WebTransport: options is missing");
  }
  const target = readListenTarget(
    typeof options.address === "string"
      ? parseAddress(options.address)
      : options.address,
  );
  const label = target.label;
  let certificate = checkCertificate(options.certificate, label);
  let nextCertificate = options.nextCertificate === undefined
    ? undefined
    : checkCertificate(options.nextCertificate, label);
  const path = options.path ?? DEFAULT_WEBTRANSPORT_PATH;
  if (typeof path !== "string" || !path.startsWith("/")) {
    throw new TypeError(
      `Cannot listen on ${label}: path must start with "/", got ${
        String(path)
      }`,
    );
  }
  const maxSessions = checkListenCount(
    label,
    "maxSessions",
    options.maxSessions ?? DEFAULT_MAX_SESSIONS,
    1,
    65536,
  );
  const maxSessionsPerIp = checkListenCount(
    label,
    "maxSessionsPerIp",
    options.maxSessionsPerIp ?? DEFAULT_MAX_SESSIONS_PER_IP,
    1,
    65536,
  );
  const maxQueue = checkListenCount(
    label,
    "maxQueue",
    options.maxQueue ?? DEFAULT_MAX_QUEUE,
    1,
    1 << 20,
  );
  const idleTimeoutSeconds = options.idleTimeoutSeconds ??
    DEFAULT_IDLE_TIMEOUT_SECONDS;
  if (
    typeof idleTimeoutSeconds !== "number" || !(idleTimeoutSeconds > 0) ||
    idleTimeoutSeconds > 600
  ) {
    throw new RangeError(
      `Cannot listen on ${label}: idleTimeoutSeconds must be above 0 and at most 600, got ${
        String(idleTimeoutSeconds)
      }`,
    );
  }
  const deno = (globalThis as { Deno?: typeof Deno }).Deno;
  if (
    typeof deno?.QuicEndpoint !== "function" ||
    typeof deno.upgradeWebTransport !== "function"
  ) {
    throw new Error(
      `Cannot listen for WebTransport on ${label}: it needs Deno's unstable QUIC API; run with --unstable-net`,
    );
  }
  let endpoint: Deno.QuicEndpoint;
  let listener: Deno.QuicListener;
  try {
    endpoint = new deno.QuicEndpoint({
      hostname: target.hostname,
      port: target.port,
    });
  } catch (error) {
    throw new Error(
      `Cannot listen for WebTransport on ${label}: ${errorText(error)}`,
      { cause: error },
    );
  }
  function listen(with_: WebTransportCertificate): Deno.QuicListener {
    return endpoint.listen({
      cert: with_.certificate,
      key: with_.privateKey,
      alpnProtocols: ALPN,
      maxIdleTimeout: Math.round(idleTimeoutSeconds * 1000),
    });
  }
  try {
    listener = listen(certificate);
  } catch (error) {
    endpoint.close();
    throw new Error(
      `Cannot listen for WebTransport on ${label}: ${errorText(error)}`,
      { cause: error },
    );
  }
  const bound = endpoint.addr;
  const address: Address = Object.freeze({
    hostname: canonicalHostname(bound.hostname),
    port: bound.port,
  });
  const url = `https://${formatAddress(address)}${path}`;

  const stats: WebTransportServerStats = {
    sessionsOpened: 0,
    sessionsClosed: 0,
    sessionsRefused: 0,
    wrongPath: 0,
    handshakeFailed: 0,
    received: 0,
    dropped: 0,
    oversized: 0,
    sent: 0,
    sendOversized: 0,
    sendNoSession: 0,
    sendErrors: 0,
  };
  let isClosed = false;
  // Sessions by remote port, then hostname: no string is built per packet.
  const sessionsByPort = new Map<number, Session[]>();
  const sessionsPerIp = new Map<string, number>();
  // Connections accepted or upgrading, so close() can end them too.
  const connections = new Set<Deno.QuicConn>();
  let numSessions = 0;
  let numConnecting = 0;
  const queue = createDatagramRing(maxQueue);
  const tasks = new Set<Promise<void>>();

  function track(task: Promise<void>): void {
    tasks.add(task);
    task.finally(() => tasks.delete(task));
  }

  function findSession(to: Address): Session | undefined {
    const list = sessionsByPort.get(to.port);
    if (list === undefined) return undefined;
    for (let i = 0; i < list.length; i++) {
      if (list[i].address.hostname === to.hostname) return list[i];
    }
    return undefined;
  }

  function removeSession(session: Session): void {
    const list = sessionsByPort.get(session.address.port);
    const index = list?.indexOf(session) ?? -1;
    if (index < 0) return;
    list!.splice(index, 1);
    if (list!.length === 0) sessionsByPort.delete(session.address.port);
    numSessions--;
    stats.sessionsClosed++;
  }

  function releaseIp(ip: string): void {
    const left = (sessionsPerIp.get(ip) ?? 1) - 1;
    if (left <= 0) sessionsPerIp.delete(ip);
    else sessionsPerIp.set(ip, left);
  }

  async function serveSession(incoming: Deno.QuicIncoming): Promise<void> {
    if (numSessions + numConnecting >= maxSessions) {
      stats.sessionsRefused++;
      incoming.refuse();
      return;
    }
    numConnecting++;
    let connecting = true;
    let ip: string | undefined;
    let conn: Deno.QuicConn | undefined;
    let session: Session | undefined;
    try {
      // The remote address is read from the connection: in Deno 2.9 reading
      // `remoteAddr` of a QuicIncoming makes its accept() fail.
      conn = await incoming.accept();
      connections.add(conn);
      const remoteIp = conn.remoteAddr.hostname;
      const perIp = sessionsPerIp.get(remoteIp) ?? 0;
      if (perIp >= maxSessionsPerIp) {
        stats.sessionsRefused++;
        conn.close({ closeCode: 0x100, reason: "too many sessions" });
        return;
      }
      ip = remoteIp;
      sessionsPerIp.set(ip, perIp + 1);
      const transport = await deno!.upgradeWebTransport(conn);
      // Every rejection is handled: an idle session's `closed` rejects.
      const ended = transport.closed.then(() => {}, () => {});
      await transport.ready;
      if (new URL(transport.url).pathname !== path) {
        stats.wrongPath++;
        transport.close({ closeCode: 404, reason: "not found" });
        await ended;
        return;
      }
      if (isClosed) {
        transport.close();
        return;
      }
      const peer: Address = Object.freeze({
        hostname: canonicalHostname(remoteIp),
        port: conn.remoteAddr.port,
      });
      const limit = Math.min(
        transport.datagrams.maxDatagramSize,
        conn.maxDatagramSize,
      );
      session = {
        address: peer,
        transport,
        writer: transport.datagrams.writable.getWriter(),
        maxDatagramBytes: limit,
      };
      // A new session from an address replaces an old one still listed.
      const previous = findSession(peer);
      if (previous !== undefined) {
        removeSession(previous);
        previous.transport.close();
      }
      let list = sessionsByPort.get(peer.port);
      if (list === undefined) sessionsByPort.set(peer.port, list = []);
      list.push(session);
      numSessions++;
      numConnecting--;
      connecting = false;
      stats.sessionsOpened++;
      const reader = transport.datagrams.readable.getReader();
      const reading = readDatagrams(reader, peer).catch(() => {});
      await ended;
      await reading;
    } catch {
      if (session === undefined) stats.handshakeFailed++;
    } finally {
      if (connecting) numConnecting--;
      if (session !== undefined) removeSession(session);
      if (ip !== undefined) releaseIp(ip);
      if (conn !== undefined) {
        connections.delete(conn);
        try {
          conn.close();
        } catch {
          // Already closed.
        }
      }
    }
  }

  async function readDatagrams(
    reader: ReadableStreamDefaultReader<Uint8Array>,
    from: Address,
  ): Promise<void> {
    for (;;) {
      const { value, done } = await reader.read();
      if (done || isClosed) return;
      if (value.length > MAX_NETCODE_DATAGRAM_BYTES) {
        stats.oversized++;
        continue;
      }
      if (queue.push({ data: value, from })) stats.received++;
      else stats.dropped++;
    }
  }

  async function acceptLoop(current: Deno.QuicListener): Promise<void> {
    try {
      for await (const incoming of current) {
        if (isClosed) {
          incoming.refuse();
          return;
        }
        track(serveSession(incoming));
      }
    } catch {
      // The listener stopped (rotation or close).
    }
  }
  track(acceptLoop(listener));

  const { promise: closed, resolve: resolveClosed } = Promise.withResolvers<
    void
  >();

  function close(): void {
    if (isClosed) return;
    isClosed = true;
    queue.clear();
    for (const list of sessionsByPort.values()) {
      for (const session of list) {
        try {
          session.transport.close();
        } catch {
          // Already closed.
        }
      }
    }
    for (const conn of connections) {
      try {
        conn.close();
      } catch {
        // Already closed.
      }
    }
    try {
      listener.stop();
    } catch {
      // Already stopped.
    }
    try {
      endpoint.close();
    } catch {
      // Already closed.
    }
    // Closing the endpoint ends every connection; the session tasks then
    // settle. Bounded, in case a runtime leaves one hanging.
    let timer: ReturnType<typeof setTimeout> | undefined;
    Promise.race([
      Promise.allSettled([...tasks]),
      new Promise((resolve) => {
        timer = setTimeout(resolve, 2000);
      }),
    ]).then(() => {
      clearTimeout(timer);
      resolveClosed();
    });
  }

  return {
    address,
    url,
    stats,
    closed,
    get numSessions() {
      return numSessions;
    },
    get certificateHashes() {
      return nextCertificate === undefined
        ? [certificate.hash]
        : [certificate.hash, nextCertificate.hash];
    },
    hasPeer(to: Address): boolean {
      return findSession(to) !== undefined;
    },
    maxDatagramBytesTo(to: Address): number {
      return findSession(to)?.maxDatagramBytes ?? 0;
    },
    rotateCertificate(
      next?: WebTransportCertificate,
      after?: WebTransportCertificate,
    ): void {
      if (isClosed) {
        throw new TypeError(
          "Cannot rotate certificate: the WebTransport socket is closed",
        );
      }
      const chosen = next === undefined
        ? nextCertificate
        : checkCertificate(next, label);
      if (chosen === undefined) {
        throw new TypeError(
          "Cannot rotate certificate: no next certificate was given",
        );
      }
      const checkedAfter = after === undefined
        ? undefined
        : checkCertificate(after, label);
      // Deno serves an endpoint's listeners in turn: stop the old one first.
      try {
        listener.stop();
      } catch {
        // Already stopped.
      }
      let replacement: Deno.QuicListener;
      try {
        replacement = listen(chosen);
      } catch (error) {
        listener = listen(certificate);
        track(acceptLoop(listener));
        throw new Error(
          `Cannot rotate certificate on ${label}: ${errorText(error)}`,
          { cause: error },
        );
      }
      listener = replacement;
      certificate = chosen;
      nextCertificate = checkedAfter;
      track(acceptLoop(replacement));
    },
    send(data: Uint8Array, to: Address): void {
      if (isClosed) {
        throw new TypeError(
          `Cannot send datagram: the WebTransport socket on ${label} is closed`,
        );
      }
      if (!(data instanceof Uint8Array)) {
        throw new TypeError("Cannot send datagram: data is not a Uint8Array");
      }
      const session = findSession(to);
      if (session === undefined) {
        stats.sendNoSession++;
        return;
      }
      if (data.length > session.maxDatagramBytes) {
        stats.sendOversized++;
        return;
      }
      stats.sent++;
      // A copy: the caller reuses its buffer once this returns.
      session.writer.write(data.slice()).catch(() => stats.sendErrors++);
    },
    poll(): Datagram | undefined {
      return queue.shift();
    },
    close,
    [Symbol.dispose]: close,
  };
}

interface DatagramRing {
  /** Queues a datagram; false when the ring is full (nothing is queued). */
  push(datagram: Datagram): boolean;
  /** The oldest datagram, or `undefined`. */
  shift(): Datagram | undefined;
  /** Drops everything queued. */
  clear(): void;
}

function createDatagramRing(capacity: number): DatagramRing {
  const slots: (Datagram | undefined)[] = new Array(capacity).fill(undefined);
  let head = 0;
  let count = 0;
  return {
    push(datagram: Datagram): boolean {
      if (count === capacity) return false;
      let tail = head + count;
      if (tail >= capacity) tail -= capacity;
      slots[tail] = datagram;
      count++;
      return true;
    },
    shift(): Datagram | undefined {
      if (count === 0) return undefined;
      const datagram = slots[head];
      slots[head] = undefined;
      head++;
      if (head === capacity) head = 0;
      count--;
      return datagram;
    },
    clear(): void {
      slots.fill(undefined);
      head = 0;
      count = 0;
    },
  };
}

function checkCertificate(
  certificate: WebTransportCertificate | undefined,
  label: string,
): WebTransportCertificate {
  if (
    typeof certificate !== "object" || certificate === null ||
    typeof certificate.certificate !== "string" ||
    typeof certificate.privateKey !== "string" ||
    !(certificate.hash instanceof Uint8Array)
  ) {
    throw new TypeError(
      `Cannot listen for WebTransport on ${label}: certificate must come from generateCertificate() or readCertificate()`,
    );
  }
  return certificate;
}

// The hostname in the text parseAddress() produces, so peers compare equal
// to addresses parsed elsewhere.
function canonicalHostname(hostname: string): string {
  return parseAddress(hostname.includes(":") ? `[${hostname}]:0` : hostname)
    .hostname;
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Options of {@linkcode connectWebTransport}. */
export interface ConnectWebTransportOptions {
  /**
   * SHA-256 hashes of the certificates the servers may present, for
   * self-signed certificates (`serverCertificateHashes`). Without them the
   * browser checks certificates against its trusted authorities.
   * @default {[]}
   */
  readonly certificateHashes?: readonly Uint8Array[];
  /** The URL path of the server's sessions. @default {"/netcode"} */
  readonly path?: string;
  /**
   * Received datagrams waiting for `poll()` at most; when full, arriving
   * datagrams are dropped and counted in `stats.dropped`.
   * @default {256}
   */
  readonly maxQueue?: number;
  /**
   * Datagrams held while a session is being opened, at most; more are
   * dropped and counted in `stats.sendDropped` (netcode resends its
   * handshake packets, so a few suffice).
   * @default {16}
   */
  readonly maxPendingSends?: number;
  /**
   * Seconds after a failed session before a new one to the same address is
   * tried.
   * @default {1}
   */
  readonly retrySeconds?: number;
  /**
   * The `WebTransport` constructor; the global one by default.
   * @default {globalThis.WebTransport}
   */
  readonly webTransport?: typeof WebTransport;
}

/** Counters of a {@linkcode WebTransportClientSocket}; they only grow. */
export interface WebTransportClientStats {
  /** Sessions that became ready. */
  sessionsOpened: number;
  /** Sessions that failed to open or ended. */
  sessionsClosed: number;
  /** Datagrams received and queued. */
  received: number;
  /** Datagrams dropped on arrival: the receive queue was full. */
  dropped: number;
  /** Datagrams handed to a session. */
  sent: number;
  /** Datagrams dropped: no session yet and the pending list was full, or the last attempt failed. */
  sendDropped: number;
  /** Datagrams the session refused to send. */
  sendErrors: number;
}

/** The client side of the WebTransport transport, from {@linkcode connectWebTransport}. */
export interface WebTransportClientSocket extends DatagramSocket {
  /**
   * The largest datagram the current session says it carries: its
   * `maxDatagramSize` once ready (Chromium 150 reports 1024, Deno 1350), and
   * the netcode maximum (1225) before. `createClient` refuses payloads that
   * would not fit.
   */
  readonly maxDatagramBytes: number;
  /** The server address of the current session, if any. */
  readonly sessionAddress: Address | undefined;
  /** Whether the current session is ready. */
  readonly ready: boolean;
  /** Live counters. */
  readonly stats: Readonly<WebTransportClientStats>;
  /**
   * Settles when {@linkcode DatagramSocket.close} was called and the
   * datagrams already handed over were written (for example 10 disconnect
   * packets). Never rejects.
   */
  readonly closed: Promise<void>;
  /** Same as `close()`. */
  [Symbol.dispose](): void;
}

interface ClientSession {
  readonly address: Address;
  readonly transport: WebTransport;
  writer: WritableStreamDefaultWriter<Uint8Array> | undefined;
  readonly pending: Uint8Array[];
  ready: boolean;
  maxDatagramBytes: number;
}

const NETCODE_MAX_DATAGRAM_BYTES = 1200 + PAYLOAD_PACKET_OVERHEAD_BYTES;
const CLOSE_LINGER_MS = 100;

/**
 * A client-side {@linkcode DatagramSocket} over WebTransport, for browsers
 * and for Deno's `WebTransport`. The first datagram sent to a server address
 * opens a session to `https://ADDRESS/netcode` (closing a session to another
 * address), and datagrams wait until it is ready; a session that fails is
 * retried after `retrySeconds`. Received datagrams carry the session's server
 * address as `from`, so `createClient` sees the server it sent to.
 *
 * @param options Certificate hashes, the path and the limits.
 * @returns The socket; pass it to `createClient({ socket })`.
 * @throws {Error} When there is no `WebTransport` (Deno without
 * `--unstable-net`, or an old browser).
 * @throws {TypeError} On a hash that is not 32 bytes.
 *
 * @example
 * ```ts ignore
 * import { createClient } from "./client.ts";
 * import { connectWebTransport } from "./socket_webtransport.ts";
 *
 * const hash = new Uint8Array(32); // from the backend, with the token
 * const client = createClient({
 *   socket: connectWebTransport({ certificateHashes: [hash] }),
 * });
 * ```
 */
export function connectWebTransport(
  options: ConnectWebTransportOptions = {},
): WebTransportClientSocket {
  const hashes = options.certificateHashes ?? [];
  if (
    !Array.isArray(hashes) ||
    hashes.some((hash) => !(hash instanceof Uint8Array) || hash.length !== 32)
  ) {
    throw new TypeError(
      "Cannot connect over WebTransport: certificate hashes must be 32-byte SHA-256 values",
    );
  }
  const path = options.path ?? DEFAULT_WEBTRANSPORT_PATH;
  if (typeof path !== "string" || !path.startsWith("/")) {
    throw new TypeError(
      `Cannot connect over WebTransport: path must start with "/", got ${
        String(path)
      }`,
    );
  }
  const label = "WebTransport client";
  const maxQueue = checkListenCount(
    label,
    "maxQueue",
    options.maxQueue ?? 256,
    1,
    1 << 20,
  );
  const maxPendingSends = checkListenCount(
    label,
    "maxPendingSends",
    options.maxPendingSends ?? 16,
    0,
    1024,
  );
  const retrySeconds = options.retrySeconds ?? 1;
  const WebTransportClass = options.webTransport ??
    (globalThis as { WebTransport?: typeof WebTransport }).WebTransport;
  if (typeof WebTransportClass !== "function") {
    throw new Error(
      "Cannot connect over WebTransport: this runtime has no WebTransport (in Deno, run with --unstable-net)",
    );
  }
  const serverCertificateHashes = hashes.map((value) => ({
    algorithm: "sha-256",
    value: value.slice(),
  }));
  const stats: WebTransportClientStats = {
    sessionsOpened: 0,
    sessionsClosed: 0,
    received: 0,
    dropped: 0,
    sent: 0,
    sendDropped: 0,
    sendErrors: 0,
  };
  let session: ClientSession | undefined;
  let retryAddress: Address | undefined;
  let retryAt = 0;
  let isClosed = false;
  const queue = createDatagramRing(maxQueue);
  const writes = new Set<Promise<unknown>>();
  const { promise: closed, resolve: resolveClosed } = Promise.withResolvers<
    void
  >();

  function sameAddress(a: Address, b: Address): boolean {
    return a.port === b.port && a.hostname === b.hostname;
  }

  function write(current: ClientSession, data: Uint8Array): void {
    stats.sent++;
    const written = current.writer!.write(data).catch(() => {
      stats.sendErrors++;
    });
    writes.add(written);
    written.finally(() => writes.delete(written));
  }

  function endSession(current: ClientSession, failed: boolean): void {
    if (session !== current) return;
    session = undefined;
    stats.sessionsClosed++;
    // Datagrams still waiting for the session are lost with it.
    stats.sendDropped += current.pending.length;
    current.pending.length = 0;
    // Deno 2.9 settles `closed` before `ready` rejects when a handshake
    // fails (a wrong certificate hash): closing before ready is a failure.
    if (failed || !current.ready) {
      retryAddress = current.address;
      retryAt = performance.now() + retrySeconds * 1000;
    }
  }

  function open(to: Address): ClientSession {
    const from: Address = Object.freeze({
      hostname: to.hostname,
      port: to.port,
    });
    const transport = new WebTransportClass!(
      `https://${formatAddress(from)}${path}`,
      serverCertificateHashes.length > 0
        ? { serverCertificateHashes }
        : undefined,
    );
    const current: ClientSession = {
      address: from,
      transport,
      writer: undefined,
      pending: [],
      ready: false,
      maxDatagramBytes: NETCODE_MAX_DATAGRAM_BYTES,
    };
    transport.closed.then(
      () => endSession(current, false),
      () => endSession(current, true),
    );
    transport.ready.then(async () => {
      if (session !== current) return;
      current.ready = true;
      current.maxDatagramBytes = transport.datagrams.maxDatagramSize;
      current.writer = transport.datagrams.writable.getWriter();
      stats.sessionsOpened++;
      for (const data of current.pending.splice(0)) write(current, data);
      const reader = transport.datagrams.readable.getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done || session !== current) return;
        if (queue.push({ data: value, from })) stats.received++;
        else stats.dropped++;
      }
    }).catch(() => endSession(current, true));
    return current;
  }

  return {
    address: Object.freeze({ hostname: "0.0.0.0", port: 0 }),
    stats,
    closed,
    get maxDatagramBytes() {
      return session?.maxDatagramBytes ?? NETCODE_MAX_DATAGRAM_BYTES;
    },
    get sessionAddress() {
      return session?.address;
    },
    get ready() {
      return session?.ready ?? false;
    },
    send(data: Uint8Array, to: Address): void {
      if (isClosed) {
        throw new TypeError(
          "Cannot send datagram: the WebTransport socket is closed",
        );
      }
      if (!(data instanceof Uint8Array)) {
        throw new TypeError("Cannot send datagram: data is not a Uint8Array");
      }
      if (session !== undefined && !sameAddress(session.address, to)) {
        // netcode talks to one server at a time: the client moved on.
        const old = session;
        endSession(old, false);
        old.transport.close();
      }
      if (session === undefined) {
        if (
          retryAddress !== undefined && sameAddress(retryAddress, to) &&
          performance.now() < retryAt
        ) {
          stats.sendDropped++;
          return;
        }
        session = open(to);
      }
      if (!session.ready) {
        if (session.pending.length >= maxPendingSends) stats.sendDropped++;
        else session.pending.push(data.slice());
        return;
      }
      // No size check here: Chromium 150 reports a maxDatagramSize of 1024
      // yet carries the 1078-byte connection request. createClient keeps
      // payloads within maxDatagramBytes.
      write(session, data.slice());
    },
    poll(): Datagram | undefined {
      return queue.shift();
    },
    close(): void {
      if (isClosed) return;
      isClosed = true;
      queue.clear();
      const last = session;
      session = undefined;
      // Let queued datagrams (disconnect packets) go out first: a written
      // datagram can still be lost when the session closes at once, so the
      // session lingers briefly.
      Promise.allSettled([...writes]).then(() =>
        last === undefined ? undefined : new Promise((resolve) => {
          setTimeout(resolve, CLOSE_LINGER_MS);
        })
      ).then(() => {
        try {
          last?.transport.close();
        } catch {
          // Already closed.
        }
        resolveClosed();
      });
    },
    [Symbol.dispose](): void {
      this.close();
    },
  };
}
