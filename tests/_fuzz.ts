// The fuzzer behind `deno task fuzz` and tests/fuzz_test.ts.
//
// A server with 7 connected clients (of 8 slots), two idle clients and one
// client stuck sending connection requests to a silent address, all over the
// seeded simulator (or real loopback UDP). Genuine packets of every type are
// captured from a real session (connect, payloads, a denied client, a client
// and a server disconnect) and from the live traffic as it flows; the fuzzer
// sends random bytes and mutations of them (bit flips, byte sets,
// truncation, extension, prefix and sequence rewrites, body rewrites,
// splices, request-field edits, stacks of these, and unmodified replays) at
// the server and at the clients, from unknown addresses and from the
// genuine peers' own addresses (spoofed: sent through the peer's socket).
//
// Checked on every tick: nothing throws; the server's slots (ids, addresses,
// count) and every client's state are unchanged, no connect or disconnect
// callback fires, pending connections only come from valid fresh tokens;
// the only replies to unauthenticated senders are challenges (or denials)
// to unmodified connection requests carrying a genuine never-used token,
// each smaller than the request; clients send nothing but their own
// traffic to their own server. Legitimate payloads keep flowing both ways,
// each exactly once and in order (over UDP: in order, none invented).
//
// Replies the spec requires: a connection request with a valid token that
// was never used from another address earns a challenge. The fuzzer sends
// such requests (8 fresh tokens) unmodified now and then from unknown
// addresses and counts those replies as allowed; every other reply fails.
//
// Reproducible: every choice (target, source, seed packet, mutations) for
// datagram i comes from a generator seeded with (seed, i), and all keys and
// nonces come from the seed. Only the server's challenge key is its own, so
// the 300 encrypted bytes of the challenge token in captured challenges and
// responses differ between runs: a handful of drop reasons in a million may
// change, nothing else.

import { type Address, addressKey, formatAddress } from "../address.ts";
import { type Client, ClientState, createClient } from "../client.ts";
import {
  CONNECTION_CHALLENGE_PACKET,
  CONNECTION_DENIED_PACKET,
  CONNECTION_KEEP_ALIVE_PACKET,
  CONNECTION_PAYLOAD_PACKET,
  CONNECTION_REQUEST_PACKET,
  CONNECTION_REQUEST_PACKET_BYTES,
  PACKET_TYPE_NAMES,
  writeConnectionRequestPacket,
} from "../packet.ts";
import { createServer, type Server } from "../server.ts";
import { createNetworkSimulator, createRandom } from "../simulator.ts";
import { type DatagramSocket, listenUdp, type UdpSocket } from "../socket.ts";
import { readConnectToken } from "../token.ts";
import {
  PROTOCOL_ID,
  tap,
  type TapSocket,
  TICK,
  token,
  UNIX_NOW,
} from "./_harness.ts";

/** The largest datagram the fuzzer sends: past netcode's 1300-byte limit. */
export const MAX_FUZZ_BYTES = 1500;
const MAX_CLIENTS = 8;
const LIVE_CLIENTS = 7;
const FRESH_TOKENS = 8;
const RING = 48;
const PAYLOAD_TAG = 0xa5;

/** Options of {@linkcode runFuzz}. */
export interface FuzzOptions {
  /** Hostile datagrams to send. */
  count: number;
  /** Seed of the fuzzer's generator (and of the simulator). */
  seed: number;
  /** `"simulator"` (default) or real UDP on 127.0.0.1. */
  transport?: "simulator" | "udp";
  /** Hostile datagrams per tick. @default {200 (simulator), 64 (UDP)} */
  perTick?: number;
  /** Progress lines while running. */
  log?: (line: string) => void;
}

/** What a fuzz run did and saw. */
export interface FuzzResult {
  transport: "simulator" | "udp";
  seed: number;
  datagrams: number;
  ticks: number;
  seconds: number;
  /** Hostile datagrams by target, source and kind. */
  sentBy: Record<string, number>;
  /** Hostile datagrams by the (first) mutation applied. */
  mutations: Record<string, number>;
  /** Server drops during the run, by reason. */
  serverDropped: Record<string, number>;
  /** Client drops during the run, summed over all ten clients, by reason. */
  clientDropped: Record<string, number>;
  /** Unmodified fresh-token requests sent from unknown addresses. */
  eligibleRequests: number;
  /** Challenges (or denials) they earned: the only replies allowed. */
  allowedReplies: number;
  /** The largest allowed reply, in bytes (requests are 1078). */
  largestReply: number;
  /** Legitimate payloads sent by the clients during the run. */
  legitPayloads: number;
  /** Legitimate echoes the clients got back. */
  legitEchoes: number;
  /** Datagrams that never arrived (UDP only: dropped by the system). */
  lostInTransport: number;
}

/** Fails the run with the seed in the message, so it can be replayed. */
export class FuzzFailure extends Error {
  override name = "FuzzFailure";
}

interface Transport {
  readonly kind: "simulator" | "udp";
  /** Binds a socket (UDP ignores the address and binds 127.0.0.1:0). */
  bind(address: string): DatagramSocket;
  /** Delivers what was sent; returns how many datagrams never arrived. */
  deliver(time: number): number | Promise<number>;
  close(): Promise<void>;
}

