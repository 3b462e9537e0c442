/**
 * The load harness's cheap client sockets (`--client-transport mux`, Linux):
 * many netcode clients share one UDP socket, each with its own address.
 *
 * Every address in 127.0.0.0/8 is local on Linux. The shared socket is bound
 * to 0.0.0.0 on one port; client `k` sends from 127.1.(k >> 8).(k & 255) on
 * that port by naming the source in an `IP_PKTINFO` control message, and the
 * server's echoes to that address arrive on the shared socket with the same
 * control message telling which client they are for. So the server sees N
 * peers with N addresses, as with one socket per client, while the client
 * process sends and receives for all of them with one `sendmmsg` or
 * `recvmmsg` per 64 datagrams instead of two system calls per client per
 * tick: the clients stand in for players on other machines, and should not
 * be what limits the measurement. The server's transport is not involved.
 *
 * This is a tool, not part of the library: it assumes x86-64 or arm64 Linux
 * (64-bit pointers, little-endian) and IPv4.
 *
 * @module
 */

import type { Address } from "../address.ts";
import type { Datagram, DatagramSocket } from "../socket.ts";

const AF_INET = 2;
const SOCK_DGRAM = 2;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1;
const SO_SNDBUF = 7;
const SO_RCVBUF = 8;
const IPPROTO_IP = 0;
const IP_PKTINFO = 8;
const MSG_TRUNC = 0x20;
const EAGAIN = 11;
const EINTR = 4;

// struct mmsghdr on 64-bit Linux: msghdr (56 bytes) + msg_len, padded to 64.
const MMSGHDR_BYTES = 64;
const MSG_NAME = 0;
const MSG_NAMELEN = 8;
const MSG_IOV = 16;
const MSG_IOVLEN = 24;
const MSG_CONTROL = 32;
const MSG_CONTROLLEN = 40;
const MSG_FLAGS = 48;
const MSG_LEN = 56;
const IOVEC_BYTES = 16;
const SOCKADDR_IN_BYTES = 16;
// A cmsghdr (len u64, level i32, type i32) then struct in_pktinfo (ifindex,
// spec_dst, addr): CMSG_LEN 28, CMSG_SPACE 32.
const PKTINFO_CMSG_LEN = 28;
const PKTINFO_CMSG_SPACE = 32;
const PKTINFO_SPEC_DST = 20;
const PKTINFO_ADDR = 24;
/** Room for the control messages of one received datagram. */
const RECEIVE_CONTROL_BYTES = 64;

const BATCH = 64;
const DATAGRAM_BYTES = 1500;
const SLAB_BYTES = 65536;

