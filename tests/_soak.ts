// The soak behind `deno task soak` and tests/soak_test.ts.
//
// 64 clients (each with its own client id) against a server with fewer
// slots, over the simulator with 5% loss, 100 ms +/- 50 ms latency and 1%
// duplicates. Each client, at random: connects with a fresh token, sends
// payloads that the server echoes, then leaves (a clean disconnect, a
// server kick, or a network partition both sides must time out of), or
// gives up half-way through a handshake; then it waits and connects again.
//
// Checked on every tick:
// - slots: the server's count equals its connect/disconnect callbacks and
//   its own slot table, and each client's view (CONNECTED or not) matches
//   the server's (does it hold a slot for the client's id?) except for a
//   short transition: 1.5 s for packets in flight (the handshake's last
//   keep-alive, a disconnect on its way) and, for a client that gave up in
//   the middle of a handshake, the token's timeout plus 1.5 s (its response
//   may reach the server after its disconnect packets, and the slot it
//   takes then only times out);
// - pending connections <= 4 x max clients, token history <= 8 x max
//   clients;
// - every payload and echo is the sender's own, of its current connection;
// - no connected client drops out unless the soak made it leave.
// At the end everyone leaves and, after a quiet period longer than the
// timeout, no slot and no pending connection is left. Across the run,
// echoes per connected period stay near (95%)^2 of the payloads sent, and
// (with --expose-gc) the heap does not grow.

import { addressKey } from "../address.ts";
import { ClientState, clientStateName } from "../client.ts";
import { createRandom } from "../simulator.ts";
import { createWorld, token, UNIX_NOW } from "./_harness.ts";
import type { Client } from "../client.ts";
import type { DisconnectReason } from "../server.ts";
import type { TapSocket } from "./_harness.ts";

/** Seconds without packets before a connection times out, in every token. */
export const SOAK_TIMEOUT_SECONDS = 5;
const TRANSITION_GRACE = 1.5;
const QUIET_SECONDS = SOAK_TIMEOUT_SECONDS + 3;
const HEAP_SAMPLE_SECONDS = 5;
/** The last 10% of heap samples may be at most this much above the first. */
export const HEAP_GROWTH_ALLOWED = 1.2;

/** Options of {@linkcode runSoak}. */
export interface SoakOptions {
  /** Simulated seconds of churn (a quiet period follows). */
  seconds: number;
  /** Seed of the simulator and of the clients' choices. */
  seed: number;
  /** Clients. @default {64} */
  clients?: number;
  /** Server slots: fewer than clients, so some get denied. @default {56} */
  maxClients?: number;
  /** Progress lines while running. */
  log?: (line: string) => void;
}

/** What a soak run did and saw. */
export interface SoakResult {
  seed: number;
  clients: number;
  maxClients: number;
  simulatedSeconds: number;
  ticks: number;
  wallSeconds: number;
  connectAttempts: number;
  connectedPeriods: number;
  /** Connect attempts that ended in an error state, by state name. */
  connectFailures: Record<string, number>;
  /** Clients that gave up in the middle of a handshake. */
  abandoned: number;
  /** How the soak made connected clients leave. */
  leaves: Record<string, number>;
  /** The server's disconnect callbacks, by reason. */
  serverDisconnects: Record<string, number>;
  /** How connected clients saw their connections end, by state name. */
  clientDisconnects: Record<string, number>;
  payloadsSent: number;
  payloadsReceivedByServer: number;
  echoes: number;
  /** Connected periods with at least 150 payloads sent. */
  periodsMeasured: number;
  /** The lowest echo ratio of those periods. */
  lowestPeriodEchoRatio: number;
  network: {
    sent: number;
    lost: number;
    duplicated: number;
    delivered: number;
    dropped: number;
  };
  peakConnected: number;
  peakPending: number;
  peakTokenHistory: number;
  /**
   * Most clients whose view and the server's differed at once (in
   * transition), before the quiet period's mass disconnect.
   */
  peakInTransition: number;
  /**
   * Times the server held a slot for a client that had given up its
   * handshake (or been denied, or timed out) for longer than the usual
   * 1.5 s transition: a late response took it; it then timed out. By how
   * the client's last handshake ended.
   */
  orphanedSlots: Record<string, number>;
  finalConnected: number;
  finalPending: number;
  finalTokenHistory: number;
  /** Whether heap samples were taken after a forced GC. */
  gc: boolean;
  /** Heap used, in bytes, every 5 simulated seconds. */
  heapSamples: number[];
}

