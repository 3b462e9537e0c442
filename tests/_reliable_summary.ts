// The `summary` of each scenario in a reliable 1.0 vectors file, checked
// against the scenario's own ops. The schema calls the summaries "derived
// from the ops (for readability; the ops are authoritative)", and
// tests/reliable_conformance_test.ts checks the ops against reliable.ts;
// here every summary field that restates something is derived again from
// those ops (and from parsing their datagrams) and compared, so a changed
// summary value fails too. Fields that are prose (procedures, rules,
// reasons, line references) are named in PROSE and only type-checked.

import * as reliable from "../reliable.ts";
import { fail } from "./_assert.ts";
import { checkKeys, hex, toHex } from "./_vectors.ts";

/** A payload spec of the file: byte i = (i * mul + add) & 0xff. */
export interface PayloadSpec {
  len: number;
  mul: number;
  add: number;
}

/** The bytes of a payload spec. */
export function payloadOf(spec: PayloadSpec, what: string): Uint8Array {
  checkKeys(spec, ["len", "mul", "add"], `${what}: payload`);
  const out = new Uint8Array(spec.len);
  for (let i = 0; i < spec.len; i++) out[i] = (i * spec.mul + spec.add) & 0xff;
  return out;
}

/** FNV-1a 32 of `bytes`, as the file writes it ("0x" and 8 hex digits). */
export function fnv1a32(bytes: Uint8Array): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) {
    h = Math.imul(h ^ bytes[i], 0x01000193);
  }
  return hex32(h);
}

/** An op as the summaries need it (the test checks the ops' shapes). */
interface SummaryOp {
  op: string;
  ep: string;
  payload?: PayloadSpec;
  sequence?: number;
  datagrams?: string[];
  data?: string;
  processed?: {
    sequence: number;
    len: number;
    fnv1a32: string;
    hex?: string;
  }[];
  counters?: number[];
  time?: number;
  stats?: number[];
  acks?: number[];
}

/** A scenario as the summaries need it. */
export interface SummaryScenario {
  endpoints: { name: string; id: number; config: Record<string, number> }[];
  ops: SummaryOp[];
  summary?: Record<string, unknown>;
}

/** The file's conventions the summaries use. */
export interface SummaryConventions {
  counters_order: string[];
  stats_order: string[];
}

/** Summary fields that are prose, not values derived from the ops. */
const PROSE = [
  "step_procedure",
  "time_formula",
  "tick_procedure",
  "rules",
  "reason",
  "reference",
];

/** Deep comparison naming the first differing path. */
function sameValue(actual: unknown, expected: unknown, what: string): void {
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual)) fail(`${what} is not an array`);
    if (actual.length !== expected.length) {
      fail(
        `${what} has ${actual.length} entries, expected ${expected.length}: [${
          actual.join(", ")
        }] vs [${expected.join(", ")}]`,
      );
    }
    expected.forEach((e, i) => sameValue(actual[i], e, `${what}[${i}]`));
    return;
  }
  if (typeof expected === "object" && expected !== null) {
    if (typeof actual !== "object" || actual === null) {
      fail(`${what} is not an object`);
    }
    const a = actual as Record<string, unknown>;
    const e = expected as Record<string, unknown>;
    checkKeys(e, Object.keys(a), what);
    for (const key of Object.keys(a)) {
      if (!(key in e)) fail(`${what}: field "${key}" missing`);
      sameValue(a[key], e[key], `${what}.${key}`);
    }
    return;
  }
  if (actual !== expected) {
    fail(`${what} is ${String(actual)}, expected ${String(expected)}`);
  }
}

function hex32(value: number): string {
  return "0x" + (value >>> 0).toString(16).padStart(8, "0");
}

