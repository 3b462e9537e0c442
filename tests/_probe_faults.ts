// Test-only fault injection for the conformance prober (tests/probe_test.ts):
// sockets that sit between our server or client and the network and make
// it break one rule of the standard, so each of the prober's checks is seen
// to fail. They hold the keys (the server's private key, the client's
// token), so they can decrypt, change and re-encrypt packets, drop them,
// forge answers or inject packets. server.ts and client.ts are unchanged.

import { type Address, addressKey } from "../address.ts";
import { type Client, ClientState, createClient } from "../client.ts";
import { MAC_BYTES, randomBytes, xchachaEncrypt } from "../crypto.ts";
import {
  CONNECT_TOKEN_PRIVATE_BYTES,
  CONNECTION_REQUEST_PACKET_BYTES,
  VERSION_INFO_BYTES,
} from "../packet.ts";
import { type Datagram, type DatagramSocket, listenUdp } from "../socket.ts";
import { readConnectToken, writePrivateConnectToken } from "../token.ts";
import type { ClientUnderTest, LaunchClient } from "../cli/probe_client.ts";
import {
  GLOBAL_SEQUENCE_START,
  keepAliveBody,
  openPacket,
  PacketType,
  peekPacket,
  readRequest,
  sealPacket,
} from "../cli/_probe_wire.ts";

/** The rules our server can be made to break, and the check that sees it. */
export const SERVER_FAULTS = {
  "nonce-swapped": "packet-nonce",
  "amplify": "no-amplification",
  "low-global-sequence": "global-sequence",
  "bad-keep-alive": "handshake",
  "accept-expired": "request-expired",
  "accept-protocol-id": "request-protocol-id",
  "accept-version": "request-version",
  "accept-size": "request-size",
  "accept-server-address": "request-server-address",
  "accept-address-connected": "request-address-connected",
  "accept-client-id-connected": "request-client-id-connected",
  "accept-token-reuse": "request-token-reuse",
  "no-keep-alives": "keep-alive-rate",
  "no-timeout": "timeout",
  "timeout-disabled-ignored": "timeout-disabled",
  "timeout-zero-expires": "timeout-zero",
  "replay-keep-alive": "replay-keep-alive",
  "replay-payload": "replay-payload",
  "replay-disconnect": "replay-disconnect",
  "ignore-disconnect": "disconnect-frees-slot",
  "no-denied": "denied-when-full",
  "corrupt-echo": "payload-echo",
} as const;

/** A fault of {@linkcode SERVER_FAULTS}. */
export type ServerFault = keyof typeof SERVER_FAULTS;

/** The rules our client can be made to break, and the check that sees it. */
export const CLIENT_FAULTS = {
  "request-size": "request",
  "request-flood": "request-rate",
  "response-corrupt": "response",
  "nonce-swapped": "packet-nonce",
  "no-keep-alives": "keep-alive",
  "payload-sequence-reuse": "payload",
  "replay-accepted": "replay",
  "no-disconnect": "disconnect",
  "no-timeout": "timeout",
  "denied-ignored": "denied",
  "no-fallback": "fallback",
} as const;

/** A fault of {@linkcode CLIENT_FAULTS}. */
export type ClientFault = keyof typeof CLIENT_FAULTS;

const now = () => performance.now() / 1000;
const FRESH_START = 1n << 40n;

/** Replay protection kept by the fault socket itself (unbounded: tests only). */
interface ReplayWindow {
  mostRecent: bigint;
  seen: Set<bigint>;
}

function replayed(window: ReplayWindow, sequence: bigint): boolean {
  return (window.mostRecent >= 256n && sequence <= window.mostRecent - 256n) ||
    window.seen.has(sequence);
}

function advance(window: ReplayWindow, sequence: bigint): void {
  window.seen.add(sequence);
  if (sequence > window.mostRecent) window.mostRecent = sequence;
}

/** What the server-side fault socket knows about one client address. */
interface Peer {
  readonly address: Address;
  readonly clientToServerKey: Uint8Array;
  readonly serverToClientKey: Uint8Array;
  readonly clientId: bigint;
  readonly timeoutSeconds: number;
  connected: boolean;
  keepAlivesSent: number;
  lastTrafficAt: number;
  readonly window: ReplayWindow;
  freshSequence: bigint;
  injectedSequence: bigint;
}

