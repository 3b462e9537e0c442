/**
 * A fast UDP transport behind the same {@linkcode DatagramSocket} interface:
 * libc's `socket`, `bind`, `recvmmsg` and `sendmmsg` called through
 * `Deno.dlopen` on a non-blocking socket, polled synchronously from inside
 * `update()`. No background loop and no promise per datagram: `poll()` takes
 * up to 64 datagrams from the kernel in one call and hands them out one by
 * one; `send()` batches datagrams and hands them to the kernel in one call
 * at the end of the current task (or when 64 are waiting, or on `flush()`).
 *
 * It is opt-in and Linux only (x86_64 and aarch64: the structures are laid
 * out by hand). It needs the FFI permission (`--allow-ffi`, or `-A`); Deno
 * 2.9 needs no unstable flag for `Deno.dlopen`.
 *
 * Per received datagram it allocates one view of a 64 KB slab that the
 * bytes are copied into (the receiver may keep it, as the interface
 * promises) and the `{ data, from }` record. The sender's
 * {@linkcode Address} comes from a cache of recent peers keyed by the raw
 * socket address, so a peer that keeps sending costs no string building and
 * no new object. Sending allocates nothing: the destination's `sockaddr` is
 * built once per {@linkcode Address} object and kept beside it.
 *
 * Measured on a 2-core AMD EPYC VM, 118-byte datagrams on loopback (see
 * `bench/RESULTS.md`): receiving costs about 0.8 µs per datagram (`"slab"`;
 * 1.0 µs with `"copy"`, 0.7 µs with `"shared"`), sending about 2.8 µs
 * (3.7 µs with one `sendto` per datagram), against roughly 10 µs per send
 * and 24 µs per receive with `Deno.listenDatagram`.
 *
 * @example An echo server on the FFI transport
 * ```ts ignore
 * import { generateKey } from "./crypto.ts";
 * import { createServer } from "./server.ts";
 * import { listenUdpFfi } from "./socket_ffi.ts";
 *
 * using server = createServer({
 *   address: "127.0.0.1:40000",
 *   protocolId: 0x1122334455667788n,
 *   privateKey: generateKey(),
 *   socket: listenUdpFfi({ hostname: "127.0.0.1", port: 40000 }),
 * });
 * ```
 *
 * @module
 */

import {
  type Address,
  formatAddress,
  isIpv6,
  parseAddress,
  writeAddress,
} from "./address.ts";
import {
  checkListenCount,
  MAX_UDP_PAYLOAD_BYTES,
  readListenTarget,
} from "./_listen.ts";
import type { Datagram, DatagramSocket } from "./socket.ts";

// Re-exported so this entry point documents completely on its own.
export type { Address } from "./address.ts";
export type { Datagram, DatagramSocket } from "./socket.ts";

// Linux constants, the same on x86_64 and aarch64 (the generic ABI).
const AF_INET = 2;
const AF_INET6 = 10;
const SOCK_DGRAM = 2;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1;
const SO_SNDBUF = 7;
const SO_RCVBUF = 8;
const IPPROTO_IPV6 = 41;
const IPV6_V6ONLY = 26;
const MSG_TRUNC = 0x20;
const MSG_DONTWAIT = 0x40;
const EINTR = 4;
const EAGAIN = 11;
const EACCES = 13;
const ENOBUFS = 105;
const EADDRINUSE = 98;
const EADDRNOTAVAIL = 99;
const SOCKADDR_IN_BYTES = 16;
const SOCKADDR_IN6_BYTES = 28;
// struct mmsghdr { struct msghdr msg_hdr; unsigned msg_len; } on LP64 Linux.
const MMSGHDR_BYTES = 64;
const MSG_NAME = 0;
const MSG_NAMELEN = 8;
const MSG_IOV = 16;
const MSG_IOVLEN = 24;
const MSG_FLAGS = 48;
const MSG_LEN = 56;
const IOVEC_BYTES = 16;

const DEFAULT_MAX_DATAGRAM_BYTES = 1300;
const DEFAULT_RECEIVE_BUFFER_BYTES = 4 * 1024 * 1024;
const DEFAULT_SEND_BUFFER_BYTES = 1024 * 1024;
const DEFAULT_MAX_CACHED_ADDRESSES = 4096;
const DEFAULT_RECEIVE_BATCH = 64;
const DEFAULT_SEND_BATCH = 64;
const MAX_BATCH = 1024;
const MAX_CACHED_ADDRESSES_LIMIT = 1 << 20;
/** Bytes of one receive slab (at least 4 datagrams of the largest size). */
const SLAB_BYTES = 65536;
/** Oversized or failed receives skipped in one `poll()` before it gives up. */
const MAX_SKIPPED_PER_POLL = 64;
const TWO_16 = 65536;
/** IPv6 cache keys start here, above every IPv4 key (< 2^48). */
const IPV6_KEY_BASE = 2 ** 49;