/** A packet header summary ({sequence, ack, ack_bits, ...}) of `packet`. */
function headerSummary(packet: Uint8Array, what: string) {
  const read = reliable.readPacketHeader(packet);
  if (read === undefined) fail(`${what}: the datagram's header does not parse`);
  return {
    sequence: read.sequence,
    ack: read.ack,
    ack_bits: read.ackBits,
    ack_bits_hex: hex32(read.ackBits),
    difference: (read.sequence - read.ack) & 0xffff,
    prefix: packet[0],
    header_bytes: read.headerBytes,
    header_hex: toHex(packet.subarray(0, read.headerBytes)),
  };
}

function endpointNamed(scenario: SummaryScenario, id: number, what: string) {
  const e = scenario.endpoints.find((e) => e.id === id);
  if (e === undefined) fail(`${what}: no endpoint with id ${id}`);
  return e;
}

function opsOf(scenario: SummaryScenario, op: string, ep: string) {
  return scenario.ops.filter((o) => o.op === op && o.ep === ep);
}

function only<T>(items: T[], what: string): T {
  if (items.length !== 1) fail(`${what}: ${items.length} found, expected 1`);
  return items[0];
}

function last<T>(items: T[], what: string): T {
  if (items.length === 0) fail(`${what}: none found`);
  return items[items.length - 1];
}

/**
 * Who sent each datagram: as the ops run, a send records its datagrams
 * under their bytes (the latest send of equal bytes wins, as after a
 * reset), and a receive looks its bytes up.
 */
interface Sent {
  /** Index in the scenario's ops of the send. */
  sendOp: number;
  /** Datagram index within that send. */
  datagram: number;
}

function tracer() {
  const bySender = new Map<string, Map<string, Sent>>();
  return {
    send(op: SummaryOp, index: number) {
      let sent = bySender.get(op.ep);
      if (sent === undefined) bySender.set(op.ep, sent = new Map());
      (op.datagrams ?? []).forEach((d, i) =>
        sent.set(d, { sendOp: index, datagram: i })
      );
    },
    /** The send of `data` by `from`, or undefined. */
    lookup(from: string, data: string): Sent | undefined {
      return bySender.get(from)?.get(data);
    },
  };
}

// ---------------------------------------------------------------------------
// Sections

function checkHeadersEndpoint(s: SummaryScenario, what: string): void {
  const summary = s.summary!;
  checkKeys(summary, [
    "received_by_B_in_order",
    "header",
    "payload",
    "packet",
    "processed_by_C",
  ], what);
  const b = endpointNamed(s, 1, what).name;
  const c = endpointNamed(s, 2, what).name;
  // The sequences of the packets B is given, in order, processed or not
  // (a fragmented one once B has had every fragment).
  const trace = tracer();
  const givenToB: number[] = [];
  const fragmentsGiven = new Map<number, Set<number>>();
  s.ops.forEach((op, i) => {
    if (op.op === "send") trace.send(op, i);
    if (op.op === "receive" && op.ep === b) {
      const sent = trace.lookup(endpointNamed(s, 0, what).name, op.data!);
      if (sent === undefined) {
        fail(`${what}: op ${i}: B gets what A never sent`);
      }
      const send = s.ops[sent.sendOp];
      const count = send.datagrams!.length;
      if (count === 1) {
        givenToB.push(send.sequence!);
      } else {
        const given = fragmentsGiven.get(sent.sendOp) ?? new Set();
        fragmentsGiven.set(sent.sendOp, given);
        const before = given.size;
        given.add(sent.datagram);
        if (given.size === count && before < count) {
          givenToB.push(send.sequence!);
        }
      }
    }
  });
  sameValue(
    givenToB,
    summary.received_by_B_in_order,
    `${what}: summary.received_by_B_in_order`,
  );
  const send = last(opsOf(s, "send", b), `${what}: B's send`);
  const packet = only(send.datagrams!, `${what}: B's datagram`);
  sameValue(packet, summary.packet, `${what}: summary.packet`);
  sameValue(send.payload, summary.payload, `${what}: summary.payload`);
  const bytes = hex(packet);
  sameValue(
    headerSummary(bytes, what),
    summary.header,
    `${what}: summary.header`,
  );
  const payload = payloadOf(send.payload!, what);
  const headerBytes = reliable.readPacketHeader(bytes)!.headerBytes;
  sameValue(
    toHex(bytes.subarray(headerBytes)),
    toHex(payload),
    `${what}: B's datagram after its header (summary.payload)`,
  );
  const received = last(opsOf(s, "receive", c), `${what}: C's receive`);
  sameValue(received.data, packet, `${what}: C receives B's datagram`);
  const processed = only(received.processed!, `${what}: C's process calls`);
  sameValue(
    { sequence: processed.sequence, len: processed.len, hex: processed.hex },
    summary.processed_by_C,
    `${what}: summary.processed_by_C`,
  );
}

