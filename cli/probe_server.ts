/**
 * `netcode probe server`: a black-box conformance prober for any netcode
 * 1.02 server. It plays many clients over UDP at once, each with a connect
 * token made for the check it serves, and judges what comes back, rule by
 * rule (see {@linkcode SERVER_CHECKS}).
 *
 * It needs the server's protocol id and private key (to make tokens), and
 * never sends a payload unless told the server echoes (`echo`): some sample
 * servers assert on what they receive.
 *
 * The checks run in four groups: the handshake, the requests that must be
 * ignored and the keep-alive rate; replay protection, disconnects and
 * echoes; timeouts; and, with `maxClients`, a full server. The first three
 * run at the same time when the server has room for 12 probe clients
 * (or `maxClients` is not given), one after the other otherwise.
 *
 * @module
 */

import { type Address, formatAddress, parseAddress } from "../address.ts";
import { randomBytes } from "../crypto.ts";
import {
  CONNECTION_REQUEST_PACKET_BYTES,
  MAX_PAYLOAD_BYTES,
} from "../packet.ts";
import {
  createResults,
  type ProbeReport,
  type Results,
  SERVER_CHECKS,
} from "./_probe_checks.ts";
import { createNet, type Endpoint, ms, type Net } from "./_probe_net.ts";
import {
  bindAddressFor,
  GLOBAL_SEQUENCE_START,
  keepAliveBody,
  makeToken,
  type NonceOrder,
  type OpenedPacket,
  openPacket,
  otherServerAddress,
  PACKET_NAMES,
  PacketType,
  peekPacket,
  type ProbeToken,
  sealPacket,
  type TokenSpec,
  VERSION_INFO_1_01,
} from "./_probe_wire.ts";

/** Options of {@linkcode probeServer}. */
export interface ProbeServerOptions {
  /** The server's address, as its tokens name it. */
  address: string | Address;
  /** The server's protocol id. */
  protocolId: bigint;
  /** The server's private key (the probe makes the tokens). */
  privateKey: Uint8Array;
  /** Whether the server echoes payloads (enables the payload checks). @default {false} */
  echo?: boolean;
  /** The server's number of slots (enables the full-server check). @default {undefined} */
  maxClients?: number;
  /** Timeout seconds of the tokens of the timeout checks, 1..30. @default {2} */
  timeoutSeconds?: number;
  /** Seconds to wait for an answer that should come (or should not). @default {0.5} */
  replySeconds?: number;
  /** Checks to skip. @default {[]} */
  skip?: readonly string[];
  /** Progress lines. @default {() => {}} */
  log?: (line: string) => void;
}

/** A packet from the server, as one probe client saw it. */
interface ServerPacket {
  readonly at: number;
  readonly size: number;
  /** The type in the prefix byte (0 when unreadable). */
  readonly type: number;
  /** The packet, when it decrypted with the client's key. */
  readonly opened: OpenedPacket | undefined;
}

/** The outcome of a handshake. */
type Handshake =
  | {
    readonly ok: true;
    readonly challengeSeconds: number;
    readonly keepAliveSeconds: number;
    readonly clientIndex: number;
    readonly maxClients: number;
  }
  | { readonly ok: false; readonly denied: boolean; readonly why: string };

/** A client played by the probe. */
interface ProbeClient {
  readonly name: string;
  readonly endpoint: Endpoint;
  readonly token: ProbeToken;
  order: NonceOrder;
  sequence: bigint;
  connected: boolean;
  /** When the response that connected it was sent. */
  connectedAt: number;
  clientIndex: number;
  maxClients: number;
  /** Every datagram from the server, decoded with this client's key. */
  packets(): readonly ServerPacket[];
  /** Packets after `since` (seconds), optionally of a type. */
  packetsSince(since: number, type?: number): ServerPacket[];
  /** Sends an encrypted packet with the next sequence (or the one given). */
  send(type: number, body: Uint8Array, sequence?: bigint): Uint8Array;
  /** Sends the token's connection request (or other bytes). */
  sendRequest(request?: Uint8Array): void;
  handshake(): Promise<Handshake>;
  /** Sends 10 disconnect packets if connected. */
  disconnect(): void;
}

interface Context {
  readonly net: Net;
  readonly target: Address;
  readonly protocolId: bigint;
  readonly privateKey: Uint8Array;
  readonly results: Results;
  readonly reply: number;
  readonly timeout: number;
  readonly clients: ProbeClient[];
  readonly endpoints: Endpoint[];
  readonly log: (line: string) => void;
}

function randomId(): bigint {
  return new DataView(randomBytes(new Uint8Array(8)).buffer).getBigUint64(0);
}

function tokenFor(
  ctx: Context,
  spec: Partial<TokenSpec> = {},
): ProbeToken {
  return makeToken({
    serverAddresses: [ctx.target],
    clientId: randomId(),
    protocolId: ctx.protocolId,
    privateKey: ctx.privateKey,
    timeoutSeconds: Math.max(10, ctx.timeout + 5),
    expireSeconds: 60,
    ...spec,
  });
}

function openEndpoint(ctx: Context): Endpoint {
  const endpoint = ctx.net.open(bindAddressFor(ctx.target));
  ctx.endpoints.push(endpoint);
  return endpoint;
}

