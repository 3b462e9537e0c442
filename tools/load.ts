/**
 * The load harness: a netcode echo server in one process and N clients in
 * others, on loopback UDP (127.0.0.1 only). Every client sends a 100-byte
 * payload at 60 Hz and the server echoes it. For each N it reports the
 * server's CPU time per echoed packet, packets per second, loss, the echo
 * round trip (p50/p99, measured by the clients from a timestamp in the
 * payload), the server's update time (p50/p99), and the client processes'
 * own CPU and whether they kept up.
 *
 * ```sh
 * deno task load                                  # deno transport, N = 64, 256, 1024, 10 s each
 * deno task load --transport ffi --seconds 5 --clients 64,256
 * deno task load --transport ffi --write          # also update bench/RESULTS.md and bench/load.svg
 * ```
 *
 * Flags: `--transport deno|ffi` (the server's socket), `--client-transport
 * deno|ffi|mux` (default: the same as the server's; `mux` puts all the
 * clients of a process on one shared socket, each with its own 127.1.x.y
 * address, so they cost the machine far fewer system calls: Linux only, see
 * `_load_mux.ts`), `--clients 64,256,1024`, `--seconds 10`,
 * `--client-processes 2`, `--slots 4` (groups the clients of a process are
 * spread over within the 60 Hz frame), `--pin` (with `taskset`: the server
 * on CPU 0, every client process on CPU 1, so the clients, standing in for
 * players on other machines, never preempt the server mid-update; needs two
 * CPUs), `--client-nice 10` (the client
 * processes' `nice` level: they stand in for players on other machines, so
 * they yield the CPU to the server; 0 runs them at the server's priority),
 * `--server-deno-flags "--cpu-prof --cpu-prof-dir=/tmp/prof"` (extra flags
 * for the server's `deno run`, to profile it), `--client-deno-flags ""` (the
 * same for the client processes), `--tick-log PREFIX` (the server writes
 * each measured tick, late start, update and echo time and payloads
 * received, to `PREFIX-N.jsonl`; a retried N keeps its last attempt's),
 * `--wait-idle 120` (before
 * each N, wait up to this many seconds for the rest of the machine to be
 * idle), `--retries 2` (a window during which the rest of the machine used
 * over 25 % of a core is measured again, up to this many times, and the
 * quietest kept), `--write`, `--report-only` (rewrite the tables and the
 * chart from the runs stored in RESULTS.md, without measuring).
 *
 * Linux only (CPU time comes from /proc/self/stat). The server and the
 * client processes share the machine's cores: on a 2-core machine the
 * clients' CPU is CPU the server does not get.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { generateKey } from "../crypto.ts";
import {
  bytesToHex,
  createHistogram,
  histogramFromJson,
  lines,
  machineBusySeconds,
  mergeHistogram,
  parseTransport,
  percentile,
  udpCounters,
} from "./_load_common.ts";
import { type LoadRow, type LoadRun, writeReport } from "./_load_report.ts";

const { values } = parseArgs({
  options: {
    transport: { type: "string", default: "deno" },
    "client-transport": { type: "string" },
    clients: { type: "string", default: "64,256,1024" },
    seconds: { type: "string", default: "10" },
    "client-processes": { type: "string", default: "2" },
    slots: { type: "string", default: "4" },
    "client-nice": { type: "string", default: "10" },
    pin: { type: "boolean", default: false },
    "server-deno-flags": { type: "string", default: "" },
    "client-deno-flags": { type: "string", default: "" },
    "tick-log": { type: "string" },
    "wait-idle": { type: "string", default: "120" },
    retries: { type: "string", default: "2" },
    write: { type: "boolean", default: false },
    "report-only": { type: "boolean", default: false },
    help: { type: "boolean", default: false },
  },
});
if (values.help) {
  console.log(
    "deno task load [--transport deno|ffi] [--client-transport deno|ffi|mux] [--clients 64,256,1024] [--seconds 10] [--client-processes 2] [--slots 4] [--client-nice 10] [--pin] [--tick-log PREFIX] [--write]",
  );
  Deno.exit(0);
}
if (values["report-only"]) {
  const written = await writeReport();
  console.log(`wrote ${written.join(", ")}`);
  Deno.exit(0);
}
if (Deno.build.os !== "linux") {
  console.error(
    `The load harness reads CPU time from /proc: Linux only, found ${Deno.build.os}`,
  );
  Deno.exit(1);
}
const transport = parseTransport(values.transport);
const clientTransport = values["client-transport"] === "mux"
  ? "mux"
  : parseTransport(values["client-transport"] ?? values.transport);
const counts = values.clients.split(",").map((text) => {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > 16384) {
    throw new RangeError(`--clients: ${text} is not a count from 1 to 16384`);
  }
  return n;
});
const seconds = Number(values.seconds);
if (!(seconds > 0 && seconds <= 600)) {
  throw new RangeError("--seconds must be from 0 to 600");
}
const clientProcesses = Number(values["client-processes"]);
if (!Number.isInteger(clientProcesses) || clientProcesses < 1) {
  throw new RangeError("--client-processes must be a positive integer");
}
const slots = Number(values.slots);
const waitIdleSeconds = Number(values["wait-idle"]);
const retries = Number(values.retries);
/** A window in which the rest of the machine used more is measured again. */
const MAX_OTHER_CPU_PERCENT = 25;
const clientNice = Number(values["client-nice"]);
const pin = values.pin;
if (pin && navigator.hardwareConcurrency < 2) {
  throw new RangeError("--pin needs at least two CPUs");
}
const clientDenoFlags = values["client-deno-flags"].split(" ").filter((flag) =>
  flag !== ""
);
if (!Number.isInteger(clientNice) || clientNice < 0 || clientNice > 19) {
  throw new RangeError("--client-nice must be an integer from 0 to 19");
}