const RECEIVE_ORDER_NAMES: Record<string, (n: number) => number[]> = {
  in_order: (n) => [...Array(n).keys()],
  reverse: (n) => [...Array(n).keys()].reverse(),
  evens_then_odds: (n) => [
    ...[...Array(n).keys()].filter((i) => i % 2 === 0),
    ...[...Array(n).keys()].filter((i) => i % 2 === 1),
  ],
  each_twice: (n) => [...Array(n).keys()].flatMap((i) => [i, i]),
};

function checkFragments(s: SummaryScenario, what: string): void {
  const summary = s.summary!;
  checkKeys(summary, [
    "payload",
    "payload_fnv1a32",
    "sequence",
    "num_datagrams",
    "fragmented",
    "embedded_header",
    "header",
    "fragments",
    "receive_orders",
  ], what);
  const sender = endpointNamed(s, 1, what);
  const send = last(opsOf(s, "send", sender.name), `${what}: S's send`);
  const payload = payloadOf(send.payload!, what);
  const datagrams = send.datagrams!.map(hex);
  sameValue(send.payload, summary.payload, `${what}: summary.payload`);
  sameValue(
    fnv1a32(payload),
    summary.payload_fnv1a32,
    `${what}: summary.payload_fnv1a32`,
  );
  sameValue(send.sequence, summary.sequence, `${what}: summary.sequence`);
  sameValue(
    datagrams.length,
    summary.num_datagrams,
    `${what}: summary.num_datagrams`,
  );
  const fragmented = datagrams.length > 0 && (datagrams[0][0] & 1) === 1;
  sameValue(fragmented, summary.fragmented, `${what}: summary.fragmented`);
  if (datagrams.length > 0 && !fragmented) {
    sameValue(
      headerSummary(datagrams[0], what),
      summary.header,
      `${what}: summary.header`,
    );
    if (summary.embedded_header !== undefined) {
      fail(`${what}: summary.embedded_header of an unfragmented packet`);
    }
  }
  if (fragmented) {
    if (summary.header !== undefined) {
      fail(`${what}: summary.header of a fragmented packet`);
    }
    const embedded = datagrams[0].subarray(reliable.FRAGMENT_HEADER_BYTES);
    sameValue(
      headerSummary(embedded, what),
      summary.embedded_header,
      `${what}: summary.embedded_header`,
    );
    const config = sender.config;
    const fragmentSize = config.fragment_size;
    const maxFragments = config.max_fragments;
    const fragments = datagrams.map((d, index) => {
      const read = reliable.readFragmentHeader(d, maxFragments, fragmentSize);
      if (read === undefined) fail(`${what}: datagram ${index} is invalid`);
      const embeddedBytes = d.length - read.headerBytes - read.fragmentBytes;
      const offset = read.fragmentId * fragmentSize;
      sameValue(
        toHex(d.subarray(d.length - read.fragmentBytes)),
        toHex(payload.subarray(offset, offset + read.fragmentBytes)),
        `${what}: fragment ${index}'s data (at its summary offset)`,
      );
      return {
        index,
        fragment_id: read.fragmentId,
        num_fragments_minus_one: read.numFragments - 1,
        sequence: read.sequence,
        datagram_bytes: d.length,
        embedded_header_bytes: embeddedBytes,
        data_bytes: read.fragmentBytes,
        data_offset_in_payload: offset,
      };
    });
    sameValue(fragments, summary.fragments, `${what}: summary.fragments`);
  } else if (summary.fragments !== undefined) {
    fail(`${what}: summary.fragments of an unfragmented packet`);
  }
  const orders = summary.receive_orders as { receiver: string }[];
  const receivers = s.endpoints.filter((e) => e.id >= 2).map((e) => e.name);
  const actual = receivers.filter((r) => opsOf(s, "receive", r).length > 0)
    .map((receiver, i) => {
      const receives = opsOf(s, "receive", receiver);
      const order = receives.map((o) => send.datagrams!.indexOf(o.data!));
      if (order.includes(-1)) fail(`${what}: ${receiver} got another datagram`);
      const completed = receives.flatMap((o, i) =>
        o.processed!.length > 0 ? [i] : []
      );
      const name = String(
        orders[i]?.receiver === receiver
          ? (orders[i] as { name?: unknown }).name
          : undefined,
      );
      const named = RECEIVE_ORDER_NAMES[name];
      if (named === undefined) fail(`${what}: unknown receive order ${name}`);
      sameValue(
        order,
        named(datagrams.length),
        `${what}: ${receiver}'s order as "${name}" orders it`,
      );
      const processed = receives.flatMap((o) => o.processed!);
      return {
        receiver,
        name,
        order,
        completed_at_position: completed.length === 1 ? completed[0] : -1,
        processed_payload_equals_sent: processed.length === 1 &&
          processed[0].len === payload.length &&
          processed[0].fnv1a32 === fnv1a32(payload),
      };
    });
  sameValue(actual, orders, `${what}: summary.receive_orders`);
}

