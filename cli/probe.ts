/**
 * `netcode probe server ADDRESS` and `netcode probe client --listen ADDRESS
 * -- COMMAND...`: the conformance prober from the command line
 * (`probe_server.ts`, `probe_client.ts`). It prints a table (or JSON with
 * `--json`) and exits 0 only when every applicable check passed, 1 when one
 * failed, 2 on a bad command line.
 *
 * @module
 */

import { formatAddress } from "../address.ts";
import { MAX_CLIENTS_LIMIT } from "../server.ts";
import {
  type Command,
  EXIT_FAILURE,
  EXIT_OK,
  parseAddressFlag,
  parseFlags,
  parseIntegerFlag,
  parseSecondsFlag,
  parseUint64Flag,
  usageError,
} from "./_args.ts";
import {
  DEFAULT_PROTOCOL_ID,
  PRIVATE_KEY_ENV,
  resolvePrivateKey,
} from "./_common.ts";
import {
  type CheckSpec,
  CLIENT_CHECKS,
  formatJson,
  formatTable,
  type ProbeReport,
  SERVER_CHECKS,
} from "./_probe_checks.ts";
import { commandLauncher, probeClient } from "./probe_client.ts";
import { probeServer } from "./probe_server.ts";

const COMMON_FLAGS = {
  "protocol-id": { type: "string" },
  "private-key": { type: "string" },
  timeout: { type: "string" },
  skip: { type: "string", multiple: true },
  json: { type: "boolean" },
  verbose: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

const SERVER_FLAGS = {
  ...COMMON_FLAGS,
  echo: { type: "boolean" },
  "max-clients": { type: "string" },
  wait: { type: "string" },
} as const;

const CLIENT_FLAGS = {
  ...COMMON_FLAGS,
  listen: { type: "string" },
  "start-timeout": { type: "string" },
  hold: { type: "string" },
  "stop-after": { type: "string" },
  "stop-signal": { type: "string" },
} as const;

function checkList(checks: readonly CheckSpec[]): string {
  const width = Math.max(...checks.map((check) => check.name.length));
  return checks.map((check) =>
    `  ${check.name.padEnd(width)}  ${check.expects}`
  )
    .join("\n");
}

const COMMON_HELP = `  --protocol-id ID      protocol id, hex (0x...) or decimal
                        [default: 0x${DEFAULT_PROTOCOL_ID.toString(16)}]
  --private-key HEX     the private key, 64 hex characters
                        [default: $${PRIVATE_KEY_ENV}, else the development key
                        (the C reference samples' key)]
  --skip CHECK          skip a check (repeatable); it counts as not applicable
  --json                print the report as JSON instead of a table
  --verbose             print progress to stderr
  -h, --help            show this help`;

function serverUsage(program: string): string {
  return `Usage: ${program} ADDRESS [flags]

Probes a running netcode 1.02 server at ADDRESS over UDP: plays clients with
tokens made for each check and reports, check by check, whether the server
follows the standard. Exits 0 when every applicable check passed, 1 when one
failed, 2 on a bad command line. Runs in about 5 s (plus the timeout).

The server must be otherwise idle, with room for 12 probe clients (or say
--max-clients). Without --echo the probe never sends a payload.

Flags:
  --echo                the server echoes payloads: check replayed payloads
                        and payloads of 1..1200 bytes
  --max-clients N       the server's slots: fill it and expect connection
                        denied; also checks its keep-alives say N
  --timeout S           token timeout of the timeout checks, 1..30 [default: 2]
  --wait S              seconds to wait for an answer that should (or should
                        not) come [default: 0.5]
${COMMON_HELP}

Checks:
${checkList(SERVER_CHECKS)}`;
}

function clientUsage(program: string): string {
  return `Usage: ${program} --listen ADDRESS [flags] -- COMMAND [ARGS...]

Acts as the server for a netcode 1.02 client: runs COMMAND once per scenario
(connect, replay, timeout, denied, fallback) and reports, check by check,
whether the client follows the standard. Exits 0 when every applicable check passed, 1
when one failed, 2 on a bad command line.

In COMMAND, {token} becomes the path of a file holding the raw 2048-byte
connect token the probe made for the run, and {address} the address the
probe listens on; the environment also has NETCODE_PROBE_TOKEN (the path) and
NETCODE_PROBE_ADDRESS. A client that makes its own token (the C reference's
client.c) works too, with the right --private-key and --protocol-id; then
the fallback check does not apply.

The probe echoes the client's payloads back and sends it no others. A client
that has not disconnected by itself 2 s after the connect scenario's checks
(--stop-after) gets --stop-signal (SIGINT) and must then send its 10
disconnect packets.

Flags:
  --listen ADDRESS      where the probe listens, as its tokens name it
                        (port 0 picks a free one; pass it with {address})
  --timeout S           timeout of the probe's tokens, 1..30 [default: 2]
  --start-timeout S     seconds to wait for the client's first request
                        [default: 10]
  --hold S              seconds connected in the connect scenario [default: 1.5]
  --stop-after S        seconds to wait for the client to disconnect by
                        itself before --stop-signal [default: 2]
  --stop-signal SIGNAL  how to ask the client to disconnect [default: SIGINT]
${COMMON_HELP}

Checks:
${checkList(CLIENT_CHECKS)}`;
}

function usage(program: string): string {
  return `Usage: ${program} server ADDRESS [flags]
       ${program} client --listen ADDRESS [flags] -- COMMAND [ARGS...]

A black-box conformance prober for netcode 1.02 servers and clients of any
language. Run '${program} server --help' or '${program} client --help'.`;
}

function print(report: ProbeReport, json: boolean): number {
  console.log(json ? formatJson(report) : formatTable(report));
  return report.ok ? EXIT_OK : EXIT_FAILURE;
}

function skipList(
  values: readonly string[] | undefined,
  checks: readonly CheckSpec[],
): string[] {
  const skip = values ?? [];
  for (const name of skip) {
    if (!checks.some((check) => check.name === name)) {
      throw usageError(
        `--skip: no check named "${name}" (see --help for the list)`,
      );
    }
  }
  return [...skip];
}

async function runServer(
  args: readonly string[],
  program: string,
): Promise<number> {
  const address = args[0] !== undefined && !args[0].startsWith("-")
    ? args[0]
    : undefined;
  const flags = parseFlags(
    address === undefined ? args : args.slice(1),
    SERVER_FLAGS,
  );
  if (flags.help) {
    console.log(serverUsage(program));
    return EXIT_OK;
  }
  if (address === undefined) throw usageError("give the server's ADDRESS");
  const target = parseAddressFlag("ADDRESS", address);
  const log = flags.verbose ? (line: string) => console.error(line) : undefined;
  const report = await probeServer({
    address: target,
    protocolId: flags["protocol-id"] === undefined
      ? DEFAULT_PROTOCOL_ID
      : parseUint64Flag("--protocol-id", flags["protocol-id"]),
    privateKey: resolvePrivateKey(
      flags["private-key"],
      (message) => console.error(message),
    ),
    echo: flags.echo ?? false,
    maxClients: flags["max-clients"] === undefined
      ? undefined
      : parseIntegerFlag(
        "--max-clients",
        flags["max-clients"],
        1,
        MAX_CLIENTS_LIMIT,
      ),
    timeoutSeconds: flags.timeout === undefined
      ? undefined
      : parseIntegerFlag("--timeout", flags.timeout, 1, 30),
    replySeconds: flags.wait === undefined
      ? undefined
      : parseSecondsFlag("--wait", flags.wait, 0.05, 10),
    skip: skipList(flags.skip, SERVER_CHECKS),
    log,
  });
  return print(report, flags.json ?? false);
}

async function runClient(
  args: readonly string[],
  program: string,
): Promise<number> {
  const dashes = args.indexOf("--");
  const flags = parseFlags(
    dashes < 0 ? args : args.slice(0, dashes),
    CLIENT_FLAGS,
  );
  if (flags.help) {
    console.log(clientUsage(program));
    return EXIT_OK;
  }
  const command = dashes < 0 ? [] : args.slice(dashes + 1);
  if (command.length === 0) {
    throw usageError(
      "give the client's command after --, as in -- ./client {token}",
    );
  }
  if (flags.listen === undefined) {
    throw usageError(
      "--listen: give the address to listen on, as in 127.0.0.1:40000",
    );
  }
  const listen = parseAddressFlag("--listen", flags.listen, true);
  const stopSignal = (flags["stop-signal"] ?? "SIGINT") as Deno.Signal;
  if (!/^SIG[A-Z0-9]+$/.test(stopSignal)) {
    throw usageError(
      `--stop-signal: "${stopSignal}" is not a signal name like SIGINT`,
    );
  }
  const log = flags.verbose ? (line: string) => console.error(line) : undefined;
  const report = await probeClient({
    listen,
    protocolId: flags["protocol-id"] === undefined
      ? DEFAULT_PROTOCOL_ID
      : parseUint64Flag("--protocol-id", flags["protocol-id"]),
    privateKey: resolvePrivateKey(
      flags["private-key"],
      (message) => console.error(message),
    ),
    launch: commandLauncher(command, stopSignal, log),
    timeoutSeconds: flags.timeout === undefined
      ? undefined
      : parseIntegerFlag("--timeout", flags.timeout, 1, 30),
    startSeconds: flags["start-timeout"] === undefined
      ? undefined
      : parseSecondsFlag("--start-timeout", flags["start-timeout"], 0.1, 600),
    holdSeconds: flags.hold === undefined
      ? undefined
      : parseSecondsFlag("--hold", flags.hold, 1, 600),
    stopAfterSeconds: flags["stop-after"] === undefined
      ? undefined
      : parseSecondsFlag("--stop-after", flags["stop-after"], 0, 600),
    skip: skipList(flags.skip, CLIENT_CHECKS),
    log,
  });
  if (log) log(`probed the client at ${formatAddress(listen)}`);
  return print(report, flags.json ?? false);
}

/** The `netcode probe` command: `probe server ...` or `probe client ...`. */
export const probeCommand: Command = {
  name: "probe",
  summary:
    "check another implementation's server or client against the standard",
  usage,
  async run(args, program) {
    const [target, ...rest] = args;
    if (target === "server") return await runServer(rest, `${program} server`);
    if (target === "client") return await runClient(rest, `${program} client`);
    if (target === "-h" || target === "--help") {
      console.log(usage(program));
      return EXIT_OK;
    }
    throw usageError(
      target === undefined
        ? 'expected "server" or "client"'
        : `expected "server" or "client", got "${target}"`,
    );
  },
};