/** Fails the run with the seed and time in the message. */
export class SoakFailure extends Error {
  override name = "SoakFailure";
}

type Phase = "idle" | "connecting" | "connected" | "kicked" | "partitioned";

interface Agent {
  readonly index: number;
  readonly id: bigint;
  readonly client: Client;
  readonly socket: TapSocket;
  readonly key: string;
  phase: Phase;
  /** idle: when to connect; connecting: when to give up; connected: when to leave. */
  nextAt: number;
  generation: number;
  counter: number;
  periodSent: number;
  periodEchoed: number;
  /** Since when client and server disagree about the connection. */
  mismatchSince: number;
  /** Until when a disagreement is allowed for longer than the usual grace. */
  extendedGraceUntil: number;
  /** Whether the current disagreement outlived the usual grace. */
  outlivedGrace: boolean;
  /** Whether a partitioned client's own timeout was counted. */
  partitionSeen: boolean;
  /** How the client's last failed handshake ended. */
  lastHandshakeEnd: string;
}

function median(values: number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2
    ? sorted[middle]
    : (sorted[middle - 1] + sorted[middle]) / 2;
}

/** The median heap of the first and last 10% of the samples (at least 1). */
export function heapTrend(samples: number[]): { first: number; last: number } {
  const n = Math.max(1, Math.floor(samples.length / 10));
  return {
    first: median(samples.slice(0, n)),
    last: median(samples.slice(samples.length - n)),
  };
}

function increment(counts: Record<string, number>, key: string) {
  counts[key] = (counts[key] ?? 0) + 1;
}