function createProbeClient(
  ctx: Context,
  name: string,
  token: ProbeToken = tokenFor(ctx),
  endpoint: Endpoint = openEndpoint(ctx),
): ProbeClient {
  const decoded: ServerPacket[] = [];
  const decode = () => {
    ctx.net.pump();
    for (let i = decoded.length; i < endpoint.received.length; i++) {
      const { data, at } = endpoint.received[i];
      const header = peekPacket(data);
      decoded.push({
        at,
        size: data.length,
        type: header?.type ?? 0,
        opened: header === undefined ? undefined : openPacket(
          data,
          token.serverToClientKey,
          ctx.protocolId,
          client.order === "standard"
            ? ["standard", "swapped"]
            : ["swapped", "standard"],
        ),
      });
    }
    return decoded;
  };
  const client: ProbeClient = {
    name,
    endpoint,
    token,
    order: "standard",
    sequence: 0n,
    connected: false,
    connectedAt: 0,
    clientIndex: -1,
    maxClients: 0,
    packets: decode,
    packetsSince(since, type) {
      return decode().filter((p) =>
        p.at > since && (type === undefined || p.type === type)
      );
    },
    send(type, body, sequence) {
      const used = sequence ?? client.sequence++;
      const data = sealPacket(
        type,
        used,
        body,
        token.clientToServerKey,
        ctx.protocolId,
        client.order,
      );
      endpoint.send(data, ctx.target);
      return data;
    },
    sendRequest(request = token.request) {
      endpoint.send(request, ctx.target);
    },
    async handshake() {
      const start = ctx.net.now();
      let challenge: ServerPacket | undefined;
      for (let attempt = 0; attempt < 3 && challenge === undefined; attempt++) {
        const sent = ctx.net.now();
        client.sendRequest();
        await ctx.net.until(
          () =>
            client.packetsSince(sent).some((p) =>
              p.type === PacketType.CHALLENGE || p.type === PacketType.DENIED
            ),
          ctx.reply,
        );
        challenge = client.packetsSince(sent).find((p) =>
          p.type === PacketType.CHALLENGE || p.type === PacketType.DENIED
        );
      }
      if (challenge === undefined) {
        return {
          ok: false,
          denied: false,
          why: `no challenge within ${ms(3 * ctx.reply)} (3 requests)`,
        };
      }
      if (challenge.opened === undefined) {
        return {
          ok: false,
          denied: false,
          why: `a ${challenge.size}-byte ${
            PACKET_NAMES[challenge.type]
          } that does not decrypt with the token's server-to-client key`,
        };
      }
      if (challenge.type === PacketType.DENIED) {
        return { ok: false, denied: true, why: "connection denied" };
      }
      if (challenge.opened.body.length !== 308) {
        return {
          ok: false,
          denied: false,
          why:
            `a challenge with ${challenge.opened.body.length} bytes of data, not 308`,
        };
      }
      client.order = challenge.opened.order;
      const challengeSeconds = challenge.at - start;
      const body = challenge.opened.body;
      let keepAlive: ServerPacket | undefined;
      let denied = false;
      for (let attempt = 0; attempt < 3 && keepAlive === undefined; attempt++) {
        const sent = ctx.net.now();
        client.send(PacketType.RESPONSE, body);
        client.connectedAt = sent;
        await ctx.net.until(
          () =>
            client.packetsSince(sent).some((p) =>
              p.opened !== undefined &&
              (p.type === PacketType.KEEP_ALIVE || p.type === PacketType.DENIED)
            ),
          ctx.reply,
        );
        const answer = client.packetsSince(sent).find((p) =>
          p.opened !== undefined &&
          (p.type === PacketType.KEEP_ALIVE || p.type === PacketType.DENIED)
        );
        if (answer?.type === PacketType.DENIED) denied = true;
        else keepAlive = answer;
        if (denied) break;
      }
      if (denied) {
        return {
          ok: false,
          denied: true,
          why: "connection denied (at the response)",
        };
      }
      if (keepAlive === undefined) {
        return {
          ok: false,
          denied: false,
          why: `no keep-alive within ${
            ms(3 * ctx.reply)
          } of the response (3 responses)`,
        };
      }
      if (keepAlive.opened!.body.length !== 8) {
        return {
          ok: false,
          denied: false,
          why: `a keep-alive with ${
            keepAlive.opened!.body.length
          } bytes of data, not 8`,
        };
      }
      const view = new DataView(keepAlive.opened!.body.buffer);
      client.clientIndex = view.getUint32(0, true);
      client.maxClients = view.getUint32(4, true);
      client.connected = true;
      return {
        ok: true,
        challengeSeconds,
        keepAliveSeconds: keepAlive.at - start,
        clientIndex: client.clientIndex,
        maxClients: client.maxClients,
      };
    },
    disconnect() {
      if (!client.connected) return;
      client.connected = false;
      for (let i = 0; i < 10; i++) {
        client.send(PacketType.DISCONNECT, new Uint8Array(0));
      }
    },
  };
  ctx.clients.push(client);
  return client;
}

