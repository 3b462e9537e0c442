#!/usr/bin/env -S deno run -A --unstable-net
/**
 * The `netcode` command line program:
 *
 * ```sh
 * netcode keygen                       # a random private key, 64 hex characters
 * netcode token --server 127.0.0.1:40000 --client-id 42 > token.b64
 * netcode server --address 127.0.0.1:40000 --metrics-port 9100
 * netcode client --server 127.0.0.1:40000 --packets 100
 * netcode probe server 127.0.0.1:40000 --echo   # conformance of any server
 * ```
 *
 * Run it with `deno task netcode` (`deno run -A --unstable-net cli/main.ts`),
 * or build a standalone binary with `deno task compile` (`dist/netcode`).
 * Each command is a module of its own here; `examples/server.ts`,
 * `examples/client.ts` and `examples/backend.ts` run the same commands.
 *
 * Exit codes: 0 success, 1 failure, 2 bad command line.
 *
 * @module
 */

import denoJson from "../deno.json" with { type: "json" };
import { type Command, EXIT_OK, EXIT_USAGE, runCommand } from "./_args.ts";
import { backendCommand } from "./backend.ts";
import { clientCommand } from "./client.ts";
import { keygenCommand } from "./keygen.ts";
import { probeCommand } from "./probe.ts";
import { serverCommand } from "./server.ts";
import { tokenCommand } from "./token.ts";

// The subcommands, in the order --help lists them.
const COMMANDS: readonly Command[] = [
  keygenCommand,
  tokenCommand,
  serverCommand,
  clientCommand,
  backendCommand,
  probeCommand,
];

function usage(): string {
  const width = Math.max(...COMMANDS.map((command) => command.name.length));
  return `Usage: netcode <command> [flags]

netcode ${denoJson.version}: connection-oriented, encrypted UDP for games
(netcode 1.02, wire compatible with the C reference).

Commands:
${
    COMMANDS.map((command) =>
      `  ${command.name.padEnd(width)}   ${command.summary}`
    ).join("\n")
  }

Run 'netcode <command> --help' for its flags.
  -h, --help      show this help
  -V, --version   print the version`;
}

/**
 * Runs the program.
 *
 * @param args The command line: a command name, then its flags.
 * @returns The exit code: 0 success, 1 failure, 2 bad command line.
 */
export async function main(args: readonly string[]): Promise<number> {
  const [name, ...rest] = args;
  if (name === "-h" || name === "--help") {
    console.log(usage());
    return EXIT_OK;
  }
  if (name === "-V" || name === "--version") {
    console.log(`netcode ${denoJson.version}`);
    return EXIT_OK;
  }
  if (name === "help") {
    const command = COMMANDS.find((command) => command.name === rest[0]);
    console.log(command ? command.usage(`netcode ${command.name}`) : usage());
    return EXIT_OK;
  }
  if (name === undefined) {
    console.error(usage());
    return EXIT_USAGE;
  }
  const command = COMMANDS.find((command) => command.name === name);
  if (command === undefined) {
    console.error(
      `netcode: unknown command "${name}"; expected one of ${
        COMMANDS.map((command) => command.name).join(", ")
      }`,
    );
    console.error("Run 'netcode --help' for usage.");
    return EXIT_USAGE;
  }
  return await runCommand(command, rest, `netcode ${command.name}`);
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