/** Runs the soak; throws {@linkcode SoakFailure} on the first broken property. */
export function runSoak(options: SoakOptions): SoakResult {
  const clientCount = options.clients ?? 64;
  const maxClients = options.maxClients ?? 56;
  const seed = options.seed;
  const log = options.log ?? (() => {});
  const random = createRandom(seed ^ 0x5eed);
  const gc = (globalThis as { gc?: () => void }).gc;
  const started = performance.now();

  const idBySlot: (bigint | undefined)[] = new Array(maxClients).fill(
    undefined,
  );
  const slotById = new Map<bigint, number>();
  const serverDisconnects: Record<string, number> = {};
  const now = () => world.time;
  function fail(message: string): never {
    throw new SoakFailure(
      `${message} (seed ${seed}, at ${now().toFixed(3)} s)`,
    );
  }

  const world = createWorld({
    seed,
    latencyMs: 100,
    jitterMs: 50,
    packetLossPercent: 5,
    duplicatePercent: 1,
    server: {
      maxClients,
      onConnect(slot) {
        const id = world.server.clientId(slot)!;
        if (idBySlot[slot] !== undefined || slotById.has(id)) {
          fail(`slot ${slot} taken twice, or client ${id} in two slots`);
        }
        idBySlot[slot] = id;
        slotById.set(id, slot);
      },
      onDisconnect(slot, reason: DisconnectReason) {
        const id = idBySlot[slot];
        if (id === undefined || world.server.clientId(slot) !== id) {
          fail(`disconnect of slot ${slot}, which held no client`);
        }
        idBySlot[slot] = undefined;
        slotById.delete(id!);
        increment(serverDisconnects, reason);
      },
    },
  });
  const { server, network } = world;
  const blocked = new Set<string>();
  world.serverSocket.filter = (_data, to) => !blocked.has(addressKey(to));

  const agents: Agent[] = Array.from({ length: clientCount }, (_, index) => {
    const client = world.addClient();
    const socket = world.clientSockets[index];
    return {
      index,
      id: BigInt(index + 1),
      client,
      socket,
      key: addressKey(socket.address),
      phase: "idle",
      nextAt: random() * 2,
      generation: 0,
      counter: 0,
      periodSent: 0,
      periodEchoed: 0,
      mismatchSince: -1,
      extendedGraceUntil: -1,
      outlivedGrace: false,
      partitionSeen: false,
      lastHandshakeEnd: "none",
    };
  });

  let connectAttempts = 0;
  let connectedPeriods = 0;
  let abandoned = 0;
  const connectFailures: Record<string, number> = {};
  const leaves: Record<string, number> = {};
  const clientDisconnects: Record<string, number> = {};
  let payloadsSent = 0;
  let payloadsReceivedByServer = 0;
  let echoes = 0;
  let periodsMeasured = 0;
  let lowestPeriodEchoRatio = 1;
  let peakConnected = 0;
  let peakPending = 0;
  let peakTokenHistory = 0;
  let peakInTransition = 0;
  const orphanedSlots: Record<string, number> = {};
  const heapSamples: number[] = [];
  let nextHeapSample = 0;
  const scratch = new DataView(new ArrayBuffer(12));

  const time = () => world.time;
  const idleDelay = () => 0.5 + random() * 3.5;
  const stayFor = () => Math.min(90, 1 + -Math.log(1 - random()) * 20);

  function payloadFor(agent: Agent): Uint8Array {
    const length = random() < 0.05
      ? 9 + Math.floor(random() * 1192)
      : 9 + Math.floor(random() * 192);
    const payload = new Uint8Array(length);
    const view = new DataView(payload.buffer);
    payload[0] = agent.index;
    view.setUint32(1, agent.generation, true);
    view.setUint32(5, agent.counter++, true);
    payload.fill(agent.counter & 0xff, 9);
    return payload;
  }

  function readTag(payload: Uint8Array) {
    for (let i = 0; i < 9; i++) scratch.setUint8(i, payload[i]);
    return {
      index: scratch.getUint8(0),
      generation: scratch.getUint32(1, true),
    };
  }

  function closePeriod(agent: Agent): void {
    if (agent.periodSent >= 150) {
      periodsMeasured++;
      const ratio = agent.periodEchoed / agent.periodSent;
      lowestPeriodEchoRatio = Math.min(lowestPeriodEchoRatio, ratio);
      if (ratio < 0.7) {
        fail(
          `client ${agent.index} got ${agent.periodEchoed} echoes for ${agent.periodSent} payloads in one connection`,
        );
      }
    }
    agent.periodSent = 0;
    agent.periodEchoed = 0;
  }

  function connect(agent: Agent): void {
    agent.generation++;
    agent.counter = 0;
    agent.client.connect(token({
      serverAddresses: ["127.0.0.1:40000"],
      clientId: agent.id,
      timeoutSeconds: SOAK_TIMEOUT_SECONDS,
      now: UNIX_NOW + time(),
    }));
    connectAttempts++;
    agent.phase = "connecting";
    // One attempt in ten gives up during the handshake.
    agent.nextAt = random() < 0.1 ? time() + random() * 0.5 : Infinity;
  }

  function leave(agent: Agent, ending: boolean): void {
    closePeriod(agent);
    const r = ending ? 0 : random();
    const slot = slotById.get(agent.id);
    if (r < 0.7 || slot === undefined) {
      increment(leaves, "clientDisconnect");
      agent.client.disconnect();
      increment(clientDisconnects, clientStateName(agent.client.state));
      agent.phase = "idle";
      agent.nextAt = time() + idleDelay();
    } else if (r < 0.85) {
      increment(leaves, "serverKick");
      server.disconnect(slot);
      agent.phase = "kicked";
      agent.nextAt = time() + 2;
    } else {
      increment(leaves, "partition");
      blocked.add(agent.key);
      agent.socket.filter = () => false;
      agent.phase = "partitioned";
      agent.partitionSeen = false;
      agent.nextAt = time() + SOAK_TIMEOUT_SECONDS + 2;
    }
  }

  /** Before the tick: connect, send, leave, give up (ending: only leave). */
  function act(ending: boolean): void {
    for (const agent of agents) {
      const client = agent.client;
      switch (agent.phase) {
        case "idle":
          if (!ending && time() >= agent.nextAt) connect(agent);
          break;
        case "connecting":
          if (ending || time() >= agent.nextAt) {
            abandoned += ending ? 0 : 1;
            agent.lastHandshakeEnd = `gave up in ${client.stateName}`;
            client.disconnect();
            agent.phase = "idle";
            agent.nextAt = time() + idleDelay();
            // Its response may still reach the server and take a slot that
            // only times out.
            agent.extendedGraceUntil = time() + SOAK_TIMEOUT_SECONDS +
              TRANSITION_GRACE;
          }
          break;
        case "connected":
          if (ending || time() >= agent.nextAt) {
            leave(agent, ending);
          } else if (random() < 0.25) {
            client.send(payloadFor(agent));
            agent.periodSent++;
            payloadsSent++;
          }
          break;
        case "kicked":
        case "partitioned":
          if (time() >= agent.nextAt) {
            fail(
              `client ${agent.index} still ${client.stateName} after being ${agent.phase}`,
            );
          }
      }
    }
  }

  /** After the tick: echo, receive, follow state changes, check. */
  function observe(): void {
    for (let slot = 0; slot < maxClients; slot++) {
      for (let p = server.receive(slot); p; p = server.receive(slot)) {
        const tag = readTag(p);
        const agent = agents[tag.index];
        if (
          agent === undefined || agent.id !== idBySlot[slot] ||
          tag.generation > agent.generation
        ) {
          fail(`slot ${slot} received a payload of another client`);
        }
        payloadsReceivedByServer++;
        server.send(slot, p);
      }
    }
    for (const agent of agents) {
      const client = agent.client;
      for (let p = client.receive(); p; p = client.receive()) {
        const tag = readTag(p);
        if (tag.index !== agent.index || tag.generation !== agent.generation) {
          fail(
            `client ${agent.index} (connection ${agent.generation}) got an echo of client ${tag.index} (connection ${tag.generation})`,
          );
        }
        echoes++;
        if (agent.phase === "connected") agent.periodEchoed++;
      }
      const state = client.state;
      switch (agent.phase) {
        case "connecting":
          if (state === ClientState.CONNECTED) {
            agent.phase = "connected";
            agent.extendedGraceUntil = -1;
            agent.nextAt = time() + stayFor();
            connectedPeriods++;
          } else if (state <= ClientState.DISCONNECTED) {
            increment(connectFailures, clientStateName(state));
            agent.lastHandshakeEnd = clientStateName(state);
            agent.phase = "idle";
            agent.nextAt = time() + idleDelay();
            // A handshake that ends without connecting can leave a slot
            // behind: a response resent (or duplicated) after a denial
            // reaches the server once a slot is free, as in the reference.
            // The slot times out like any other.
            agent.extendedGraceUntil = time() + SOAK_TIMEOUT_SECONDS +
              TRANSITION_GRACE;
          }
          break;
        case "connected":
          if (state !== ClientState.CONNECTED) {
            fail(
              `client ${agent.index} dropped to ${
                clientStateName(state)
              } by itself`,
            );
          }
          break;
        case "kicked":
          if (state !== ClientState.CONNECTED) {
            increment(clientDisconnects, clientStateName(state));
            agent.phase = "idle";
            agent.nextAt = time() + idleDelay();
          }
          break;
        case "partitioned":
          if (state !== ClientState.CONNECTED && !agent.partitionSeen) {
            agent.partitionSeen = true;
            increment(clientDisconnects, clientStateName(state));
            if (state !== ClientState.CONNECTION_TIMED_OUT) {
              fail(
                `partitioned client ${agent.index} ended ${
                  clientStateName(state)
                }`,
              );
            }
          }
          // Heal once both sides have timed out.
          if (
            state !== ClientState.CONNECTED && !slotById.has(agent.id)
          ) {
            blocked.delete(agent.key);
            agent.socket.filter = () => true;
            agent.phase = "idle";
            agent.nextAt = time() + idleDelay();
          }
          break;
      }
    }
    check();
  }

  function check(): void {
    const connected = server.numConnectedClients;
    if (connected !== slotById.size) {
      fail(
        `server counts ${connected} clients, its callbacks ${slotById.size}`,
      );
    }
    let held = 0;
    for (let slot = 0; slot < maxClients; slot++) {
      if (server.clientConnected(slot)) {
        held++;
        if (server.clientId(slot) !== idBySlot[slot]) {
          fail(`slot ${slot} holds another client than it connected`);
        }
      } else if (idBySlot[slot] !== undefined) {
        fail(`slot ${slot} is free but was never disconnected`);
      }
    }
    if (held !== connected) fail(`${held} slots held, ${connected} counted`);
    const pending = server.numPendingConnections;
    const history = server.numTokenHistoryEntries;
    if (pending > 4 * maxClients) fail(`${pending} pending connections`);
    if (history > 8 * maxClients) fail(`${history} token history entries`);
    peakConnected = Math.max(peakConnected, connected);
    peakPending = Math.max(peakPending, pending);
    peakTokenHistory = Math.max(peakTokenHistory, history);
    let clientsConnected = 0;
    let inTransition = 0;
    for (const agent of agents) {
      const clientSide = agent.client.state === ClientState.CONNECTED;
      const serverSide = slotById.has(agent.id);
      if (clientSide) clientsConnected++;
      if (clientSide === serverSide) {
        agent.mismatchSince = -1;
        continue;
      }
      inTransition++;
      if (agent.mismatchSince < 0) {
        agent.mismatchSince = time();
        agent.outlivedGrace = false;
      }
      if (
        !agent.outlivedGrace && time() > agent.mismatchSince + TRANSITION_GRACE
      ) {
        // Only the extended grace of a failed handshake allows this.
        agent.outlivedGrace = true;
        increment(orphanedSlots, agent.lastHandshakeEnd);
      }
      const limit = Math.max(
        agent.mismatchSince + TRANSITION_GRACE,
        agent.extendedGraceUntil,
      );
      if (time() > limit) {
        fail(
          `client ${agent.index} is ${agent.client.stateName} but the server ${
            serverSide ? "holds" : "has no"
          } slot for it, since ${agent.mismatchSince.toFixed(3)} s`,
        );
      }
    }
    if (Math.abs(connected - clientsConnected) > inTransition) {
      fail(
        `server has ${connected} clients, ${clientsConnected} clients are connected, ${inTransition} in transition`,
      );
    }
    if (!quiet) peakInTransition = Math.max(peakInTransition, inTransition);
  }

  function clearRecords(): void {
    const w = world;
    w.serverSocket.sent.length = 0;
    w.serverSocket.received.length = 0;
    for (const socket of w.clientSockets) {
      socket.sent.length = 0;
      socket.received.length = 0;
    }
  }

  function sampleHeap(): void {
    gc?.();
    heapSamples.push(Deno.memoryUsage().heapUsed);
  }

  // Churn.
  let quiet = false;
  let ticks = 0;
  let nextLog = started + 10_000;
  while (time() < options.seconds) {
    act(false);
    world.step();
    ticks++;
    observe();
    clearRecords();
    if (time() >= nextHeapSample) {
      nextHeapSample += HEAP_SAMPLE_SECONDS;
      sampleHeap();
    }
    if (performance.now() >= nextLog) {
      nextLog += 10_000;
      log(
        `  ${
          time().toFixed(0)
        } s simulated, ${server.numConnectedClients} connected, ${payloadsSent} payloads, ${echoes} echoes`,
      );
    }
  }
  // Everyone leaves; a quiet period longer than the timeout follows.
  const quietEnd = time() + QUIET_SECONDS;
  quiet = true;
  while (time() < quietEnd) {
    act(true);
    world.step();
    ticks++;
    observe();
    clearRecords();
  }
  for (const agent of agents) {
    if (agent.phase === "connected") closePeriod(agent);
    if (agent.client.state > ClientState.DISCONNECTED) {
      fail(`client ${agent.index} is still ${agent.client.stateName}`);
    }
  }
  const result: SoakResult = {
    seed,
    clients: clientCount,
    maxClients,
    simulatedSeconds: options.seconds,
    ticks,
    wallSeconds: (performance.now() - started) / 1000,
    connectAttempts,
    connectedPeriods,
    connectFailures,
    abandoned,
    leaves,
    serverDisconnects,
    clientDisconnects,
    payloadsSent,
    payloadsReceivedByServer,
    echoes,
    periodsMeasured,
    lowestPeriodEchoRatio,
    network: {
      sent: network.stats.sent,
      lost: network.stats.lost,
      duplicated: network.stats.duplicated,
      delivered: network.stats.delivered,
      dropped: network.stats.dropped,
    },
    peakConnected,
    peakPending,
    peakTokenHistory,
    peakInTransition,
    orphanedSlots,
    finalConnected: server.numConnectedClients,
    finalPending: server.numPendingConnections,
    finalTokenHistory: server.numTokenHistoryEntries,
    gc: gc !== undefined,
    heapSamples,
  };
  world.close();
  if (result.finalConnected !== 0) {
    fail(`${result.finalConnected} slots still held after the quiet period`);
  }
  if (result.finalPending !== 0) {
    fail(`${result.finalPending} pending connections after the quiet period`);
  }
  const ratio = echoes / payloadsSent;
  if (!(ratio >= 0.85 && ratio <= 1)) {
    fail(`${echoes} echoes for ${payloadsSent} payloads`);
  }
  // Memory: only meaningful with forced collections and enough samples.
  if (gc !== undefined && heapSamples.length >= 20) {
    const trend = heapTrend(heapSamples);
    if (trend.last > trend.first * HEAP_GROWTH_ALLOWED) {
      fail(
        `heap grew from ${trend.first} to ${trend.last} bytes (medians of the first and last 10% of samples)`,
      );
    }
  }
  return result;
}