/**
 * Whether the server still holds the client: keep-alives or payloads keep
 * coming, or a connection request from its address (same token) is ignored
 * (a server answers requests only from addresses without a slot).
 */
async function stillConnected(
  ctx: Context,
  client: ProbeClient,
): Promise<boolean> {
  const mark = ctx.net.now();
  client.sendRequest();
  await ctx.net.wait(Math.max(0.35, ctx.reply * 0.7));
  const since = client.packetsSince(mark);
  const traffic = since.some((p) =>
    p.opened !== undefined &&
    (p.type === PacketType.KEEP_ALIVE || p.type === PacketType.PAYLOAD)
  );
  const answered = since.some((p) =>
    p.type === PacketType.CHALLENGE || p.type === PacketType.DENIED
  );
  return traffic || !answered;
}

/** Sends keep-alives at 10 Hz from each client until `seconds` passed. */
async function keepAlive(
  ctx: Context,
  clients: readonly ProbeClient[],
  seconds: number,
): Promise<void> {
  const end = ctx.net.now() + seconds;
  while (ctx.net.now() < end) {
    for (const client of clients) {
      if (client.connected) {
        client.send(PacketType.KEEP_ALIVE, keepAliveBody(0, 0));
      }
    }
    await ctx.net.wait(Math.min(0.1, end - ctx.net.now()));
  }
}

function describe(packets: readonly { readonly data: Uint8Array }[]): string {
  const list = packets.map((p) => p.data);
  const first = list[0];
  const type = peekPacket(first)?.type;
  return `${list.length} datagram${
    list.length === 1 ? "" : "s"
  }, the first ${first.length} bytes${
    type === undefined ? "" : ` (${PACKET_NAMES[type]})`
  }`;
}

/** Sends `request` from a fresh socket; true when nothing came back. */
async function ignored(
  ctx: Context,
  request: Uint8Array,
  endpoint: Endpoint = openEndpoint(ctx),
): Promise<{ ignored: boolean; seen: string }> {
  const before = endpoint.received.length;
  endpoint.send(request, ctx.target);
  await ctx.net.wait(ctx.reply);
  const answers = endpoint.received.slice(before).filter((d) => {
    const type = peekPacket(d.data)?.type;
    return type !== PacketType.KEEP_ALIVE && type !== PacketType.PAYLOAD;
  });
  return answers.length === 0
    ? { ignored: true, seen: `no answer within ${ms(ctx.reply)}` }
    : { ignored: false, seen: `answered with ${describe(answers)}` };
}

// ---------------------------------------------------------------------------
// Group 1: the handshake, requests that must be ignored, the keep-alive rate.

