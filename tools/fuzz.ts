// `deno task fuzz`: hostile datagrams at a running server and its connected
// clients, over the simulator and then over real UDP on 127.0.0.1. What is
// sent and what is checked: tests/_fuzz.ts. Exits 1 on the first broken
// property, printing the seed to replay it with.
//
//   deno task fuzz [--count 1000000] [--seed 1] [--udp-count 20000]

import { parseArgs } from "node:util";
import { formatFuzzResult, runFuzz } from "../tests/_fuzz.ts";

const USAGE = `Usage: deno task fuzz [options]

  --count N       hostile datagrams over the simulator (default 1000000)
  --udp-count N   hostile datagrams over loopback UDP afterwards; 0 skips
                  (default 20000)
  --seed N        seed of the fuzzer and the simulator (default 1)
  -h, --help      this text`;

function integer(name: string, text: string, min: number): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < min) {
    console.error(
      `fuzz: --${name} must be an integer >= ${min}, got "${text}"`,
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
      count: { type: "string", default: "1000000" },
      "udp-count": { type: "string", default: "20000" },
      seed: { type: "string", default: "1" },
      help: { type: "boolean", short: "h", default: false },
    },
  }));
} catch (error) {
  console.error(`fuzz: ${(error as Error).message}`);
  console.error(USAGE);
  Deno.exit(2);
}
if (values.help) {
  console.log(USAGE);
  Deno.exit(0);
}
const count = integer("count", values.count, 1);
const udpCount = integer("udp-count", values["udp-count"], 0);
const seed = integer("seed", values.seed, 0);

try {
  console.log(`fuzzing over the simulator: ${count} datagrams, seed ${seed}`);
  const result = await runFuzz({ count, seed, log: console.log });
  console.log(formatFuzzResult(result));
  if (udpCount > 0) {
    console.log(`\nfuzzing over loopback UDP: ${udpCount} datagrams`);
    const udp = await runFuzz({
      count: udpCount,
      seed,
      transport: "udp",
      log: console.log,
    });
    console.log(formatFuzzResult(udp));
  }
} catch (error) {
  console.error(`\nfuzz FAILED: ${(error as Error).stack ?? error}`);
  Deno.exit(1);
}
