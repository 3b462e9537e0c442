/**
 * Writes the load harness's results: the generated part of
 * `bench/RESULTS.md` (between `<!-- load:begin -->` and `<!-- load:end -->`;
 * the rest of the file is left as written) and the chart `bench/load.svg`.
 * Each transport's last run is kept as JSON in a comment in RESULTS.md, so a
 * run on one transport redraws the chart with the other's last run beside
 * it.
 *
 * @module
 */

/** One N of one run. */
export interface LoadRow {
  transport: string;
  clientTransport: string;
  clients: number;
  clientProcesses: number;
  seconds: number;
  serverCpuSeconds: number;
  serverEchoed: number;
  serverWindowSeconds: number;
  cpuPerPacketMicros: number;
  serverCpuPercent: number;
  packetsPerSecond: number;
  sent: number;
  echoed: number;
  lossPercent: number;
  rttP50: number;
  rttP99: number;
  updateP50: number;
  updateP99: number;
  tickP50: number;
  tickP99: number;
  lateTicks: number;
  clientCpuPercent: number[];
  clientSendRate: number[];
  udpRcvbufErrors: number;
  udpSndbufErrors: number;
  /** Busy CPU of everything else during the window, % of one core. */
  otherCpuPercent?: number;
  /** 1-minute load average just before the window. */
  loadAverage?: number;
  serverDropped: Record<string, number>;
  serverSocket: Record<string, number>;
}

/** One run of `deno task load`. */
export interface LoadRun {
  command: string;
  date: string;
  transport: string;
  clientTransport: string;
  machine?: Machine;
  rows: LoadRow[];
}

interface Machine {
  nproc: number;
  cpu: string;
  deno: string;
  v8: string;
  kernel: string;
  memoryGiB: number;
}

const RESULTS = new URL("../bench/RESULTS.md", import.meta.url);
const CHART = new URL("../bench/load.svg", import.meta.url);
const BEGIN = "<!-- load:begin -->";
const END = "<!-- load:end -->";
const DATA = /<!-- load-data (\{.*?\}) -->/gs;

/** Loss under 0.1 % and update p99 under 4 ms, with clients keeping up. */
export const MAX_LOSS_PERCENT = 0.1;
export const MAX_UPDATE_P99_MS = 4;

function machine(): Machine {
  let cpu = "unknown";
  try {
    cpu = Deno.readTextFileSync("/proc/cpuinfo").match(
      /^model name\s*:\s*(.*)$/m,
    )?.[1] ?? cpu;
  } catch {
    // Not Linux.
  }
  return {
    nproc: navigator.hardwareConcurrency,
    cpu,
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    kernel: Deno.osRelease(),
    memoryGiB: Math.round(Deno.systemMemoryInfo().total / 2 ** 30),
  };
}

export function passes(row: LoadRow): boolean {
  return row.lossPercent < MAX_LOSS_PERCENT &&
    row.updateP99 < MAX_UPDATE_P99_MS &&
    row.clientSendRate.every((rate) => rate >= 0.99);
}

function f(x: number, digits = 1): string {
  return Number.isFinite(x) ? x.toFixed(digits) : "-";
}

function runKey(run: LoadRun): string {
  return `${run.transport}/${run.clientTransport}`;
}