function simulatorTransport(seed: number): Transport {
  const network = createNetworkSimulator({
    seed,
    maxDatagramBytes: MAX_FUZZ_BYTES,
    maxQueue: 1 << 16,
  });
  return {
    kind: "simulator",
    bind: (address) => network.createSocket(address),
    deliver(time) {
      network.update(time);
      if (network.stats.dropped !== 0 || network.stats.undeliverable !== 0) {
        throw new FuzzFailure(
          `simulator dropped ${network.stats.dropped}, undeliverable ${network.stats.undeliverable}`,
        );
      }
      return 0;
    },
    close: () => Promise.resolve(),
  };
}

function udpTransport(): Transport {
  const sockets = new Map<string, UdpSocket>();
  const expected = new Map<string, number>();
  const all: UdpSocket[] = [];
  const arrived = (socket: UdpSocket) =>
    socket.stats.received + socket.stats.dropped + socket.stats.oversized;
  return {
    kind: "udp",
    bind() {
      const socket = listenUdp({
        hostname: "127.0.0.1",
        port: 0,
        maxDatagramBytes: MAX_FUZZ_BYTES,
      });
      const key = addressKey(socket.address);
      sockets.set(key, socket);
      all.push(socket);
      return {
        address: socket.address,
        send(data: Uint8Array, to: Address) {
          const toKey = addressKey(to);
          expected.set(toKey, (expected.get(toKey) ?? 0) + 1);
          socket.send(data, to);
        },
        poll: () => socket.poll(),
        close: () => socket.close(),
      };
    },
    async deliver() {
      const pending = () => {
        let missing = 0;
        for (const [key, count] of expected) {
          const socket = sockets.get(key);
          if (socket) missing += Math.max(0, count - arrived(socket));
        }
        return missing;
      };
      for (let wait = 0; wait < 250 && pending() > 0; wait++) {
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
      const missing = pending();
      // What did not come in 250 ms is lost: expect no more of it.
      for (const [key, socket] of sockets) expected.set(key, arrived(socket));
      return missing;
    },
    async close() {
      for (const socket of all) socket.close();
      await Promise.all(all.map((socket) => socket.closed));
    },
  };
}

interface Agent {
  readonly index: number;
  readonly client: Client;
  /** What the client sends through (recorded). */
  readonly socket: TapSocket;
  /** The same socket unrecorded: spoofed datagrams go out through it. */
  readonly raw: DatagramSocket;
  readonly key: string;
  serverAddress: Address;
  slot: number;
  clientId: bigint;
  state: ClientState;
  sent: number;
  serverGot: number;
  echoes: number;
}

interface Seed {
  readonly data: Uint8Array;
  readonly kind: string;
}

/** 32 random bits at a time, from the seeded generator. */
function makeBytes(random: () => number) {
  return (out: Uint8Array, from = 0, to = out.length): Uint8Array => {
    let i = from;
    while (i < to) {
      let bits = (random() * 4294967296) >>> 0;
      for (let k = 0; k < 4 && i < to; k++, i++) {
        out[i] = bits & 0xff;
        bits >>>= 8;
      }
    }
    return out;
  };
}

/** A 32-bit seed for stream `index` of run `seed`. */
function mix(seed: number, index: number): number {
  let h = Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ index;
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d);
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b);
  return (h ^ (h >>> 16)) >>> 0;
}

function increment(counts: Record<string, number>, key: string, by = 1) {
  counts[key] = (counts[key] ?? 0) + by;
}

function delta(
  after: Record<string, number>,
  before: Record<string, number>,
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const key of Object.keys(after)) {
    const value = after[key] - (before[key] ?? 0);
    if (value !== 0) out[key] = value;
  }
  return out;
}

function sum(records: Record<string, number>[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const record of records) {
    for (const [key, value] of Object.entries(record)) {
      increment(out, key, value);
    }
  }
  return out;
}

