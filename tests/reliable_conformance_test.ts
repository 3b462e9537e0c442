// Conformance of reliable.ts with the C reference (mas-bandwidth/reliable),
// driven by a vectors file the reference's own reliable.c produced. Every
// header is written and read back; every scenario is replayed op by op on
// fresh endpoints, comparing each datagram byte, each process callback,
// each counter, each ack list, each float32 estimate and each next sequence.
//
// The file is $RELIABLE_VECTORS when set (a path relative to the working
// directory), else tests/vectors/reliable-1.0.json next to this file. Any
// file of the same schema works: nothing expected is written here, it all
// comes from the file (names of counters and stats from its conventions).
//
//   RELIABLE_VECTORS=/tmp/other.json deno test -A tests/reliable_conformance_test.ts

import * as reliable from "../reliable.ts";
import type {
  ReliableConfig,
  ReliableCounters,
  ReliableEndpoint,
  ReliableStats,
} from "../reliable.ts";
import { assert, assertStrictEquals, fail } from "./_assert.ts";
import {
  checkScenarioSummary,
  fnv1a32,
  payloadOf,
  type PayloadSpec,
} from "./_reliable_summary.ts";
import { assertBytes, checkKeys, hex, toHex } from "./_vectors.ts";

// ---------------------------------------------------------------------------
// The file

interface HeaderVector {
  index: number;
  kind: string;
  sequence: number;
  ack: number;
  ack_bits: number;
  ack_bits_hex: string;
  difference: number;
  note?: string;
  header: string;
  header_bytes: number;
  prefix: number;
  payload: PayloadSpec;
  packet: string;
  read: {
    packet_bytes: number;
    return: number;
    sequence?: number;
    ack?: number;
    ack_bits?: number;
  };
  read_truncated: { packet_bytes: number; return: number };
}

interface EndpointVector {
  name: string;
  id: number;
  create_time: number;
  config: Record<string, number>;
  process_returns_0_for?: number[];
}

interface ProcessedVector {
  sequence: number;
  len: number;
  fnv1a32: string;
  hex?: string;
  returned: number;
}

type Op =
  | {
    op: "send";
    ep: string;
    payload: PayloadSpec;
    sequence: number;
    datagrams: string[];
    next_sequence: number;
    counters: number[];
  }
  | {
    op: "send_discard";
    ep: string;
    count: number;
    payload: PayloadSpec;
    first_sequence: number;
    next_sequence: number;
    counters: number[];
  }
  | {
    op: "receive";
    ep: string;
    data: string;
    processed: ProcessedVector[];
    counters: number[];
  }
  | { op: "update"; ep: string; time: number; stats: number[] }
  | { op: "acks"; ep: string; acks: number[]; clear: boolean }
  | { op: "reset"; ep: string; next_sequence: number; counters: number[] };

interface DirectRead {
  function: string;
  packet_bytes: number;
  return: number;
  max_fragments?: number;
  fragment_size?: number;
  sequence?: number;
  ack?: number;
  ack_bits?: number;
  fragment_id?: number;
  num_fragments?: number;
  fragment_bytes?: number;
}

interface Scenario {
  name: string;
  description?: string;
  endpoints: EndpointVector[];
  ops: Op[];
  summary?: {
    packet?: string;
    direct?: DirectRead;
    [field: string]: unknown;
  };
}

interface ReliableVectors {
  schema_version: number;
  conventions: { counters_order: string[]; stats_order: string[] };
  packet_headers?: { direct?: HeaderVector[]; endpoint?: Scenario[] };
  counts?: Record<string, number>;
  [section: string]: unknown;
}

const DEFAULT_LOCATION = new URL(
  "./vectors/reliable-1.0.json",
  import.meta.url,
);

function vectorsLocation(): string | URL {
  let fromEnv: string | undefined;
  try {
    fromEnv = Deno.env.get("RELIABLE_VECTORS");
  } catch {
    fromEnv = undefined; // no --allow-env: the shipped file
  }
  return fromEnv ? fromEnv : DEFAULT_LOCATION;
}

const location = vectorsLocation();
const vectors = JSON.parse(
  await Deno.readTextFile(location),
) as ReliableVectors;

/** Scenario sections, in file order; packet_headers.endpoint comes first. */
const SCENARIO_SECTIONS = [
  "fragments",
  "acks",
  "estimates",
  "invalid",
  "lenient",
] as const;
/** Top-level fields that are not vectors. */
const METADATA = [
  "schema",
  "schema_version",
  "name",
  "variant",
  "source",
  "conventions",
  "notes",
  "counts",
];

