/**
 * `netcode probe client`: a black-box conformance prober for any netcode
 * 1.02 client. The probe is the server: it writes a connect token for the
 * client under test (or reads the one the client made itself, with the
 * private key), starts the client once per scenario and judges the packets
 * it sends, rule by rule (see {@linkcode CLIENT_CHECKS}).
 *
 * Scenarios, one run of the client each:
 *
 * 1. connect: requests left unanswered for 550 ms (request, request-rate),
 *    a challenge and responses left unanswered for 350 ms (response,
 *    packet-nonce), then connected for `holdSeconds` with keep-alives and
 *    the client's own payloads echoed back (keep-alive, payload), then a
 *    clean disconnect, by the client itself or after `stopAfterSeconds` by
 *    `stop()` (SIGINT for a command): disconnect.
 * 2. replay: connected, then a disconnect packet with an already received
 *    sequence and one too old (replay).
 * 3. timeout: connected, then the probe goes silent (timeout).
 * 4. denied: the first request gets a connection denied packet (denied).
 * 5. fallback: a token naming first a server that never answers, then the
 *    probe (fallback); only when the client uses the probe's token.
 *
 * A client's final state is not visible from outside. What is: the packets
 * it sends (an error state sends none) and whether its process exits, with
 * which code; the probe judges the packets and notes the exit codes.
 *
 * @module
 */

import {
  type Address,
  addressEqual,
  formatAddress,
  parseAddress,
} from "../address.ts";
import { randomBytes } from "../crypto.ts";
import { MAX_PAYLOAD_BYTES } from "../packet.ts";
import {
  CLIENT_CHECKS,
  createResults,
  type ProbeReport,
  type Results,
} from "./_probe_checks.ts";
import { createNet, type Endpoint, ms, type Net } from "./_probe_net.ts";
import {
  GLOBAL_SEQUENCE_START,
  keepAliveBody,
  makeToken,
  type NonceOrder,
  type OpenedPacket,
  openPacket,
  PacketType,
  peekPacket,
  type ProbeToken,
  type ReadRequest,
  readRequest,
  sealPacket,
} from "./_probe_wire.ts";

/** The token a run of the client under test is given. */
export interface LaunchToken {
  /** A file holding the raw 2048-byte connect token. */
  readonly path: string;
  /** The same 2048 bytes. */
  readonly bytes: Uint8Array;
  /** The address the probe listens on (the token's last server). */
  readonly address: Address;
  /** The scenario: `"connect"`, `"timeout"`, `"denied"` or `"fallback"`. */
  readonly scenario: string;
}

/** A running client under test. */
export interface ClientUnderTest {
  /** Settles with the exit code when it ends (`undefined` when unknown). */
  readonly exited: Promise<number | undefined>;
  /** Asks it to disconnect cleanly and end (SIGINT for a command). */
  stop(): void;
  /** Ends it at once. */
  kill(): void;
  /** How `stop()` asks, for the report: `"SIGINT"`. @default {"stop()"} */
  readonly stopName?: string;
}

/** Starts the client under test with a token. */
export type LaunchClient = (token: LaunchToken) => ClientUnderTest;

/** Options of {@linkcode probeClient}. */
export interface ProbeClientOptions {
  /** Where the probe listens, as the token names it: `"127.0.0.1:40000"`. */
  listen: string | Address;
  /** The protocol id of the tokens. */
  protocolId: bigint;
  /** The private key (to make tokens and read the client's own). */
  privateKey: Uint8Array;
  /** Starts the client under test. */
  launch: LaunchClient;
  /** Timeout seconds of the probe's tokens, 1..30. @default {2} */
  timeoutSeconds?: number;
  /** Seconds to wait for the client's first request. @default {10} */
  startSeconds?: number;
  /** Seconds the connect scenario stays connected before the disconnect. @default {1.5} */
  holdSeconds?: number;
  /** Seconds to wait for the client to disconnect by itself before `stop()`. @default {2} */
  stopAfterSeconds?: number;
  /** Directory for the token files. @default {a new temporary directory} */
  tokenDirectory?: string;
  /** Checks to skip. @default {[]} */
  skip?: readonly string[];
  /** Progress lines. @default {() => {}} */
  log?: (line: string) => void;
}