/** Ops split into steps or ticks: a new one starts at each `starts` op. */
function split(
  ops: SummaryOp[],
  starts: (op: SummaryOp, previous: SummaryOp | undefined) => boolean,
): number[] {
  const stepOf: number[] = [];
  let step = -1;
  ops.forEach((op, i) => {
    if (step < 0 || starts(op, ops[i - 1])) step++;
    stepOf.push(step);
  });
  return stepOf;
}

/**
 * Checks per-step delays or latencies derived from the ops against the
 * summary's: -1 (dropped) or d, delivered at step k + d. One due after the
 * last step is never delivered, so the ops show it as -1; such a tail entry
 * can only be checked to be a whole number of steps.
 */
function checkDelays(
  actual: number[],
  expected: unknown,
  steps: number,
  what: string,
): void {
  if (!Array.isArray(expected) || expected.length !== steps) {
    fail(`${what} is not one entry per step (${steps})`);
  }
  actual.forEach((value, k) => {
    const e = expected[k];
    if (!Number.isInteger(e) || e < -1) fail(`${what}[${k}] is ${e}`);
    const shown = e === -1 || k + e >= steps ? -1 : e;
    sameValue(value, shown, `${what}[${k}]`);
  });
}

/** Steps at which each datagram of each send op was received by `to`. */
function deliveries(
  s: SummaryScenario,
  stepOf: number[],
  from: string,
  to: string,
): Map<number, number[][]> {
  const trace = tracer();
  const delivered = new Map<number, number[][]>();
  s.ops.forEach((op, i) => {
    if (op.op === "send" && op.ep === from) {
      trace.send(op, i);
      delivered.set(i, op.datagrams!.map(() => []));
    } else if (op.op === "receive" && op.ep === to) {
      const sent = trace.lookup(from, op.data!);
      if (sent !== undefined) {
        delivered.get(sent.sendOp)![sent.datagram].push(stepOf[i]);
      }
    }
  });
  return delivered;
}