// ---------------------------------------------------------------------------
// Names: the file's conventions, mapped to ours by spelling

/** `"PACKETS_TOO_LARGE_TO_SEND"` or `"rtt_min"` to `packetsTooLargeToSend`, `rttMin`. */
function camel(name: string): string {
  return name.toLowerCase().replace(/_([a-z0-9])/g, (_, c) => c.toUpperCase());
}

const counterNames = vectors.conventions.counters_order.map((name) => {
  const ours = camel(name.replace(/^NUM_/, ""));
  if (!(reliable.RELIABLE_COUNTER_NAMES as readonly string[]).includes(ours)) {
    fail(`conventions.counters_order: no counter ${ours} for ${name}`);
  }
  return ours as keyof ReliableCounters;
});
const statNames = vectors.conventions.stats_order.map((name) => {
  const ours = camel(name);
  if (!(reliable.RELIABLE_STATS_NAMES as readonly string[]).includes(ours)) {
    fail(`conventions.stats_order: no stat ${ours} for ${name}`);
  }
  return ours as keyof ReliableStats;
});

function toConfig(
  config: Record<string, number>,
  what: string,
): ReliableConfig {
  const out: Record<string, number> = {};
  for (const [key, value] of Object.entries(config)) {
    const ours = camel(key);
    if (!(ours in reliable.DEFAULT_RELIABLE_CONFIG)) {
      fail(`${what}: unknown config field ${key}`);
    }
    out[ours] = value;
  }
  return out as ReliableConfig;
}

// ---------------------------------------------------------------------------
// Helpers

function same(actual: unknown, expected: unknown, what: string): void {
  if (actual !== expected) {
    fail(`${what} is ${String(actual)}, expected ${String(expected)}`);
  }
}

function sameNumbers(
  actual: readonly number[],
  expected: readonly number[],
  what: string,
): void {
  if (
    actual.length !== expected.length ||
    actual.some((value, i) => value !== expected[i])
  ) {
    fail(
      `${what} are [${actual.join(", ")}], expected [${expected.join(", ")}]`,
    );
  }
}

function checkCounters(
  endpoint: ReliableEndpoint,
  expected: number[],
  what: string,
): void {
  same(expected.length, counterNames.length, `${what}: number of counters`);
  counterNames.forEach((name, i) => {
    same(endpoint.counters[name], expected[i], `${what}: counter ${name}`);
  });
}

function checkStats(
  endpoint: ReliableEndpoint,
  expected: number[],
  what: string,
): void {
  same(expected.length, statNames.length, `${what}: number of stats`);
  statNames.forEach((name, i) => {
    const actual = Math.fround(endpoint.stats[name]);
    if (actual !== expected[i]) {
      fail(
        `${what}: stat ${name} is ${actual}, expected ${expected[i]} (${
          Math.fround(expected[i]) === expected[i]
            ? "a float32"
            : "not a float32 in the file"
        })`,
      );
    }
  });
}

// ---------------------------------------------------------------------------
// packet_headers.direct

let headersChecked = 0;
let scenariosChecked = 0;
let opsChecked = 0;
let expectedHeaders = 0;
let expectedScenarios = 0;
let expectedOps = 0;

