// The module graph of the library itself: no import cycle among the root
// modules (DESIGN.md: "Dependencies point one way ... No import cycles"),
// type-only imports included, from every entry point in deno.json "exports"
// and every other root module.

import { assert, assertEquals } from "./_assert.ts";
import denoJson from "../deno.json" with { type: "json" };

const ROOT = new URL("../", import.meta.url);

interface GraphModule {
  specifier: string;
  dependencies?: {
    code?: { specifier?: string };
    type?: { specifier?: string };
  }[];
}

/** `deno info --json` of one module: the specifiers of its whole graph. */
async function moduleGraph(path: string): Promise<GraphModule[]> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", path],
    cwd: ROOT.pathname,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assertEquals(
    output.code,
    0,
    `deno info ${path}: ${new TextDecoder().decode(output.stderr)}`,
  );
  return (JSON.parse(new TextDecoder().decode(output.stdout)) as {
    modules: GraphModule[];
  }).modules;
}

/** A root module's file name, or `undefined` for anything else. */
function rootName(specifier: string | undefined): string | undefined {
  if (specifier === undefined || !specifier.startsWith(ROOT.href)) {
    return undefined;
  }
  const name = specifier.slice(ROOT.href.length);
  return name.includes("/") ? undefined : name;
}

/**
 * Every cycle a depth-first search meets, each as the modules along it,
 * first one repeated at the end: `["a.ts", "b.ts", "a.ts"]`.
 */
function findCycles(edges: Map<string, string[]>): string[][] {
  const cycles: string[][] = [];
  const done = new Set<string>();
  const path: string[] = [];
  const onPath = new Set<string>();
  function visit(name: string): void {
    path.push(name);
    onPath.add(name);
    for (const next of edges.get(name) ?? []) {
      if (onPath.has(next)) {
        cycles.push([...path.slice(path.indexOf(next)), next]);
      } else if (!done.has(next)) {
        visit(next);
      }
    }
    path.pop();
    onPath.delete(name);
    done.add(name);
  }
  for (const name of [...edges.keys()].sort()) {
    if (!done.has(name)) visit(name);
  }
  return cycles;
}

Deno.test("findCycles() names each cycle and nothing in an acyclic graph", () => {
  assertEquals(
    findCycles(
      new Map([
        ["a.ts", ["b.ts"]],
        ["b.ts", ["c.ts"]],
        ["c.ts", ["a.ts"]],
        ["d.ts", ["d.ts"]],
      ]),
    ),
    [["a.ts", "b.ts", "c.ts", "a.ts"], ["d.ts", "d.ts"]],
  );
  assertEquals(
    findCycles(
      new Map([["a.ts", ["b.ts", "c.ts"]], ["b.ts", ["c.ts"]], ["c.ts", []]]),
    ),
    [],
  );
});

Deno.test("no import cycle among the root modules, type-only imports included", async () => {
  const entries = new Set(
    Object.values(denoJson.exports as Record<string, string>).map((path) =>
      path.replace(/^\.\//, "")
    ),
  );
  for (const entry of Deno.readDirSync(ROOT)) {
    if (entry.isFile && entry.name.endsWith(".ts")) entries.add(entry.name);
  }
  const graphs = await Promise.all([...entries].sort().map(moduleGraph));
  const edges = new Map<string, string[]>();
  for (const module of graphs.flat()) {
    const name = rootName(module.specifier);
    if (name === undefined || edges.has(name)) continue;
    const imports = new Set<string>();
    for (const dependency of module.dependencies ?? []) {
      for (const target of [dependency.code, dependency.type]) {
        const imported = rootName(target?.specifier);
        if (imported !== undefined) imports.add(imported);
      }
    }
    edges.set(name, [...imports].sort());
  }
  assert(
    edges.has("mod.ts") && edges.has("crypto.ts"),
    [...edges.keys()].join(" "),
  );
  const cycles = findCycles(edges);
  assertEquals(
    cycles.length,
    0,
    `import cycles: ${cycles.map((cycle) => cycle.join(" -> ")).join("; ")}`,
  );
});
