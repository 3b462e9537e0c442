/**
 * The echo server with every flag of `netcode server`, for scripts that run
 * this file. The command itself is `cli/server.ts`; a short sample of a
 * dedicated server to learn from is `examples/echo_server.ts`.
 *
 * ```sh
 * deno run -A --unstable-net examples/server.ts --help
 * ```
 *
 * @module
 */

import { runCommand } from "../cli/_args.ts";
import { serverCommand } from "../cli/server.ts";

if (import.meta.main) {
  Deno.exit(await runCommand(serverCommand, Deno.args, "examples/server.ts"));
}