/**
 * Wraps our server's socket so the server breaks the rule `fault` names.
 *
 * @param inner The server's real socket.
 * @param fault The rule to break.
 * @param config The server's protocol id, private key and address.
 * @returns The socket to give `createServer`.
 */
export function faultyServerSocket(
  inner: DatagramSocket,
  fault: ServerFault,
  config: { protocolId: bigint; privateKey: Uint8Array; address: Address },
): DatagramSocket {
  const { protocolId, privateKey } = config;
  const peers = new Map<string, Peer>();
  const macs = new Map<string, string>();
  const injected: Datagram[] = [];
  let forgedSequence = GLOBAL_SEQUENCE_START + 1_000_000n;

  const forgeChallenge = (key: Uint8Array, to: Address) => {
    inner.send(
      sealPacket(
        PacketType.CHALLENGE,
        forgedSequence++,
        randomBytes(new Uint8Array(308)),
        key,
        protocolId,
      ),
      to,
    );
  };

  /** A request: learn its keys; maybe forge an answer or rewrite it. */
  const onRequest = (
    data: Uint8Array,
    from: Address,
  ): Uint8Array | undefined => {
    const key = addressKey(from);
    const read = readRequest(
      data,
      protocolId,
      privateKey,
      Date.now() / 1000,
      config.address,
    );
    const token = read.token;
    if (token === undefined) return data;
    let peer = peers.get(key);
    const known = peer !== undefined;
    if (peer === undefined) {
      peer = {
        address: from,
        clientToServerKey: token.clientToServerKey,
        serverToClientKey: token.serverToClientKey,
        clientId: token.clientId,
        timeoutSeconds: token.timeoutSeconds,
        connected: false,
        keepAlivesSent: 0,
        lastTrafficAt: now(),
        window: { mostRecent: 0n, seen: new Set() },
        freshSequence: FRESH_START,
        injectedSequence: FRESH_START * 2n,
      };
      peers.set(key, peer);
    }
    const mac = read.encryptedPrivateToken.subarray(
      CONNECT_TOKEN_PRIVATE_BYTES - MAC_BYTES,
    ).toHex();
    const firstFrom = macs.get(mac);
    if (firstFrom === undefined) macs.set(mac, key);
    const forge = () => forgeChallenge(token.serverToClientKey, from);
    const problems = read.problems.join(" ");
    switch (fault) {
      case "accept-expired":
        if (problems.includes("expired")) forge();
        break;
      case "accept-protocol-id":
        if (problems.includes("protocol id")) forge();
        break;
      case "accept-version":
        if (!read.versionOk) forge();
        break;
      case "accept-size":
        if (data.length === CONNECTION_REQUEST_PACKET_BYTES + 1) forge();
        break;
      case "accept-server-address":
        if (problems.includes("names")) forge();
        break;
      case "accept-address-connected":
        if (
          known && peer.connected &&
          token.clientId !== peer.clientId
        ) forge();
        break;
      case "accept-client-id-connected":
        for (const other of peers.values()) {
          if (
            other !== peer && other.connected &&
            other.clientId === token.clientId
          ) forge();
        }
        break;
      case "accept-token-reuse":
        if (firstFrom !== undefined && firstFrom !== key) forge();
        break;
      case "timeout-disabled-ignored":
        if (token.timeoutSeconds < 0) {
          // Re-seal the private token with a timeout of 1 s instead.
          const rewritten = data.slice();
          const plain = writePrivateConnectToken({
            ...token,
            timeoutSeconds: 1,
            userData: new Uint8Array(256),
          });
          const ad = new Uint8Array(VERSION_INFO_BYTES + 16);
          ad.set(data.subarray(1, 1 + VERSION_INFO_BYTES + 16), 0);
          xchachaEncrypt(
            plain,
            0,
            CONNECT_TOKEN_PRIVATE_BYTES - MAC_BYTES,
            ad,
            ad.length,
            data.subarray(
              1 + VERSION_INFO_BYTES + 16,
              1 + VERSION_INFO_BYTES + 40,
            ),
            privateKey,
            rewritten,
            1 + VERSION_INFO_BYTES + 40,
          );
          return rewritten;
        }
        break;
    }
    return data;
  };

  const resequence = (
    data: Uint8Array,
    peer: Peer,
    acceptReplaysOf: number | undefined,
  ): Uint8Array | undefined => {
    const opened = openPacket(data, peer.clientToServerKey, protocolId, [
      "standard",
    ]);
    if (opened === undefined || opened.type < PacketType.KEEP_ALIVE) {
      return data;
    }
    if (replayed(peer.window, opened.sequence)) {
      if (opened.type !== acceptReplaysOf) return undefined;
    } else advance(peer.window, opened.sequence);
    return sealPacket(
      opened.type,
      peer.freshSequence++,
      opened.body,
      peer.clientToServerKey,
      protocolId,
    );
  };

  /** An encrypted packet from a client: change or drop it. */
  const onEncrypted = (
    data: Uint8Array,
    peer: Peer,
  ): Uint8Array | undefined => {
    const type = peekPacket(data)?.type;
    if (type === PacketType.KEEP_ALIVE || type === PacketType.PAYLOAD) {
      peer.lastTrafficAt = now();
    }
    switch (fault) {
      case "nonce-swapped": {
        const opened = openPacket(data, peer.clientToServerKey, protocolId, [
          "swapped",
        ]);
        if (opened === undefined) return undefined;
        return sealPacket(
          opened.type,
          opened.sequence,
          opened.body,
          peer.clientToServerKey,
          protocolId,
        );
      }
      case "replay-keep-alive":
        return resequence(data, peer, PacketType.KEEP_ALIVE);
      case "replay-payload":
        return resequence(data, peer, PacketType.PAYLOAD);
      case "replay-disconnect":
        return resequence(data, peer, PacketType.DISCONNECT);
      case "no-timeout":
        return resequence(data, peer, undefined);
      case "ignore-disconnect":
        return type === PacketType.DISCONNECT ? undefined : data;
      case "timeout-zero-expires":
        // As the reference does: the pending connection of a token with
        // timeout 0 expires at once, so its response is never read.
        return type === PacketType.RESPONSE && peer.timeoutSeconds === 0
          ? undefined
          : data;
    }
    return data;
  };

  const injectKeepAlives = () => {
    if (fault !== "no-timeout") return;
    for (const peer of peers.values()) {
      if (peer.connected && now() - peer.lastTrafficAt > 0.5) {
        peer.lastTrafficAt = now();
        injected.push({
          data: sealPacket(
            PacketType.KEEP_ALIVE,
            peer.freshSequence++,
            keepAliveBody(0, 0),
            peer.clientToServerKey,
            protocolId,
          ),
          from: peer.address,
        });
      }
    }
  };

  const socket: DatagramSocket = {
    get address() {
      return inner.address;
    },
    get closed() {
      return inner.closed;
    },
    poll() {
      injectKeepAlives();
      while (true) {
        // Injected packets go to the server as they are.
        const forged = injected.shift();
        if (forged !== undefined) return forged;
        const datagram = inner.poll();
        if (datagram === undefined) return undefined;
        const { data, from } = datagram;
        let changed: Uint8Array | undefined = data;
        if (data[0] === 0 && data.length > 1000) {
          changed = onRequest(data, from);
        } else {
          const peer = peers.get(addressKey(from));
          if (peer !== undefined && peekPacket(data) !== undefined) {
            changed = onEncrypted(data, peer);
            if (peekPacket(data)?.type === PacketType.DISCONNECT) {
              if (changed !== undefined) peer.connected = false;
            }
          }
        }
        if (changed !== undefined) return { data: changed, from };
      }
    },
    send(data, to) {
      const peer = peers.get(addressKey(to));
      const header = peekPacket(data);
      if (peer === undefined || header === undefined) {
        inner.send(data, to);
        return;
      }
      const type = header.type;
      if (type === PacketType.KEEP_ALIVE) {
        if (!peer.connected) peer.keepAlivesSent = 0;
        peer.connected = true;
        peer.keepAlivesSent++;
      }
      if (type === PacketType.CHALLENGE) peer.connected = false;
      const reseal = (
        change: (body: Uint8Array) => Uint8Array,
        sequence?: bigint,
        order: "standard" | "swapped" = "standard",
      ) => {
        const opened = openPacket(data, peer.serverToClientKey, protocolId, [
          "standard",
        ])!;
        return sealPacket(
          type,
          sequence ?? opened.sequence,
          change(opened.body.slice()),
          peer.serverToClientKey,
          protocolId,
          order,
        );
      };
      switch (fault) {
        case "nonce-swapped":
          inner.send(reseal((body) => body, undefined, "swapped"), to);
          return;
        case "amplify":
          for (let i = 0; i < (type === PacketType.CHALLENGE ? 4 : 1); i++) {
            inner.send(data, to);
          }
          return;
        case "low-global-sequence":
          if (type === PacketType.CHALLENGE || type === PacketType.DENIED) {
            inner.send(
              reseal((body) => body, header.sequence - GLOBAL_SEQUENCE_START),
              to,
            );
            return;
          }
          break;
        case "bad-keep-alive":
          if (type === PacketType.KEEP_ALIVE) {
            inner.send(
              reseal((body) => {
                body.fill(0, 0, 4);
                return body;
              }),
              to,
            );
            return;
          }
          break;
        case "no-keep-alives":
          if (type === PacketType.KEEP_ALIVE && peer.keepAlivesSent > 1) return;
          break;
        case "no-denied":
          if (type === PacketType.DENIED) return;
          break;
        case "corrupt-echo":
          if (type === PacketType.PAYLOAD && data.length > 240) {
            inner.send(
              reseal((body) => {
                body[0] ^= 0xff;
                return body;
              }),
              to,
            );
            return;
          }
          break;
      }
      inner.send(data, to);
    },
    close() {
      inner.close();
    },
  };
  return socket;
}