async function handshakeGroup(
  ctx: Context,
  maxClients?: number,
): Promise<boolean> {
  const r = ctx.results;
  const h = createProbeClient(ctx, "handshake");
  const k1 = createProbeClient(ctx, "keep-alive 1");
  const k2 = createProbeClient(ctx, "keep-alive 2");
  const [hs, hk1, hk2] = await Promise.all([
    h.handshake(),
    k1.handshake(),
    k2.handshake(),
  ]);
  if (!hs.ok) {
    r.fail("handshake", hs.why);
    const why = "the server did not complete a handshake (see handshake)";
    for (
      const name of [
        "request-expired",
        "request-protocol-id",
        "request-version",
        "request-size",
        "request-server-address",
        "request-address-connected",
        "request-client-id-connected",
        "request-token-reuse",
        "keep-alive-rate",
      ]
    ) r.notApplicable(name, why);
    return false;
  }
  const indices = [hs, hk1, hk2].filter((x) => x.ok).map((x) =>
    (x as { clientIndex: number }).clientIndex
  );
  const problems: string[] = [];
  if (hs.clientIndex >= hs.maxClients) {
    problems.push(
      `client index ${hs.clientIndex} is not below max clients ${hs.maxClients}`,
    );
  }
  if (maxClients !== undefined && hs.maxClients !== maxClients) {
    problems.push(
      `max clients ${hs.maxClients}, not --max-clients ${maxClients}`,
    );
  }
  if (new Set(indices).size !== indices.length) {
    problems.push(
      `three clients connected at once got client indices ${
        indices.join(", ")
      }`,
    );
  }
  const evidence = `challenge after ${
    ms(hs.challengeSeconds)
  }, keep-alive after ${
    ms(hs.keepAliveSeconds)
  }: client index ${hs.clientIndex}, max clients ${hs.maxClients}; clients at once got indices ${
    indices.join(", ")
  }`;
  if (problems.length > 0) {
    r.fail("handshake", `${problems.join("; ")} (${evidence})`);
  } else r.pass("handshake", evidence);
  ctx.results.note(
    `the server has ${hs.maxClients} slots (from its keep-alives)`,
  );

  const keepAlives = (async () => {
    const live = [k1, k2].filter((c) => c.connected);
    if (live.length === 0) {
      r.fail(
        "keep-alive-rate",
        `the keep-alive clients did not connect: ${
          [hk1, hk2].map((x) => (x as { why?: string }).why).join("; ")
        }`,
      );
      return;
    }
    const from = ctx.net.now() + 0.15;
    await keepAlive(ctx, live, 1.2);
    const to = from + 1.0;
    let verdict: string | undefined;
    let passed = false;
    for (const client of live) {
      const inWindow = client.packets().filter((p) =>
        p.at >= from && p.at <= to && p.opened !== undefined
      );
      if (inWindow.some((p) => p.type === PacketType.PAYLOAD)) continue;
      const times = inWindow.filter((p) => p.type === PacketType.KEEP_ALIVE)
        .map((p) => p.at);
      const edges = [from, ...times, to];
      let gap = 0;
      for (let i = 1; i < edges.length; i++) {
        gap = Math.max(gap, edges[i] - edges[i - 1]);
      }
      const rate = times.length / (to - from);
      const text = `${times.length} keep-alives in ${ms(to - from)} (${
        rate.toFixed(1)
      } Hz) to an idle client, longest gap ${ms(gap)}`;
      passed = rate >= 5 && rate <= 20 && gap <= 0.3;
      verdict = text;
      break;
    }
    if (verdict === undefined) {
      r.notApplicable(
        "keep-alive-rate",
        "the server sent payloads to every probe client (none was idle)",
      );
    } else if (passed) r.pass("keep-alive-rate", verdict);
    else r.fail("keep-alive-rate", verdict);
  })();

  const requests = (async () => {
    const checks: Promise<void>[] = [];
    const expectIgnored = (
      name: string,
      request: Uint8Array,
      what: string,
      endpoint?: Endpoint,
    ) =>
      checks.push((async () => {
        const result = await ignored(ctx, request, endpoint);
        if (result.ignored) r.pass(name, `${what}: ${result.seen}`);
        else r.fail(name, `${what}: ${result.seen}`);
      })());
    expectIgnored(
      "request-expired",
      tokenFor(ctx, { expireSeconds: -3600 }).request,
      "a token that expired an hour ago",
    );
    expectIgnored(
      "request-protocol-id",
      tokenFor(ctx, {
        protocolId: (ctx.protocolId + 1n) & 0xffffffffffffffffn,
      }).request,
      "a token for protocol id + 1",
    );
    expectIgnored(
      "request-version",
      tokenFor(ctx, { versionInfo: VERSION_INFO_1_01 }).request,
      "a NETCODE 1.01 request (token sealed with 1.01)",
    );
    expectIgnored(
      "request-server-address",
      tokenFor(ctx, { serverAddresses: [otherServerAddress(ctx.target)] })
        .request,
      `a token naming only ${formatAddress(otherServerAddress(ctx.target))}`,
    );
    checks.push((async () => {
      const valid = tokenFor(ctx).request;
      const longer = new Uint8Array(CONNECTION_REQUEST_PACKET_BYTES + 1);
      longer.set(tokenFor(ctx).request);
      const [short, long] = await Promise.all([
        ignored(ctx, valid.subarray(0, CONNECTION_REQUEST_PACKET_BYTES - 1)),
        ignored(ctx, longer),
      ]);
      const seen =
        `1077 bytes: ${short.seen}; 1079 bytes (a valid request and one more byte): ${long.seen}`;
      if (short.ignored && long.ignored) r.pass("request-size", seen);
      else r.fail("request-size", seen);
    })());
    expectIgnored(
      "request-address-connected",
      tokenFor(ctx).request,
      "a new token from the connected client's address",
      h.endpoint,
    );
    expectIgnored(
      "request-client-id-connected",
      tokenFor(ctx, { clientId: h.token.clientId }).request,
      "a new token for the connected client's id from another address",
    );
    checks.push((async () => {
      const first = createProbeClient(ctx, "token first use");
      const sent = ctx.net.now();
      first.sendRequest();
      await ctx.net.until(
        () => first.packetsSince(sent, PacketType.CHALLENGE).length > 0,
        ctx.reply,
      );
      if (first.packetsSince(sent, PacketType.CHALLENGE).length === 0) {
        r.notApplicable(
          "request-token-reuse",
          "the token's first use got no challenge",
        );
        return;
      }
      const result = await ignored(ctx, first.token.request);
      // The probe's sockets bind the wildcard address, so the port is what
      // tells its two addresses apart.
      const seen =
        `the token, challenged from local port ${first.endpoint.address.port}, sent from another address: ${result.seen}`;
      if (result.ignored) r.pass("request-token-reuse", seen);
      else r.fail("request-token-reuse", seen);
    })());
    await Promise.all(checks);
  })();

  await Promise.all([keepAlives, requests]);
  for (const client of [h, k1, k2]) client.disconnect();
  return true;
}

// ---------------------------------------------------------------------------
// Group 2: replay protection, disconnects and echoes.

function payloadFor(size: number, seed: number): Uint8Array {
  const payload = new Uint8Array(size);
  for (let i = 0; i < size; i++) {
    payload[i] = (seed * 31 + size * 7 + i * 13) & 0xff;
  }
  return payload;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}

