/**
 * The echo client with every flag of `netcode client`, for scripts that run
 * this file. The command itself is `cli/client.ts`; a short sample of a
 * client to learn from is `examples/echo_client.ts`.
 *
 * ```sh
 * deno run -A --unstable-net examples/client.ts --help
 * ```
 *
 * @module
 */

import { runCommand } from "../cli/_args.ts";
import { clientCommand } from "../cli/client.ts";

if (import.meta.main) {
  Deno.exit(await runCommand(clientCommand, Deno.args, "examples/client.ts"));
}