/** A packet from the client under test. */
interface ClientPacket {
  readonly at: number;
  readonly data: Uint8Array;
  readonly type: number;
  readonly opened: OpenedPacket | undefined;
}

interface Run {
  readonly net: Net;
  readonly listen: Endpoint;
  readonly results: Results;
  readonly options: ProbeClientOptions;
  readonly timeout: number;
  readonly directory: string;
  order: NonceOrder;
  globalSequence: bigint;
  /** Whether the client makes its own token (detected in the connect scenario). */
  selfToken: boolean;
  readonly log: (line: string) => void;
}

/** One run of the client: its address, keys and what it sent. */
interface Session {
  readonly run: Run;
  readonly start: number;
  readonly endpoint: Endpoint;
  client: ClientUnderTest | undefined;
  address: Address | undefined;
  request: ReadRequest | undefined;
  serverSequence: bigint;
  /** Datagrams from the client's address on this session's endpoint. */
  packets(): ClientPacket[];
  /** Requests received since the session started, from any address. */
  requests(): { at: number; data: Uint8Array; from: Address }[];
  send(type: number, body: Uint8Array, sequence?: bigint): Uint8Array;
  sendGlobal(type: number, body: Uint8Array, order?: NonceOrder): void;
}

function createSession(run: Run, endpoint: Endpoint = run.listen): Session {
  const start = run.net.now();
  const cache = new Map<Uint8Array, ClientPacket>();
  const session: Session = {
    run,
    start,
    endpoint,
    client: undefined,
    address: undefined,
    request: undefined,
    serverSequence: 0n,
    packets() {
      run.net.pump();
      const address = session.address;
      if (address === undefined) return [];
      const out: ClientPacket[] = [];
      for (const d of endpoint.received) {
        if (d.at < start || !addressEqual(d.peer, address)) continue;
        let packet = cache.get(d.data);
        if (packet === undefined) {
          const header = peekPacket(d.data);
          const key = session.request?.token?.clientToServerKey;
          packet = {
            at: d.at,
            data: d.data,
            type: d.data[0] === 0 ? 0 : header?.type ?? -1,
            opened: header === undefined || key === undefined
              ? undefined
              : openPacket(
                d.data,
                key,
                run.options.protocolId,
                run.order === "standard"
                  ? ["standard", "swapped"]
                  : ["swapped", "standard"],
              ),
          };
          cache.set(d.data, packet);
        }
        out.push(packet);
      }
      return out;
    },
    requests() {
      run.net.pump();
      return endpoint.received.filter((d) => d.at >= start && d.data[0] === 0)
        .map((d) => ({ at: d.at, data: d.data, from: d.peer }));
    },
    send(type, body, sequence) {
      const used = sequence ?? session.serverSequence++;
      const data = sealPacket(
        type,
        used,
        body,
        session.request!.token!.serverToClientKey,
        run.options.protocolId,
        run.order,
      );
      endpoint.send(data, session.address!);
      return data;
    },
    sendGlobal(type, body, order = run.order) {
      const data = sealPacket(
        type,
        run.globalSequence++,
        body,
        session.request!.token!.serverToClientKey,
        run.options.protocolId,
        order,
      );
      endpoint.send(data, session.address!);
    },
  };
  return session;
}

function randomId(): bigint {
  return new DataView(randomBytes(new Uint8Array(8)).buffer).getBigUint64(0);
}

async function launch(
  run: Run,
  session: Session,
  scenario: string,
  servers: readonly Address[],
): Promise<ProbeToken> {
  const token = makeToken({
    serverAddresses: servers,
    clientId: randomId(),
    protocolId: run.options.protocolId,
    privateKey: run.options.privateKey,
    timeoutSeconds: run.timeout,
    expireSeconds: 60,
  });
  const path = `${run.directory}/token-${scenario}.bin`;
  await Deno.writeFile(path, token.bytes, { mode: 0o600 });
  run.log(`scenario ${scenario}: starting the client`);
  session.client = run.options.launch({
    path,
    bytes: token.bytes,
    address: run.listen.address,
    scenario,
  });
  return token;
}