const config = new URL("../deno.json", import.meta.url).pathname;
const tools = new URL(".", import.meta.url).pathname;
/** Longest any child may live: connect, window, drain, slack. */
const lifetime = Math.ceil(seconds + 120);

interface Child {
  process: Deno.ChildProcess;
  messages: AsyncGenerator<string>;
  stdin: WritableStreamDefaultWriter<Uint8Array>;
}

function spawn(
  script: string,
  args: string[],
  nice = 0,
  denoFlags: string[] = [],
  cpu?: number,
): Child {
  const deno = [
    Deno.execPath(),
    "run",
    "-A",
    ...denoFlags,
    "--config",
    config,
    tools + script,
    ...args,
  ];
  // The clients stand in for players on other machines: run at a lower
  // priority (nice) they take less of the server's CPU when both want it.
  const niced = nice > 0 ? ["nice", "-n", String(nice), ...deno] : deno;
  const command = cpu === undefined
    ? niced
    : ["taskset", "-c", String(cpu), ...niced];
  const process = new Deno.Command(command[0], {
    args: command.slice(1),
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  return {
    process,
    messages: lines(process.stdout),
    stdin: process.stdin.getWriter(),
  };
}

/** The next JSON message of a child, or an error after `ms`. */
async function nextMessage(
  child: Child,
  ms: number,
  what: string,
): Promise<Record<string, unknown>> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`Timed out after ${ms} ms waiting for ${what}`)),
      ms,
    );
  });
  try {
    // Lines that are not a message (V8's --trace-gc output, say) are passed
    // on to stderr.
    for (;;) {
      const next = await Promise.race([child.messages.next(), timeout]);
      if (next.done) throw new Error(`${what}: the process ended`);
      if (next.value.startsWith("{")) return JSON.parse(next.value);
      console.error(next.value);
    }
  } finally {
    clearTimeout(timer);
  }
}

const encoder = new TextEncoder();
async function tell(child: Child, command: string): Promise<void> {
  try {
    await child.stdin.write(encoder.encode(command + "\n"));
  } catch {
    // Already gone.
  }
}

async function stop(children: Child[]): Promise<void> {
  await Promise.all(children.map((child) => tell(child, "quit")));
  await Promise.all(children.map(async (child) => {
    const timer = setTimeout(() => {
      try {
        child.process.kill();
      } catch {
        // Already ended.
      }
    }, 40_000);
    await child.process.status;
    clearTimeout(timer);
  }));
}

