/**
 * The UDP cost per echoed packet on Deno's, Node.js's and Bun's sockets, in
 * one run: the same echo loop (tools/_runtime_udp_echo.ts) on each runtime,
 * on its default `listenUdp` socket (`Deno.listenDatagram`; `node:dgram`;
 * `Bun.udpSocket`), over loopback, rounds interleaved so the three share
 * the machine's state. Node.js and Bun run the JavaScript of
 * `deno task build:node`.
 *
 * Each configuration is a mode (`socket`: two bare sockets, one echoing the
 * other's 100-byte datagrams; `netcode`: a server echoing a connected
 * client's 100-byte payloads, encryption included) and a window (datagrams
 * in flight: 1 is stop-and-wait, so the figure is a round trip through the
 * event loop; 32 keeps the loop busy, so it is the cost of an echo). A
 * figure is wall time per echo, the median of the rounds; the ratio is to
 * Deno's median.
 *
 * ```sh
 * deno task build:node
 * deno task bench:runtimes [--rounds 3] [--echoes 20000] [--json]
 * ```
 *
 * `--echoes` is the timed echoes per run at window 32 (a quarter of it at
 * window 1). Exit code 0 when every run completed, 1 otherwise (a runtime
 * that is not installed is reported, not a failure), 2 on a bad command
 * line.
 *
 * @module
 */

import { parseArgs } from "node:util";

const ROOT = new URL("../", import.meta.url);
const ECHO_JS = new URL("dist/node/tools/_runtime_udp_echo.js", ROOT);

const { values } = parseArgs({
  args: Deno.args,
  options: {
    rounds: { type: "string", default: "3" },
    echoes: { type: "string", default: "20000" },
    json: { type: "boolean", default: false },
  },
});
const rounds = Number(values.rounds);
const echoes = Number(values.echoes);
if (!(Number.isInteger(rounds) && rounds > 0 && echoes >= 100)) {
  console.error("usage: [--rounds N >= 1] [--echoes N >= 100] [--json]");
  Deno.exit(2);
}
try {
  Deno.statSync(ECHO_JS);
} catch {
  console.error(
    "runtime_udp_bench: dist/node/ is not built: run deno task build:node",
  );
  Deno.exit(1);
}

interface Runtime {
  readonly name: string;
  readonly command: string;
  readonly args: readonly string[];
  version?: string;
}
const RUNTIMES: Runtime[] = [
  {
    name: "Deno",
    command: Deno.execPath(),
    args: ["run", "-A", "tools/_runtime_udp_echo.ts"],
  },
  { name: "Node.js", command: "node", args: [ECHO_JS.pathname] },
  { name: "Bun", command: "bun", args: [ECHO_JS.pathname] },
];
const CONFIGS = [
  { mode: "socket", window: 32 },
  { mode: "netcode", window: 32 },
  { mode: "socket", window: 1 },
  { mode: "netcode", window: 1 },
] as const;

interface Run {
  runtime: string;
  mode: string;
  window: number;
  echoed: number;
  complete: boolean;
  usPerEcho: number;
}

async function run(
  runtime: Runtime,
  mode: string,
  window: number,
): Promise<Run | string> {
  const count = window === 1 ? Math.ceil(echoes / 4) : echoes;
  try {
    const output = await new Deno.Command(runtime.command, {
      args: [
        ...runtime.args,
        "--mode",
        mode,
        "--window",
        String(window),
        "--echoes",
        String(count),
      ],
      cwd: ROOT.pathname,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(output.stdout).trim();
    if (!output.success) {
      return `exit ${output.code}: ${
        new TextDecoder().decode(output.stderr).trim()
      }`;
    }
    return JSON.parse(text.split("\n").at(-1)!) as Run;
  } catch (error) {
    return error instanceof Deno.errors.NotFound
      ? "not installed"
      : String(error);
  }
}

for (const runtime of RUNTIMES) {
  try {
    const output = await new Deno.Command(runtime.command, {
      args: ["--version"],
      stdout: "piped",
      stderr: "null",
    }).output();
    runtime.version = new TextDecoder().decode(output.stdout).trim().split(
      "\n",
    )[0];
  } catch {
    runtime.version = undefined;
  }
}

const results = new Map<string, (Run | string)[]>();
const key = (runtime: string, mode: string, window: number) =>
  `${runtime} ${mode} ${window}`;
let ok = true;
for (let round = 1; round <= rounds; round++) {
  for (const { mode, window } of CONFIGS) {
    for (const runtime of RUNTIMES) {
      if (runtime.version === undefined) continue;
      const result = await run(runtime, mode, window);
      if (typeof result === "string" || !result.complete) ok = false;
      const list = results.get(key(runtime.name, mode, window)) ?? [];
      list.push(result);
      results.set(key(runtime.name, mode, window), list);
      if (!values.json) {
        console.error(
          `round ${round}: ${runtime.name} ${mode} window ${window}: ${
            typeof result === "string"
              ? result
              : `${result.usPerEcho.toFixed(1)} µs per echo`
          }`,
        );
      }
    }
  }
}

function median(numbers: number[]): number {
  const sorted = [...numbers].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1
    ? sorted[middle]
    : (sorted[middle - 1] + sorted[middle]) / 2;
}
function figures(runtime: string, mode: string, window: number): number[] {
  return (results.get(key(runtime, mode, window)) ?? [])
    .filter((r): r is Run => typeof r !== "string" && r.complete)
    .map((r) => r.usPerEcho);
}

if (values.json) {
  console.log(JSON.stringify(
    {
      date: new Date().toISOString(),
      rounds,
      echoes,
      runtimes: RUNTIMES.map(({ name, version }) => ({ name, version })),
      results: Object.fromEntries(results),
    },
    null,
    2,
  ));
} else {
  const format = (us: number) => `${us.toFixed(1)} µs`;
  const lines = [
    `| mode | window | ${
      RUNTIMES.map((r) => r.name).join(" | ")
    } | Node.js / Deno | Bun / Deno |`,
    `| ---- | -----: | ${
      RUNTIMES.map(() => "---:").join(" | ")
    } | ---: | ---: |`,
  ];
  for (const { mode, window } of CONFIGS) {
    const medians = RUNTIMES.map((r) => {
      const list = figures(r.name, mode, window);
      return list.length > 0 ? median(list) : undefined;
    });
    const cells = RUNTIMES.map((r, i) => {
      const list = figures(r.name, mode, window);
      if (r.version === undefined) return "not installed";
      if (medians[i] === undefined) return "failed";
      return `${format(medians[i]!)} (${
        list.map((us) => us.toFixed(1)).join(", ")
      })`;
    });
    const ratio = (i: number) =>
      medians[i] !== undefined && medians[0] !== undefined
        ? `${(medians[i]! / medians[0]!).toFixed(2)}x`
        : "-";
    lines.push(
      `| ${mode} | ${window} | ${cells.join(" | ")} | ${ratio(1)} | ${
        ratio(2)
      } |`,
    );
  }
  console.log(
    `UDP echo over loopback, wall time per echoed packet, median of ${rounds} rounds (each round's figure in brackets), ${echoes} timed echoes at window 32, ${
      Math.ceil(echoes / 4)
    } at window 1; ${
      RUNTIMES.map((r) => `${r.name}: ${r.version ?? "not installed"}`).join(
        "; ",
      )
    }\n`,
  );
  console.log(lines.join("\n"));
}
Deno.exit(ok ? 0 : 1);