async function replayGroup(ctx: Context, echo: boolean): Promise<void> {
  const r = ctx.results;
  const tasks: Promise<void>[] = [];

  tasks.push((async () => {
    const c = createProbeClient(ctx, "replay disconnect");
    const hs = await c.handshake();
    if (!hs.ok) {
      r.fail("replay-disconnect", `the client did not connect: ${hs.why}`);
      return;
    }
    const used = c.sequence;
    c.send(PacketType.KEEP_ALIVE, keepAliveBody(0, 0), used);
    c.sequence = used + 1n;
    await ctx.net.wait(0.1);
    c.send(PacketType.DISCONNECT, new Uint8Array(0), used);
    const newest = used + 400n;
    c.send(PacketType.KEEP_ALIVE, keepAliveBody(0, 0), newest);
    c.sequence = newest + 1n;
    await ctx.net.wait(0.05);
    c.send(PacketType.DISCONNECT, new Uint8Array(0), used + 100n);
    await ctx.net.wait(0.15);
    const connected = await stillConnected(ctx, c);
    const seen =
      `a disconnect with the keep-alive's sequence ${used}, then one with sequence ${
        used + 100n
      } after sequence ${newest}: the client is ${
        connected ? "still connected" : "disconnected"
      }`;
    if (connected) r.pass("replay-disconnect", seen);
    else {
      c.connected = false;
      r.fail("replay-disconnect", seen);
    }
    c.disconnect();
  })());

  tasks.push((async () => {
    const d = createProbeClient(ctx, "disconnect");
    const hs = await d.handshake();
    if (!hs.ok) {
      r.fail("disconnect-frees-slot", `the client did not connect: ${hs.why}`);
      return;
    }
    d.send(PacketType.KEEP_ALIVE, keepAliveBody(0, 0));
    await ctx.net.wait(0.1);
    d.disconnect();
    await ctx.net.wait(0.2);
    const connected = await stillConnected(ctx, d);
    const seen = connected
      ? "after 10 disconnect packets the server still holds the client (keep-alives go on, or its request is ignored)"
      : "after 10 disconnect packets a request from its address with its token was challenged again";
    if (connected) r.fail("disconnect-frees-slot", seen);
    else r.pass("disconnect-frees-slot", seen);
  })());

  if (!echo) {
    r.notApplicable(
      "replay-payload",
      "needs --echo: without it the probe sends no payloads",
    );
    r.notApplicable(
      "payload-echo",
      "needs --echo: without it the probe sends no payloads",
    );
  } else {
    tasks.push((async () => {
      const e = createProbeClient(ctx, "replay payload");
      const hs = await e.handshake();
      if (!hs.ok) {
        r.fail("replay-payload", `the client did not connect: ${hs.why}`);
        return;
      }
      const first = payloadFor(100, 1);
      const stale = payloadFor(101, 2);
      const sent = ctx.net.now();
      const datagram = e.send(PacketType.PAYLOAD, first);
      const echoesOf = (payload: Uint8Array) =>
        e.packetsSince(sent, PacketType.PAYLOAD).filter((p) =>
          p.opened !== undefined && sameBytes(p.opened.body, payload)
        ).length;
      await ctx.net.until(() => echoesOf(first) > 0, ctx.reply);
      if (echoesOf(first) === 0) {
        r.notApplicable(
          "replay-payload",
          "the server did not echo the first payload (see payload-echo)",
        );
        e.disconnect();
        return;
      }
      e.endpoint.send(datagram, ctx.target);
      const newest = e.sequence + 400n;
      e.send(PacketType.KEEP_ALIVE, keepAliveBody(0, 0), newest);
      e.sequence = newest + 1n;
      await ctx.net.wait(0.05);
      e.send(PacketType.PAYLOAD, stale, newest - 300n);
      await ctx.net.wait(ctx.reply);
      const seen = `a payload echoed ${
        echoesOf(first)
      } time(s) after it was sent twice; one with sequence ${
        newest - 300n
      } after sequence ${newest} echoed ${echoesOf(stale)} time(s)`;
      if (echoesOf(first) === 1 && echoesOf(stale) === 0) {
        r.pass("replay-payload", seen);
      } else r.fail("replay-payload", seen);
      e.disconnect();
    })());

    tasks.push((async () => {
      const e = createProbeClient(ctx, "echo");
      const hs = await e.handshake();
      if (!hs.ok) {
        r.fail("payload-echo", `the client did not connect: ${hs.why}`);
        return;
      }
      const sent = ctx.net.now();
      const echoes = () =>
        e.packetsSince(sent, PacketType.PAYLOAD).filter((p) =>
          p.opened !== undefined
        );
      // In batches of 20 (about 24 kB in flight), each sent once its
      // predecessor came back (or after a wait): a burst must fit the
      // kernel's receive buffer at the server between two of its updates.
      const batch = 20;
      for (let size = 1; size <= MAX_PAYLOAD_BYTES; size += batch) {
        const last = Math.min(MAX_PAYLOAD_BYTES, size + batch - 1);
        for (let s = size; s <= last; s++) {
          e.send(PacketType.PAYLOAD, payloadFor(s, 3));
        }
        await ctx.net.until(() => echoes().length >= last, ctx.reply);
      }
      await ctx.net.wait(0.1);
      const seenBySize = new Map<number, number>();
      let corrupt = 0;
      for (const p of echoes()) {
        const body = p.opened!.body;
        if (!sameBytes(body, payloadFor(body.length, 3))) corrupt++;
        else {seenBySize.set(
            body.length,
            (seenBySize.get(body.length) ?? 0) + 1,
          );}
      }
      const missing: number[] = [];
      let duplicates = 0;
      for (let size = 1; size <= MAX_PAYLOAD_BYTES; size++) {
        const count = seenBySize.get(size) ?? 0;
        if (count === 0) missing.push(size);
        if (count > 1) duplicates += count - 1;
      }
      const seen = `${
        MAX_PAYLOAD_BYTES - missing.length
      } of ${MAX_PAYLOAD_BYTES} payloads (1..1200 bytes) came back byte for byte${
        missing.length > 0
          ? `; missing sizes ${missing.slice(0, 8).join(", ")}${
            missing.length > 8 ? ", ..." : ""
          }`
          : ""
      }; ${corrupt} corrupt, ${duplicates} duplicated`;
      if (missing.length === 0 && corrupt === 0 && duplicates === 0) {
        r.pass("payload-echo", seen);
      } else r.fail("payload-echo", seen);
      e.disconnect();
    })());
  }
  await Promise.all(tasks);
}

