// Shared helpers for the client/server tests: keys, tokens, a simulated
// world that steps every peer at a fixed tick, and sockets that sniff or
// filter what passes through them.

import type { Address } from "../address.ts";
import { type Client, ClientState, createClient } from "../client.ts";
import { generateKey } from "../crypto.ts";
import { createServer, type Server, type ServerOptions } from "../server.ts";
import { createNetworkSimulator, type NetworkSimulator } from "../simulator.ts";
import type { Datagram, DatagramSocket } from "../socket.ts";
import {
  generateConnectToken,
  type GenerateConnectTokenOptions,
  readConnectToken,
} from "../token.ts";
import {
  CONNECTION_REQUEST_PACKET_BYTES,
  writeConnectionRequestPacket,
} from "../packet.ts";

export const PROTOCOL_ID = 0x1122334455667788n;
export const PRIVATE_KEY: Uint8Array = generateKey();
export const TICK = 1 / 60;
/** A fixed unix time for token creation and server checks. */
export const UNIX_NOW = 1_800_000_000;

export function token(
  options: Partial<GenerateConnectTokenOptions> & { clientId?: bigint } = {},
): Uint8Array {
  return generateConnectToken({
    serverAddresses: ["127.0.0.1:40000"],
    clientId: 1n,
    protocolId: PROTOCOL_ID,
    privateKey: PRIVATE_KEY,
    now: UNIX_NOW,
    ...options,
  });
}

/** A socket wrapper that records what is sent and may drop some of it. */
export interface TapSocket extends DatagramSocket {
  readonly sent: { data: Uint8Array; to: Address }[];
  readonly received: Datagram[];
  /** Return false to drop an outgoing datagram. */
  filter: (data: Uint8Array, to: Address) => boolean;
}

export function tap(inner: DatagramSocket): TapSocket {
  const tapped: TapSocket = {
    sent: [],
    received: [],
    filter: () => true,
    get address() {
      return inner.address;
    },
    send(data, to) {
      tapped.sent.push({ data: data.slice(), to });
      if (tapped.filter(data, to)) inner.send(data, to);
    },
    poll() {
      const datagram = inner.poll();
      if (datagram) tapped.received.push(datagram);
      return datagram;
    },
    close() {
      inner.close();
    },
  };
  return tapped;
}

export interface World {
  network: NetworkSimulator;
  server: Server;
  serverSocket: TapSocket;
  clients: Client[];
  clientSockets: TapSocket[];
  time: number;
  /** Advances one tick: network, clients, then server. */
  step(): void;
  /** Steps until `done()` or `maxTicks`; returns the ticks taken. */
  run(done: () => boolean, maxTicks: number): number;
  addClient(port?: number): Client;
  close(): void;
}

export function createWorld(
  options: {
    seed?: number;
    latencyMs?: number;
    jitterMs?: number;
    packetLossPercent?: number;
    duplicatePercent?: number;
    maxQueue?: number;
    server?: Partial<ServerOptions>;
    serverAddress?: string;
  } = {},
): World {
  const network = createNetworkSimulator({
    seed: options.seed ?? 1,
    latencyMs: options.latencyMs ?? 0,
    jitterMs: options.jitterMs ?? 0,
    packetLossPercent: options.packetLossPercent ?? 0,
    duplicatePercent: options.duplicatePercent ?? 0,
    maxQueue: options.maxQueue,
  });
  const serverAddress = options.serverAddress ?? "127.0.0.1:40000";
  const serverSocket = tap(network.createSocket(serverAddress));
  const server = createServer({
    address: serverAddress,
    protocolId: PROTOCOL_ID,
    privateKey: PRIVATE_KEY,
    socket: serverSocket,
    unixTime: () => UNIX_NOW + world.time,
    ...options.server,
  });
  let nextPort = 50000;
  const world: World = {
    network,
    server,
    serverSocket,
    clients: [],
    clientSockets: [],
    time: 0,
    step() {
      world.time += TICK;
      network.update(world.time);
      for (const client of world.clients) client.update(world.time);
      server.update(world.time);
    },
    run(done, maxTicks) {
      for (let tick = 1; tick <= maxTicks; tick++) {
        world.step();
        if (done()) return tick;
      }
      return -1;
    },
    addClient(port) {
      const socket = tap(
        network.createSocket(`127.0.0.1:${port ?? nextPort++}`),
      );
      const client = createClient({ socket });
      world.clients.push(client);
      world.clientSockets.push(socket);
      return client;
    },
    close() {
      for (const client of world.clients) client.close();
      server.close();
    },
  };
  return world;
}

export function connected(client: Client): boolean {
  return client.state === ClientState.CONNECTED;
}

export function packetType(data: Uint8Array): number {
  return data[0] & 0xf;
}

/** Reads the sequence written after the prefix byte. */
export function packetSequence(data: Uint8Array): bigint {
  const bytes = data[0] >> 4;
  let sequence = 0n;
  for (let i = bytes; i >= 1; i--) {
    sequence = (sequence << 8n) | BigInt(data[i]);
  }
  return sequence;
}

/**
 * One tick of the cheap-junk flood: 300 datagrams that each fail a check
 * needing no cryptography (200 one-byte `00`; 20 each of a truncated
 * request, a request one byte short, a wrong version, a wrong protocol id
 * and an expired token). At 60 Hz: 18,000 a second.
 */
export function cheapJunkTick(): Uint8Array[] {
  const request = new Uint8Array(CONNECTION_REQUEST_PACKET_BYTES);
  writeConnectionRequestPacket(request, {
    type: 0,
    ...readConnectToken(token({ clientId: 999n }))!,
  });
  const wrongVersion = request.slice();
  wrongVersion[9] ^= 1;
  const wrongProtocol = request.slice();
  wrongProtocol[14] ^= 1;
  const expired = new Uint8Array(CONNECTION_REQUEST_PACKET_BYTES);
  writeConnectionRequestPacket(expired, {
    type: 0,
    ...readConnectToken(
      token({ clientId: 998n, now: UNIX_NOW - 100, expireSeconds: 10 }),
    )!,
  });
  return [
    ...new Array(200).fill(new Uint8Array([0])),
    ...new Array(20).fill(request.subarray(0, 500)),
    ...new Array(20).fill(
      request.subarray(0, CONNECTION_REQUEST_PACKET_BYTES - 1),
    ),
    ...new Array(20).fill(wrongVersion),
    ...new Array(20).fill(wrongProtocol),
    ...new Array(20).fill(expired),
  ];
}