/** The ops `op` of `ep` in step `k`, with their indices. */
function opsInStep(
  s: SummaryScenario,
  stepOf: number[],
  k: number,
  op: string,
  ep: string,
): { o: SummaryOp; i: number }[] {
  return s.ops.flatMap((o, i) =>
    stepOf[i] === k && o.op === op && o.ep === ep ? [{ o, i }] : []
  );
}

/** Steps a packet was delivered at: its first delivered datagram's. */
function deliveredAt(perDatagram: number[][]): number[] {
  return perDatagram.find((steps) => steps.length > 0) ?? [];
}

/** Steps from `k` to the first delivery, or -1 when never delivered. */
function delayFrom(k: number, at: number[]): number {
  return at.length === 0 ? -1 : at[0] - k;
}

function checkAcks(s: SummaryScenario, what: string): void {
  const summary = s.summary!;
  checkKeys(summary, [
    "step_procedure",
    "reset_step",
    "a_to_b_delay",
    "b_to_a_delay",
    "steps",
    "a_sequences_never_acked",
    "b_sequences_never_acked",
  ], what);
  const a = endpointNamed(s, 0, what).name;
  const b = endpointNamed(s, 1, what).name;
  // A step ends with B's acks, read after A's.
  const stepOf = split(
    s.ops,
    (_, previous) => previous?.op === "acks" && previous.ep === b,
  );
  const steps = stepOf.length === 0 ? 0 : stepOf[stepOf.length - 1] + 1;
  const resets = s.ops.flatMap((o, i) => o.op === "reset" ? [stepOf[i]] : []);
  sameValue(
    resets.length === 0 ? -1 : resets[0],
    summary.reset_step,
    `${what}: summary.reset_step`,
  );
  const aToB = deliveries(s, stepOf, a, b);
  const bToA = deliveries(s, stepOf, b, a);
  const inStep = (k: number, op: string, ep: string) =>
    opsInStep(s, stepOf, k, op, ep);
  const actualSteps = [];
  const aToBDelay = [];
  const bToADelay = [];
  /** Every send of each endpoint, acked or not; a reset starts afresh. */
  const sends = new Map<string, { sequence: number; acked: boolean }[]>([
    [a, []],
    [b, []],
  ]);
  const epochStart = new Map<string, number>([[a, 0], [b, 0]]);
  s.ops.forEach((op) => {
    const list = sends.get(op.ep);
    if (list === undefined) return;
    if (op.op === "reset") epochStart.set(op.ep, list.length);
    if (op.op === "send") list.push({ sequence: op.sequence!, acked: false });
    if (op.op === "acks") {
      const epoch = list.slice(epochStart.get(op.ep));
      for (const x of op.acks!) {
        const sent = epoch.findLast((e) => e.sequence === x);
        if (sent === undefined) fail(`${what}: ${op.ep} acks unsent ${x}`);
        sent.acked = true;
      }
    }
  });
  for (let k = 0; k < steps; k++) {
    const aSend = only(inStep(k, "send", a), `${what}: step ${k} A's send`);
    const bSend = only(inStep(k, "send", b), `${what}: step ${k} B's send`);
    const aAcks = only(inStep(k, "acks", a), `${what}: step ${k} A's acks`);
    const bAcks = only(inStep(k, "acks", b), `${what}: step ${k} B's acks`);
    const aAt = deliveredAt(aToB.get(aSend.i)!);
    const bPerDatagram = bToA.get(bSend.i)!;
    const bAt = deliveredAt(bPerDatagram);
    const lost = bPerDatagram.flatMap((d, i) => d.length === 0 ? [i] : []);
    aToBDelay.push(delayFrom(k, aAt));
    bToADelay.push(delayFrom(k, bAt));
    actualSteps.push({
      step: k,
      a_sequence: aSend.o.sequence,
      a_delivered_at_steps: aAt,
      b_sequence: bSend.o.sequence,
      b_delivered_at_steps: bAt,
      b_datagrams: bSend.o.datagrams!.length,
      b_lost_fragment: lost.length === 1 && bPerDatagram.length > 1
        ? lost[0]
        : -1,
      a_acks: aAcks.o.acks,
      b_acks: bAcks.o.acks,
    });
  }
  sameValue(actualSteps, summary.steps, `${what}: summary.steps`);
  checkDelays(
    aToBDelay,
    summary.a_to_b_delay,
    steps,
    `${what}: summary.a_to_b_delay`,
  );
  checkDelays(
    bToADelay,
    summary.b_to_a_delay,
    steps,
    `${what}: summary.b_to_a_delay`,
  );
  const neverAcked = (ep: string) =>
    sends.get(ep)!.filter((e) => !e.acked).map((e) => e.sequence);
  sameValue(
    neverAcked(a),
    summary.a_sequences_never_acked,
    `${what}: summary.a_sequences_never_acked`,
  );
  sameValue(
    neverAcked(b),
    summary.b_sequences_never_acked,
    `${what}: summary.b_sequences_never_acked`,
  );
}

