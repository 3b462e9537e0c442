/**
 * The whole netcode flow on loopback, in one process: the web backend, an
 * echo server and a few clients. Each client asks the backend for a connect
 * token over HTTP (`POST /token` with its bearer credential), connects to the
 * server over UDP, sends numbered payloads and checks every echo. Then the
 * server disconnects everyone and a summary is printed.
 *
 * ```sh
 * deno task demo
 * ```
 *
 * Every port is picked by the system, so it never collides with anything
 * else running, and the run is bounded in time. Exits 0 when every client
 * connected and got every payload back, 1 otherwise.
 *
 * @module
 */

import { formatAddress } from "../address.ts";
import { generateKey } from "../crypto.ts";
import {
  type Command,
  EXIT_FAILURE,
  EXIT_OK,
  parseFlags,
  parseIntegerFlag,
  runCommand,
} from "../cli/_args.ts";
import { formatMs, percentile } from "../cli/_common.ts";
import { type Backend, DEV_USERS, startBackend } from "../cli/backend.ts";
import {
  type EchoClientReport,
  fetchConnectToken,
  runEchoClient,
} from "../cli/client.ts";
import { startEchoServer } from "../cli/server.ts";

/** Options of {@linkcode runDemo}. */
export interface DemoOptions {
  /** Clients, 1..4 (one per development user). @default {4} */
  clients?: number;
  /** Payloads per client, one per update at 60 Hz. @default {180} */
  packets?: number;
  /** Bytes per payload. @default {100} */
  size?: number;
  /** Bound on the whole run, in seconds. @default {20} */
  timeoutSeconds?: number;
  /** Where the log and summary go. @default {console.log} */
  log?: (line: string) => void;
}

/** What {@linkcode runDemo} found. */
export interface DemoReport {
  /** Whether every client connected and got every payload back. */
  ok: boolean;
  /** Each client's report, by user name. */
  clients: Record<string, EchoClientReport>;
  /** What went wrong, if anything. */
  problems: string[];
}

/**
 * Runs the backend, an echo server and clients on loopback, prints a log and
 * a summary.
 *
 * @param options How many clients, how much traffic, the time bound.
 * @returns What happened.
 */
