/**
 * The development web backend with every flag of `netcode backend`, for
 * scripts that run this file. The command itself is `cli/backend.ts`; a short
 * sample of a backend that hands out connect tokens is
 * `examples/token_backend.ts`.
 *
 * ```sh
 * deno run --allow-net --allow-env=NETCODE_PRIVATE_KEY examples/backend.ts --help
 * ```
 *
 * @module
 */

import { runCommand } from "../cli/_args.ts";
import { backendCommand } from "../cli/backend.ts";

if (import.meta.main) {
  Deno.exit(await runCommand(backendCommand, Deno.args, "examples/backend.ts"));
}