/** Waits for the session's first request and reads it. */
async function firstRequest(
  session: Session,
  seconds: number,
): Promise<boolean> {
  const run = session.run;
  const got = await run.net.until(() => session.requests().length > 0, seconds);
  if (!got) return false;
  const first = session.requests()[0];
  session.address = first.from;
  session.request = readRequest(
    first.data,
    run.options.protocolId,
    run.options.privateKey,
    Date.now() / 1000,
    session.endpoint.address,
  );
  return true;
}

/** Lets the client end: stop, then kill after a grace; notes the exit code. */
async function finish(session: Session, scenario: string): Promise<void> {
  const client = session.client;
  if (client === undefined) return;
  const run = session.run;
  const state: { code: number | undefined | "running" } = { code: "running" };
  const exited = client.exited.then(
    (code) => void (state.code = code),
    () => void (state.code = undefined),
  );
  await Promise.race([exited, run.net.wait(0.05)]);
  if (state.code === "running") {
    client.stop();
    await Promise.race([exited, run.net.wait(2)]);
  }
  if (state.code === "running") {
    client.kill();
    await Promise.race([exited, run.net.wait(2)]);
  }
  const code = state.code;
  run.results.note(
    `${scenario}: the client ${
      code === "running"
        ? "did not end even when killed"
        : code === undefined
        ? "ended (exit code unknown)"
        : `exited with code ${code}`
    }`,
  );
  session.client = undefined;
}

function challengeBody(sequence: bigint): Uint8Array {
  const body = new Uint8Array(308);
  new DataView(body.buffer).setBigUint64(0, sequence, true);
  randomBytes(body.subarray(8));
  return body;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}

/**
 * Sends a challenge and waits for a response that decrypts, trying the
 * other nonce order when the client says nothing to the first; returns the
 * challenge body, or undefined.
 */
async function challenge(
  session: Session,
  wait: number,
  challengeSequence: bigint,
): Promise<Uint8Array | undefined> {
  const run = session.run;
  const body = challengeBody(challengeSequence);
  const orders: NonceOrder[] = run.order === "standard"
    ? ["standard", "swapped"]
    : ["swapped", "standard"];
  for (const order of orders) {
    const sent = run.net.now();
    session.sendGlobal(PacketType.CHALLENGE, body, order);
    const answered = () =>
      session.packets().some((p) =>
        p.at > sent && p.type === PacketType.RESPONSE && p.opened !== undefined
      );
    if (await run.net.until(answered, wait)) {
      const response = session.packets().find((p) =>
        p.at > sent && p.type === PacketType.RESPONSE && p.opened !== undefined
      )!;
      run.order = response.opened!.order;
      return body;
    }
  }
  return undefined;
}

function rateText(times: readonly number[]): { rate: number; text: string } {
  if (times.length < 2) return { rate: 0, text: `${times.length} sent` };
  const interval = (times.at(-1)! - times[0]) / (times.length - 1);
  return {
    rate: 1 / interval,
    text: `${times.length} in ${ms(times.at(-1)! - times[0])}, every ${
      ms(interval)
    } (${(1 / interval).toFixed(1)} Hz)`,
  };
}

// ---------------------------------------------------------------------------

const CONNECT_CHECKS = [
  "request",
  "request-rate",
  "response",
  "packet-nonce",
  "keep-alive",
  "payload",
  "disconnect",
];

/**
 * The probe as a connected server: keep-alives at 10 Hz, the client's
 * payloads echoed back.
 */
function serving(session: Session, connectedAt: number) {
  const run = session.run;
  session.send(PacketType.KEEP_ALIVE, keepAliveBody(0, 1));
  let lastKeepAlive = run.net.now();
  let echoed = 0;
  const echoedSet = new Set<ClientPacket>();
  return {
    echoed: () => echoed,
    disconnects: () =>
      session.packets().filter((p) =>
        p.type === PacketType.DISCONNECT && p.opened !== undefined &&
        p.at > connectedAt
      ),
    serve() {
      const now = run.net.now();
      if (now - lastKeepAlive >= 0.1) {
        session.send(PacketType.KEEP_ALIVE, keepAliveBody(0, 1));
        lastKeepAlive = now;
      }
      for (const p of session.packets()) {
        if (
          p.type === PacketType.PAYLOAD && p.opened !== undefined &&
          p.at > connectedAt && !echoedSet.has(p)
        ) {
          echoedSet.add(p);
          const payload = p.opened.body;
          if (payload.length >= 1 && payload.length <= MAX_PAYLOAD_BYTES) {
            session.send(PacketType.PAYLOAD, payload);
            echoed++;
          }
        }
      }
    },
  };
}