export async function runDemo(options: DemoOptions = {}): Promise<DemoReport> {
  const users = Object.entries(DEV_USERS).slice(0, options.clients ?? 4);
  const packets = options.packets ?? 180;
  const size = options.size ?? 100;
  const timeoutSeconds = options.timeoutSeconds ?? 20;
  const print = options.log ?? ((line: string) => console.log(line));
  const log = (who: string) => (line: string) =>
    print(`  ${who.padEnd(7)} | ${line}`);
  const problems: string[] = [];
  const clients: Record<string, EchoClientReport> = {};
  const deadline = AbortSignal.timeout(timeoutSeconds * 1000);

  // One key, shared by the backend and the server only: clients never see it.
  const privateKey = generateKey();
  print(
    `netcode demo: a backend, an echo server and ${users.length} clients on loopback`,
  );
  const server = startEchoServer({
    addresses: ["127.0.0.1:0"],
    privateKey,
    statsIntervalSeconds: 0,
    log: log("server"),
  });
  let backend: Backend;
  try {
    backend = startBackend({
      address: "127.0.0.1:0",
      serverAddresses: server.addresses,
      privateKey,
      rateLimitPerMinute: 60,
      log: log("backend"),
    });
  } catch (error) {
    await server.stop();
    throw error;
  }
  log("backend")(`POST ${backend.tokenUrl}`);

  try {
    // The backend turns away a bad credential.
    try {
      await fetchConnectToken(backend.tokenUrl, "not-a-user", deadline);
      problems.push("the backend accepted a bad credential");
    } catch (error) {
      if (!String(error).includes("401")) {
        problems.push(`bad credential: ${String(error)}`);
      }
    }
    await Promise.all(users.map(async ([credential, user]) => {
      try {
        const token = await fetchConnectToken(
          backend.tokenUrl,
          credential,
          deadline,
        );
        const report = await runEchoClient({
          token,
          packets,
          size,
          timeoutSeconds,
          log: () => {},
          signal: deadline,
        });
        clients[user] = report;
        log(user)(
          report.connected
            ? `connected in ${
              formatMs(report.connectMs)
            }, echoed ${report.echoed}/${report.sent}, round trip p50 ${
              formatMs(report.rttP50Ms)
            } p99 ${formatMs(report.rttP99Ms)}`
            : `not connected: ${report.finalStateName}`,
        );
        if (!report.ok) problems.push(`${user}: ${report.failure}`);
      } catch (error) {
        problems.push(
          `${user}: ${error instanceof Error ? error.message : String(error)}`,
        );
      }
    }));
  } finally {
    await server.stop("demo over");
    await backend.shutdown();
  }

  const reports = Object.values(clients);
  const connected = reports.filter((report) => report.connected);
  const sent = reports.reduce((sum, report) => sum + report.sent, 0);
  const echoed = reports.reduce((sum, report) => sum + report.echoed, 0);
  const corrupt = reports.reduce((sum, report) => sum + report.corrupt, 0);
  const rtts = reports.flatMap((report) => report.rttMs).sort((a, b) => a - b);
  const connectTimes = connected.map((report) => report.connectMs).sort((
    a,
    b,
  ) => a - b);
  const lost = sent - echoed;
  const ok = problems.length === 0 && connected.length === users.length &&
    echoed === users.length * packets;

  print("");
  print("Summary");
  print(
    `  server          ${
      server.addresses.map(formatAddress).join(", ")
    }, ${server.counters.connects} connects, ${server.counters.payloadsEchoed} payloads echoed`,
  );
  print(`  clients         ${connected.length}/${users.length} connected`);
  print(
    `  payloads        ${echoed}/${sent} echoed (${size} bytes each), lost ${lost} (${
      sent === 0 ? "0.0" : ((100 * lost) / sent).toFixed(1)
    }%), corrupt ${corrupt}`,
  );
  print(
    `  round trip      p50 ${formatMs(percentile(rtts, 50))}, p99 ${
      formatMs(percentile(rtts, 99))
    } (at 60 Hz updates on both sides)`,
  );
  print(
    `  connect time    p50 ${formatMs(percentile(connectTimes, 50))}, max ${
      formatMs(connectTimes.at(-1) ?? NaN)
    } (token request not included)`,
  );
  for (const problem of problems) print(`  problem         ${problem}`);
  print(ok ? "ok" : "FAILED");
  return { ok, clients, problems };
}

const DEMO_FLAGS = {
  clients: { type: "string" },
  packets: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

function demoUsage(program: string): string {
  return `Usage: ${program} [flags]

Runs the backend, an echo server and clients on loopback, through the real
token flow, and prints a summary. Exits 0 when every echo came back.

Flags:
  --clients N           clients, 1..${
    Object.keys(DEV_USERS).length
  } [default: 4]
  --packets N           payloads per client, at 60 per second [default: 180]
  -h, --help            show this help`;
}

/** The demo as a command. */
export const demoCommand: Command = {
  name: "demo",
  summary: "run the backend, a server and clients on loopback",
  usage: demoUsage,
  async run(args, program) {
    const flags = parseFlags(args, DEMO_FLAGS);
    if (flags.help) {
      console.log(demoUsage(program));
      return EXIT_OK;
    }
    const report = await runDemo({
      clients: flags.clients === undefined ? 4 : parseIntegerFlag(
        "--clients",
        flags.clients,
        1,
        Object.keys(DEV_USERS).length,
      ),
      packets: flags.packets === undefined
        ? 180
        : parseIntegerFlag("--packets", flags.packets, 1, 100_000),
    });
    return report.ok ? EXIT_OK : EXIT_FAILURE;
  },
};

if (import.meta.main) {
  Deno.exit(await runCommand(demoCommand, Deno.args, "examples/demo.ts"));
}