// ---------------------------------------------------------------------------
// Group 3: timeouts.

async function timeoutGroup(ctx: Context): Promise<void> {
  const r = ctx.results;
  const t = ctx.timeout;
  const clients: ProbeClient[] = [];
  const client = (name: string, timeoutSeconds: number) => {
    const c = createProbeClient(ctx, name, tokenFor(ctx, { timeoutSeconds }));
    clients.push(c);
    return c;
  };

  /**
   * Polls from `since + t - 0.45` until `since + t + 1`: when the client
   * was first seen gone (seconds after `since`), and whether that poll
   * began before the timeout was due.
   */
  const watch = async (c: ProbeClient, since: number) => {
    await ctx.net.wait(Math.max(0, since + t - 0.45 - ctx.net.now()));
    while (ctx.net.now() < since + t + 1.0) {
      const pollStart = ctx.net.now();
      if (!(await stillConnected(ctx, c))) {
        c.connected = false;
        return {
          early: pollStart < since + t - 0.1,
          at: ctx.net.now() - since,
        };
      }
    }
    return { early: false, at: undefined };
  };

  const timeout = (async () => {
    const c = client("timeout", t);
    const hs = await c.handshake();
    if (!hs.ok) {
      r.fail("timeout", `the client did not connect: ${hs.why}`);
      return;
    }
    const outcome = await watch(c, c.connectedAt);
    const what = "a client silent after its response";
    if (outcome.early) {
      r.fail(
        "timeout",
        `${what}: gone ${
          ms(outcome.at!)
        } after its last packet, before the ${t} s timeout`,
      );
    } else if (outcome.at === undefined) {
      r.fail(
        "timeout",
        `${what}: still connected ${
          t + 1
        } s after its last packet (token timeout ${t} s)`,
      );
    } else {
      r.pass(
        "timeout",
        `${what}: gone by ${ms(outcome.at)} after its last packet, not before ${
          ms(t - 0.1)
        } (token timeout ${t} s; seen by polling every ~350 ms)`,
      );
    }
  })();

  const replay = (async () => {
    const c = client("replay keep-alive", t);
    const hs = await c.handshake();
    if (!hs.ok) {
      r.fail("replay-keep-alive", `the client did not connect: ${hs.why}`);
      return;
    }
    const keepAliveBytes = c.send(PacketType.KEEP_ALIVE, keepAliveBody(0, 0));
    const since = ctx.net.now();
    let replays = 0;
    let watching = true;
    const replaying = (async () => {
      while (watching) {
        await ctx.net.wait(0.1);
        if (!watching) break;
        c.endpoint.send(keepAliveBytes, ctx.target);
        replays++;
      }
    })();
    const outcome = await watch(c, since);
    watching = false;
    await replaying;
    if (outcome.early) {
      r.notApplicable(
        "replay-keep-alive",
        `the client was disconnected early (${ms(outcome.at!)}; see timeout)`,
      );
    } else if (outcome.at === undefined) {
      r.fail(
        "replay-keep-alive",
        `one keep-alive, then the same datagram replayed ${replays} times: still connected ${
          t + 1
        } s later (token timeout ${t} s): the replays kept it alive`,
      );
    } else {
      r.pass(
        "replay-keep-alive",
        `one keep-alive, then the same datagram replayed every 100 ms: gone by ${
          ms(outcome.at)
        } (token timeout ${t} s)`,
      );
    }
  })();

  const stays = async (name: string, timeoutSeconds: number) => {
    const c = client(`timeout ${timeoutSeconds}`, timeoutSeconds);
    const hs = await c.handshake();
    if (!hs.ok) {
      r.fail(
        name,
        `a client with timeout ${timeoutSeconds} did not connect: ${hs.why}`,
      );
      return;
    }
    await ctx.net.wait(Math.max(0, c.connectedAt + t + 1.0 - ctx.net.now()));
    const connected = await stillConnected(ctx, c);
    const seen = `a silent client with timeout ${timeoutSeconds}, ${
      ms(ctx.net.now() - c.connectedAt)
    } after its last packet: ${connected ? "still connected" : "disconnected"}`;
    if (connected) r.pass(name, seen);
    else {
      c.connected = false;
      r.fail(name, seen);
    }
  };

  await Promise.all([
    timeout,
    replay,
    stays("timeout-disabled", -1),
    stays("timeout-zero", 0),
  ]);
  for (const c of clients) c.disconnect();
}