function checkHeader(
  v: HeaderVector,
  previousIndex: number,
  what: string,
): void {
  checkKeys(v, [
    "index",
    "kind",
    "sequence",
    "ack",
    "ack_bits",
    "ack_bits_hex",
    "difference",
    "note",
    "header",
    "header_bytes",
    "prefix",
    "payload",
    "packet",
    "read",
    "read_truncated",
  ], what);
  // The index is a label, not an output: a file may hold any subset of the
  // vectors, so it need only be an integer that grows along the file.
  if (!Number.isInteger(v.index) || v.index <= previousIndex) {
    fail(
      `${what}: index is ${v.index}, expected an integer above the previous vector's ${previousIndex}`,
    );
  }
  if (v.kind !== "mask" && v.kind !== "named") {
    fail(`${what}: kind is ${v.kind}, expected "mask" or "named"`);
  }
  same(
    "0x" + v.ack_bits.toString(16).padStart(8, "0"),
    v.ack_bits_hex,
    `${what}: ack_bits_hex of ack_bits`,
  );
  same(
    (v.sequence - v.ack) & 0xffff,
    v.difference,
    `${what}: difference of sequence and ack`,
  );

  // Write.
  const buffer = new Uint8Array(reliable.MAX_PACKET_HEADER_BYTES);
  const written = reliable.writePacketHeader(
    buffer,
    0,
    v.sequence,
    v.ack,
    v.ack_bits,
  );
  same(written, v.header_bytes, `${what}: header_bytes written`);
  assertBytes(buffer.subarray(0, written), hex(v.header), `${what}: header`);
  same(buffer[0], v.prefix, `${what}: prefix`);
  const payload = payloadOf(v.payload, what);
  const packet = new Uint8Array(written + payload.length);
  packet.set(buffer.subarray(0, written));
  packet.set(payload, written);
  assertBytes(packet, hex(v.packet), `${what}: packet`);

  // Read.
  checkKeys(
    v.read,
    ["packet_bytes", "return", "sequence", "ack", "ack_bits"],
    `${what}: read`,
  );
  const expectedPacket = hex(v.packet);
  same(
    expectedPacket.length,
    v.read.packet_bytes,
    `${what}: read.packet_bytes`,
  );
  const read = reliable.readPacketHeader(expectedPacket);
  same(read?.headerBytes ?? -1, v.read.return, `${what}: read.return`);
  if (read !== undefined) {
    same(read.sequence, v.read.sequence, `${what}: read.sequence`);
    same(read.ack, v.read.ack, `${what}: read.ack`);
    same(read.ackBits, v.read.ack_bits, `${what}: read.ack_bits`);
  }

  // Read truncated.
  checkKeys(
    v.read_truncated,
    ["packet_bytes", "return"],
    `${what}: read_truncated`,
  );
  const truncated = hex(v.header).subarray(0, v.read_truncated.packet_bytes);
  same(
    truncated.length,
    v.read_truncated.packet_bytes,
    `${what}: read_truncated.packet_bytes`,
  );
  same(
    reliable.readPacketHeader(truncated)?.headerBytes ?? -1,
    v.read_truncated.return,
    `${what}: read_truncated.return`,
  );
}

const direct = vectors.packet_headers?.direct ?? [];
expectedHeaders = direct.length;
direct.forEach((v, index) => {
  const what =
    `packet_headers.direct[${index}] ${v.kind} sequence ${v.sequence} ack ${v.ack} ack_bits ${v.ack_bits_hex}`;
  Deno.test(`reliable conformance: ${what}`, () => {
    checkHeader(v, index === 0 ? -1 : direct[index - 1].index, what);
    headersChecked++;
  });
});

// ---------------------------------------------------------------------------
// Scenarios

interface Replayed {
  endpoint: ReliableEndpoint;
  transmitted: { sequence: number; bytes: Uint8Array }[];
  processed: ProcessedVector[];
}

function createEndpoints(
  scenario: Scenario,
  what: string,
): Map<string, Replayed> {
  const endpoints = new Map<string, Replayed>();
  for (const e of scenario.endpoints) {
    const where = `${what}: endpoint ${e.name}`;
    checkKeys(
      e,
      ["name", "id", "create_time", "config", "process_returns_0_for"],
      where,
    );
    const rejected = new Set(e.process_returns_0_for ?? []);
    const transmitted: Replayed["transmitted"] = [];
    const processed: ProcessedVector[] = [];
    const endpoint = reliable.createReliableEndpoint(
      toConfig(e.config, where),
      e.create_time,
      {
        transmit(sequence, datagram) {
          transmitted.push({ sequence, bytes: datagram.slice() });
        },
        process(sequence, payload) {
          const accept = !rejected.has(sequence);
          processed.push({
            sequence,
            len: payload.length,
            fnv1a32: fnv1a32(payload),
            hex: payload.length <= 64 ? toHex(payload) : undefined,
            returned: accept ? 1 : 0,
          });
          return accept;
        },
      },
    );
    if (endpoints.has(e.name)) fail(`${where}: named twice`);
    endpoints.set(e.name, { endpoint, transmitted, processed });
  }
  return endpoints;
}

/** Sends, taking the RangeError of a payload the endpoint will not send. */
function trySend(endpoint: ReliableEndpoint, payload: Uint8Array): number {
  try {
    return reliable.sendPacket(endpoint, payload);
  } catch (error) {
    if (error instanceof RangeError) return -1;
    throw error;
  }
}