/** Scenario 1. Returns false when the client never sent a request. */
async function connectScenario(run: Run): Promise<boolean> {
  const r = run.results;
  const session = createSession(run);
  const token = await launch(run, session, "connect", [run.listen.address]);
  const missing = (reason: string, names = CONNECT_CHECKS) => {
    for (const name of names) r.notApplicable(name, reason);
  };
  try {
    if (!(await firstRequest(session, run.options.startSeconds ?? 10))) {
      r.fail(
        "request",
        `no connection request within ${
          run.options.startSeconds ?? 10
        } s of starting the client`,
      );
      missing("the client sent no connection request");
      return false;
    }
    const request = session.request!;
    run.selfToken = !sameBytes(
      request.encryptedPrivateToken,
      token.request.subarray(token.request.length - 1024),
    );
    if (run.selfToken) {
      r.note(
        "the client sent a token of its own (not the probe's): its timeout and servers come from it",
      );
    }
    // Leave the requests unanswered for 550 ms.
    const firstAt = session.packets()[0]?.at ?? run.net.now();
    await run.net.wait(Math.max(0, firstAt + 0.55 - run.net.now()));
    const requests = session.packets().filter((p) => p.type === 0);
    const problems = new Set<string>();
    for (const p of requests) {
      for (
        const problem of readRequest(
          p.data,
          run.options.protocolId,
          run.options.privateKey,
          Date.now() / 1000,
          run.listen.address,
        ).problems
      ) problems.add(problem);
    }
    const tokenText = request.token === undefined
      ? ""
      : `client id 0x${
        request.token.clientId.toString(16)
      }, timeout ${request.token.timeoutSeconds} s`;
    if (problems.size === 0) {
      r.pass(
        "request",
        `${requests.length} requests of 1078 bytes, NETCODE 1.02, protocol id 0x${
          request.protocolId.toString(16)
        }; the token decrypts (${tokenText})`,
      );
    } else r.fail("request", [...problems].join("; "));
    const rate = rateText(requests.map((p) => p.at));
    if (rate.rate >= 5 && rate.rate <= 20) {
      r.pass("request-rate", `unanswered requests: ${rate.text}`);
    } else r.fail("request-rate", `unanswered requests: ${rate.text}`);
    if (request.token === undefined) {
      missing("the probe cannot read the client's token");
      return true;
    }

    // The challenge; responses left unanswered for 350 ms.
    const challengeSequence = 7n;
    const body = await challenge(session, 0.3, challengeSequence);
    if (body === undefined) {
      r.fail(
        "response",
        "no response that decrypts within 300 ms of a challenge, nor of one with the nonce the other way round",
      );
      missing("the client never answered the challenge", [
        "packet-nonce",
        "keep-alive",
        "payload",
        "disconnect",
      ]);
      return true;
    }
    const responses = () =>
      session.packets().filter((p) =>
        p.type === PacketType.RESPONSE && p.opened !== undefined
      );
    const firstResponse = responses()[0].at;
    await run.net.wait(Math.max(0, firstResponse + 0.35 - run.net.now()));
    const seen = responses();
    const wrong = seen.filter((p) => !sameBytes(p.opened!.body, body)).length;
    const responseRate = rateText(seen.map((p) => p.at));
    const responseText = `${seen.length} responses in ${
      ms(run.net.now() - firstResponse)
    } unanswered (${responseRate.text}); ${
      wrong === 0
        ? "each carries the challenge sequence and token byte for byte"
        : `${wrong} differ from the challenge`
    }`;
    if (
      wrong === 0 && seen.length >= 2 && responseRate.rate >= 5 &&
      responseRate.rate <= 20
    ) {
      r.pass("response", responseText);
    } else r.fail("response", responseText);

    // Connected.
    const connectedAt = run.net.now();
    const hold = run.options.holdSeconds ?? 1.5;
    const server = serving(session, connectedAt);
    while (
      run.net.now() < connectedAt + hold && server.disconnects().length === 0
    ) {
      server.serve();
      await run.net.wait(0.01);
    }
    const disconnects = server.disconnects;
    const holdEnd = Math.min(
      run.net.now(),
      disconnects()[0]?.at ?? Infinity,
    );
    // keep-alive: gaps while connected.
    const connected = session.packets().filter((p) =>
      p.at > connectedAt && p.at <= holdEnd && p.type !== PacketType.DISCONNECT
    );
    const quietUntil = holdEnd;
    if (quietUntil - connectedAt < 0.5) {
      r.notApplicable(
        "keep-alive",
        `connected only ${
          ms(quietUntil - connectedAt)
        } (needs 500 ms; run the client longer)`,
      );
    } else {
      const times = [
        connectedAt,
        ...connected.filter((p) => p.at <= quietUntil).map((p) => p.at),
        quietUntil,
      ];
      let gap = 0;
      for (let i = 1; i < times.length; i++) {
        gap = Math.max(gap, times[i] - times[i - 1]);
      }
      const keepAlives = connected.filter((p) =>
        p.type === PacketType.KEEP_ALIVE
      );
      const badKeepAlives = keepAlives.filter((p) =>
        p.opened === undefined || p.opened.body.length !== 8
      ).length;
      const payloads = connected.filter((p) =>
        p.type === PacketType.PAYLOAD
      ).length;
      const text = `${
        ms(quietUntil - connectedAt)
      } connected: ${keepAlives.length} keep-alives, ${payloads} payloads, longest silence ${
        ms(gap)
      }${
        badKeepAlives > 0
          ? `; ${badKeepAlives} keep-alives not 8 bytes or not decrypting`
          : ""
      }`;
      if (gap <= 0.3 && badKeepAlives === 0) r.pass("keep-alive", text);
      else r.fail("keep-alive", text);
    }

    // payload: sizes and sequences.
    const payloads = session.packets().filter((p) =>
      p.type === PacketType.PAYLOAD
    );
    if (payloads.length === 0) {
      r.notApplicable("payload", "the client sent no payloads");
    } else {
      const bad = payloads.filter((p) =>
        p.opened === undefined || p.opened.body.length < 1 ||
        p.opened.body.length > MAX_PAYLOAD_BYTES
      ).length;
      const sequences = new Map<bigint, number>();
      for (const p of session.packets()) {
        if (p.opened === undefined) {
          continue;
        }
        sequences.set(
          p.opened.sequence,
          (sequences.get(p.opened.sequence) ?? 0) + 1,
        );
      }
      const reused = [...sequences.values()].filter((n) =>
        n > 1
      ).length;
      const sizes = payloads.filter((p) => p.opened !== undefined).map((p) =>
        p.opened!.body.length
      );
      const low = Math.min(...sizes);
      const high = Math.max(...sizes);
      const text = `${payloads.length} payloads of ${
        low === high ? low : `${low}..${high}`
      } bytes, ${server.echoed()} echoed back${
        bad > 0 ? `; ${bad} do not decrypt or have a bad size` : ""
      }${
        reused > 0
          ? `; ${reused} sequences used more than once`
          : "; every sequence new"
      }`;
      if (bad === 0 && reused === 0) r.pass("payload", text);
      else r.fail("payload", text);
    }

    // disconnect: wait for the client to leave, then stop it.
    let how = "on its own";
    if (disconnects().length === 0) {
      const waitUntil = run.net.now() + (run.options.stopAfterSeconds ?? 2);
      while (run.net.now() < waitUntil && disconnects().length === 0) {
        server.serve();
        await run.net.wait(0.01);
      }
    }
    if (disconnects().length === 0) {
      how = `after ${session.client?.stopName ?? "stop()"}`;
      session.client?.stop();
      const stopped = run.net.now();
      while (run.net.now() < stopped + 1 && disconnects().length === 0) {
        server.serve();
        await run.net.wait(0.01);
      }
    }
    await run.net.wait(0.3);
    const all = disconnects();
    const text = all.length === 0
      ? `no disconnect packets (${
        how === "on its own" ? "it left" : "stopped"
      } silently)`
      : `${all.length} disconnect packets ${how} within ${
        ms(all.at(-1)!.at - all[0].at)
      }`;
    if (all.length === 10) r.pass("disconnect", text);
    else r.fail("disconnect", text);
    return true;
  } finally {
    await finish(session, "connect");
  }
}

