/**
 * One run of `tools/server_ab.ts`: builds two servers with N clients each,
 * from two copies of `bench/_server_world.ts` (each importing its own
 * checkout's modules), in the order given, and times `server.update()` over
 * interleaved blocks. Prints one JSON line: the median block of each, in ms
 * per update.
 *
 * ```sh
 * deno run -A tools/_server_ab_run.ts FIRST_WORLD SECOND_WORLD N BLOCKS ITERATIONS
 * ```
 *
 * @module
 */

import type { ServerWorld as World } from "../bench/_server_world.ts";

const [firstPath, secondPath, clientsText, blocksText, iterationsText] =
  Deno.args;
const clients = Number(clientsText);
const blocks = Number(blocksText);
const iterations = Number(iterationsText);
if (
  secondPath === undefined || !(clients > 0) || !(blocks > 0) ||
  !(iterations > 0)
) {
  console.error(
    "usage: _server_ab_run.ts FIRST_WORLD SECOND_WORLD N BLOCKS ITERATIONS",
  );
  Deno.exit(2);
}

const first = await import(new URL(firstPath, `file://${Deno.cwd()}/`).href);
const second = await import(new URL(secondPath, `file://${Deno.cwd()}/`).href);
// Construction order is part of what a run measures: the caller runs both.
const worlds: World[] = [
  first.connectWorld(clients),
  second.connectWorld(clients),
];

/** Mean ms per `update()` over one block of `iterations`. */
function block(world: World): number {
  let total = 0;
  for (let i = 0; i < iterations; i++) {
    world.prepareBatch(false);
    const start = performance.now();
    world.server.update(world.time);
    total += performance.now() - start;
    world.echo();
  }
  return total / iterations;
}

for (let b = 0; b < 3; b++) for (const world of worlds) block(world);
const times: number[][] = [[], []];
for (let b = 0; b < blocks; b++) {
  // Alternate which goes first in a block.
  const order = b % 2 === 0 ? [0, 1] : [1, 0];
  for (const w of order) times[w].push(block(worlds[w]));
}
const median = (values: number[]) =>
  [...values].sort((a, b) => a - b)[values.length >> 1];
console.log(JSON.stringify({
  first: median(times[0]),
  second: median(times[1]),
}));