/**
 * Waits (at most `--wait-idle` seconds) until the rest of the machine uses
 * less than a fifth of a core over a second, so that a run does not start
 * while something else is busy. Returns the busy share last seen.
 */
async function waitForIdle(): Promise<number> {
  const deadline = performance.now() + waitIdleSeconds * 1000;
  while (true) {
    const before = machineBusySeconds();
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const busy = machineBusySeconds() - before;
    if (!(busy >= 0.2) || performance.now() > deadline) return busy;
  }
}

async function runOnce(n: number): Promise<LoadRow> {
  const key = bytesToHex(generateKey());
  const server = spawn(
    "_load_server.ts",
    [
      `--transport=${transport}`,
      `--clients=${n}`,
      `--seconds=${seconds}`,
      `--key=${key}`,
      `--lifetime=${lifetime}`,
      ...(values["tick-log"]
        ? [`--tick-log=${values["tick-log"]}-${n}.jsonl`]
        : []),
    ],
    0,
    values["server-deno-flags"].split(" ").filter((flag) => flag !== ""),
    pin ? 0 : undefined,
  );
  const children: Child[] = [server];
  try {
    const ready = await nextMessage(server, 30_000, "the server to start");
    const port = ready.port as number;
    const processes = Math.min(clientProcesses, n);
    let firstId = 1;
    const clients: Child[] = [];
    for (let p = 0; p < processes; p++) {
      const count = Math.floor(n / processes) + (p < n % processes ? 1 : 0);
      clients.push(spawn(
        "_load_client.ts",
        [
          `--transport=${clientTransport}`,
          `--count=${count}`,
          `--first-id=${firstId}`,
          `--port=${port}`,
          `--key=${key}`,
          `--seconds=${seconds}`,
          `--slots=${slots}`,
          `--lifetime=${lifetime}`,
        ],
        clientNice,
        clientDenoFlags,
        pin ? 1 : undefined,
      ));
      firstId += count;
    }
    children.push(...clients);
    const connected = await Promise.all(
      clients.map((child) => nextMessage(child, 60_000, "clients to connect")),
    );
    const numConnected = connected.reduce(
      (sum, m) => sum + (m.connected as number),
      0,
    );
    if (numConnected !== n) {
      throw new Error(
        `${numConnected} of ${n} clients connected: ${
          JSON.stringify(connected)
        }`,
      );
    }
    const udpBefore = udpCounters();
    const loadAverage = Number(
      Deno.readTextFileSync("/proc/loadavg").split(" ")[0],
    );
    const busyBefore = machineBusySeconds();
    await Promise.all(children.map((child) => tell(child, "go")));
    const windowMs = seconds * 1000;
    // The machine's busy CPU over the same window as the processes' own.
    const busyWindow = new Promise<number>((resolve) =>
      setTimeout(() => resolve(machineBusySeconds() - busyBefore), windowMs)
    );
    const [serverResult, ...clientResults] = await Promise.all([
      nextMessage(server, windowMs + 30_000, "the server's result"),
      ...clients.map((child) =>
        nextMessage(child, windowMs + 30_000, "a client process's result")
      ),
    ]);
    const udpAfter = udpCounters();
    const machineBusy = await busyWindow;
    const ownCpu = (serverResult.cpuSeconds as number) +
      clientResults.reduce((sum, r) => sum + (r.cpuSeconds as number), 0);
    const rtt = createHistogram();
    let sent = 0;
    let echoed = 0;
    for (const result of clientResults) {
      sent += result.sent as number;
      echoed += result.echoed as number;
      mergeHistogram(
        rtt,
        histogramFromJson(
          result.rtt as Parameters<typeof histogramFromJson>[0],
        ),
      );
    }
    const update = serverResult.update as Record<string, number>;
    const tick = serverResult.tick as Record<string, number>;
    const serverEchoed = serverResult.echoed as number;
    const window = serverResult.windowSeconds as number;
    const row: LoadRow = {
      transport,
      clientTransport,
      clients: n,
      clientProcesses: processes,
      seconds,
      serverCpuSeconds: serverResult.cpuSeconds as number,
      serverEchoed,
      serverWindowSeconds: window,
      cpuPerPacketMicros: (serverResult.cpuSeconds as number) / serverEchoed *
        1e6,
      serverCpuPercent: (serverResult.cpuSeconds as number) / window * 100,
      packetsPerSecond: serverEchoed / window,
      sent,
      echoed,
      lossPercent: sent === 0 ? 100 : (1 - echoed / sent) * 100,
      rttP50: percentile(rtt, 0.5),
      rttP99: percentile(rtt, 0.99),
      updateP50: update.p50,
      updateP99: update.p99,
      tickP50: tick.p50,
      tickP99: tick.p99,
      lateTicks: serverResult.lateTicks as number,
      clientCpuPercent: clientResults.map((r) =>
        (r.cpuSeconds as number) / seconds * 100
      ),
      clientSendRate: clientResults.map((r) => r.sendRate as number),
      // Busy CPU of everything else on the machine during the window (other
      // processes, and kernel work not charged to ours), % of one core.
      otherCpuPercent: (machineBusy - ownCpu) / seconds * 100,
      loadAverage,
      udpRcvbufErrors: (udpAfter.RcvbufErrors ?? 0) -
        (udpBefore.RcvbufErrors ?? 0),
      udpSndbufErrors: (udpAfter.SndbufErrors ?? 0) -
        (udpBefore.SndbufErrors ?? 0),
      serverDropped: serverResult.dropped as Record<string, number>,
      serverSocket: serverResult.socket as Record<string, number>,
    };
    return row;
  } finally {
    await stop(children);
  }
}