/** Scenario 2: replayed and too-old disconnect packets while connected. */
async function replayScenario(run: Run): Promise<void> {
  const r = run.results;
  const session = createSession(run);
  await launch(run, session, "replay", [run.listen.address]);
  try {
    if (!(await firstRequest(session, run.options.startSeconds ?? 10))) {
      r.fail("replay", "no connection request in this run");
      return;
    }
    if (session.request!.token === undefined) {
      r.notApplicable("replay", "the probe cannot read the client's token");
      return;
    }
    if ((await challenge(session, 0.5, 3n)) === undefined) {
      r.fail("replay", "the client did not answer the challenge in this run");
      return;
    }
    const connectedAt = run.net.now();
    const server = serving(session, connectedAt);
    const serveFor = async (seconds: number) => {
      const until = run.net.now() + seconds;
      while (run.net.now() < until) {
        server.serve();
        await run.net.wait(0.01);
      }
    };
    await serveFor(0.5);
    const replayAt = run.net.now();
    const before = session.packets().filter((p) =>
      p.at > replayAt - 0.35 && p.type !== PacketType.DISCONNECT
    );
    if (before.length === 0) {
      r.notApplicable(
        "replay",
        "the client was quiet for 350 ms before the check, so its silence after says nothing (see keep-alive)",
      );
      return;
    }
    // Sequence 0 was the first keep-alive: already received.
    session.send(PacketType.DISCONNECT, new Uint8Array(0), 0n);
    const newest = session.serverSequence + 300n;
    session.send(PacketType.KEEP_ALIVE, keepAliveBody(0, 1), newest);
    session.serverSequence = newest + 1n;
    session.send(PacketType.DISCONNECT, new Uint8Array(0), newest - 280n);
    await serveFor(0.5);
    const after = session.packets().filter((p) =>
      p.at > replayAt + 0.2 && p.type !== PacketType.DISCONNECT
    );
    const text =
      "a disconnect with sequence 0 (already received), and one 280 behind a newer keep-alive";
    if (server.disconnects().length > 0) {
      r.notApplicable(
        "replay",
        "the client disconnected on its own during the check (run it longer)",
      );
    } else if (after.length > 0) {
      r.pass(
        "replay",
        `${text}: the client kept sending (${after.length} packets in the next 300 ms)`,
      );
    } else {
      r.fail(
        "replay",
        `${text}: the client went silent without disconnect packets of its own (it took the replay as the server's disconnect)`,
      );
    }
  } finally {
    await finish(session, "replay");
  }
}