function replayOp(
  op: Op,
  endpoints: Map<string, Replayed>,
  what: string,
): void {
  const replayed = endpoints.get(op.ep);
  if (replayed === undefined) fail(`${what}: no endpoint ${op.ep}`);
  const { endpoint, transmitted, processed } = replayed;
  switch (op.op) {
    case "send": {
      checkKeys(op, [
        "op",
        "ep",
        "payload",
        "sequence",
        "datagrams",
        "next_sequence",
        "counters",
      ], what);
      same(
        reliable.nextPacketSequence(endpoint),
        op.sequence,
        `${what}: sequence before the send`,
      );
      transmitted.length = 0;
      const sent = trySend(endpoint, payloadOf(op.payload, what));
      same(
        transmitted.length,
        op.datagrams.length,
        `${what}: number of datagrams`,
      );
      op.datagrams.forEach((datagram, i) => {
        assertBytes(
          transmitted[i].bytes,
          hex(datagram),
          `${what}: datagram ${i}`,
        );
        same(
          transmitted[i].sequence,
          op.sequence,
          `${what}: datagram ${i} transmit sequence`,
        );
      });
      if (sent >= 0) same(sent, op.sequence, `${what}: sendPacket's sequence`);
      same(
        reliable.nextPacketSequence(endpoint),
        op.next_sequence,
        `${what}: next_sequence`,
      );
      checkCounters(endpoint, op.counters, what);
      break;
    }
    case "send_discard": {
      checkKeys(op, [
        "op",
        "ep",
        "count",
        "payload",
        "first_sequence",
        "next_sequence",
        "counters",
      ], what);
      same(
        reliable.nextPacketSequence(endpoint),
        op.first_sequence,
        `${what}: first_sequence`,
      );
      const payload = payloadOf(op.payload, what);
      for (let i = 0; i < op.count; i++) trySend(endpoint, payload);
      transmitted.length = 0;
      same(
        reliable.nextPacketSequence(endpoint),
        op.next_sequence,
        `${what}: next_sequence`,
      );
      checkCounters(endpoint, op.counters, what);
      break;
    }
    case "receive": {
      checkKeys(op, ["op", "ep", "data", "processed", "counters"], what);
      processed.length = 0;
      reliable.receivePacket(endpoint, hex(op.data));
      same(
        processed.length,
        op.processed.length,
        `${what}: number of process callbacks`,
      );
      op.processed.forEach((expected, i) => {
        const where = `${what}: processed[${i}]`;
        checkKeys(
          expected,
          ["sequence", "len", "fnv1a32", "hex", "returned"],
          where,
        );
        const actual = processed[i];
        same(actual.sequence, expected.sequence, `${where}.sequence`);
        same(actual.len, expected.len, `${where}.len`);
        same(actual.fnv1a32, expected.fnv1a32, `${where}.fnv1a32`);
        if (expected.hex !== undefined) {
          same(actual.hex, expected.hex, `${where}.hex`);
        }
        same(actual.returned, expected.returned, `${where}.returned`);
      });
      checkCounters(endpoint, op.counters, what);
      break;
    }
    case "update":
      checkKeys(op, ["op", "ep", "time", "stats"], what);
      reliable.update(endpoint, op.time);
      checkStats(endpoint, op.stats, what);
      break;
    case "acks":
      checkKeys(op, ["op", "ep", "acks", "clear"], what);
      sameNumbers([...reliable.getAcks(endpoint)], op.acks, `${what}: acks`);
      if (op.clear) reliable.clearAcks(endpoint);
      break;
    case "reset":
      checkKeys(op, ["op", "ep", "next_sequence", "counters"], what);
      reliable.reset(endpoint);
      same(
        reliable.nextPacketSequence(endpoint),
        op.next_sequence,
        `${what}: next_sequence`,
      );
      checkCounters(endpoint, op.counters, what);
      break;
    default:
      fail(`${what}: unknown op ${(op as { op: string }).op}`);
  }
}

/**
 * The summary: every field derived again from the ops
 * (tests/_reliable_summary.ts), and `direct`, a parser's result on the
 * summary's packet, by calling that parser here.
 */