function format(row: LoadRow): string {
  const f = (x: number, d = 1) => Number.isFinite(x) ? x.toFixed(d) : "-";
  return [
    `N=${row.clients}`,
    `cpu/packet ${f(row.cpuPerPacketMicros)} µs`,
    `server cpu ${f(row.serverCpuPercent)}%`,
    `${f(row.packetsPerSecond, 0)} pps`,
    `loss ${f(row.lossPercent, 3)}%`,
    `rtt p50/p99 ${f(row.rttP50)}/${f(row.rttP99)} ms`,
    `update p50/p99 ${f(row.updateP50, 2)}/${f(row.updateP99, 2)} ms`,
    `tick p50/p99 ${f(row.tickP50, 2)}/${f(row.tickP99, 2)} ms`,
    `clients cpu ${row.clientCpuPercent.map((x) => f(x, 0) + "%").join(" ")}`,
    `send rate ${row.clientSendRate.map((x) => f(x * 100, 1) + "%").join(" ")}`,
    `kernel rcvbuf drops ${row.udpRcvbufErrors}`,
    `other cpu ${f(row.otherCpuPercent ?? NaN, 0)}%`,
  ].join(", ");
}

const rows: LoadRow[] = [];
const startedAt = new Date();
for (const n of counts) {
  console.error(
    `load: ${n} clients, server on ${transport}, clients on ${clientTransport}, ${seconds} s`,
  );
  let row: LoadRow | undefined;
  for (let attempt = 0; attempt <= retries; attempt++) {
    const busy = await waitForIdle();
    if (busy >= 0.2) {
      console.error(
        `load: the machine stayed busy (${
          (busy * 100).toFixed(0)
        } % of a core) for ${waitIdleSeconds} s; running anyway`,
      );
    }
    const measured = await runOnce(n);
    const other = measured.otherCpuPercent ?? 0;
    if (row === undefined || other < (row.otherCpuPercent ?? 0)) row = measured;
    if (other <= MAX_OTHER_CPU_PERCENT) break;
    console.error(
      `load: something else used ${
        other.toFixed(0)
      } % of a core during the window${
        attempt < retries ? "; measuring again" : ""
      }`,
    );
  }
  row = row!;
  rows.push(row);
  console.log(format(row));
  if (Object.keys(row.serverDropped).length > 0) {
    console.log(`  server dropped: ${JSON.stringify(row.serverDropped)}`);
  }
}

const run: LoadRun = {
  command: `deno task load ${Deno.args.join(" ")}`.trim(),
  date: startedAt.toISOString(),
  transport,
  clientTransport,
  rows,
};
if (values.write) {
  const written = await writeReport(run);
  console.log(`wrote ${written.join(", ")}`);
}