const SYMBOLS = {
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  getsockname: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  setsockopt: {
    parameters: ["i32", "i32", "i32", "buffer", "u32"],
    result: "i32",
  },
  recvmmsg: {
    parameters: ["i32", "buffer", "u32", "i32", "pointer"],
    result: "i32",
  },
  sendmmsg: { parameters: ["i32", "buffer", "u32", "i32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  __errno_location: { parameters: [], result: "pointer" },
} as const;

/** Counters of a multiplexer. */
export interface MuxStats {
  sent: number;
  sendErrors: number;
  received: number;
  /** Datagrams for no client of this process, from elsewhere, or too big. */
  dropped: number;
}

/** One shared socket standing in for `count` client sockets. */
export interface ClientMultiplexer {
  /** The virtual socket of each client, in id order. */
  readonly sockets: DatagramSocket[];
  /** Receives everything waiting and hands it to the clients' sockets. */
  pump(): void;
  /** Sends the datagrams queued since the last flush. */
  flush(): void;
  readonly stats: MuxStats;
  close(): void;
}

/** A buffer whose bytes never move (the kernel reads addresses into it). */
function pinned(bytes: number): Uint8Array {
  return new Uint8Array(new ArrayBuffer(bytes));
}

function pointerOf(bytes: Uint8Array): number {
  return Number(Deno.UnsafePointer.value(Deno.UnsafePointer.of(bytes)));
}

function setPointer(view: DataView, offset: number, pointer: number): void {
  view.setUint32(offset, pointer % 4294967296, true);
  view.setUint32(offset + 4, Math.floor(pointer / 4294967296), true);
}

/** The 127.1.x.y address of client id `id` (1..65535). */
export function muxClientHostname(id: number): string {
  return `127.1.${id >> 8}.${id & 255}`;
}

/**
 * Opens the shared socket for clients `firstId .. firstId + count - 1`,
 * talking to `server` (an IPv4 address).
 */
export function openClientMultiplexer(
  firstId: number,
  count: number,
  server: Address,
): ClientMultiplexer {
  if (Deno.build.os !== "linux") {
    throw new Error("--client-transport mux needs Linux");
  }
  if (firstId < 1 || firstId + count - 1 > 65535) {
    throw new RangeError("mux client ids must be 1..65535");
  }
  const library = Deno.dlopen("libc.so.6", SYMBOLS);
  const c = library.symbols;
  const errnoView = new Deno.UnsafePointerView(c.__errno_location()!);
  const fail = (what: string): never => {
    throw new Error(`mux: ${what} failed (errno ${errnoView.getInt32(0)})`);
  };

  const fd = c.socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) fail("socket");
  const option = pinned(4);
  const optionView = new DataView(option.buffer);
  optionView.setInt32(0, 1, true);
  if (c.setsockopt(fd, IPPROTO_IP, IP_PKTINFO, option, 4) !== 0) {
    fail("IP_PKTINFO");
  }
  for (const [name, bytes] of [[SO_RCVBUF, 8 << 20], [SO_SNDBUF, 4 << 20]]) {
    optionView.setInt32(0, bytes, true);
    c.setsockopt(fd, SOL_SOCKET, name, option, 4); // best effort
  }
  const bound = pinned(SOCKADDR_IN_BYTES);
  new DataView(bound.buffer).setUint16(0, AF_INET, true); // 0.0.0.0:0
  if (c.bind(fd, bound, SOCKADDR_IN_BYTES) !== 0) fail("bind");
  const boundLength = pinned(4);
  new DataView(boundLength.buffer).setUint32(0, SOCKADDR_IN_BYTES, true);
  if (c.getsockname(fd, bound, boundLength) !== 0) fail("getsockname");
  const port = (bound[2] << 8) | bound[3];

  // The server's sockaddr_in, and its address object for received datagrams.
  const serverOctets = server.hostname.split(".").map(Number);
  if (serverOctets.length !== 4 || serverOctets.some((o) => !(o >= 0))) {
    throw new TypeError(`mux: the server must be IPv4, got ${server.hostname}`);
  }
  const serverSockaddr = pinned(SOCKADDR_IN_BYTES);
  const serverView = new DataView(serverSockaddr.buffer);
  serverView.setUint16(0, AF_INET, true);
  serverView.setUint16(2, server.port, false);
  serverSockaddr.set(serverOctets, 4);
  const serverFrom: Address = Object.freeze({
    hostname: server.hostname,
    port: server.port,
  });

  const stats: MuxStats = { sent: 0, sendErrors: 0, received: 0, dropped: 0 };
  const inboxes: Datagram[][] = Array.from({ length: count }, () => []);
  const inboxHeads = new Int32Array(count);

  // Send side: BATCH messages, each with its data area, iovec and pktinfo.
  const sendData = pinned(BATCH * DATAGRAM_BYTES);
  const sendIovecs = pinned(BATCH * IOVEC_BYTES);
  const sendControl = pinned(BATCH * PKTINFO_CMSG_SPACE);
  const sendMessages = pinned(BATCH * MMSGHDR_BYTES);
  const sendIovecsView = new DataView(sendIovecs.buffer);
  const sendControlView = new DataView(sendControl.buffer);
  const sendMessagesView = new DataView(sendMessages.buffer);
  // Receive side: the same, with room for the sender's address.
  const receiveData = pinned(BATCH * DATAGRAM_BYTES);
  const receiveNames = pinned(BATCH * SOCKADDR_IN_BYTES);
  const receiveIovecs = pinned(BATCH * IOVEC_BYTES);
  const receiveControl = pinned(BATCH * RECEIVE_CONTROL_BYTES);
  const receiveMessages = pinned(BATCH * MMSGHDR_BYTES);
  const receiveIovecsView = new DataView(receiveIovecs.buffer);
  const receiveControlView = new DataView(receiveControl.buffer);
  const receiveMessagesView = new DataView(receiveMessages.buffer);
  for (let i = 0; i < BATCH; i++) {
    const m = i * MMSGHDR_BYTES;
    setPointer(
      sendIovecsView,
      i * IOVEC_BYTES,
      pointerOf(sendData) + i * DATAGRAM_BYTES,
    );
    setPointer(sendMessagesView, m + MSG_NAME, pointerOf(serverSockaddr));
    sendMessagesView.setUint32(m + MSG_NAMELEN, SOCKADDR_IN_BYTES, true);
    setPointer(
      sendMessagesView,
      m + MSG_IOV,
      pointerOf(sendIovecs) + i * IOVEC_BYTES,
    );
    sendMessagesView.setUint32(m + MSG_IOVLEN, 1, true);
    setPointer(
      sendMessagesView,
      m + MSG_CONTROL,
      pointerOf(sendControl) + i * PKTINFO_CMSG_SPACE,
    );
    sendMessagesView.setUint32(m + MSG_CONTROLLEN, PKTINFO_CMSG_SPACE, true);
    const cmsg = i * PKTINFO_CMSG_SPACE;
    sendControlView.setUint32(cmsg, PKTINFO_CMSG_LEN, true);
    sendControlView.setInt32(cmsg + 8, IPPROTO_IP, true);
    sendControlView.setInt32(cmsg + 12, IP_PKTINFO, true);

    setPointer(
      receiveIovecsView,
      i * IOVEC_BYTES,
      pointerOf(receiveData) + i * DATAGRAM_BYTES,
    );
    receiveIovecsView.setUint32(i * IOVEC_BYTES + 8, DATAGRAM_BYTES, true);
    setPointer(
      receiveMessagesView,
      m + MSG_NAME,
      pointerOf(receiveNames) + i * SOCKADDR_IN_BYTES,
    );
    setPointer(
      receiveMessagesView,
      m + MSG_IOV,
      pointerOf(receiveIovecs) + i * IOVEC_BYTES,
    );
    receiveMessagesView.setUint32(m + MSG_IOVLEN, 1, true);
    setPointer(
      receiveMessagesView,
      m + MSG_CONTROL,
      pointerOf(receiveControl) + i * RECEIVE_CONTROL_BYTES,
    );
  }
  // The kernel follows the pointers written above: every buffer they point
  // to must stay alive as long as the socket (the iovec arrays, for one, are
  // not used from JavaScript after this).
  const keepAlive = [
    bound,
    serverSockaddr,
    sendData,
    sendIovecs,
    sendControl,
    sendMessages,
    receiveData,
    receiveNames,
    receiveIovecs,
    receiveControl,
    receiveMessages,
  ];
  let pending = 0;

  function flush(): void {
    let next = 0;
    while (next < pending) {
      const sent = c.sendmmsg(
        fd,
        next === 0 ? sendMessages : sendMessages.subarray(next * MMSGHDR_BYTES),
        pending - next,
        0,
      );
      if (sent > 0) {
        stats.sent += sent;
        next += sent;
      } else if (errnoView.getInt32(0) !== EINTR) {
        stats.sendErrors++;
        next++;
      }
    }
    pending = 0;
  }

  let slab = new Uint8Array(SLAB_BYTES);
  let slabUsed = 0;

  function receiveBatch(): number {
    for (let i = 0; i < BATCH; i++) {
      const m = i * MMSGHDR_BYTES;
      receiveMessagesView.setUint32(m + MSG_NAMELEN, SOCKADDR_IN_BYTES, true);
      receiveMessagesView.setUint32(
        m + MSG_CONTROLLEN,
        RECEIVE_CONTROL_BYTES,
        true,
      );
      receiveMessagesView.setInt32(m + MSG_FLAGS, 0, true);
    }
    for (;;) {
      const n = c.recvmmsg(fd, receiveMessages, BATCH, 0, null);
      if (n >= 0) return n;
      const code = errnoView.getInt32(0);
      if (code === EAGAIN) return 0;
      if (code !== EINTR) return 0;
    }
  }

  function pump(): void {
    for (let n = receiveBatch(); n > 0; n = n === BATCH ? receiveBatch() : 0) {
      for (let i = 0; i < n; i++) {
        const m = i * MMSGHDR_BYTES;
        const length = receiveMessagesView.getUint32(m + MSG_LEN, true);
        const name = i * SOCKADDR_IN_BYTES;
        const cmsg = i * RECEIVE_CONTROL_BYTES;
        const fromServer = receiveNames[name + 2] === serverSockaddr[2] &&
          receiveNames[name + 3] === serverSockaddr[3] &&
          receiveNames[name + 4] === serverSockaddr[4] &&
          receiveNames[name + 5] === serverSockaddr[5] &&
          receiveNames[name + 6] === serverSockaddr[6] &&
          receiveNames[name + 7] === serverSockaddr[7];
        const hasPktinfo =
          receiveMessagesView.getUint32(m + MSG_CONTROLLEN, true) >=
            PKTINFO_CMSG_LEN &&
          receiveControlView.getInt32(cmsg + 8, true) === IPPROTO_IP &&
          receiveControlView.getInt32(cmsg + 12, true) === IP_PKTINFO;
        // The datagram's destination: 127.1.hi.lo is client id hi << 8 | lo.
        const to = cmsg + PKTINFO_ADDR;
        const index = receiveControl[to] === 127 && receiveControl[to + 1] === 1
          ? ((receiveControl[to + 2] << 8) | receiveControl[to + 3]) - firstId
          : -1;
        if (
          !fromServer || !hasPktinfo || index < 0 || index >= count ||
          length > DATAGRAM_BYTES ||
          (receiveMessagesView.getInt32(m + MSG_FLAGS, true) & MSG_TRUNC) !== 0
        ) {
          stats.dropped++;
          continue;
        }
        if (slabUsed + length > SLAB_BYTES) {
          slab = new Uint8Array(SLAB_BYTES);
          slabUsed = 0;
        }
        const data = slab.subarray(slabUsed, slabUsed + length);
        data.set(
          receiveData.subarray(i * DATAGRAM_BYTES, i * DATAGRAM_BYTES + length),
        );
        slabUsed += length;
        inboxes[index].push({ data, from: serverFrom });
        stats.received++;
      }
    }
  }

  const sockets: DatagramSocket[] = [];
  for (let index = 0; index < count; index++) {
    const id = firstId + index;
    const address: Address = Object.freeze({
      hostname: muxClientHostname(id),
      port,
    });
    const inbox = inboxes[index];
    sockets.push({
      address,
      send(data: Uint8Array, to: Address): void {
        if (to.port !== server.port || to.hostname !== server.hostname) {
          stats.dropped++;
          return;
        }
        if (data.length > DATAGRAM_BYTES) {
          throw new RangeError("mux: datagram too big");
        }
        if (pending === BATCH) flush();
        const i = pending++;
        sendData.set(data, i * DATAGRAM_BYTES);
        sendIovecsView.setUint32(i * IOVEC_BYTES + 8, data.length, true);
        // in_pktinfo.ipi_spec_dst: the source address, 127.1.hi.lo.
        const dst = i * PKTINFO_CMSG_SPACE + PKTINFO_SPEC_DST;
        sendControl[dst] = 127;
        sendControl[dst + 1] = 1;
        sendControl[dst + 2] = id >> 8;
        sendControl[dst + 3] = id & 255;
      },
      poll(): Datagram | undefined {
        const head = inboxHeads[index];
        if (head === inbox.length) {
          if (head > 0) {
            inbox.length = 0;
            inboxHeads[index] = 0;
          }
          return undefined;
        }
        inboxHeads[index] = head + 1;
        return inbox[head];
      },
      close(): void {},
    });
  }

  return {
    sockets,
    pump,
    flush,
    stats,
    close(): void {
      flush();
      c.close(fd);
      library.close();
      keepAlive.length = 0;
    },
  };
}