function requestFor(connectToken: Uint8Array): Uint8Array {
  const read = readConnectToken(connectToken);
  if (!read) throw new Error("unreadable token");
  const request = new Uint8Array(CONNECTION_REQUEST_PACKET_BYTES);
  writeConnectionRequestPacket(request, { type: 0, ...read });
  return request;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Runs the fuzzer. Throws {@linkcode FuzzFailure} (or the library's own
 * exception) on the first broken property.
 */
export async function runFuzz(options: FuzzOptions): Promise<FuzzResult> {
  const kind = options.transport ?? "simulator";
  const perTick = options.perTick ?? (kind === "simulator" ? 200 : 64);
  const seed = options.seed;
  const log = options.log ?? (() => {});
  function fail(message: string): never {
    throw new FuzzFailure(`${message} (seed ${seed}, ${kind})`);
  }
  // Every choice about datagram i comes from its own generator, seeded by
  // (seed, i): the bytes of genuine packets (encrypted under the server's
  // random challenge key, for one) cannot change what later datagrams are.
  // Legitimate traffic and the corpus of live packets have their own.
  let random = createRandom(seed);
  const fillRandom = makeBytes(() => random());
  const pick = <T>(list: readonly T[]): T =>
    list[Math.floor(random() * list.length)];
  const trafficRandom = createRandom(mix(seed, -1));
  // Keys and nonces from the seed too, so the genuine packets are the same
  // from run to run (but for the challenge tokens inside challenges and
  // responses: the server's challenge key is its own).
  const keyBytes = makeBytes(createRandom(mix(seed, -2)));
  const privateKey = keyBytes(new Uint8Array(32));
  const tokenKeys = () => ({
    nonce: keyBytes(new Uint8Array(24)),
    clientToServerKey: keyBytes(new Uint8Array(32)),
    serverToClientKey: keyBytes(new Uint8Array(32)),
  });
  const transport = kind === "simulator"
    ? simulatorTransport(seed)
    : udpTransport();

  let time = 0;
  let callbacks = "";
  const serverRaw = transport.bind("127.0.0.1:40000");
  const serverSocket = tap(serverRaw);
  const server: Server = createServer({
    socket: serverSocket,
    protocolId: PROTOCOL_ID,
    privateKey,
    maxClients: MAX_CLIENTS,
    // Decrypt every request the fuzzer sends: shedding is the flood test's.
    maxConnectionRequestsPerUpdate: 1 << 20,
    unixTime: () => UNIX_NOW + time,
    onConnect: (slot) => {
      if (!capturing) callbacks += ` connect(${slot})`;
    },
    onDisconnect: (slot, reason) => {
      if (!capturing) callbacks += ` disconnect(${slot}, ${reason})`;
    },
  });
  const serverAddress = server.address;
  const serverText = formatAddress(serverAddress);
  const tokenFor = (
    clientId: bigint,
    extra: Parameters<typeof token>[0] = {},
  ) =>
    token({
      serverAddresses: [serverText],
      clientId,
      privateKey,
      ...tokenKeys(),
      ...extra,
    });

  const agents: Agent[] = [];
  const addAgent = (address: string): Agent => {
    const raw = transport.bind(address);
    const socket = tap(raw);
    const agent: Agent = {
      index: agents.length,
      client: createClient({ socket }),
      socket,
      raw,
      key: addressKey(raw.address),
      serverAddress,
      slot: -1,
      clientId: 0n,
      state: ClientState.DISCONNECTED,
      sent: 0,
      serverGot: 0,
      echoes: 0,
    };
    agents.push(agent);
    return agent;
  };
  for (let i = 0; i <= MAX_CLIENTS; i++) addAgent(`127.0.0.1:${50000 + i}`);
  const silent = transport.bind("127.0.0.1:40001");
  const pendingAgent = addAgent("127.0.0.1:50100");
  const attackers = [
    ...Array.from(
      { length: 16 },
      (_, i) => transport.bind(`10.9.${i >> 2}.${i * 7 + 1}:${1024 + i * 997}`),
    ),
    ...(kind === "simulator"
      ? Array.from(
        { length: 8 },
        (_, i) => transport.bind(`[2001:db8::${i + 1}]:${30000 + i}`),
      )
      : []),
  ];

  // Corpus of genuine packets, by direction.
  const clientToServer: Seed[] = [];
  const serverToClient: Seed[] = [];
  const requests: Seed[] = [];
  const liveClientToServer: Seed[] = [];
  const liveServerToClient: Seed[] = [];
  const keep = (list: Seed[], data: Uint8Array, kindName: string, max = 6) => {
    if (list.filter((seed) => seed.kind === kindName).length < max) {
      list.push({ data, kind: kindName });
    }
  };
  const ring = (list: Seed[], data: Uint8Array, kindName: string) => {
    if (list.length < RING) list.push({ data, kind: kindName });
    else list[Math.floor(trafficRandom() * RING)] = { data, kind: kindName };
  };

  let capturing = true;
  let lostInTransport = 0;
  const live: Agent[] = [];
  const bySlot = new Map<number, Agent>();

  function harvest(): void {
    for (const { data, to } of serverSocket.sent) {
      const name = PACKET_TYPE_NAMES[data[0] & 0xf] ?? "?";
      if (capturing) keep(serverToClient, data, name);
      else if (bySlot.size > 0 && live.some((a) => a.key === addressKey(to))) {
        ring(liveServerToClient, data, name);
      }
    }
    for (const agent of agents) {
      for (const { data } of agent.socket.sent) {
        const type = data[0] & 0xf;
        const name = PACKET_TYPE_NAMES[type] ?? "?";
        if (capturing) {
          if (type === CONNECTION_REQUEST_PACKET && data[0] === 0) {
            keep(requests, data, "request:used", 12);
          } else keep(clientToServer, data, name);
        } else if (live.includes(agent)) {
          ring(liveClientToServer, data, name);
        }
      }
    }
  }

  function clearRecords(): void {
    serverSocket.sent.length = 0;
    serverSocket.received.length = 0;
    for (const agent of agents) {
      agent.socket.sent.length = 0;
      agent.socket.received.length = 0;
    }
  }

  const legitPayload = (agent: Agent): Uint8Array => {
    const payload = new Uint8Array(8 + Math.floor(trafficRandom() * 120));
    payload[0] = PAYLOAD_TAG;
    payload[1] = agent.index;
    new DataView(payload.buffer).setUint32(2, agent.sent, true);
    payload.fill(agent.sent & 0xff, 6);
    agent.sent++;
    return payload;
  };
  const counterOf = (payload: Uint8Array) =>
    new DataView(payload.buffer, payload.byteOffset).getUint32(2, true);
  const exact = kind === "simulator";

  /** Server echo and client receive, checking every payload is genuine. */
  function exchange(sendLegit: boolean): void {
    for (let slot = 0; slot < MAX_CLIENTS; slot++) {
      for (let p = server.receive(slot); p; p = server.receive(slot)) {
        const agent = bySlot.get(slot);
        if (!capturing) {
          if (!agent || p[0] !== PAYLOAD_TAG || p[1] !== agent.index) {
            fail(`server slot ${slot} received a payload nobody sent`);
          }
          const counter = counterOf(p);
          if (
            exact ? counter !== agent.serverGot : counter < agent.serverGot
          ) {
            fail(
              `server slot ${slot} got payload ${counter}, expected ${agent.serverGot}`,
            );
          }
          agent.serverGot = counter + 1;
        }
        server.send(slot, p);
      }
    }
    for (const agent of agents) {
      for (let p = agent.client.receive(); p; p = agent.client.receive()) {
        if (capturing) continue;
        if (p[0] !== PAYLOAD_TAG || p[1] !== agent.index) {
          fail(`client ${agent.index} received a payload nobody sent`);
        }
        const counter = counterOf(p);
        if (exact ? counter !== agent.echoes : counter < agent.echoes) {
          fail(
            `client ${agent.index} got echo ${counter}, expected ${agent.echoes}`,
          );
        }
        agent.echoes = counter + 1;
      }
      if (
        sendLegit && agent.client.state === ClientState.CONNECTED &&
        trafficRandom() < 0.25
      ) {
        agent.client.send(legitPayload(agent));
      }
    }
  }

  let attackerReceived = 0;
  async function step(sendLegit = true): Promise<void> {
    time += TICK;
    lostInTransport += await transport.deliver(time);
    for (const agent of agents) agent.client.update(time);
    server.update(time);
    exchange(sendLegit);
    for (const socket of [silent, ...attackers]) {
      for (let d = socket.poll(); d; d = socket.poll()) {
        if (!capturing && socket !== silent) attackerReceived++;
      }
    }
  }

  async function runUntil(done: () => boolean, what: string): Promise<void> {
    for (let tick = 0; tick < 600; tick++) {
      await step();
      harvest();
      clearRecords();
      if (done()) return;
    }
    fail(`setup: ${what} did not happen`);
  }

  // --- Capture: a real session with every packet type. ---------------------
  const connectedState = (agent: Agent) =>
    agent.client.state === ClientState.CONNECTED;
  for (let i = 0; i < MAX_CLIENTS; i++) {
    agents[i].client.connect(tokenFor(BigInt(i + 1)));
  }
  await runUntil(
    () => agents.slice(0, MAX_CLIENTS).every(connectedState),
    "connecting 8 clients",
  );
  const denied = agents[MAX_CLIENTS];
  denied.client.connect(tokenFor(BigInt(MAX_CLIENTS + 1)));
  await runUntil(
    () => denied.client.state === ClientState.CONNECTION_DENIED,
    "denying the 9th client",
  );
  for (let i = 0; i < 10; i++) await step();
  agents[7].client.disconnect();
  await runUntil(
    () => server.numConnectedClients === MAX_CLIENTS - 1,
    "a client disconnect",
  );
  const kicked = agents[6];
  for (let slot = 0; slot < MAX_CLIENTS; slot++) {
    if (server.clientId(slot) === 7n) server.disconnect(slot);
  }
  await runUntil(
    () => kicked.client.state === ClientState.DISCONNECTED,
    "a server disconnect",
  );
  kicked.client.connect(tokenFor(7n));
  await runUntil(() => connectedState(kicked), "reconnecting");
  pendingAgent.serverAddress = silent.address;
  pendingAgent.client.connect(
    tokenFor(100n, {
      serverAddresses: [formatAddress(silent.address)],
      timeoutSeconds: -1,
      expireSeconds: -1,
    }),
  );
  // Quiet ticks: every payload in flight lands before counting starts.
  for (let i = 0; i < 10; i++) {
    await step(false);
    harvest();
    clearRecords();
  }
  for (const agent of agents) agent.serverGot = agent.echoes = agent.sent;
  capturing = false;

  // Connection requests beyond the captured ones.
  const fresh = Array.from(
    { length: FRESH_TOKENS },
    (_, i) => requestFor(tokenFor(1000n + BigInt(i), { expireSeconds: -1 })),
  );
  for (const data of fresh) requests.push({ data, kind: "request:fresh" });
  const extraRequests: [string, Uint8Array][] = [
    ["request:expired", tokenFor(2000n, { now: UNIX_NOW - 100 })],
    [
      "request:otherServer",
      tokenFor(2001n, { serverAddresses: ["127.0.0.1:1"] }),
    ],
    [
      "request:wrongKey",
      tokenFor(2002n, { privateKey: keyBytes(new Uint8Array(32)) }),
    ],
    [
      "request:wrongProtocol",
      tokenFor(2003n, { protocolId: PROTOCOL_ID + 1n }),
    ],
    ["request:connectedId", tokenFor(1n, { expireSeconds: -1 })],
  ];
  for (const [name, connectToken] of extraRequests) {
    requests.push({ data: requestFor(connectToken), kind: name });
  }
  const freshNonces = new Map<string, Uint8Array>();
  const nonceKey = (data: Uint8Array) =>
    String.fromCharCode(...data.subarray(30, 54));
  for (const data of fresh) freshNonces.set(nonceKey(data), data);
  const isFreshRequest = (data: Uint8Array): boolean => {
    if (data.length !== CONNECTION_REQUEST_PACKET_BYTES || data[0] !== 0) {
      return false;
    }
    const candidate = freshNonces.get(nonceKey(data));
    return candidate !== undefined && sameBytes(candidate, data);
  };

  // --- The state that must not change. --------------------------------------
  for (const agent of agents) {
    agent.state = agent.client.state;
    if (agent.state === ClientState.CONNECTED) {
      live.push(agent);
      agent.slot = agent.client.clientIndex;
      bySlot.set(agent.slot, agent);
    }
  }
  if (live.length !== LIVE_CLIENTS) fail(`setup: ${live.length} live clients`);
  const idle = agents.filter((a) =>
    a.state < ClientState.SENDING_CONNECTION_REQUEST
  );
  if (pendingAgent.state !== ClientState.SENDING_CONNECTION_REQUEST) {
    fail("setup: the pending client is not sending requests");
  }
  const slotIds = Array.from(
    { length: MAX_CLIENTS },
    (_, slot) => server.clientId(slot),
  );
  const slotAddresses = Array.from(
    { length: MAX_CLIENTS },
    (_, slot) => {
      const address = server.clientAddress(slot);
      return address ? addressKey(address) : undefined;
    },
  );
  for (const agent of live) {
    agent.clientId = slotIds[agent.slot]!;
    if (slotAddresses[agent.slot] !== agent.key) {
      fail(`setup: slot ${agent.slot} holds another address`);
    }
  }
  const clientSnapshot = agents.map((agent) => ({
    received: { ...agent.client.stats.received },
    sent: { ...agent.client.stats.sent },
    clientIndex: agent.client.clientIndex,
    maxClients: agent.client.maxClients,
  }));
  const serverReceivedBefore = { ...server.stats.received };
  const serverSentBefore = { ...server.stats.sent };
  const serverDroppedBefore = { ...server.stats.dropped };
  const clientDroppedBefore = agents.map((a) => ({
    ...a.client.stats.dropped,
  }));
  const liveKeys = new Set(live.map((agent) => agent.key));
  const pendingAllowed = new Set<string>();

  function checkState(): void {
    if (callbacks !== "") fail(`server callbacks fired:${callbacks}`);
    if (server.numConnectedClients !== LIVE_CLIENTS) {
      fail(`server has ${server.numConnectedClients} clients`);
    }
    for (let slot = 0; slot < MAX_CLIENTS; slot++) {
      const address = server.clientAddress(slot);
      if (
        server.clientId(slot) !== slotIds[slot] ||
        (address ? addressKey(address) : undefined) !== slotAddresses[slot]
      ) {
        fail(`server slot ${slot} changed`);
      }
    }
    if (server.numPendingConnections > pendingAllowed.size) {
      fail(
        `${server.numPendingConnections} pending connections, ${pendingAllowed.size} earned`,
      );
    }
    agents.forEach((agent, i) => {
      const client = agent.client;
      if (client.state !== agent.state) {
        fail(`client ${i} went from ${agent.state} to ${client.stateName}`);
      }
      if (
        client.clientIndex !== clientSnapshot[i].clientIndex ||
        client.maxClients !== clientSnapshot[i].maxClients
      ) {
        fail(`client ${i}'s slot changed`);
      }
      const received = client.stats.received;
      const before = clientSnapshot[i].received;
      for (
        const name of [
          "connectionDenied",
          "connectionChallenge",
          "disconnect",
        ] as const
      ) {
        if (received[name] !== before[name]) {
          fail(`client ${i} accepted a ${name} packet`);
        }
      }
      const sent = client.stats.sent;
      for (
        const name of ["connectionResponse", "disconnect"] as const
      ) {
        if (sent[name] !== clientSnapshot[i].sent[name]) {
          fail(`client ${i} sent a ${name} packet`);
        }
      }
    });
    for (
      const name of [
        "connectionResponse",
        "disconnect",
      ] as const
    ) {
      if (server.stats.received[name] !== serverReceivedBefore[name]) {
        fail(`server accepted a ${name} packet`);
      }
    }
    for (const name of ["connectionDenied", "disconnect"] as const) {
      if (server.stats.sent[name] !== serverSentBefore[name]) {
        fail(`server sent a ${name} packet`);
      }
    }
  }

  // --- Fuzz. -----------------------------------------------------------------
  const sentBy: Record<string, number> = {};
  const mutations: Record<string, number> = {};
  let eligibleRequests = 0;
  let allowedReplies = 0;
  let largestReply = 0;
  const eligible = new Map<string, { count: number; smallest: number }>();
  const scratch = new Uint8Array(MAX_FUZZ_BYTES);

  const interesting = [0, 1, 0x0f, 0x10, 0x7f, 0x80, 0xfe, 0xff];
  function randomDatagram(): Uint8Array {
    const r = random();
    const length = r < 0.4
      ? Math.floor(random() * (MAX_FUZZ_BYTES + 1))
      : r < 0.7
      ? Math.floor(random() * 48)
      : pick([
        0,
        1,
        17,
        18,
        19,
        26,
        27,
        1077,
        1078,
        1079,
        1300,
        1301,
        333,
        334,
      ]);
    const out = fillRandom(new Uint8Array(length));
    if (length > 0 && random() < 0.5) {
      out[0] = random() < 0.2 ? 0 : ((1 + Math.floor(random() * 8)) << 4) |
        Math.floor(random() * 7);
    }
    return out;
  }

  function seedsFor(toServer: boolean, spoofed: boolean): Seed[] {
    const r = random();
    if (toServer) {
      // From a connected client's address only keep-alive, payload and
      // disconnect get as far as decryption: mutate mostly those.
      const requestShare = spoofed ? 0.1 : 0.5;
      if (r < requestShare) return requests;
      if (r < requestShare + 0.3 && liveClientToServer.length > 0) {
        return liveClientToServer;
      }
      if (r < 0.85) return clientToServer;
      return random() < 0.5 || liveServerToClient.length === 0
        ? serverToClient
        : liveServerToClient;
    }
    if (r < 0.4 && liveServerToClient.length > 0) return liveServerToClient;
    if (r < 0.85) return serverToClient;
    return random() < 0.5 ? requests : clientToServer;
  }

  const ops = [
    "flipBits",
    "setBytes",
    "truncate",
    "extend",
    "prefix",
    "sequence",
    "body",
    "splice",
    "requestField",
  ] as const;
  type Op = typeof ops[number];

  function apply(op: Op, data: Uint8Array, other: () => Uint8Array) {
    const length = data.length;
    switch (op) {
      case "flipBits": {
        const flips = 1 + Math.floor(-Math.log(1 - random()) * 2);
        for (let i = 0; i < flips && length > 0; i++) {
          data[Math.floor(random() * length)] ^= 1 << Math.floor(random() * 8);
        }
        return data;
      }
      case "setBytes": {
        const sets = 1 + Math.floor(random() * 4);
        for (let i = 0; i < sets && length > 0; i++) {
          data[Math.floor(random() * length)] = random() < 0.5
            ? pick(interesting)
            : Math.floor(random() * 256);
        }
        return data;
      }
      case "truncate": {
        const cut = random() < 0.5
          ? Math.max(0, length - 1 - Math.floor(random() * 17))
          : Math.floor(random() * length);
        return data.subarray(0, cut);
      }
      case "extend": {
        const extra = random() < 0.5
          ? 1 + Math.floor(random() * 16)
          : Math.floor(random() * (MAX_FUZZ_BYTES - length + 1));
        const out = new Uint8Array(Math.min(MAX_FUZZ_BYTES, length + extra));
        out.set(data.subarray(0, out.length));
        return fillRandom(out, length);
      }
      case "prefix": {
        if (length === 0) return data;
        const r = random();
        data[0] = r < 0.3
          ? Math.floor(random() * 256)
          : r < 0.6
          ? (Math.floor(random() * 16) << 4) | (data[0] & 0xf)
          : (data[0] & 0xf0) | Math.floor(random() * 16);
        return data;
      }
      case "sequence": {
        const bytes = Math.min((data[0] ?? 0) >> 4, length - 1);
        const r = random();
        for (let i = 1; i <= bytes; i++) {
          data[i] = r < 0.25 ? 0 : r < 0.5 ? 0xff : Math.floor(random() * 256);
        }
        if (bytes > 0 && r >= 0.75) data[1] = (data[1] + 1) & 0xff;
        return data;
      }
      case "body": {
        const header = Math.min(length, 1 + ((data[0] ?? 0) >> 4));
        const newLength = random() < 0.5
          ? length
          : header + Math.floor(random() * (MAX_FUZZ_BYTES - header + 1));
        const out = new Uint8Array(newLength);
        out.set(data.subarray(0, Math.min(header, newLength)));
        return fillRandom(out, Math.min(header, newLength));
      }
      case "splice": {
        const second = other();
        const cut = Math.floor(random() * (length + 1));
        const from = random() < 0.5
          ? cut
          : Math.floor(random() * second.length);
        const tail = second.subarray(Math.min(from, second.length));
        const out = new Uint8Array(Math.min(MAX_FUZZ_BYTES, cut + tail.length));
        out.set(data.subarray(0, cut));
        out.set(tail.subarray(0, out.length - cut), cut);
        return out;
      }
      case "requestField": {
        if (length !== CONNECTION_REQUEST_PACKET_BYTES) {
          return apply("setBytes", data, other);
        }
        const view = new DataView(data.buffer, data.byteOffset, length);
        const r = random();
        if (r < 0.15) data[1 + Math.floor(random() * 13)] ^= 0xff; // version
        else if (r < 0.3) {
          view.setBigUint64(
            14,
            PROTOCOL_ID ^ (1n << BigInt(Math.floor(random() * 64))),
            true,
          );
        } else if (r < 0.5) {
          const choices = [
            0n,
            BigInt(UNIX_NOW - 1),
            BigInt(UNIX_NOW + Math.floor(time)),
            BigInt(UNIX_NOW + 1_000_000),
            0xffffffffffffffffn,
          ];
          view.setBigUint64(22, pick(choices), true);
        } else if (r < 0.65) data[30 + Math.floor(random() * 24)] ^= 0xff; // nonce
        else if (r < 0.85) {
          data[54 + Math.floor(random() * 1008)] ^= 1 <<
            Math.floor(random() * 8); // token
        } else data[1062 + Math.floor(random() * 16)] ^= 0xff; // MAC
        return data;
      }
    }
  }

  function fuzzDatagram(
    toServer: boolean,
    spoofed: boolean,
  ): { data: Uint8Array; op: string } {
    if (random() < 0.1) return { data: randomDatagram(), op: "random" };
    const seeds = seedsFor(toServer, spoofed);
    const base = pick(seeds);
    if (random() < 0.04) return { data: base.data, op: "replay" };
    const other = () =>
      pick(pick([clientToServer, serverToClient, requests])).data;
    let data: Uint8Array = scratch.subarray(0, base.data.length);
    data.set(base.data);
    const stacked = random() < 0.25 ? 2 + Math.floor(random() * 2) : 1;
    let first: Op = "flipBits";
    for (let i = 0; i < stacked; i++) {
      const op = base.kind.startsWith("request") && random() < 0.3
        ? "requestField"
        : pick(ops);
      if (i === 0) first = op;
      data = apply(op, data, other);
    }
    return {
      data: data.slice(),
      op: stacked > 1 ? `stack(${first},...)` : first,
    };
  }

  const targets = live.length;
  const started = performance.now();
  let sent = 0;
  let ticks = 0;
  let nextLog = started + 5000;
  const legitBefore = live.map((agent) => agent.sent);
  while (sent < options.count) {
    eligible.clear();
    const batch = Math.min(perTick, options.count - sent);
    for (let i = 0; i < batch; i++) {
      // Where it goes and where from first: content may take any number
      // of draws.
      random = createRandom(mix(seed, sent + i));
      const toServer = random() < 0.5;
      const unknown = random() < 0.5;
      let target: Address;
      let source: DatagramSocket;
      let label: string;
      if (toServer) {
        target = serverAddress;
        source = unknown ? pick(attackers) : pick(live).raw;
        label = unknown ? "server<-unknown" : "server<-spoofedClient";
      } else {
        const t = random();
        const agent = t < 0.8
          ? live[Math.floor(random() * targets)]
          : t < 0.9
          ? pick(idle)
          : pendingAgent;
        target = agent.raw.address;
        source = unknown
          ? pick(attackers)
          : agent === pendingAgent
          ? silent
          : serverRaw;
        label = unknown ? "client<-unknown" : "client<-spoofedServer";
      }
      const { data, op } = fuzzDatagram(toServer, !unknown);
      if (toServer && unknown && isFreshRequest(data)) {
        const key = addressKey(source.address);
        const entry = eligible.get(key) ?? { count: 0, smallest: Infinity };
        entry.count++;
        entry.smallest = Math.min(entry.smallest, data.length);
        eligible.set(key, entry);
        pendingAllowed.add(key);
        eligibleRequests++;
      }
      increment(sentBy, label);
      increment(mutations, op);
      source.send(data, target);
    }
    sent += batch;
    ticks++;
    await step();
    // Replies: only challenges (or denials) earned by fresh requests.
    for (const { data, to } of serverSocket.sent) {
      const key = addressKey(to);
      const type = data[0] & 0xf;
      if (liveKeys.has(key)) {
        if (
          type !== CONNECTION_KEEP_ALIVE_PACKET &&
          type !== CONNECTION_PAYLOAD_PACKET
        ) {
          fail(`server sent ${PACKET_TYPE_NAMES[type]} to client ${key}`);
        }
        continue;
      }
      const entry = eligible.get(key);
      if (!entry || entry.count === 0) {
        fail(
          `server replied ${data.length} bytes (type ${type}) to ${key}, which sent no valid request`,
        );
      }
      if (
        type !== CONNECTION_CHALLENGE_PACKET &&
        type !== CONNECTION_DENIED_PACKET
      ) {
        fail(`server replied type ${type} to a connection request`);
      }
      if (data.length >= entry.smallest) {
        fail(
          `server replied ${data.length} bytes to a ${entry.smallest}-byte request`,
        );
      }
      entry.count--;
      allowedReplies++;
      largestReply = Math.max(largestReply, data.length);
    }
    for (const agent of agents) {
      for (const { data, to } of agent.socket.sent) {
        const key = addressKey(to);
        const type = data[0] & 0xf;
        const expected = agent === pendingAgent
          ? type === CONNECTION_REQUEST_PACKET
          : live.includes(agent) &&
            (type === CONNECTION_KEEP_ALIVE_PACKET ||
              type === CONNECTION_PAYLOAD_PACKET);
        if (!expected || key !== addressKey(agent.serverAddress)) {
          fail(
            `client ${agent.index} sent ${PACKET_TYPE_NAMES[type]} to ${key}`,
          );
        }
      }
    }
    harvest();
    clearRecords();
    checkState();
    if (performance.now() >= nextLog) {
      nextLog += 5000;
      const seconds = (performance.now() - started) / 1000;
      log(
        `  ${sent} datagrams, ${Math.round(sent / seconds)}/s, ${ticks} ticks`,
      );
    }
  }
  const seconds = (performance.now() - started) / 1000;

  // Let the last payloads, echoes and replies land, then count them.
  for (let i = 0; i < 30; i++) {
    await step(false);
    clearRecords();
  }
  checkState();
  if (attackerReceived !== allowedReplies && lostInTransport === 0) {
    fail(
      `unknown addresses received ${attackerReceived} datagrams, ${allowedReplies} replies were allowed`,
    );
  }
  let legitPayloads = 0;
  let legitEchoes = 0;
  live.forEach((agent, i) => {
    legitPayloads += agent.sent - legitBefore[i];
    legitEchoes += agent.echoes - legitBefore[i];
    if (lostInTransport === 0 && agent.echoes !== agent.sent) {
      fail(
        `client ${agent.index} sent ${agent.sent} payloads, got ${agent.echoes} echoes`,
      );
    }
  });

  // Every hostile datagram was dropped and counted, but for the challenges
  // earned (on the simulator, where nothing legitimate is lost or doubled).
  const serverDropped = delta(server.stats.dropped, serverDroppedBefore);
  const clientDropped = sum(
    agents.map((a, i) => delta(a.client.stats.dropped, clientDroppedBefore[i])),
  );
  const total = (record: Record<string, number>) =>
    Object.values(record).reduce((a, b) => a + b, 0);
  const toServer = (sentBy["server<-unknown"] ?? 0) +
    (sentBy["server<-spoofedClient"] ?? 0);
  if (exact && total(serverDropped) + allowedReplies !== toServer) {
    fail(
      `server dropped ${
        total(serverDropped)
      } and answered ${allowedReplies} of ${toServer} datagrams`,
    );
  }
  if (exact && total(clientDropped) !== sent - toServer) {
    fail(
      `clients dropped ${total(clientDropped)} of ${sent - toServer} datagrams`,
    );
  }

  const result: FuzzResult = {
    transport: kind,
    seed,
    datagrams: sent,
    ticks,
    seconds,
    sentBy,
    mutations,
    serverDropped,
    clientDropped,
    eligibleRequests,
    allowedReplies,
    largestReply,
    legitPayloads,
    legitEchoes,
    lostInTransport,
  };
  for (const agent of agents) agent.client.close();
  server.close();
  for (const socket of [silent, ...attackers]) socket.close();
  await transport.close();
  return result;
}

function table(record: Record<string, number>): string {
  const entries = Object.entries(record).sort((a, b) => b[1] - a[1]);
  if (entries.length === 0) return "    (none)";
  const width = Math.max(...entries.map(([key]) => key.length));
  return entries.map(([key, value]) =>
    `    ${key.padEnd(width)}  ${value.toLocaleString("en-US")}`
  ).join("\n");
}

/** The figures of a run, for people. */
export function formatFuzzResult(result: FuzzResult): string {
  const n = (value: number) => value.toLocaleString("en-US");
  return [
    `fuzz over ${
      result.transport === "udp" ? "loopback UDP (127.0.0.1)" : "the simulator"
    } (seed ${result.seed}): ${n(result.datagrams)} hostile datagrams in ${
      result.seconds.toFixed(2)
    } s (${n(Math.round(result.datagrams / result.seconds))} datagrams/s), ${
      n(result.ticks)
    } ticks`,
    `  sent, by target and source:`,
    table(result.sentBy),
    `  sent, by mutation:`,
    table(result.mutations),
    `  server drops by reason:`,
    table(result.serverDropped),
    `  client drops by reason (10 clients):`,
    table(result.clientDropped),
    `  replies to unknown addresses: ${
      n(result.allowedReplies)
    }, all challenges to the ${
      n(result.eligibleRequests)
    } unmodified fresh-token requests (largest ${result.largestReply} bytes < 1078)`,
    `  legitimate payloads meanwhile: ${n(result.legitPayloads)} sent, ${
      n(result.legitEchoes)
    } echoed${
      result.lostInTransport > 0
        ? `; ${n(result.lostInTransport)} datagrams lost by the system`
        : ""
    }`,
    `  state: server slots, ids and addresses unchanged, no connect or disconnect, client states unchanged${
      result.transport === "simulator"
        ? "; every hostile datagram dropped and counted, but the challenges earned"
        : ""
    }`,
  ].join("\n");
}