/** Scenario 3: the server goes silent. */
async function timeoutScenario(run: Run): Promise<void> {
  const r = run.results;
  const session = createSession(run);
  await launch(run, session, "timeout", [run.listen.address]);
  try {
    if (!(await firstRequest(session, run.options.startSeconds ?? 10))) {
      r.fail("timeout", "no connection request in this run");
      return;
    }
    const timeout = session.request!.token?.timeoutSeconds;
    if (timeout === undefined) {
      r.notApplicable("timeout", "the probe cannot read the client's token");
      return;
    }
    if (timeout <= 0) {
      r.notApplicable(
        "timeout",
        `the client's token has timeout ${timeout} (none)`,
      );
      return;
    }
    if ((await challenge(session, 0.5, 1n)) === undefined) {
      r.fail("timeout", "the client did not answer the challenge in this run");
      return;
    }
    session.send(PacketType.KEEP_ALIVE, keepAliveBody(0, 1));
    const silentFrom = run.net.now();
    const last = () => {
      const packets = session.packets();
      return packets.at(-1)?.at ?? silentFrom;
    };
    await run.net.until(
      () =>
        run.net.now() > silentFrom + timeout + 2 ||
        (run.net.now() > silentFrom + timeout - 0.35 &&
          run.net.now() - last() > 1),
      timeout + 2.5,
    );
    const stoppedAfter = last() - silentFrom;
    const disconnects = session.packets().filter((p) =>
      p.type === PacketType.DISCONNECT && p.at > silentFrom
    ).length;
    const still = run.net.now() - last() < 1;
    const text = still
      ? `still sending ${
        ms(run.net.now() - silentFrom)
      } after the server went silent (token timeout ${timeout} s)`
      : `last packet ${
        ms(stoppedAfter)
      } after the server went silent (token timeout ${timeout} s)${
        disconnects > 0
          ? `, with ${disconnects} disconnect packets`
          : ", no disconnect packets"
      }`;
    if (
      !still && disconnects === 0 && stoppedAfter >= timeout - 0.35 &&
      stoppedAfter <= timeout + 0.75
    ) {
      r.pass("timeout", text);
    } else r.fail("timeout", text);
  } finally {
    await finish(session, "timeout");
  }
}

