/**
 * `netcode keygen`: prints a new random private key as 64 hex characters.
 *
 * @module
 */

import { generateKey } from "../crypto.ts";
import { type Command, EXIT_OK, HELP_FLAG, parseFlags } from "./_args.ts";

function keygenUsage(program: string): string {
  return `Usage: ${program}

Prints a new random 32-byte private key as 64 hex characters. Give it to
the backend and the servers (NETCODE_PRIVATE_KEY), and to no one else.

Flags:
  -h, --help            show this help`;
}

/** The `netcode keygen` command: prints a new random private key. */
export const keygenCommand: Command = {
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
