/**
 * The load harness's server process (started by `tools/load.ts`): an echo
 * server ticking at 60 Hz on 127.0.0.1. It prints `{"ready", "port"}`, then
 * on `go` (stdin) measures for `--seconds`: CPU time (`/proc/self/stat`),
 * payloads echoed, and the time of each tick, then prints the result and
 * goes on echoing until `quit` or its deadline.
 *
 * `--tick-log PATH` writes one JSON line per measured tick: how late it
 * started and its update and echo times (ms), and the payloads its update
 * received.
 *
 * Timed per tick: `update` = `server.update(now)` (receive, decrypt,
 * keep-alives, timeouts); `tick` = update plus receiving every payload
 * (`receiveInto`) and sending it back (encrypt, socket send).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { MAX_PAYLOAD_BYTES } from "../packet.ts";
import { createServer } from "../server.ts";
import {
  createHistogram,
  emit,
  hexToBytes,
  histogramToJson,
  parseTransport,
  percentile,
  processCpuSeconds,
  PROTOCOL_ID,
  readCommands,
  record,
  sleepUntil,
  socketStats,
} from "./_load_common.ts";
import { openSocket } from "./_load_common.ts";

const { values } = parseArgs({
  options: {
    transport: { type: "string", default: "deno" },
    clients: { type: "string", default: "64" },
    seconds: { type: "string", default: "10" },
    key: { type: "string" },
    lifetime: { type: "string", default: "300" },
    hz: { type: "string", default: "60" },
    "tick-log": { type: "string" },
  },
});
const transport = parseTransport(values.transport);
const maxClients = Number(values.clients);
const seconds = Number(values.seconds);
const lifetimeMs = Number(values.lifetime) * 1000;
const tickMs = 1000 / Number(values.hz);
if (!values.key) throw new Error("--key is required");

const socket = openSocket(transport);
const server = createServer({
  protocolId: PROTOCOL_ID,
  privateKey: hexToBytes(values.key),
  maxClients,
  socket,
});
emit({ ready: true, port: server.address.port, pid: Deno.pid });

let quit = false;
let measuring = false;
let goAt = 0;
let echoedInWindow = 0;
let receivedAtStart = 0;
let cpuAtStart = 0;
let droppedAtStart: Record<string, number> = {};
let ticks = 0;
let lateTicks = 0;
const updateTimes = createHistogram();
const tickTimes = createHistogram();
// --tick-log: one line per measured tick, to see what the slow ticks were.
const tickLog: string[] = [];
const start = performance.now();

readCommands((command) => {
  if (command === "quit") quit = true;
  if (command === "go" && !measuring && goAt === 0) {
    measuring = true;
    goAt = performance.now();
    cpuAtStart = processCpuSeconds();
    receivedAtStart = server.stats.received.payload;
    droppedAtStart = { ...server.stats.dropped };
  }
});

function finishWindow(now: number): void {
  measuring = false;
  if (values["tick-log"]) {
    Deno.writeTextFileSync(values["tick-log"], tickLog.join("\n") + "\n");
  }
  const cpu = processCpuSeconds() - cpuAtStart;
  const window = (now - goAt) / 1000;
  emit({
    result: true,
    transport,
    maxClients,
    connected: server.numConnectedClients,
    windowSeconds: window,
    cpuSeconds: cpu,
    echoed: echoedInWindow,
    received: server.stats.received.payload - receivedAtStart,
    ticks,
    lateTicks,
    update: {
      p50: percentile(updateTimes, 0.5),
      p99: percentile(updateTimes, 0.99),
      max: updateTimes.max,
      histogram: histogramToJson(updateTimes),
    },
    tick: {
      p50: percentile(tickTimes, 0.5),
      p99: percentile(tickTimes, 0.99),
      max: tickTimes.max,
    },
    // Dropped during the window only (connecting sheds requests by design).
    dropped: Object.fromEntries(
      Object.entries(server.stats.dropped)
        .map((
          [reason, count],
        ) => [reason, count - (droppedAtStart[reason] ?? 0)])
        .filter(([, count]) => (count as number) > 0),
    ),
    socket: socketStats(socket),
  });
}

// Payloads are echoed from one buffer (receiveInto: no allocation a packet).
const echoBuffer = new Uint8Array(MAX_PAYLOAD_BYTES);
const echoViews: Uint8Array[] = [];

// The tick loop: fixed 60 Hz schedule; a tick that starts late is counted.
let next = performance.now();
while (!quit && performance.now() - start < lifetimeMs) {
  const t0 = performance.now();
  if (t0 - next > tickMs) lateTicks += measuring ? 1 : 0;
  const receivedBefore = server.stats.received.payload;
  server.update(t0 / 1000);
  const t1 = performance.now();
  let echoed = 0;
  for (let i = 0; i < maxClients; i++) {
    for (
      let bytes = server.receiveInto(i, echoBuffer);
      bytes > 0;
      bytes = server.receiveInto(i, echoBuffer)
    ) {
      server.send(i, echoViews[bytes] ??= echoBuffer.subarray(0, bytes));
      echoed++;
    }
  }
  const t2 = performance.now();
  if (measuring) {
    echoedInWindow += echoed;
    ticks++;
    record(updateTimes, t1 - t0);
    record(tickTimes, t2 - t0);
    if (values["tick-log"]) {
      tickLog.push(JSON.stringify({
        late: t0 - next,
        update: t1 - t0,
        echo: t2 - t1,
        received: server.stats.received.payload - receivedBefore,
      }));
    }
    if (t2 - goAt >= seconds * 1000) finishWindow(t2);
  }
  next += tickMs;
  // Never try to catch up more than one tick: a server that falls behind
  // runs back to back, which the late ticks and the CPU show.
  if (next < t2 - tickMs) next = t2;
  await sleepUntil(next);
}
server.close();
Deno.exit(0);