/**
 * Wraps our client's socket so the client breaks the rule `fault` names.
 *
 * @param inner The client's real socket.
 * @param fault The rule to break.
 * @param tokenBytes The client's connect token (for its keys and servers).
 * @param connected Whether the client is connected now.
 * @returns The socket to give `createClient`.
 */
export function faultyClientSocket(
  inner: DatagramSocket,
  fault: ClientFault,
  tokenBytes: Uint8Array,
  connected: () => boolean,
): DatagramSocket {
  const token = readConnectToken(tokenBytes)!;
  const { protocolId, clientToServerKey: c2s, serverToClientKey: s2c } = token;
  const window: ReplayWindow = { mostRecent: 0n, seen: new Set() };
  let fresh = FRESH_START;
  let lastFromServer = now();
  let payloads = 0;
  let previousPayloadSequence: bigint | undefined;
  const injected: Datagram[] = [];
  let server: Address | undefined;

  const socket: DatagramSocket = {
    get address() {
      return inner.address;
    },
    get closed() {
      return inner.closed;
    },
    send(data, to) {
      server = to;
      if (data[0] === 0) {
        if (fault === "request-size") {
          const longer = new Uint8Array(data.length + 1);
          longer.set(data);
          inner.send(longer, to);
          return;
        }
        if (fault === "request-flood") {
          for (let i = 0; i < 4; i++) inner.send(data, to);
          return;
        }
        if (fault === "no-fallback") {
          inner.send(data, token.serverAddresses[0]);
          return;
        }
        inner.send(data, to);
        return;
      }
      const opened = openPacket(data, c2s, protocolId, ["standard"]);
      if (opened === undefined) {
        inner.send(data, to);
        return;
      }
      const send = (bytes: Uint8Array) => inner.send(bytes, to);
      switch (fault) {
        case "response-corrupt":
          if (opened.type === PacketType.RESPONSE) {
            const body = opened.body.slice();
            body[8] ^= 0xff;
            send(
              sealPacket(opened.type, opened.sequence, body, c2s, protocolId),
            );
            return;
          }
          break;
        case "nonce-swapped":
          send(
            sealPacket(
              opened.type,
              opened.sequence,
              opened.body,
              c2s,
              protocolId,
              "swapped",
            ),
          );
          return;
        case "no-keep-alives":
          if (opened.type === PacketType.KEEP_ALIVE) return;
          break;
        case "no-disconnect":
          if (opened.type === PacketType.DISCONNECT) return;
          break;
        case "payload-sequence-reuse":
          if (opened.type === PacketType.PAYLOAD) {
            payloads++;
            const reuse = payloads % 5 === 0 &&
              previousPayloadSequence !== undefined;
            const sequence = reuse ? previousPayloadSequence! : opened.sequence;
            previousPayloadSequence = opened.sequence;
            send(
              sealPacket(opened.type, sequence, opened.body, c2s, protocolId),
            );
            return;
          }
          break;
        case "no-fallback":
          inner.send(data, token.serverAddresses[0]);
          return;
      }
      send(data);
    },
    poll() {
      if (
        fault === "no-timeout" && connected() && server !== undefined &&
        now() - lastFromServer > 0.5
      ) {
        lastFromServer = now();
        injected.push({
          data: sealPacket(
            PacketType.KEEP_ALIVE,
            fresh++,
            keepAliveBody(0, 1),
            s2c,
            protocolId,
          ),
          from: server,
        });
      }
      while (true) {
        const forged = injected.shift();
        if (forged !== undefined) return forged;
        const datagram = inner.poll();
        if (datagram === undefined) return undefined;
        const { data, from } = datagram;
        lastFromServer = now();
        const header = peekPacket(data);
        if (header === undefined) return datagram;
        switch (fault) {
          case "nonce-swapped": {
            const opened = openPacket(data, s2c, protocolId, ["swapped"]);
            if (opened === undefined) continue;
            return {
              data: sealPacket(
                opened.type,
                opened.sequence,
                opened.body,
                s2c,
                protocolId,
              ),
              from,
            };
          }
          case "denied-ignored":
            if (header.type === PacketType.DENIED) continue;
            break;
          case "replay-accepted": {
            const opened = openPacket(data, s2c, protocolId, ["standard"]);
            if (opened === undefined || opened.type < PacketType.KEEP_ALIVE) {
              break;
            }
            if (replayed(window, opened.sequence)) {
              if (opened.type !== PacketType.DISCONNECT) continue;
            } else advance(window, opened.sequence);
            return {
              data: sealPacket(
                opened.type,
                fresh++,
                opened.body,
                s2c,
                protocolId,
              ),
              from,
            };
          }
        }
        return datagram;
      }
    },
    close() {
      inner.close();
    },
  };
  return socket;
}