/** Scenario 4: the first request is denied. */
async function deniedScenario(run: Run): Promise<void> {
  const r = run.results;
  const session = createSession(run);
  await launch(run, session, "denied", [run.listen.address]);
  try {
    if (!(await firstRequest(session, run.options.startSeconds ?? 10))) {
      r.fail("denied", "no connection request in this run");
      return;
    }
    if (session.request!.token === undefined) {
      r.notApplicable("denied", "the probe cannot read the client's token");
      return;
    }
    session.sendGlobal(PacketType.DENIED, new Uint8Array(0));
    const deniedAt = run.net.now();
    await run.net.wait(1);
    const after = session.packets().filter((p) => p.at > deniedAt + 0.25);
    const text = after.length === 0
      ? "nothing sent to this server from 250 ms after the denied packet"
      : `${after.length} packets after the denied packet (the first: type ${
        after[0].type
      }, ${ms(after[0].at - deniedAt)} after)`;
    if (after.length === 0) r.pass("denied", text);
    else r.fail("denied", text);
  } finally {
    await finish(session, "denied");
  }
}

/** Scenario 5: the token's first server never answers. */
async function fallbackScenario(run: Run): Promise<void> {
  const r = run.results;
  if (run.selfToken) {
    r.notApplicable(
      "fallback",
      "the client makes its own token (it does not take {token}), so the probe cannot name a second server",
    );
    return;
  }
  const dead = run.net.open({ hostname: run.listen.address.hostname, port: 0 });
  const deadSession = createSession(run, dead);
  const session = createSession(run);
  const timeout = run.timeout;
  await launch(run, session, "fallback", [dead.address, run.listen.address]);
  try {
    if (
      !(await run.net.until(
        () => deadSession.requests().length > 0,
        run.options.startSeconds ?? 10,
      ))
    ) {
      r.fail(
        "fallback",
        `no request reached the token's first server ${
          formatAddress(dead.address)
        }`,
      );
      return;
    }
    const firstDead = deadSession.requests()[0].at;
    if (!(await firstRequest(session, timeout + 2))) {
      r.fail(
        "fallback",
        `requests went to the first server only; none reached the second within ${
          timeout + 2
        } s (token timeout ${timeout} s)`,
      );
      return;
    }
    const firstLive = session.requests()[0].at;
    const moved = firstLive - firstDead;
    let connected = false;
    if ((await challenge(session, 0.5, 2n)) !== undefined) {
      session.send(PacketType.KEEP_ALIVE, keepAliveBody(0, 1));
      const at = run.net.now();
      connected = await run.net.until(
        () =>
          session.packets().some((p) =>
            p.at > at &&
            (p.type === PacketType.KEEP_ALIVE || p.type === PacketType.PAYLOAD)
          ),
        0.5,
      );
    }
    const text =
      `${deadSession.requests().length} requests to the silent first server, then requests to the second ${
        ms(moved)
      } after the first (token timeout ${timeout} s); ${
        connected ? "connected there" : "did not connect there"
      }`;
    if (connected && moved >= timeout - 0.35 && moved <= timeout + 0.75) {
      r.pass("fallback", text);
    } else r.fail("fallback", text);
  } finally {
    await finish(session, "fallback");
  }
}

/**
 * Probes a netcode client: runs it once per scenario with a token naming
 * the probe, and reports, check by check, whether it follows the standard.
 *
 * @param options Where to listen, the keys, and how to start the client.
 * @returns The report; `ok` only when every applicable check passed.
 * @throws {RangeError} On options out of range or an unknown check to skip.
 */