// ---------------------------------------------------------------------------
// Group 4: a full server.

async function fullGroup(
  ctx: Context,
  maxClients: number | undefined,
): Promise<void> {
  const r = ctx.results;
  if (maxClients === undefined) {
    r.notApplicable(
      "denied-when-full",
      "needs --max-clients N (the server's slots) to fill the server",
    );
    return;
  }
  const fillers = Array.from(
    { length: maxClients },
    (_, i) => createProbeClient(ctx, `full ${i}`),
  );
  const handshakes = await Promise.all(fillers.map((c) => c.handshake()));
  const connected = handshakes.filter((h) => h.ok).length;
  const deniedEarly = handshakes.filter((h) => !h.ok && h.denied).length;
  const lost = handshakes.length - connected - deniedEarly;
  const extra = createProbeClient(ctx, "full extra");
  const sent = ctx.net.now();
  extra.sendRequest();
  await ctx.net.until(
    () => extra.packetsSince(sent).some((p) => p.type !== 0),
    ctx.reply,
  );
  const answer = extra.packetsSince(sent).find((p) => p.type !== 0);
  const deniedExtra = answer?.type === PacketType.DENIED &&
    answer.opened !== undefined && answer.opened.body.length === 0;
  const seen = `${connected} of ${maxClients} clients connected${
    deniedEarly > 0 ? `, ${deniedEarly} denied` : ""
  }${lost > 0 ? `, ${lost} got no answer` : ""}; one more request got ${
    answer === undefined
      ? "no answer"
      : deniedExtra
      ? `a connection denied packet (${answer.size} bytes)`
      : `a ${answer.size}-byte ${PACKET_NAMES[answer.type] ?? "datagram"}`
  }`;
  if (
    connected <= maxClients && lost === 0 && (deniedExtra || deniedEarly > 0) &&
    answer?.type !== PacketType.CHALLENGE
  ) {
    r.pass("denied-when-full", seen);
  } else r.fail("denied-when-full", seen);
  for (const client of fillers) client.disconnect();
}

// ---------------------------------------------------------------------------
// Checks over everything seen.

function judgeRecords(ctx: Context): void {
  const r = ctx.results;
  // The nonce order of everything that decrypted.
  let standard = 0;
  let swapped = 0;
  for (const client of ctx.clients) {
    for (const p of client.packets()) {
      if (p.opened?.order === "standard") standard++;
      if (p.opened?.order === "swapped") swapped++;
    }
  }
  if (swapped > 0) {
    r.fail(
      "packet-nonce",
      `${swapped} packets decrypted only with the nonce [sequence u64][0 0 0 0] (sequence first), ${standard} with [0 0 0 0][sequence]; the probe went on with the server's order`,
    );
  } else if (standard > 0) {
    r.pass(
      "packet-nonce",
      `${standard} packets decrypted with [0 0 0 0][sequence u64 LE]`,
    );
  } else r.notApplicable("packet-nonce", "no packet from the server decrypted");

  // Global sequences of challenge and denied packets.
  const globals = new Map<bigint, string>();
  let low: bigint | undefined;
  let reused = 0;
  let count = 0;
  for (const endpoint of ctx.endpoints) {
    for (const d of endpoint.received) {
      const header = peekPacket(d.data);
      if (
        header === undefined ||
        (header.type !== PacketType.CHALLENGE &&
          header.type !== PacketType.DENIED)
      ) continue;
      count++;
      if (header.sequence < GLOBAL_SEQUENCE_START) {
        low = low === undefined || header.sequence < low
          ? header.sequence
          : low;
      }
      const hex = d.data.toHex();
      const before = globals.get(header.sequence);
      if (before !== undefined && before !== hex) reused++;
      globals.set(header.sequence, hex);
    }
  }
  if (count === 0) {
    r.notApplicable("global-sequence", "no challenge or denied packet arrived");
  } else {
    const sequences = [...globals.keys()].sort((a, b) => (a < b ? -1 : 1));
    const range = `sequences ${sequences[0]} .. ${sequences.at(-1)}`;
    if (low !== undefined) {
      r.fail(
        "global-sequence",
        `${count} challenge/denied packets, ${range}: sequence ${low} is below 2^63 (${GLOBAL_SEQUENCE_START})`,
      );
    } else if (reused > 0) {
      r.fail(
        "global-sequence",
        `${reused} sequences carried two different packets (nonce reuse), ${range}`,
      );
    } else {
      r.pass(
        "global-sequence",
        `${count} challenge/denied packets, ${range} (2^63 = ${GLOBAL_SEQUENCE_START})`,
      );
    }
  }

  // Amplification: bytes answered to each request, junk answered at all.
  let worst:
    | { answered: number; request: number; datagrams: number }
    | undefined;
  let requests = 0;
  let amplified = 0;
  for (const endpoint of ctx.endpoints) {
    endpoint.sent.forEach((sent, i) => {
      if (sent.data[0] !== 0) return;
      requests++;
      const end = Math.min(
        endpoint.sent[i + 1]?.at ?? Infinity,
        sent.at + ctx.reply,
      );
      const answers = endpoint.received.filter((d) => {
        if (d.at < sent.at || d.at > end) return false;
        const type = peekPacket(d.data)?.type;
        return type !== PacketType.KEEP_ALIVE && type !== PacketType.PAYLOAD;
      });
      const bytes = answers.reduce((sum, d) => sum + d.data.length, 0);
      if (bytes >= sent.data.length) amplified++;
      if (worst === undefined || bytes > worst.answered) {
        worst = {
          answered: bytes,
          request: sent.data.length,
          datagrams: answers.length,
        };
      }
    });
  }
  const junk = junkEndpoint.get(ctx);
  const junkAnswers = junk?.received ?? [];
  const text = worst === undefined
    ? `${requests} requests`
    : `${requests} requests; the most answered to one: ${worst.answered} bytes in ${worst.datagrams} datagram(s) to ${worst.request} bytes`;
  if (amplified > 0 || junkAnswers.length > 0) {
    r.fail(
      "no-amplification",
      `${text}${
        amplified > 0
          ? `; ${amplified} requests answered with as many bytes or more`
          : ""
      }${
        junkAnswers.length > 0
          ? `; junk answered with ${describe(junkAnswers)}`
          : ""
      }`,
    );
  } else {
    r.pass(
      "no-amplification",
      `${text}; junk (${JUNK.length} datagrams) got no answer`,
    );
  }
}