function table(run: LoadRun): string {
  const m = run.machine!;
  const out = [
    `### Server on \`${run.transport}\`, clients on \`${run.clientTransport}\``,
    "",
    `\`${run.command}\` — ${
      run.date.slice(0, 19).replace("T", " ")
    } UTC; ${m.nproc} cores (${m.cpu}), ${m.memoryGiB} GiB, Linux ${m.kernel}, Deno ${m.deno} (V8 ${m.v8}); ${
      run.rows[0]?.clientProcesses ?? "?"
    } client processes.`,
    "",
    "| N | server CPU / echo | server CPU | echoes/s | loss | RTT p50 / p99 | update p50 / p99 | tick p50 / p99 | client processes' CPU | client send rate | kernel drops | other CPU | pass |",
    "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | :---: |",
  ];
  for (const row of run.rows) {
    out.push(
      `| ${row.clients} | ${f(row.cpuPerPacketMicros)} µs | ${
        f(row.serverCpuPercent, 0)
      } % | ${f(row.packetsPerSecond, 0)} | ${f(row.lossPercent, 3)} % | ${
        f(row.rttP50)
      } / ${f(row.rttP99)} ms | ${f(row.updateP50, 2)} / ${
        f(row.updateP99, 2)
      } ms | ${f(row.tickP50, 2)} / ${f(row.tickP99, 2)} ms | ${
        row.clientCpuPercent.map((x) => f(x, 0) + " %").join(", ")
      } | ${
        row.clientSendRate.map((x) => f(x * 100, 1) + " %").join(", ")
      } | ${row.udpRcvbufErrors} | ${
        row.otherCpuPercent === undefined
          ? "-"
          : f(Math.max(0, row.otherCpuPercent), 0) + " %"
      } | ${passes(row) ? "yes" : "no"} |`,
    );
  }
  const passing = run.rows.filter(passes).map((row) => row.clients);
  out.push(
    "",
    `Largest N with loss < ${MAX_LOSS_PERCENT} % and update p99 < ${MAX_UPDATE_P99_MS} ms (clients keeping up): **${
      passing.length > 0 ? Math.max(...passing) : "none"
    }**.`,
  );
  for (const row of run.rows) {
    const reasons = [];
    if (row.lossPercent >= MAX_LOSS_PERCENT) {
      reasons.push(`loss ${f(row.lossPercent, 3)} %`);
    }
    if (row.updateP99 >= MAX_UPDATE_P99_MS) {
      reasons.push(`update p99 ${f(row.updateP99, 2)} ms`);
    }
    if (row.clientSendRate.some((rate) => rate < 0.99)) {
      reasons.push("the client processes could not keep up with 60 Hz");
    }
    if (Object.keys(row.serverDropped).length > 0) {
      reasons.push(`server dropped ${JSON.stringify(row.serverDropped)}`);
    }
    if (reasons.length > 0) {
      out.push("", `N = ${row.clients}: ${reasons.join("; ")}.`);
    }
  }
  return out.join("\n");
}

const COLORS: Record<string, string> = { deno: "#2563eb", ffi: "#ea580c" };

function escape(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;");
}

/** Two panels: server CPU per echo, and loss, against N (log scale). */
export function chart(runs: LoadRun[]): string {
  const width = 820;
  const height = 372;
  const panelWidth = 330;
  const panelHeight = 220;
  const top = 60;
  const lefts = [70, 480];
  const all = runs.flatMap((run) => run.rows);
  const ns = [...new Set(all.map((row) => row.clients))].sort((a, b) => a - b);
  const minLog = Math.log2(ns[0] ?? 64);
  const maxLog = Math.log2(ns[ns.length - 1] ?? 1024);
  const x = (left: number, n: number) =>
    left + 20 +
    (maxLog === minLog
      ? (panelWidth - 40) / 2
      : (Math.log2(n) - minLog) / (maxLog - minLog) * (panelWidth - 40));
  const panels = [
    {
      title: "Server CPU per echoed packet (µs)",
      value: (row: LoadRow) => row.cpuPerPacketMicros,
      digits: 1,
    },
    {
      title: "Loss (%)",
      value: (row: LoadRow) => row.lossPercent,
      digits: 2,
    },
  ];
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="${
      width / 2
    }" y="22" text-anchor="middle" font-size="15" font-weight="bold">netcode echo load on loopback: 100-byte payloads at 60 Hz per client</text>`,
  ];
  panels.forEach((panel, p) => {
    const left = lefts[p];
    const values = all.map(panel.value).filter(Number.isFinite);
    const rawMax = Math.max(...values, panel.digits === 2 ? 0.2 : 1);
    const max = niceCeiling(rawMax * 1.1);
    const y = (v: number) => top + panelHeight - (v / max) * panelHeight;
    parts.push(
      `<text x="${left + panelWidth / 2}" y="${
        top - 12
      }" text-anchor="middle" font-weight="bold">${escape(panel.title)}</text>`,
      `<line x1="${left}" y1="${top + panelHeight}" x2="${
        left + panelWidth
      }" y2="${top + panelHeight}" stroke="#333"/>`,
      `<line x1="${left}" y1="${top}" x2="${left}" y2="${
        top + panelHeight
      }" stroke="#333"/>`,
    );
    for (let i = 0; i <= 4; i++) {
      const v = (max / 4) * i;
      parts.push(
        `<line x1="${left}" y1="${y(v)}" x2="${left + panelWidth}" y2="${
          y(v)
        }" stroke="#e5e7eb"/>`,
        `<text x="${left - 6}" y="${y(v) + 4}" text-anchor="end">${
          formatTick(v)
        }</text>`,
      );
    }
    if (p === 1) {
      const limit = y(MAX_LOSS_PERCENT);
      parts.push(
        `<line x1="${left}" y1="${limit}" x2="${
          left + panelWidth
        }" y2="${limit}" stroke="#16a34a" stroke-dasharray="5 4"/>`,
        `<text x="${left + panelWidth * 0.3}" y="${
          limit - 4
        }" fill="#16a34a">0.1 % goal (unlabelled points: 0)</text>`,
      );
    }
    for (const n of ns) {
      parts.push(
        `<text x="${x(left, n)}" y="${
          top + panelHeight + 18
        }" text-anchor="middle">${n}</text>`,
      );
    }
    parts.push(
      `<text x="${left + panelWidth / 2}" y="${
        top + panelHeight + 36
      }" text-anchor="middle">clients (N)</text>`,
    );
    runs.forEach((run, r) => {
      const color = COLORS[run.transport] ?? "#555";
      const dash = run.clientTransport === run.transport
        ? ""
        : ' stroke-dasharray="2 3"';
      const points = run.rows.filter((row) => Number.isFinite(panel.value(row)))
        .map((row) =>
          [x(left, row.clients), y(panel.value(row)), row] as const
        );
      parts.push(
        `<polyline fill="none" stroke="${color}" stroke-width="2"${dash} points="${
          points.map(([px, py]) => `${px.toFixed(1)},${py.toFixed(1)}`).join(
            " ",
          )
        }"/>`,
      );
      for (const [px, py, row] of points) {
        const value = panel.value(row);
        if (p === 1 && value === 0) {
          parts.push(
            `<circle cx="${px.toFixed(1)}" cy="${
              py.toFixed(1)
            }" r="4" fill="${color}"/>`,
          );
          continue;
        }
        parts.push(
          `<circle cx="${px.toFixed(1)}" cy="${
            py.toFixed(1)
          }" r="4" fill="${color}"/>`,
          // Alternate runs label above and below their points.
          `<text x="${(px + 6).toFixed(1)}" y="${
            (r % 2 === 0 ? py - 7 : py + 15).toFixed(1)
          }" fill="${color}" font-size="11">${
            f(panel.value(row), panel.digits)
          }</text>`,
        );
      }
    });
  });
  runs.forEach((run, i) => {
    const color = COLORS[run.transport] ?? "#555";
    const lx = 90 + i * 330;
    const ly = height - 14;
    parts.push(
      `<line x1="${lx}" y1="${ly}" x2="${
        lx + 24
      }" y2="${ly}" stroke="${color}" stroke-width="3"/>`,
      `<text x="${lx + 30}" y="${ly + 4}">server on ${
        escape(run.transport)
      }, clients on ${escape(run.clientTransport)} (${
        run.date.slice(0, 10)
      })</text>`,
    );
  });
  parts.push("</svg>");
  return parts.join("\n") + "\n";
}