export async function probeClient(
  options: ProbeClientOptions,
): Promise<ProbeReport> {
  const listenAddress = typeof options.listen === "string"
    ? parseAddress(options.listen)
    : options.listen;
  const timeout = options.timeoutSeconds ?? 2;
  if (!Number.isInteger(timeout) || timeout < 1 || timeout > 30) {
    throw new RangeError(
      `Cannot probe: timeout ${timeout} is not an integer 1..30`,
    );
  }
  const results = createResults(CLIENT_CHECKS, options.skip);
  const net = createNet();
  const directory = options.tokenDirectory ??
    await Deno.makeTempDir({ prefix: "netcode-probe-" });
  let report: ProbeReport;
  try {
    const listen = net.open(listenAddress);
    const run: Run = {
      net,
      listen,
      results,
      options,
      timeout,
      directory,
      order: "standard",
      globalSequence: GLOBAL_SEQUENCE_START,
      selfToken: false,
      log: options.log ?? (() => {}),
    };
    run.log(`listening on ${formatAddress(listen.address)}`);
    if (await connectScenario(run)) {
      await replayScenario(run);
      await timeoutScenario(run);
      await deniedScenario(run);
      await fallbackScenario(run);
    } else {
      for (const name of ["replay", "timeout", "denied", "fallback"]) {
        results.notApplicable(name, "the client sent no connection request");
      }
    }
    const swapped = run.order === "swapped";
    if (!results.done("packet-nonce")) {
      if (swapped) {
        results.fail(
          "packet-nonce",
          "the client's packets decrypt only with the nonce [sequence u64][0 0 0 0] (sequence first), and it answered only a challenge sealed that way; the probe went on with its order",
        );
      } else {
        results.pass(
          "packet-nonce",
          "the client's packets decrypt with [0 0 0 0][sequence u64 LE] and it answered a challenge sealed so",
        );
      }
    }
    report = results.report("client", formatAddress(listen.address), net.now());
  } finally {
    await net.close();
    if (options.tokenDirectory === undefined) {
      await Deno.remove(directory, { recursive: true }).catch(() => {});
    }
  }
  return report;
}

/**
 * A {@linkcode LaunchClient} that runs a command: `{token}` in an argument
 * becomes the path of a file holding the raw 2048-byte token, `{address}`
 * the probe's address; the environment also gets `NETCODE_PROBE_TOKEN`
 * (the path) and `NETCODE_PROBE_ADDRESS`. `stop()` sends `stopSignal`.
 *
 * @param command The program and its arguments.
 * @param stopSignal The signal `stop()` sends. @default {"SIGINT"}
 * @param output Where the client's output lines go; `undefined` discards them.
 * @returns The launcher.
 */
export function commandLauncher(
  command: readonly string[],
  stopSignal: Deno.Signal = "SIGINT",
  output?: (line: string) => void,
): LaunchClient {
  return (token) => {
    const address = formatAddress(token.address);
    const args = command.map((arg) =>
      arg.replaceAll("{token}", token.path).replaceAll("{address}", address)
    );
    const child = new Deno.Command(args[0], {
      args: args.slice(1),
      stdin: "null",
      stdout: output ? "piped" : "null",
      stderr: output ? "piped" : "null",
      env: { NETCODE_PROBE_TOKEN: token.path, NETCODE_PROBE_ADDRESS: address },
    }).spawn();
    const drain = async (stream: ReadableStream<Uint8Array> | null) => {
      if (stream === null || output === undefined) return;
      let buffered = "";
      for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
        buffered += chunk;
        const lines = buffered.split("\n");
        buffered = lines.pop()!;
        for (const line of lines) output(`[${token.scenario}] ${line}`);
      }
      if (buffered !== "") output(`[${token.scenario}] ${buffered}`);
    };
    const drained = output
      ? Promise.all([drain(child.stdout), drain(child.stderr)])
      : Promise.resolve();
    const signal = (name: Deno.Signal) => {
      try {
        child.kill(name);
      } catch {
        // already exited
      }
    };
    return {
      exited: child.status.then(async (status) => {
        await drained;
        return status.code;
      }),
      stop: () => signal(stopSignal),
      kill: () => signal("SIGKILL"),
      stopName: stopSignal,
    };
  };
}