/** Junk datagrams: none deserves an answer. */
const JUNK: readonly Uint8Array[] = [
  new Uint8Array([0]),
  new Uint8Array(CONNECTION_REQUEST_PACKET_BYTES),
  Uint8Array.from(
    { length: 100 },
    (_, i) => (i === 0 ? 0x15 : (i * 37) & 0xff),
  ),
  Uint8Array.from({ length: 40 }, (_, i) => (i === 0 ? 0x17 : i)),
  Uint8Array.from(
    { length: 333 },
    (_, i) => (i === 0 ? 0x82 : (i * 11) & 0xff),
  ),
  Uint8Array.from(
    { length: 1300 },
    (_, i) => (i === 0 ? 0x13 : (i * 7) & 0xff),
  ),
];

const junkEndpoint = new WeakMap<Context, Endpoint>();

async function sendJunk(ctx: Context): Promise<void> {
  const endpoint = openEndpoint(ctx);
  junkEndpoint.set(ctx, endpoint);
  for (const datagram of JUNK) endpoint.send(datagram, ctx.target);
  await ctx.net.wait(ctx.reply);
}

// ---------------------------------------------------------------------------

/**
 * Probes a running netcode server and reports, check by check, whether it
 * follows the standard.
 *
 * @param options The server's address, protocol id and private key, and what it does.
 * @returns The report; `ok` only when every applicable check passed.
 * @throws {RangeError} On a timeout or reply time out of range, or an unknown check to skip.
 */
export async function probeServer(
  options: ProbeServerOptions,
): Promise<ProbeReport> {
  const target = typeof options.address === "string"
    ? parseAddress(options.address)
    : options.address;
  if (target.port === 0) {
    throw new RangeError(
      `Cannot probe ${formatAddress(target)}: it has no port`,
    );
  }
  const timeout = options.timeoutSeconds ?? 2;
  if (!Number.isInteger(timeout) || timeout < 1 || timeout > 30) {
    throw new RangeError(
      `Cannot probe: timeout ${timeout} is not an integer 1..30`,
    );
  }
  const reply = options.replySeconds ?? 0.5;
  if (!(reply >= 0.05 && reply <= 10)) {
    throw new RangeError(
      `Cannot probe: reply time ${reply} is outside 0.05..10 s`,
    );
  }
  const results = createResults(SERVER_CHECKS, options.skip);
  const net = createNet();
  const ctx: Context = {
    net,
    target,
    protocolId: options.protocolId,
    privateKey: options.privateKey,
    results,
    reply,
    timeout,
    clients: [],
    endpoints: [],
    log: options.log ?? (() => {}),
  };
  const maxClients = options.maxClients;
  try {
    ctx.log(`probing ${formatAddress(target)}`);
    const groups = [
      async () => {
        await sendJunk(ctx);
      },
      async () => {
        await handshakeGroup(ctx, maxClients);
      },
      () => replayGroup(ctx, options.echo ?? false),
      () => timeoutGroup(ctx),
    ];
    if (maxClients === undefined || maxClients >= 12) {
      await Promise.all(groups.map((group) => group()));
    } else {
      for (const group of groups) await group();
    }
    ctx.log("groups done; filling the server");
    // Let the disconnects of the groups free their slots.
    await net.wait(0.2);
    await fullGroup(ctx, maxClients);
    judgeRecords(ctx);
    await net.wait(0.1);
  } finally {
    for (const client of ctx.clients) client.disconnect();
    await net.wait(0.05);
    await net.close();
  }
  const report = results.report("server", formatAddress(target), net.now());
  return report;
}
