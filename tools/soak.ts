// `deno task soak`: 64 clients connecting, exchanging payloads, leaving and
// coming back over the simulator with 5% loss, 100 +/- 50 ms latency and 1%
// duplicates. What is checked: tests/_soak.ts. The task runs with
// --v8-flags=--expose-gc so heap samples are taken after a full collection.
// Exits 1 on the first broken property, printing the seed and time.
//
//   deno task soak [--minutes 10] [--seed 1] [--clients 64] [--max-clients 56]

import { parseArgs } from "node:util";
import { formatSoakResult, runSoak } from "../tests/_soak.ts";

const USAGE = `Usage: deno task soak [options]

  --minutes N       simulated minutes of churn, fractions allowed (default 10)
  --seed N          seed of the simulator and the clients (default 1)
  --clients N       clients (default 64)
  --max-clients N   server slots (default 56: some clients get denied)
  -h, --help        this text`;

function number(
  name: string,
  text: string,
  min: number,
  integer: boolean,
): number {
  const value = Number(text);
  if (
    text.trim() === "" || !Number.isFinite(value) || value < min ||
    (integer && !Number.isSafeInteger(value))
  ) {
    console.error(
      `soak: --${name} must be ${
        integer ? "an integer" : "a number"
      } >= ${min}, got "${text}"`,
    );
    console.error(USAGE);
    Deno.exit(2);
  }
  return value;
}

let values;
try {
  ({ values } = parseArgs({
    args: Deno.args,
    options: {
      minutes: { type: "string", default: "10" },
      seed: { type: "string", default: "1" },
      clients: { type: "string", default: "64" },
      "max-clients": { type: "string", default: "56" },
      help: { type: "boolean", short: "h", default: false },
    },
  }));
} catch (error) {
  console.error(`soak: ${(error as Error).message}`);
  console.error(USAGE);
  Deno.exit(2);
}
if (values.help) {
  console.log(USAGE);
  Deno.exit(0);
}
const minutes = number("minutes", values.minutes, 0.01, false);
const seed = number("seed", values.seed, 0, true);
const clients = number("clients", values.clients, 1, true);
const maxClients = number("max-clients", values["max-clients"], 1, true);
if (clients > 255) {
  console.error("soak: --clients must be at most 255");
  Deno.exit(2);
}

if (!(globalThis as { gc?: unknown }).gc) {
  console.log(
    "note: no --expose-gc, so heap samples are not taken after a collection and memory is not checked",
  );
}
console.log(
  `soaking: ${minutes} simulated minutes, ${clients} clients, ${maxClients} slots, seed ${seed}`,
);
try {
  const result = runSoak({
    seconds: minutes * 60,
    seed,
    clients,
    maxClients,
    log: console.log,
  });
  console.log(formatSoakResult(result));
} catch (error) {
  console.error(`\nsoak FAILED: ${(error as Error).stack ?? error}`);
  Deno.exit(1);
}