function checkEstimates(
  s: SummaryScenario,
  conventions: SummaryConventions,
  replayedStats: (ep: string) => number[],
  what: string,
): void {
  const summary = s.summary!;
  checkKeys(summary, [
    "ticks",
    "t0",
    "dt",
    "time_formula",
    "tick_procedure",
    "rules",
    "a_to_b_latency",
    "b_to_a_latency",
    "a_payload_len",
    "b_payload_len",
    "stats_order",
    "final_stats_A",
    "final_stats_B",
  ], what);
  const a = endpointNamed(s, 0, what).name;
  const b = endpointNamed(s, 1, what).name;
  // A tick starts with A's update.
  const stepOf = split(s.ops, (op) => op.op === "update" && op.ep === a);
  const ticks = opsOf(s, "update", a).length;
  sameValue(ticks, summary.ticks, `${what}: summary.ticks`);
  const t0 = summary.t0 as number;
  const dt = summary.dt as number;
  s.ops.forEach((op, i) => {
    if (op.op === "update") {
      sameValue(
        op.time,
        t0 + stepOf[i] * dt,
        `${what}: op ${i}'s time from summary.t0 + tick * summary.dt`,
      );
    }
  });
  const latency = (from: string, to: string) => {
    const delivered = deliveries(s, stepOf, from, to);
    const out: number[] = [];
    const lens: number[] = [];
    for (let k = 0; k < ticks; k++) {
      const { o, i } = only(
        opsInStep(s, stepOf, k, "send", from),
        `${what}: tick ${k} ${from}'s send`,
      );
      lens.push(o.payload!.len);
      out.push(delayFrom(k, deliveredAt(delivered.get(i)!)));
    }
    return { out, lens };
  };
  const aToB = latency(a, b);
  const bToA = latency(b, a);
  checkDelays(
    aToB.out,
    summary.a_to_b_latency,
    ticks,
    `${what}: summary.a_to_b_latency`,
  );
  checkDelays(
    bToA.out,
    summary.b_to_a_latency,
    ticks,
    `${what}: summary.b_to_a_latency`,
  );
  sameValue(aToB.lens, summary.a_payload_len, `${what}: summary.a_payload_len`);
  sameValue(bToA.lens, summary.b_payload_len, `${what}: summary.b_payload_len`);
  sameValue(
    conventions.stats_order,
    summary.stats_order,
    `${what}: summary.stats_order`,
  );
  // The stats when the ops are done: the last update's, and then the RTT
  // the acks received after it moved.
  const finalStats = (ep: string) => {
    const stats = replayedStats(ep);
    return Object.fromEntries(
      conventions.stats_order.map((name, i) => [name, stats[i]]),
    );
  };
  sameValue(finalStats(a), summary.final_stats_A, `${what}: final_stats_A`);
  sameValue(finalStats(b), summary.final_stats_B, `${what}: final_stats_B`);
}