/** Options for {@linkcode listenUdpFfi}. An {@linkcode Address} is valid options. */
export interface ListenUdpFfiOptions {
  /**
   * The local IPv4 or IPv6 address to bind, without brackets: `"127.0.0.1"`,
   * `"::1"`, `"0.0.0.0"` or `"::"` (on Linux also IPv4, whose senders then
   * appear as `::ffff:a.b.c.d`, unless `ipv6Only`).
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
   * The largest datagram sent or received, in bytes, 1 to 65507. Larger
   * received datagrams are dropped and counted in
   * {@linkcode FfiUdpSocketStats.oversized}; sending a larger one throws a
   * `RangeError`.
   *
   * @default {1300}
   */
  readonly maxDatagramBytes?: number;
  /**
   * The kernel receive buffer asked for (`SO_RCVBUF`), in bytes. Datagrams
   * wait there between two polls, so it must hold a tick's worth: 1024
   * clients at 60 Hz send about 1000 datagrams a tick, each charged about
   * 1 KB. Linux caps it at `net.core.rmem_max` (and doubles it);
   * {@linkcode FfiUdpSocket.receiveBufferBytes} tells what was granted.
   *
   * @default {4194304}
   */
  readonly receiveBufferBytes?: number;
  /**
   * The kernel send buffer asked for (`SO_SNDBUF`), in bytes, capped by
   * `net.core.wmem_max`. A send the kernel has no room for is dropped and
   * counted in {@linkcode FfiUdpSocketStats.sendDropped}.
   *
   * @default {1048576}
   */
  readonly sendBufferBytes?: number;
  /**
   * For an IPv6 socket: `true` takes only IPv6 (`IPV6_V6ONLY`), so an IPv4
   * socket may share the port; `false` takes IPv4 too. Ignored for IPv4.
   *
   * @default {the system's setting, net.ipv6.bindv6only}
   */
  readonly ipv6Only?: boolean;
  /**
   * How many sender addresses are remembered, 1 to 1048576. A datagram from
   * a remembered peer reuses its {@linkcode Address} object; past the limit
   * the oldest is forgotten.
   *
   * @default {4096}
   */
  readonly maxCachedAddresses?: number;
  /**
   * Where received datagrams live:
   *
   * - `"slab"`: each datagram is copied from the batch into 64 KB slabs,
   *   one after the other, and handed out as a view of its bytes there. The
   *   receiver may keep it (a kept datagram keeps its whole slab alive).
   * - `"copy"`: each datagram is a `slice()`: its own small `ArrayBuffer`,
   *   about 0.25 µs more per datagram than a slab view.
   * - `"shared"`: each datagram is a view of the batch area itself, valid
   *   only until the next `poll()` on this socket (the area is refilled by a
   *   later poll). The server and client read a datagram completely before
   *   polling again, so they may use it; anything that stores datagrams (a
   *   recorder, a queue) must not. About 0.06 µs less than a slab view.
   *
   * @default {"slab"}
   */
  readonly receiveBuffers?: "slab" | "copy" | "shared";
  /**
   * Datagrams taken from the kernel per `recvmmsg` call, 1 to 1024.
   * `poll()` hands them out one at a time and asks the kernel again when
   * they are used up.
   *
   * @default {64}
   */
  readonly receiveBatch?: number;
  /**
   * Datagrams sent per `sendmmsg` call, 1 to 1024. `send()` copies the
   * datagram into a batch, which goes out when full, on
   * {@linkcode FfiUdpSocket.flush}, on `close()`, or at the latest at the end
   * of the current task (a microtask), so a server tick's sends leave
   * together when the tick returns. 1 sends each datagram at once.
   *
   * @default {64}
   */
  readonly sendBatch?: number;
}

/** Counters kept by an {@linkcode FfiUdpSocket}; they only grow. */
export interface FfiUdpSocketStats {
  /** Datagrams received and handed out by {@linkcode DatagramSocket.poll}. */
  readonly received: number;
  /**
   * Datagrams dropped because they exceeded `maxDatagramBytes`. (Datagrams
   * the kernel dropped because its receive buffer was full are not seen
   * here: Linux counts them in `/proc/net/snmp`, `Udp: RcvbufErrors`, and
   * per socket in the `drops` column of `/proc/net/udp`.)
   */
  readonly oversized: number;
  /** Errors other than `EAGAIN` reported while receiving. */
  readonly receiveErrors: number;
  /** Datagrams the kernel accepted for sending. */
  readonly sent: number;
  /**
   * Datagrams the kernel refused (unreachable network, an IPv6 destination
   * on an IPv4 socket, ...).
   */
  readonly sendErrors: number;
  /** Datagrams dropped because the kernel's send buffer was full. */
  readonly sendDropped: number;
  /** Datagrams whose sender was not in the address cache. */
  readonly addressCacheMisses: number;
}