/**
 * Runs our client in this process as the client under test, optionally
 * with a fault. Connected, it sends a 64-byte payload every update; in the
 * connect scenario only for its first 400 ms, then it idles (keep-alives
 * only). `stop()` disconnects it (10 disconnect packets); it ends by
 * itself when it settles in disconnected or an error state (exit code 0
 * for disconnected, 1 for an error).
 *
 * @param fault The rule to break, or none.
 * @returns The launcher.
 */
export function inProcessLauncher(fault?: ClientFault): LaunchClient {
  return (token): ClientUnderTest => {
    // The fault socket asks whether the client is connected; it is made
    // before the client, so it reads it through this holder.
    const holder: { client?: Client } = {};
    const inner = listenUdp({ hostname: token.address.hostname, port: 0 });
    const socket = fault === undefined ? inner : faultyClientSocket(
      inner,
      fault,
      token.bytes,
      () => holder.client?.state === ClientState.CONNECTED,
    );
    const client = createClient({ socket });
    holder.client = client;
    client.connect(token.bytes);
    const start = performance.now();
    let connectedAt: number | undefined;
    let ended = false;
    let resolve!: (code: number) => void;
    const exited = new Promise<number>((r) => (resolve = r));
    const end = (code: number) => {
      if (ended) return;
      ended = true;
      clearInterval(timer);
      // Let queued sends (disconnect packets) go out, then close.
      setTimeout(() => {
        client.close();
        resolve(code);
      }, 30);
    };
    const timer = setInterval(() => {
      const c = client;
      const t = (performance.now() - start) / 1000;
      c.update(t);
      while (c.receive() !== undefined) { /* drop echoes */ }
      if (c.state === ClientState.CONNECTED) {
        connectedAt ??= t;
        if (token.scenario !== "connect" || t - connectedAt < 0.4) {
          c.send(new Uint8Array(64).fill(token.scenario.length));
        }
      } else if (c.state <= ClientState.DISCONNECTED) {
        end(c.state === ClientState.DISCONNECTED ? 0 : 1);
      }
    }, 1000 / 60);
    return {
      exited,
      stop() {
        if (ended) return;
        client.disconnect();
        end(0);
      },
      kill() {
        if (ended) return;
        ended = true;
        clearInterval(timer);
        inner.close();
        resolve(137);
      },
    };
  };
}