/** The figures of a run, for people. */
export function formatSoakResult(result: SoakResult): string {
  const n = (value: number) => value.toLocaleString("en-US");
  const list = (record: Record<string, number>) =>
    Object.entries(record).sort((a, b) => b[1] - a[1]).map(([key, value]) =>
      `${key} ${n(value)}`
    ).join(", ") || "none";
  const mib = (bytes: number) => `${(bytes / 1048576).toFixed(2)} MiB`;
  const trend = heapTrend(result.heapSamples);
  const net = result.network;
  const pct = (part: number, whole: number) =>
    `${(100 * part / whole).toFixed(2)}%`;
  return [
    `soak over the simulator (seed ${result.seed}): ${result.simulatedSeconds} simulated s + ${QUIET_SECONDS} s quiet (${
      n(result.ticks)
    } ticks) in ${
      result.wallSeconds.toFixed(1)
    } s wall; ${result.clients} clients, ${result.maxClients} slots; 5% loss, 100 +/- 50 ms, 1% duplicates`,
    `  connects: ${n(result.connectAttempts)} attempts, ${
      n(result.connectedPeriods)
    } connected; failed: ${list(result.connectFailures)}; ${
      n(result.abandoned)
    } given up mid-handshake`,
    `  leaving connected: ${list(result.leaves)}`,
    `  disconnects seen by the server: ${list(result.serverDisconnects)}`,
    `  disconnects seen by the clients: ${list(result.clientDisconnects)}`,
    `  payloads: ${n(result.payloadsSent)} sent, ${
      n(result.payloadsReceivedByServer)
    } reached the server (${
      pct(result.payloadsReceivedByServer, result.payloadsSent)
    }), ${n(result.echoes)} echoed (${
      pct(result.echoes, result.payloadsSent)
    }; 95% x 95% = 90.25% before end-of-connection losses); lowest of ${
      n(result.periodsMeasured)
    } connections with >= 150 payloads: ${
      (100 * result.lowestPeriodEchoRatio).toFixed(1)
    }%`,
    `  network: ${n(net.sent)} datagrams sent, ${n(net.lost)} lost (${
      pct(net.lost, net.sent)
    }), ${n(net.duplicated)} duplicated (${pct(net.duplicated, net.sent)}), ${
      n(net.dropped)
    } dropped by full queues`,
    `  slots: peak ${result.peakConnected}/${result.maxClients} connected, at most ${result.peakInTransition} clients in transition at once while churning; slots held > 1.5 s for clients whose handshake had ended (a late response took them; they timed out), by how it ended: ${
      list(result.orphanedSlots)
    }; after the quiet period ${result.finalConnected} connected, ${result.finalPending} pending`,
    `  peak pending connections ${result.peakPending} (bound ${
      4 * result.maxClients
    }), peak token history ${result.peakTokenHistory} (bound ${
      8 * result.maxClients
    }), final ${result.finalTokenHistory}`,
    `  heap used${
      result.gc ? " after GC" : " (no --expose-gc: not forced)"
    }: ${result.heapSamples.length} samples every ${HEAP_SAMPLE_SECONDS} simulated s; median of the first 10% ${
      mib(trend.first)
    }, of the last 10% ${mib(trend.last)} (${
      trend.last >= trend.first ? "+" : ""
    }${pct(trend.last - trend.first, trend.first)}); min ${
      mib(Math.min(...result.heapSamples))
    }, max ${mib(Math.max(...result.heapSamples))}`,
  ].join("\n");
}
