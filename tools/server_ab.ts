/**
 * A/B of the server's `update()` against another revision, in one process
 * per run: `deno bench` alone is too noisy on a shared machine to tell a
 * 10% change.
 *
 * ```sh
 * deno task bench:ab --base c0d9a33                  # this tree against c0d9a33, 1024 clients
 * deno task bench:ab --base c0d9a33 --clients 256 --rounds 5
 * deno task bench:ab --base c0d9a33 --aa             # c0d9a33 against itself: the harness's bias
 * ```
 *
 * The base revision is checked out with `git worktree add` into a temporary
 * directory, and this tree's `bench/_server_world.ts` is copied into it. The
 * world uses only the public API, so the copy runs on the base's own
 * modules. Each round is two processes (`tools/_server_ab_run.ts`). Each
 * builds both servers, base first in one and this tree first in the other,
 * because construction order alone moves the result by 10-20% here. Each
 * then times `update()` in interleaved blocks. A round's ratio is the mean
 * of its two orders.
 *
 * Flags: `--base REV` (required), `--clients 1024`, `--rounds 3`,
 * `--blocks 16`, `--iterations 100` (updates per block), `--aa` (the base
 * against a second checkout of itself, to see the harness's own spread).
 *
 * @module
 */

import { parseArgs } from "node:util";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    base: { type: "string" },
    clients: { type: "string", default: "1024" },
    rounds: { type: "string", default: "3" },
    blocks: { type: "string", default: "16" },
    iterations: { type: "string", default: "100" },
    aa: { type: "boolean", default: false },
  },
});
if (values.base === undefined) {
  console.error("usage: deno task bench:ab --base REV [--clients N] [--aa]");
  Deno.exit(2);
}
for (const name of ["clients", "rounds", "blocks", "iterations"] as const) {
  const value = Number(values[name]);
  if (!Number.isInteger(value) || value < 1) {
    console.error(`--${name} must be a positive integer, got ${values[name]}`);
    Deno.exit(2);
  }
}

const root = new URL("..", import.meta.url).pathname;
const world = "bench/_server_world.ts";

async function run(command: string, args: string[]): Promise<string> {
  const output = await new Deno.Command(command, {
    args,
    cwd: root,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!output.success) {
    throw new Error(
      `${command} ${args.join(" ")} failed: ${
        new TextDecoder().decode(output.stderr)
      }`,
    );
  }
  return new TextDecoder().decode(output.stdout);
}

async function checkout(directory: string): Promise<string> {
  await run("git", ["worktree", "add", "--detach", directory, values.base!]);
  await Deno.copyFile(`${root}${world}`, `${directory}/${world}`);
  return `${directory}/${world}`;
}

const temporary = await Deno.makeTempDir({ prefix: "netcode-ab-" });
const checkouts: string[] = [];
try {
  checkouts.push(`${temporary}/base`);
  const baseWorld = await checkout(checkouts[0]);
  let otherWorld = `${root}${world}`;
  if (values.aa) {
    checkouts.push(`${temporary}/copy`);
    otherWorld = await checkout(checkouts[1]);
  }
  const other = values.aa ? `${values.base} (copy)` : "this tree";
  console.log(
    `update(), ${values.clients} clients: ${other} / ${values.base}, ${values.blocks} blocks of ${values.iterations} updates per run`,
  );
  const ratios: number[] = [];
  for (let round = 1; round <= Number(values.rounds); round++) {
    const runOnce = async (first: string, second: string) =>
      JSON.parse(
        await run(Deno.execPath(), [
          "run",
          "-A",
          "--config",
          `${root}deno.json`,
          `${root}tools/_server_ab_run.ts`,
          first,
          second,
          values.clients!,
          values.blocks!,
          values.iterations!,
        ]),
      ) as { first: number; second: number };
    const baseFirst = await runOnce(baseWorld, otherWorld);
    const otherFirst = await runOnce(otherWorld, baseWorld);
    const ratioBaseFirst = baseFirst.second / baseFirst.first;
    const ratioOtherFirst = otherFirst.first / otherFirst.second;
    const ratio = (ratioBaseFirst + ratioOtherFirst) / 2;
    ratios.push(ratio);
    console.log(
      `round ${round}: base built first ${baseFirst.first.toFixed(3)} / ${
        baseFirst.second.toFixed(3)
      } ms (${ratioBaseFirst.toFixed(3)}), built second ${
        otherFirst.second.toFixed(3)
      } / ${otherFirst.first.toFixed(3)} ms (${ratioOtherFirst.toFixed(3)}): ${
        ratio.toFixed(3)
      }`,
    );
  }
  const sorted = [...ratios].sort((a, b) => a - b);
  console.log(
    `${other} / ${values.base}: median ${
      sorted[sorted.length >> 1].toFixed(3)
    } over ${ratios.length} rounds (${sorted[0].toFixed(3)}..${
      sorted[sorted.length - 1].toFixed(3)
    })`,
  );
} finally {
  for (const directory of checkouts) {
    await run("git", ["worktree", "remove", "--force", directory]).catch(
      () => {},
    );
  }
  await Deno.remove(temporary, { recursive: true }).catch(() => {});
}