/** A UDP socket from {@linkcode listenUdpFfi}. */
export interface FfiUdpSocket extends DatagramSocket {
  /** Live counters for this socket. */
  readonly stats: FfiUdpSocketStats;
  /** The kernel receive buffer granted, in bytes (`SO_RCVBUF` as read back). */
  readonly receiveBufferBytes: number;
  /** The kernel send buffer granted, in bytes (`SO_SNDBUF` as read back). */
  readonly sendBufferBytes: number;
  /**
   * Hands the datagrams `send()` batched to the kernel now, instead of at
   * the end of the current task.
   */
  flush(): void;
  /** Closes the socket, as {@linkcode DatagramSocket.close} does. */
  [Symbol.dispose](): void;
}

const SYMBOLS = {
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  getsockname: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  setsockopt: {
    parameters: ["i32", "i32", "i32", "buffer", "u32"],
    result: "i32",
  },
  getsockopt: {
    parameters: ["i32", "i32", "i32", "buffer", "buffer"],
    result: "i32",
  },
  // int results; recvmmsg's timeout is a null pointer (no wait).
  recvmmsg: {
    parameters: ["i32", "buffer", "u32", "i32", "pointer"],
    result: "i32",
  },
  sendmmsg: { parameters: ["i32", "buffer", "u32", "i32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  __errno_location: { parameters: [], result: "pointer" },
  strerror: { parameters: ["i32"], result: "pointer" },
} as const;

type Libc = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

let libc: Libc | undefined;
let errnoView: Deno.UnsafePointerView | undefined;

function unavailable(reason: string, cause?: unknown): Error {
  return new Error(
    `Cannot listen with the FFI transport: ${reason}`,
    cause === undefined ? undefined : { cause },
  );
}

/** Opens libc once per process; throws a clear error when it cannot. */
function loadLibc(): Libc {
  if (libc !== undefined) return libc;
  const deno = (globalThis as { Deno?: typeof Deno }).Deno;
  if (deno === undefined) {
    throw unavailable(
      "it needs Deno.dlopen, and this is not Deno (on Node.js and Bun, listenUdp uses their own UDP)",
    );
  }
  if (deno.build.os !== "linux") {
    throw unavailable(`only Linux is supported, found ${deno.build.os}`);
  }
  if (typeof deno.dlopen !== "function") {
    throw unavailable(
      'Deno.dlopen is missing; run with --unstable-ffi or add "ffi" to "unstable" in deno.json (Deno 2.9 needs neither)',
    );
  }
  const state = deno.permissions?.querySync?.({ name: "ffi" }).state;
  if (state === "denied") {
    throw new Deno.errors.NotCapable(
      "Cannot listen with the FFI transport: FFI permission denied; run with --allow-ffi (or -A)",
    );
  }
  let library: Deno.DynamicLibrary<typeof SYMBOLS>;
  try {
    library = deno.dlopen("libc.so.6", SYMBOLS);
  } catch (error) {
    if (
      error instanceof Deno.errors.NotCapable ||
      error instanceof Deno.errors.PermissionDenied
    ) {
      throw new Deno.errors.NotCapable(
        "Cannot listen with the FFI transport: FFI permission denied; run with --allow-ffi (or -A)",
        { cause: error },
      );
    }
    throw unavailable(
      `cannot open libc.so.6 (${
        error instanceof Error ? error.message : String(error)
      })`,
      error,
    );
  }
  const errnoPointer = library.symbols.__errno_location();
  if (errnoPointer === null) {
    library.close();
    throw unavailable("libc returned no errno location");
  }
  // errno is per thread; every call here runs on the JavaScript thread.
  errnoView = new Deno.UnsafePointerView(errnoPointer);
  libc = library.symbols;
  return libc;
}

function errno(): number {
  return errnoView!.getInt32(0);
}

function errorText(code: number): string {
  const pointer = libc!.strerror(code);
  const text = pointer === null
    ? "unknown error"
    : Deno.UnsafePointerView.getCString(pointer);
  return `${text} (errno ${code})`;
}

/**
 * A zeroed buffer whose bytes never move. V8 keeps typed arrays of 64
 * bytes or less created by length (or by `slice`) inside its heap, where the
 * garbage collector may move them: any buffer whose address is written into
 * a structure the kernel reads later must come from here instead.
 */
function pinned(bytes: number): Uint8Array {
  return new Uint8Array(new ArrayBuffer(bytes));
}

/** The address of a buffer's first byte, as a number (below 2^53). */
function pointerOf(bytes: Uint8Array): number {
  return Number(Deno.UnsafePointer.value(Deno.UnsafePointer.of(bytes)));
}

/** Writes a 64-bit pointer, little-endian, as two 32-bit halves. */
function setPointer(view: DataView, offset: number, pointer: number): void {
  view.setUint32(offset, pointer % 4294967296, true);
  view.setUint32(offset + 4, Math.floor(pointer / 4294967296), true);
}

/**
 * Why the FFI transport cannot be used here, or `undefined` when it can:
 * not Linux, no FFI permission, or no libc. Tests and tools call it to skip
 * or fall back with a clear message.
 *
 * @returns The reason, as {@linkcode listenUdpFfi} would throw it, or
 * `undefined`.
 *
 * @example
 * ```ts ignore
 * import { ffiTransportUnavailable, listenUdpFfi } from "./socket_ffi.ts";
 * import { listenUdp } from "./socket.ts";
 *
 * const reason = ffiTransportUnavailable();
 * if (reason) console.log(reason);
 * using socket = reason ? listenUdp("127.0.0.1:0") : listenUdpFfi("127.0.0.1:0");
 * ```
 */
export function ffiTransportUnavailable(): string | undefined {
  try {
    loadLibc();
    return undefined;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}

/** Network byte order port at `offset`. */
function readPort(bytes: Uint8Array, offset: number): number {
  return (bytes[offset] << 8) | bytes[offset + 1];
}

const scratch = new Uint8Array(32);
const scratchView = new DataView(scratch.buffer);

/**
 * The `sockaddr` for an address, in a new buffer: `sockaddr_in` (16 bytes)
 * for IPv4 on an IPv4 socket, `sockaddr_in6` (28 bytes) on an IPv6 socket
 * (IPv4 written as `::ffff:a.b.c.d`). Returns `undefined` when the family
 * cannot be reached from this socket (IPv6 from an IPv4 socket).
 * @throws {TypeError} When the hostname is not an IP address.
 */
function encodeSockaddr(
  address: Address,
  socketFamily: number,
): Uint8Array | undefined {
  // writeAddress validates and gives the octets or the 8 groups (LE).
  writeAddress(scratchView, 0, { hostname: address.hostname, port: 0 });
  const ipv6 = scratch[0] === 2;
  const port = address.port;
  if (socketFamily === AF_INET) {
    let octets: number[];
    if (!ipv6) {
      octets = [scratch[1], scratch[2], scratch[3], scratch[4]];
    } else {
      // Only an IPv4-mapped IPv6 address reaches an IPv4 socket's peers.
      for (let g = 0; g < 5; g++) {
        if (scratchView.getUint16(1 + 2 * g, true) !== 0) return undefined;
      }
      if (scratchView.getUint16(11, true) !== 0xffff) return undefined;
      const high = scratchView.getUint16(13, true);
      const low = scratchView.getUint16(15, true);
      octets = [high >> 8, high & 255, low >> 8, low & 255];
    }
    const out = pinned(SOCKADDR_IN_BYTES);
    out[0] = AF_INET & 255;
    out[1] = AF_INET >> 8;
    out[2] = port >> 8;
    out[3] = port & 255;
    out.set(octets, 4);
    return out;
  }
  const out = pinned(SOCKADDR_IN6_BYTES);
  out[0] = AF_INET6 & 255;
  out[1] = AF_INET6 >> 8;
  out[2] = port >> 8;
  out[3] = port & 255;
  if (ipv6) {
    for (let g = 0; g < 8; g++) {
      const group = scratchView.getUint16(1 + 2 * g, true);
      out[8 + 2 * g] = group >> 8;
      out[9 + 2 * g] = group & 255;
    }
  } else {
    out[18] = 0xff;
    out[19] = 0xff;
    out.set(scratch.subarray(1, 5), 20);
  }
  return out;
}

/** The canonical address of a `sockaddr` (as `parseAddress` writes it). */
function decodeSockaddr(bytes: Uint8Array): Address {
  const family = bytes[0] | (bytes[1] << 8);
  const port = readPort(bytes, 2);
  if (family === AF_INET) {
    return Object.freeze({
      hostname: `${bytes[4]}.${bytes[5]}.${bytes[6]}.${bytes[7]}`,
      port,
    });
  }
  const groups: string[] = [];
  for (let g = 0; g < 8; g++) {
    groups.push(((bytes[8 + 2 * g] << 8) | bytes[9 + 2 * g]).toString(16));
  }
  // parseAddress canonicalises (RFC 5952, ::ffff:a.b.c.d for mapped IPv4).
  return Object.freeze({
    hostname: parseAddress(`[${groups.join(":")}]`).hostname,
    port,
  });
}

/** A destination: its sockaddr bytes and their address in memory. */
interface Target {
  readonly sockaddr: Uint8Array;
  readonly pointer: number;
}

interface CachedPeer {
  readonly address: Address;
  /** The sockaddr bytes (family, port, address, scope) it was made from. */
  readonly sockaddr: Uint8Array;
}

/**
 * Opens a non-blocking UDP socket through libc (`Deno.dlopen`), Linux only.
 * `poll()` returns the next datagram, taking a batch from the kernel with
 * `recvmmsg` when the last one is used up, or `undefined` on `EAGAIN`.
 * `send()` copies the datagram into a batch that `sendmmsg` hands to the
 * kernel when full, on {@linkcode FfiUdpSocket.flush}, on `close()`, or at
 * the end of the current task (a microtask): the sends of one server tick
 * leave together when the tick returns. Refusals are counted in
 * {@linkcode FfiUdpSocketStats.sendErrors}, never thrown. Received `from`
 * addresses carry canonical hostnames, as with `listenUdp`'s sockets, and
 * are frozen and shared for a peer that keeps sending.
 *
 * Needs `--allow-ffi` (Deno 2.9 needs no `--unstable-ffi`). No `--allow-net`:
 * the permission to call native code covers the socket.
 *
 * Addresses given to `send()` are treated as immutable: the `sockaddr`
 * built for an {@linkcode Address} object is kept (weakly) beside it.
 *
 * @param options Where to bind, buffer sizes and the address cache: options,
 * an {@linkcode Address}, or an address string such as `"127.0.0.1:40000"`.
 * @returns The open socket.
 * @throws {Error} On another system than Linux (`Cannot listen with the FFI
 * transport: only Linux is supported, found darwin`), or when binding fails
 * (`Deno.errors.AddrInUse`, `AddrNotAvailable`, `PermissionDenied`).
 * @throws {Deno.errors.NotCapable} Without the FFI permission.
 * @throws {TypeError} When the hostname is not an IP address.
 * @throws {RangeError} When the port or a size is out of range.
 *
 * @example
 * ```ts ignore
 * import { listenUdpFfi } from "./socket_ffi.ts";
 *
 * using a = listenUdpFfi({ hostname: "127.0.0.1", port: 0 });
 * using b = listenUdpFfi("127.0.0.1:0");
 * b.send(new Uint8Array([1, 2, 3]), a.address);
 * for (let d = a.poll(); d !== undefined; d = a.poll()) console.log(d.data, d.from);
 * ```
 */
export function listenUdpFfi(
  options: ListenUdpFfiOptions | Address | string = {},
): FfiUdpSocket {
  const { options: opts, hostname, port, label } = readListenTarget<
    ListenUdpFfiOptions
  >(options);
  const bindAddress: Address = { hostname, port };
  const maxDatagramBytes = checkListenCount(
    label,
    "maxDatagramBytes",
    opts.maxDatagramBytes ?? DEFAULT_MAX_DATAGRAM_BYTES,
    1,
    MAX_UDP_PAYLOAD_BYTES,
  );
  const wantedReceiveBuffer = checkListenCount(
    label,
    "receiveBufferBytes",
    opts.receiveBufferBytes ?? DEFAULT_RECEIVE_BUFFER_BYTES,
    1024,
    0x3fffffff,
  );
  const wantedSendBuffer = checkListenCount(
    label,
    "sendBufferBytes",
    opts.sendBufferBytes ?? DEFAULT_SEND_BUFFER_BYTES,
    1024,
    0x3fffffff,
  );
  const maxCachedAddresses = checkListenCount(
    label,
    "maxCachedAddresses",
    opts.maxCachedAddresses ?? DEFAULT_MAX_CACHED_ADDRESSES,
    1,
    MAX_CACHED_ADDRESSES_LIMIT,
  );
  const receiveBatch = checkListenCount(
    label,
    "receiveBatch",
    opts.receiveBatch ?? DEFAULT_RECEIVE_BATCH,
    1,
    MAX_BATCH,
  );
  const sendBatch = checkListenCount(
    label,
    "sendBatch",
    opts.sendBatch ?? DEFAULT_SEND_BATCH,
    1,
    MAX_BATCH,
  );
  const receiveBuffers = opts.receiveBuffers ?? "slab";
  if (
    receiveBuffers !== "slab" && receiveBuffers !== "copy" &&
    receiveBuffers !== "shared"
  ) {
    throw new TypeError(
      `Cannot listen on ${label}: receiveBuffers must be "slab", "copy" or "shared", got ${
        String(receiveBuffers)
      }`,
    );
  }

  const c = loadLibc();
  const family = isIpv6(bindAddress) ? AF_INET6 : AF_INET;
  const fd = c.socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    throw new Error(
      `Cannot listen on ${label}: socket() failed: ${errorText(errno())}`,
    );
  }
  const option = new Int32Array(1);
  const optionBytes = new Uint8Array(option.buffer);
  const optionLength = new Uint32Array(1);
  const optionLengthBytes = new Uint8Array(optionLength.buffer);
  function setOption(level: number, name: number, value: number): void {
    option[0] = value;
    // A refused size is not fatal: the kernel keeps its default.
    c.setsockopt(fd, level, name, optionBytes, 4);
  }
  function getOption(level: number, name: number): number {
    optionLength[0] = 4;
    return c.getsockopt(fd, level, name, optionBytes, optionLengthBytes) === 0
      ? option[0]
      : 0;
  }
  let receiveBufferBytes: number;
  let sendBufferBytes: number;
  try {
    setOption(SOL_SOCKET, SO_RCVBUF, wantedReceiveBuffer);
    setOption(SOL_SOCKET, SO_SNDBUF, wantedSendBuffer);
    receiveBufferBytes = getOption(SOL_SOCKET, SO_RCVBUF);
    sendBufferBytes = getOption(SOL_SOCKET, SO_SNDBUF);
    if (family === AF_INET6 && opts.ipv6Only !== undefined) {
      setOption(IPPROTO_IPV6, IPV6_V6ONLY, opts.ipv6Only ? 1 : 0);
    }
    const local = encodeSockaddr(
      { hostname: bindAddress.hostname, port },
      family,
    )!;
    if (c.bind(fd, local, local.length) !== 0) {
      const code = errno();
      const cause = new Error(errorText(code));
      if (code === EADDRINUSE) {
        throw new Deno.errors.AddrInUse(
          `Cannot listen on ${label}: address in use`,
          { cause },
        );
      }
      if (code === EADDRNOTAVAIL) {
        throw new Deno.errors.AddrNotAvailable(
          `Cannot listen on ${label}: address not available on this machine`,
          { cause },
        );
      }
      if (code === EACCES) {
        throw new Deno.errors.PermissionDenied(
          `Cannot listen on ${label}: permission denied`,
          { cause },
        );
      }
      throw new Error(`Cannot listen on ${label}: ${errorText(code)}`, {
        cause,
      });
    }
  } catch (error) {
    c.close(fd);
    throw error;
  }
  const boundBytes = new Uint8Array(SOCKADDR_IN6_BYTES);
  optionLength[0] = SOCKADDR_IN6_BYTES;
  c.getsockname(fd, boundBytes, optionLengthBytes);
  const address: Address = Object.freeze({
    hostname: bindAddress.hostname,
    port: readPort(boundBytes, 2),
  });
  const closedMessage = `Cannot send datagram: the socket on ${
    formatAddress(address)
  } is closed`;

  const stats = {
    received: 0,
    oversized: 0,
    receiveErrors: 0,
    sent: 0,
    sendErrors: 0,
    sendDropped: 0,
    addressCacheMisses: 0,
  };
  let open = true;

  // Receiving: recvmmsg fills up to `receiveBatch` entries of a fixed
  // area at once; poll() hands them out one by one. MSG_TRUNC makes each
  // entry's length the datagram's real length, so a larger one is seen and
  // dropped, never cut short.
  const stride = (maxDatagramBytes + 7) & ~7;
  const receiveArea = pinned(receiveBatch * stride);
  const receiveEntries = Array.from(
    { length: receiveBatch },
    (_, i) => receiveArea.subarray(i * stride, i * stride + maxDatagramBytes),
  );
  const receiveNames = pinned(receiveBatch * SOCKADDR_IN6_BYTES);
  const receiveMessages = pinned(receiveBatch * MMSGHDR_BYTES);
  const receiveMessagesView = new DataView(receiveMessages.buffer);
  const receiveIovecs = pinned(receiveBatch * IOVEC_BYTES);
  const receiveIovecsView = new DataView(receiveIovecs.buffer);
  const receiveAreaPointer = pointerOf(receiveArea);
  const receiveNamesPointer = pointerOf(receiveNames);
  const receiveIovecsPointer = pointerOf(receiveIovecs);
  for (let i = 0; i < receiveBatch; i++) {
    setPointer(
      receiveIovecsView,
      i * IOVEC_BYTES,
      receiveAreaPointer + i * stride,
    );
    receiveIovecsView.setUint32(i * IOVEC_BYTES + 8, maxDatagramBytes, true);
    const message = i * MMSGHDR_BYTES;
    setPointer(
      receiveMessagesView,
      message + MSG_NAME,
      receiveNamesPointer + i * SOCKADDR_IN6_BYTES,
    );
    receiveMessagesView.setUint32(
      message + MSG_NAMELEN,
      SOCKADDR_IN6_BYTES,
      true,
    );
    setPointer(
      receiveMessagesView,
      message + MSG_IOV,
      receiveIovecsPointer + i * IOVEC_BYTES,
    );
    receiveMessagesView.setUint32(message + MSG_IOVLEN, 1, true);
  }
  let received = 0;
  let handedOut = 0;
  const receiveFlags = MSG_DONTWAIT | MSG_TRUNC;
  // "slab": each datagram is copied out of the batch area into a 64 KB slab
  // (8-byte aligned), a new slab when the current one is full.
  const slabBytes = Math.max(SLAB_BYTES, 4 * maxDatagramBytes);
  let slab = new ArrayBuffer(receiveBuffers === "slab" ? slabBytes : 0);
  let slabOffset = 0;

  // Recent peers by a number made from their sockaddr: exact for IPv4
  // (address * 2^16 + port < 2^48); a hash for IPv6, checked on a hit.
  const peers = new Map<number, CachedPeer>();
  // Where to send, by Address object: its sockaddr and that one's address.
  const targets = new WeakMap<Address, Target>();

  function target(sockaddr: Uint8Array): Target {
    return { sockaddr, pointer: pointerOf(sockaddr) };
  }

  function lookupPeer(from: Uint8Array, at: number): Address {
    let key: number;
    if (from[at] === AF_INET && from[at + 1] === 0) {
      key = (((from[at + 4] << 24) | (from[at + 5] << 16) |
            (from[at + 6] << 8) | from[at + 7]) >>> 0) * TWO_16 +
        ((from[at + 2] << 8) | from[at + 3]);
      const hit = peers.get(key);
      if (hit !== undefined) return hit.address;
    } else {
      // FNV-1a over port, address and scope id (bytes 2-3, 8-27).
      let hash = 0x811c9dc5;
      hash = Math.imul(hash ^ from[at + 2], 0x01000193);
      hash = Math.imul(hash ^ from[at + 3], 0x01000193);
      for (let i = 8; i < SOCKADDR_IN6_BYTES; i++) {
        hash = Math.imul(hash ^ from[at + i], 0x01000193);
      }
      key = IPV6_KEY_BASE + (hash >>> 0) * TWO_16 +
        ((from[at + 2] << 8) | from[at + 3]);
      const hit = peers.get(key);
      if (hit !== undefined) {
        const bytes = hit.sockaddr;
        let same = bytes[2] === from[at + 2] && bytes[3] === from[at + 3];
        for (let i = 8; same && i < SOCKADDR_IN6_BYTES; i++) {
          same = bytes[i] === from[at + i];
        }
        if (same) return hit.address;
        peers.delete(key);
      }
    }
    stats.addressCacheMisses++;
    const length = from[at] === AF_INET
      ? SOCKADDR_IN_BYTES
      : SOCKADDR_IN6_BYTES;
    const sockaddr = pinned(length);
    sockaddr.set(from.subarray(at, at + length));
    if (length === SOCKADDR_IN6_BYTES) sockaddr.fill(0, 4, 8); // flow info
    const peer: CachedPeer = { address: decodeSockaddr(sockaddr), sockaddr };
    if (peers.size >= maxCachedAddresses) {
      peers.delete(peers.keys().next().value!);
    }
    peers.set(key, peer);
    targets.set(peer.address, target(sockaddr));
    return peer.address;
  }

  /** Refills the batch; false when nothing is waiting (or on an error). */
  function receiveBatchNow(): boolean {
    // The kernel wrote each used entry's name length: restore it.
    for (let i = 0; i < received; i++) {
      receiveMessagesView.setUint32(
        i * MMSGHDR_BYTES + MSG_NAMELEN,
        SOCKADDR_IN6_BYTES,
        true,
      );
    }
    received = 0;
    handedOut = 0;
    for (let attempt = 0; attempt < 3; attempt++) {
      const count = c.recvmmsg(
        fd,
        receiveMessages,
        receiveBatch,
        receiveFlags,
        null,
      );
      if (count > 0) {
        received = count;
        return true;
      }
      if (count === 0) return false;
      const code = errno();
      if (code === EAGAIN) return false;
      if (code !== EINTR) {
        stats.receiveErrors++;
        return false;
      }
    }
    return false;
  }

  function poll(): Datagram | undefined {
    if (!open) return undefined;
    for (let skipped = 0; skipped < MAX_SKIPPED_PER_POLL; skipped++) {
      if (handedOut === received && !receiveBatchNow()) return undefined;
      const i = handedOut++;
      const message = i * MMSGHDR_BYTES;
      const length = receiveMessagesView.getUint32(message + MSG_LEN, true);
      if (
        length > maxDatagramBytes ||
        (receiveMessagesView.getInt32(message + MSG_FLAGS, true) &
            MSG_TRUNC) !== 0
      ) {
        stats.oversized++;
        continue;
      }
      const peer = lookupPeer(receiveNames, i * SOCKADDR_IN6_BYTES);
      stats.received++;
      const entry = receiveEntries[i];
      let data: Uint8Array;
      if (receiveBuffers === "slab") {
        if (slabOffset + length > slabBytes) {
          slab = new ArrayBuffer(slabBytes);
          slabOffset = 0;
        }
        data = new Uint8Array(slab, slabOffset, length);
        data.set(
          length === maxDatagramBytes ? entry : entry.subarray(0, length),
        );
        slabOffset += (length + 7) & ~7;
      } else {
        data = receiveBuffers === "copy"
          ? entry.slice(0, length)
          : entry.subarray(0, length);
      }
      return { data, from: peer };
    }
    return undefined;
  }

  // Sending: send() copies the datagram into the next entry of a fixed
  // area; the batch goes out with one sendmmsg when full, when flush() is
  // called, or at the end of the current task (a microtask), whichever
  // comes first.
  const sendArea = pinned(sendBatch * stride);
  const sendMessages = pinned(sendBatch * MMSGHDR_BYTES);
  const sendMessagesView = new DataView(sendMessages.buffer);
  const sendIovecs = pinned(sendBatch * IOVEC_BYTES);
  const sendIovecsView = new DataView(sendIovecs.buffer);
  const sendAreaPointer = pointerOf(sendArea);
  const sendIovecsPointer = pointerOf(sendIovecs);
  for (let i = 0; i < sendBatch; i++) {
    setPointer(sendIovecsView, i * IOVEC_BYTES, sendAreaPointer + i * stride);
    setPointer(
      sendMessagesView,
      i * MMSGHDR_BYTES + MSG_IOV,
      sendIovecsPointer + i * IOVEC_BYTES,
    );
    sendMessagesView.setUint32(i * MMSGHDR_BYTES + MSG_IOVLEN, 1, true);
  }
  // The kernel reads and writes these through the addresses written above,
  // which the garbage collector cannot see: hold them until close().
  const pinnedBuffers: Uint8Array[] = [
    receiveArea,
    receiveNames,
    receiveMessages,
    receiveIovecs,
    sendArea,
    sendMessages,
    sendIovecs,
  ];
  /** The targets of the queued datagrams, kept alive until they are sent. */
  const pendingTargets: (Target | undefined)[] = new Array(sendBatch).fill(
    undefined,
  );
  let pending = 0;
  let flushQueued = false;

  function targetFor(to: Address): Target | undefined {
    const known = targets.get(to);
    if (known !== undefined) return known;
    if (
      to === null || typeof to !== "object" || typeof to.hostname !== "string"
    ) {
      throw new TypeError(
        "Cannot send datagram: the destination is not an address",
      );
    }
    const port = to.port;
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      throw new RangeError(
        `Cannot send datagram: port ${port} is not from 1 to 65535`,
      );
    }
    let sockaddr: Uint8Array | undefined;
    try {
      sockaddr = encodeSockaddr(to, family);
    } catch (error) {
      throw new TypeError(
        `Cannot send datagram: "${to.hostname}" is not an IP address`,
        { cause: error },
      );
    }
    if (sockaddr === undefined) return undefined;
    const made = target(sockaddr);
    targets.set(to, made);
    return made;
  }

  function send(data: Uint8Array, to: Address): void {
    if (!open) throw new TypeError(closedMessage);
    if (!(data instanceof Uint8Array)) {
      throw new TypeError("Cannot send datagram: data is not a Uint8Array");
    }
    const length = data.length;
    if (length > maxDatagramBytes) {
      throw new RangeError(
        `Cannot send datagram: ${length} bytes exceeds the ${maxDatagramBytes} byte limit`,
      );
    }
    const destination = targetFor(to);
    if (destination === undefined) {
      // An IPv6 destination from an IPv4 socket: the system would refuse.
      stats.sendErrors++;
      return;
    }
    const i = pending++;
    sendArea.set(data, i * stride);
    sendIovecsView.setUint32(i * IOVEC_BYTES + 8, length, true);
    const message = i * MMSGHDR_BYTES;
    setPointer(sendMessagesView, message + MSG_NAME, destination.pointer);
    sendMessagesView.setUint32(
      message + MSG_NAMELEN,
      destination.sockaddr.length,
      true,
    );
    pendingTargets[i] = destination;
    if (pending === sendBatch) {
      flush();
    } else if (!flushQueued) {
      flushQueued = true;
      queueMicrotask(flushLater);
    }
  }

  function flushLater(): void {
    flushQueued = false;
    if (open) flush();
  }

  function flush(): void {
    const count = pending;
    let next = 0;
    for (let calls = 0; next < count && calls < 2 * count + 2; calls++) {
      const sent = c.sendmmsg(
        fd,
        next === 0 ? sendMessages : sendMessages.subarray(next * MMSGHDR_BYTES),
        count - next,
        0,
      );
      if (sent > 0) {
        stats.sent += sent;
        next += sent;
        continue;
      }
      const code = errno();
      if (code === EINTR) continue;
      // The datagram at `next` was refused; go on with the rest.
      if (code === EAGAIN || code === ENOBUFS) stats.sendDropped++;
      else stats.sendErrors++;
      next++;
    }
    if (next < count) stats.sendErrors += count - next;
    pendingTargets.fill(undefined, 0, count);
    pending = 0;
  }

  function close(): void {
    if (!open) return;
    flush();
    open = false;
    c.close(fd);
    peers.clear();
    // Only now may the buffers the kernel used go.
    pinnedBuffers.length = 0;
  }

  return {
    address,
    stats,
    receiveBufferBytes,
    sendBufferBytes,
    send,
    poll,
    flush,
    close,
    [Symbol.dispose]: close,
  };
}
