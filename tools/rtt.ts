/**
 * Round trip of a netcode payload over UDP and over WebTransport, side by
 * side in one process on loopback: one server on UDP 127.0.0.1:0 and on a
 * WebTransport endpoint 127.0.0.1:0 (a generated certificate), a UDP client
 * and a WebTransport client (Deno's `WebTransport` through
 * `connectWebTransport`), and the server echoing every payload.
 *
 * A sample is the time from `client.send()` to the echo coming out of
 * `client.receiveInto()` (`performance.now()`): netcode's encryption both
 * ways, the transport both ways (QUIC and HTTP/3 datagrams for WebTransport)
 * and the loop's turns. Each 100-byte payload carries a sequence number; the
 * probes are stop-and-wait and alternate between the transports, so one
 * payload is in flight in the whole process and both transports see the
 * same machine. The first 50 probes of each are a warm-up; an echo missing
 * after 250 ms is lost.
 *
 * The loop runs `server.update()`, the echoes and both `client.update()`s on
 * every turn of the event loop, yielding with `setImmediate` (a macrotask,
 * so socket receives land between turns: about 5 µs a turn here).
 * `setTimeout(0)` and a 1 ms `setInterval` take about 2 ms a turn in Deno
 * 2.9, more than the loopback round trip, so they would measure the timer
 * (`--loop timeout` shows it). The price: one busy core during the run.
 *
 * ```sh
 * deno run -A --unstable-net tools/rtt.ts [--samples 1000] [--json] [--loop immediate|timeout]
 * ```
 *
 * `--samples` is the measured probes per transport. The run stops after 60 s
 * whatever happens. Exit code 0 after a complete run, 1 when a client fails
 * to connect or drops, or the 60 s pass first (what was measured is still
 * printed), 2 on a bad command line.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { setImmediate } from "node:timers";
import { generateCertificate } from "../certificate.ts";
import { ClientState, createClient } from "../client.ts";
import { generateKey } from "../crypto.ts";
import { createServer } from "../server.ts";
import {
  connectWebTransport,
  listenWebTransport,
} from "../socket_webtransport.ts";
import { generateConnectToken } from "../token.ts";

const USAGE =
  "Usage: deno run -A --unstable-net tools/rtt.ts [--samples N] [--json] [--loop immediate|timeout]";
const WARMUP = 50;
const PAYLOAD_BYTES = 100;
const LOSS_MS = 250;
const CONNECT_MS = 10_000;
const RUN_MS = 60_000;
const PROTOCOL_ID = 0x1122334455667788n;

function usage(message: string): never {
  console.error(`rtt: ${message}\n${USAGE}`);
  Deno.exit(2);
}
let values;
try {
  ({ values } = parseArgs({
    args: Deno.args,
    options: {
      samples: { type: "string", default: "1000" },
      json: { type: "boolean", default: false },
      loop: { type: "string", default: "immediate" },
      help: { type: "boolean", short: "h", default: false },
    },
  }));
} catch (error) {
  usage((error as Error).message);
}
if (values.help) {
  console.log(USAGE);
  Deno.exit(0);
}
const samples = Number(values.samples);
if (!Number.isSafeInteger(samples) || samples < 1 || samples > 1e6) {
  usage("--samples must be an integer from 1 to 1000000");
}
if (values.loop !== "immediate" && values.loop !== "timeout") {
  usage("--loop must be immediate or timeout");
}
const turn: () => Promise<void> = values.loop === "immediate"
  ? () => new Promise((resolve) => setImmediate(resolve))
  : () => new Promise((resolve) => setTimeout(resolve, 0));

const privateKey = generateKey();
const certificate = await generateCertificate();
const start = performance.now();
const wtServer = listenWebTransport({ address: "127.0.0.1:0", certificate });
const server = createServer({
  address: "127.0.0.1:0",
  webTransport: wtServer,
  protocolId: PROTOCOL_ID,
  privateKey,
  maxClients: 2,
});
const wtSocket = connectWebTransport({ certificateHashes: [certificate.hash] });

const probes = [createClient(), createClient({ socket: wtSocket })].map(
  (client, index) => {
    client.connect(generateConnectToken({
      serverAddresses: [server.addresses[index]],
      clientId: BigInt(index + 1),
      protocolId: PROTOCOL_ID,
      privateKey,
    }));
    const name = index === 0 ? "udp" : "webtransport";
    return { name, client, rtts: [] as number[], sent: 0, lost: 0, sentAt: 0 };
  },
);
type Probe = typeof probes[number];

const buffer = new Uint8Array(1200);
const view = new DataView(buffer.buffer);
function tick(): void {
  const now = (performance.now() - start) / 1000;
  server.update(now);
  for (let i = 0; i < server.maxClients; i++) {
    if (!server.clientConnected(i)) continue;
    for (let n; (n = server.receiveInto(i, buffer)) > 0;) {
      server.send(i, buffer.subarray(0, n));
    }
  }
  for (const probe of probes) probe.client.update(now);
}

const connectDeadline = performance.now() + CONNECT_MS;
while (probes.some((probe) => probe.client.state !== ClientState.CONNECTED)) {
  const failed = probes.find(({ client }) =>
    client.state !== ClientState.CONNECTED &&
    (client.state < 0 || performance.now() > connectDeadline)
  );
  if (failed !== undefined) {
    console.error(
      `rtt: the ${failed.name} client did not connect after ${
        (performance.now() - start).toFixed(0)
      } ms: ${failed.client.stateName}`,
    );
    Deno.exit(1);
  }
  tick();
  await turn();
}
const connectedMs = performance.now() - start;

const runDeadline = start + RUN_MS;
const total = WARMUP + samples;
let current = 0; // the probe whose payload is in flight
const payload = new Uint8Array(PAYLOAD_BYTES);
const payloadView = new DataView(payload.buffer);
function send(probe: Probe): void {
  payloadView.setUint32(0, probe.sent);
  probe.sentAt = performance.now();
  probe.client.send(payload);
}
let code = 0;
let note = "";
send(probes[0]);
while (code === 0 && probes.some((probe) => probe.sent < total)) {
  if (performance.now() > runDeadline) {
    note = `stopped after ${RUN_MS / 1000} s`;
    code = 1;
    break;
  }
  tick();
  const probe = probes[current];
  let answered = false;
  // Every queued payload is read; only the echo of the probe in flight
  // counts (a late echo of a probe already counted lost does not).
  for (const { client } of probes) {
    for (let n; (n = client.receiveInto(buffer)) > 0;) {
      if (
        client === probe.client && n === PAYLOAD_BYTES &&
        view.getUint32(0) === probe.sent
      ) {
        if (probe.sent >= WARMUP) {
          probe.rtts.push(performance.now() - probe.sentAt);
        }
        answered = true;
      }
    }
  }
  if (!answered && performance.now() - probe.sentAt > LOSS_MS) {
    if (probe.sent >= WARMUP) probe.lost++;
    answered = true;
  }
  if (answered) {
    probe.sent++;
    if (probes[1 - current].sent < total) current = 1 - current;
    if (probes[current].sent < total) send(probes[current]);
  }
  const dropped = probes.find((p) => p.client.state !== ClientState.CONNECTED);
  if (dropped !== undefined) {
    note = `the ${dropped.name} client dropped: ${dropped.client.stateName}`;
    code = 1;
  }
  await turn();
}

const ms = (value: number) => Number(value.toFixed(3));
const rows = probes.map((probe) => {
  const sorted = probe.rtts.toSorted((a, b) => a - b);
  // Nearest rank; NaN (null in JSON) when nothing came back.
  const at = (q: number) =>
    ms(sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)] ?? NaN);
  const [p50, p90, p99, max] = [0.5, 0.9, 0.99, 1].map(at);
  const { name: transport, lost } = probe;
  return { transport, samples: sorted.length, lost, p50, p90, p99, max };
});
const ratio = (key: "p50" | "p99") =>
  Number((rows[1][key] / rows[0][key]).toFixed(2));
const report = {
  samplesPerTransport: samples,
  warmup: WARMUP,
  payloadBytes: PAYLOAD_BYTES,
  loop: values.loop,
  connectedMs: ms(connectedMs),
  rows,
  ratio: { p50: ratio("p50"), p99: ratio("p99") },
  webTransport: {
    client: { ...wtSocket.stats },
    server: { ...wtServer.stats },
  },
  ...(note === "" ? {} : { note }),
};

if (values.json) {
  console.log(JSON.stringify(report));
} else {
  console.log(
    `rtt: ${samples} probes per transport after ${WARMUP} warm-up, ${PAYLOAD_BYTES}-byte payloads, loop ${values.loop}, connected in ${
      connectedMs.toFixed(0)
    } ms\ntransport     samples   lost    p50 ms    p90 ms    p99 ms    max ms`,
  );
  for (const { transport, samples, lost, ...times } of rows) {
    const cells = Object.values(times).map((t) => t.toFixed(3).padStart(10));
    console.log(
      transport.padEnd(12) + String(samples).padStart(9) +
        String(lost).padStart(7) + cells.join(""),
    );
  }
  const { client: c, server: s } = report.webTransport;
  const lost = c.sendDropped + c.dropped + s.dropped + s.sendNoSession;
  console.log(
    `webtransport/udp: p50 ${report.ratio.p50}x, p99 ${report.ratio.p99}x\n` +
      `webtransport datagrams: client sent ${c.sent}, server received ${s.received} and sent ${s.sent}, client received ${c.received}; dropped ${lost}`,
  );
  if (note !== "") console.log(`rtt: ${note}`);
}

for (const probe of probes) probe.client.close();
server.close();
await Promise.race([
  Promise.all([wtSocket.closed, wtServer.closed]),
  new Promise((resolve) => setTimeout(resolve, 2000)),
]);
Deno.exit(code);