function checkSummary(
  section: string,
  scenario: Scenario,
  endpoints: Map<string, Replayed>,
  what: string,
): void {
  const summary = scenario.summary;
  if (summary === undefined) return;
  checkScenarioSummary(section, scenario, vectors.conventions, (name) => {
    const endpoint = endpoints.get(name)?.endpoint;
    if (endpoint === undefined) fail(`${what}: no endpoint ${name}`);
    return statNames.map((stat) => Math.fround(endpoint.stats[stat]));
  }, what);
  const d = summary.direct;
  if (d !== undefined && summary.packet !== undefined) {
    const where = `${what}: summary.direct`;
    const packet = hex(summary.packet);
    same(packet.length, d.packet_bytes, `${where}.packet_bytes`);
    if (d.function === "reliable_read_packet_header") {
      const read = reliable.readPacketHeader(packet);
      same(read?.headerBytes ?? -1, d.return, `${where}.return`);
      if (read !== undefined) {
        same(read.sequence, d.sequence, `${where}.sequence`);
        same(read.ack, d.ack, `${where}.ack`);
        same(read.ackBits, d.ack_bits, `${where}.ack_bits`);
      }
    } else if (d.function === "reliable_read_fragment_header") {
      const read = reliable.readFragmentHeader(
        packet,
        d.max_fragments,
        d.fragment_size,
      );
      same(read?.headerBytes ?? -1, d.return, `${where}.return`);
      if (read !== undefined) {
        same(read.fragmentId, d.fragment_id, `${where}.fragment_id`);
        same(read.numFragments, d.num_fragments, `${where}.num_fragments`);
        same(read.fragmentBytes, d.fragment_bytes, `${where}.fragment_bytes`);
        same(read.sequence, d.sequence, `${where}.sequence`);
        same(read.ack, d.ack, `${where}.ack`);
        same(read.ackBits, d.ack_bits, `${where}.ack_bits`);
      }
    } else {
      fail(`${where}: unknown function ${d.function}`);
    }
  }
}

function eachScenario(section: string, scenarios: Scenario[] | undefined) {
  for (const [index, scenario] of (scenarios ?? []).entries()) {
    expectedScenarios++;
    expectedOps += scenario.ops.length;
    const what = `${section}[${index}] "${scenario.name}"`;
    Deno.test(`reliable conformance: ${what}`, () => {
      checkKeys(
        scenario,
        ["name", "description", "endpoints", "ops", "summary"],
        what,
      );
      const endpoints = createEndpoints(scenario, what);
      scenario.ops.forEach((op, i) => {
        replayOp(op, endpoints, `${what} op ${i} (${op.op} ${op.ep})`);
        opsChecked++;
      });
      checkSummary(section, scenario, endpoints, what);
      scenariosChecked++;
    });
  }
}

eachScenario("packet_headers.endpoint", vectors.packet_headers?.endpoint);
for (const section of SCENARIO_SECTIONS) {
  eachScenario(section, vectors[section] as Scenario[] | undefined);
}

Deno.test("reliable conformance: summary", () => {
  assertStrictEquals(vectors.schema_version, 1, "schema_version");
  const unknown = Object.keys(vectors).filter((key) =>
    !METADATA.includes(key) && key !== "packet_headers" &&
    !(SCENARIO_SECTIONS as readonly string[]).includes(key)
  );
  if (unknown.length > 0) {
    fail(`unknown vector sections, not checked: ${unknown.join(", ")}`);
  }
  const unknownHeaders = Object.keys(vectors.packet_headers ?? {}).filter((
    key,
  ) => key !== "direct" && key !== "endpoint");
  if (unknownHeaders.length > 0) {
    fail(`unknown packet_headers sections: ${unknownHeaders.join(", ")}`);
  }
  console.log(
    `reliable conformance: ${headersChecked} headers, ${scenariosChecked} scenarios, ${opsChecked} ops checked (${
      String(location)
    })`,
  );
  assert(expectedScenarios > 0, "the vectors file has no scenarios");
  same(headersChecked, expectedHeaders, "headers checked");
  same(scenariosChecked, expectedScenarios, "scenarios checked");
  same(opsChecked, expectedOps, "ops checked");
  // The file's own tally, when it has one.
  for (const [key, count] of Object.entries(vectors.counts ?? {})) {
    let actual: number;
    if (key === "ops_total") actual = opsChecked;
    else if (key === "packet_headers.direct") actual = direct.length;
    else if (key === "packet_headers.endpoint") {
      actual = vectors.packet_headers?.endpoint?.length ?? 0;
    } else if ((SCENARIO_SECTIONS as readonly string[]).includes(key)) {
      actual = (vectors[key] as Scenario[] | undefined)?.length ?? 0;
    } else {
      fail(`counts.${key}: a section this suite does not know`);
    }
    same(actual, count, `counts.${key}`);
  }
});