/** The counter a disposition must have counted, by its name's ending. */
const DISPOSITION_COUNTERS: Record<string, string | null> = {
  invalid: "_INVALID",
  stale: "_STALE",
  duplicate: "_DUPLICATE",
  too_large: "_TOO_LARGE_TO_RECEIVE",
  ignored: null,
  accepted: null,
};

function checkRejected(
  section: "invalid" | "lenient",
  s: SummaryScenario,
  conventions: SummaryConventions,
  what: string,
): void {
  const summary = s.summary!;
  checkKeys(summary, [
    "packet",
    "packet_bytes",
    "disposition",
    "reason",
    "reference",
    "processed",
    "counters_before",
    "counters_after",
    "counters_incremented",
    "direct",
  ], what);
  const final = last(s.ops, `${what}: ops`);
  if (final.op !== "receive") fail(`${what}: the last op is not a receive`);
  sameValue(final.data, summary.packet, `${what}: summary.packet`);
  sameValue(
    hex(final.data!).length,
    summary.packet_bytes,
    `${what}: summary.packet_bytes`,
  );
  const processed = final.processed!.length > 0;
  sameValue(processed, summary.processed, `${what}: summary.processed`);
  sameValue(
    processed,
    section === "lenient",
    `${what}: processed (${section})`,
  );
  const earlier = s.ops.slice(0, -1).filter((o) =>
    o.ep === final.ep && o.counters !== undefined
  );
  const before = earlier.length > 0
    ? earlier[earlier.length - 1].counters!
    : conventions.counters_order.map(() => 0);
  const after = final.counters!;
  sameValue(before, summary.counters_before, `${what}: counters_before`);
  sameValue(after, summary.counters_after, `${what}: counters_after`);
  const incremented = conventions.counters_order.flatMap((name, i) =>
    Array(Math.max(0, after[i] - before[i])).fill(name) as string[]
  );
  sameValue(
    incremented,
    summary.counters_incremented,
    `${what}: summary.counters_incremented`,
  );
  const disposition = String(summary.disposition);
  const counter = DISPOSITION_COUNTERS[disposition];
  if (counter === undefined) {
    fail(`${what}: unknown disposition ${disposition}`);
  }
  if (section === "lenient" && disposition !== "accepted") {
    fail(`${what}: a lenient input's disposition is ${disposition}`);
  }
  if (section === "invalid" && disposition === "accepted") {
    fail(`${what}: an invalid input's disposition is accepted`);
  }
  if (disposition === "ignored" && incremented.length > 0) {
    fail(`${what}: ignored, yet ${incremented.join(", ")} counted`);
  }
  if (counter !== null && !incremented.some((n) => n.endsWith(counter))) {
    fail(`${what}: ${disposition}, yet no *${counter} counter counted`);
  }
}

/**
 * Checks `scenario.summary` of a scenario of `section` against its ops;
 * `replayedStats` gives an endpoint's stats (in the conventions' order)
 * after the replay, for the final stats of estimates.
 * The `direct` field of invalid and lenient entries (a parser's result)
 * is the caller's.
 */
export function checkScenarioSummary(
  section: string,
  scenario: SummaryScenario,
  conventions: SummaryConventions,
  replayedStats: (ep: string) => number[],
  what: string,
): void {
  const summary = scenario.summary;
  if (summary === undefined) return;
  for (const field of PROSE) {
    if (field in summary && typeof summary[field] !== "string") {
      fail(`${what}: summary.${field} is not text`);
    }
  }
  switch (section) {
    case "packet_headers.endpoint":
      return checkHeadersEndpoint(scenario, what);
    case "fragments":
      return checkFragments(scenario, what);
    case "acks":
      return checkAcks(scenario, what);
    case "estimates":
      return checkEstimates(scenario, conventions, replayedStats, what);
    case "invalid":
    case "lenient":
      return checkRejected(section, scenario, conventions, what);
    default:
      fail(`${what}: summaries of section ${section} are not known here`);
  }
}