function niceCeiling(value: number): number {
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) {
    if (step * power >= value) return step * power;
  }
  return 10 * power;
}

function formatTick(value: number): string {
  return Number.isInteger(value) ? String(value) : value.toPrecision(2);
}

/**
 * Stores `run` (replacing the last run with the same transports), rewrites
 * the generated part of RESULTS.md and the chart. Without a run, rewrites
 * them from the runs stored. Returns the files written.
 */
export async function writeReport(run?: LoadRun): Promise<string[]> {
  if (run !== undefined) run.machine ??= machine();
  let text: string;
  try {
    text = await Deno.readTextFile(RESULTS);
  } catch {
    text = `# Benchmark results\n\n${BEGIN}\n${END}\n`;
  }
  if (!text.includes(BEGIN) || !text.includes(END)) {
    text = `${text.trimEnd()}\n\n${BEGIN}\n${END}\n`;
  }
  const runs = new Map<string, LoadRun>();
  const generated = text.slice(text.indexOf(BEGIN), text.indexOf(END));
  for (const match of generated.matchAll(DATA)) {
    const old = JSON.parse(match[1]) as LoadRun;
    runs.set(runKey(old), old);
  }
  if (run !== undefined) runs.set(runKey(run), run);
  const ordered = [...runs.values()].sort((a, b) =>
    runKey(a).localeCompare(runKey(b))
  );
  const body = [
    BEGIN,
    "<!-- Generated by `deno task load --write`; edits here are overwritten. -->",
    "",
    ...ordered.flatMap((r) => [table(r), ""]),
    "![Server CPU per echoed packet and loss against N](load.svg)",
    "",
    ...ordered.map((r) => `<!-- load-data ${JSON.stringify(r)} -->`),
  ].join("\n");
  text = text.slice(0, text.indexOf(BEGIN)) + body + "\n" +
    text.slice(text.indexOf(END));
  await Deno.writeTextFile(RESULTS, text);
  await Deno.writeTextFile(CHART, chart(ordered));
  // Leave both as `deno fmt` wants them, so `deno fmt --check` stays green.
  await new Deno.Command(Deno.execPath(), {
    args: ["fmt", "--quiet", RESULTS.pathname, CHART.pathname],
    stdout: "null",
    stderr: "inherit",
  }).output();
  return [RESULTS.pathname, CHART.pathname];
}
