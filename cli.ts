#!/usr/bin/env -S deno run -A --unstable-net
/**
 * The `netcode` command line program:
 *
 * ```sh
 * netcode keygen                       # a random private key, 64 hex characters
 * netcode token --server 127.0.0.1:40000 --client-id 42 > token.b64
 * netcode server --address 127.0.0.1:40000 --metrics-port 9100
 * netcode client --server 127.0.0.1:40000 --packets 100
 * ```
 *
 * Run it with `deno run -A --unstable-net cli.ts`, or build a standalone
 * binary with `deno task compile` (`dist/netcode`). `server` and `client`
 * are the programs in `examples/server.ts` and `examples/client.ts`.
 *
 * Exit codes: 0 success, 1 failure, 2 bad command line.
 *
 * @module
 */

import denoJson from "./deno.json" with { type: "json" };
import { generateKey } from "./crypto.ts";
import { CONNECT_TOKEN_BYTES } from "./packet.ts";
import {
  DEFAULT_CONNECT_TOKEN_EXPIRY_SECONDS,
  DEFAULT_TIMEOUT_SECONDS,
  generateConnectToken,
} from "./token.ts";
import {
  type Command,
  EXIT_OK,
  EXIT_USAGE,
  parseFlags,
  parseIntegerFlag,
  parseTimeoutFlag,
  runCommand,
} from "./examples/_args.ts";
import {
  TOKEN_FLAGS,
  TOKEN_FLAGS_HELP,
  tokenOptionsFromFlags,
} from "./examples/_common.ts";
import { clientCommand } from "./examples/client.ts";
import { serverCommand } from "./examples/server.ts";

const HELP_FLAG = { help: { type: "boolean", short: "h" } } as const;

function keygenUsage(program: string): string {
  return `Usage: ${program}

Prints a new random 32-byte private key as 64 hex characters. Give it to
the backend and the servers (NETCODE_PRIVATE_KEY), and to no one else.

Flags:
  -h, --help            show this help`;
}

// `netcode keygen`: prints a random private key.
const keygenCommand: Command = {
  name: "keygen",
  summary: "print a new random private key (64 hex characters)",
  usage: keygenUsage,
  run(args, program) {
    const flags = parseFlags(args, HELP_FLAG);
    if (flags.help) {
      console.log(keygenUsage(program));
      return Promise.resolve(EXIT_OK);
    }
    console.log(generateKey().toHex());
    return Promise.resolve(EXIT_OK);
  },
};

const TOKEN_COMMAND_FLAGS = {
  ...TOKEN_FLAGS,
  expire: { type: "string" },
  timeout: { type: "string" },
  out: { type: "string" },
  ...HELP_FLAG,
} as const;

function tokenUsage(program: string): string {
  return `Usage: ${program} [flags]

Makes a connect token, as the web backend does, and prints it as base64
(or writes the raw ${CONNECT_TOKEN_BYTES} bytes with --out).

Flags:
${TOKEN_FLAGS_HELP}
  --expire S            seconds until the token expires, -1 for never
                        [default: ${DEFAULT_CONNECT_TOKEN_EXPIRY_SECONDS}]
  --timeout S           seconds without packets before the connection times
                        out, -1 for never [default: ${DEFAULT_TIMEOUT_SECONDS}]
  --out FILE            write the raw ${CONNECT_TOKEN_BYTES} bytes to FILE instead
  -h, --help            show this help`;
}

// `netcode token`: makes a connect token.
const tokenCommand: Command = {
  name: "token",
  summary: "make a connect token (base64, or raw bytes with --out)",
  usage: tokenUsage,
  async run(args, program) {
    const flags = parseFlags(args, TOKEN_COMMAND_FLAGS);
    if (flags.help) {
      console.log(tokenUsage(program));
      return EXIT_OK;
    }
    const expireSeconds = flags.expire === undefined
      ? DEFAULT_CONNECT_TOKEN_EXPIRY_SECONDS
      : parseIntegerFlag("--expire", flags.expire, -1, 2 ** 53);
    const timeoutSeconds = flags.timeout === undefined
      ? DEFAULT_TIMEOUT_SECONDS
      : parseTimeoutFlag("--timeout", flags.timeout);
    const token = generateConnectToken({
      ...tokenOptionsFromFlags(flags, (message) => console.error(message)),
      expireSeconds,
      timeoutSeconds,
    });
    if (flags.out !== undefined) {
      // The token holds the connection's keys: keep the file private.
      await Deno.writeFile(flags.out, token, { mode: 0o600 });
      console.error(`wrote ${token.length} bytes to ${flags.out}`);
    } else {
      console.log(token.toBase64());
    }
    return EXIT_OK;
  },
};

// The subcommands, in the order --help lists them.
const COMMANDS: readonly Command[] = [
  keygenCommand,
  tokenCommand,
  serverCommand,
  clientCommand,
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
