/**
 * `netcode token`: makes a connect token, as the web backend does, and
 * prints it as base64 or writes the raw bytes to a file.
 *
 * @module
 */

import { CONNECT_TOKEN_BYTES } from "../packet.ts";
import {
  DEFAULT_CONNECT_TOKEN_EXPIRY_SECONDS,
  DEFAULT_TIMEOUT_SECONDS,
  generateConnectToken,
} from "../token.ts";
import {
  type Command,
  EXIT_OK,
  HELP_FLAG,
  parseFlags,
  parseIntegerFlag,
  parseTimeoutFlag,
} from "./_args.ts";
import {
  TOKEN_FLAGS,
  TOKEN_FLAGS_HELP,
  tokenOptionsFromFlags,
} from "./_common.ts";

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

/** The `netcode token` command: makes a connect token. */
export const tokenCommand: Command = {
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
