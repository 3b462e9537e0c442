/**
 * Builds the JavaScript that Node.js and Bun run from the TypeScript
 * sources, into `dist/node/` (generated, never committed):
 *
 * - `dist/node/<entry>.js` for every entry point in deno.json `"exports"`
 *   (`mod.js` is the front door), ES modules sharing their code through
 *   `dist/node/_chunks/`, so every module exists once, as it does for a
 *   package installed from JSR;
 * - the programs that run on Node.js and Bun against those modules:
 *   `tests/_runtime_suite.js` (`deno task test:node`, `test:bun`),
 *   `tests/_runtime_peer.js` (tests/runtime_interop_test.ts),
 *   `examples/token_backend_node.js` and `tools/_runtime_udp_echo.js`
 *   (tools/runtime_udp_bench.ts). Their imports of the package's entry
 *   points stay imports of `dist/node/<entry>.js`, so they test what a
 *   Node.js user gets;
 * - `dist/node/package.json` (`"type": "module"`) and, installed from npm
 *   into `dist/node/node_modules`, the npm packages the sources import
 *   (`npm:libsodium-wrappers@^0.8.4` becomes `libsodium-wrappers`), at the
 *   versions deno.lock pins: what JSR's npm compatibility layer does too.
 *
 * esbuild comes from npm, pinned below.
 *
 * ```sh
 * deno task build:node            # deno run -A tools/build_node.ts
 * ```
 *
 * @module
 */

import * as esbuild from "npm:esbuild@0.28.2";
import denoJson from "../deno.json" with { type: "json" };

const ROOT = new URL("../", import.meta.url);
const OUT = new URL("dist/node/", ROOT);
/** Programs built beside the modules; each one directory deep. */
const PROGRAMS = [
  "tests/_runtime_suite.ts",
  "tests/_runtime_peer.ts",
  "examples/token_backend_node.ts",
  "tools/_runtime_udp_echo.ts",
];

const entries = Object.values(denoJson.exports).map((path) =>
  path.replace(/^\.\//, "")
);
/** `npm:name@range/sub` → `{ name, bare: "name/sub" }`. */
function npmSpecifier(specifier: string): { name: string; bare: string } {
  const match = /^npm:(@[^/@]+\/[^/@]+|[^/@]+)(?:@[^/]*)?(\/.*)?$/.exec(
    specifier,
  );
  if (match === null) throw new Error(`Cannot read ${specifier}`);
  return { name: match[1], bare: match[1] + (match[2] ?? "") };
}

const npmPackages = new Set<string>();
const npmPlugin: esbuild.Plugin = {
  name: "npm-specifiers",
  setup(build) {
    build.onResolve({ filter: /^npm:/ }, (args) => {
      const { name, bare } = npmSpecifier(args.path);
      npmPackages.add(name);
      return { path: bare, external: true };
    });
  },
};

/**
 * Imports of the package's entry points (and of the other programs) from a
 * program stay imports of the built files.
 */
const entryPlugin: esbuild.Plugin = {
  name: "entry-points",
  setup(build) {
    build.onResolve({ filter: /\.ts$/ }, (args) => {
      if (args.kind === "entry-point") return undefined;
      const url = new URL(args.path, `file://${args.resolveDir}/`);
      if (!url.href.startsWith(ROOT.href)) return undefined;
      const path = url.href.slice(ROOT.href.length);
      if (PROGRAMS.includes(path)) { // another program: imported as built
        return { path: `../${path.replace(/\.ts$/, ".js")}`, external: true };
      }
      if (path.includes("/")) return undefined; // tests/, examples/: bundled
      if (!entries.includes(path)) {
        return {
          errors: [{
            text:
              `${path} is not an entry point of the package: a program for Node.js and Bun may import only those`,
          }],
        };
      }
      return { path: `../${path.replace(/\.ts$/, ".js")}`, external: true };
    });
  },
};

const common: esbuild.BuildOptions = {
  absWorkingDir: ROOT.pathname,
  outbase: ".",
  outdir: OUT.pathname,
  bundle: true,
  format: "esm",
  platform: "node",
  target: ["node20", "es2022"],
  logLevel: "warning",
  legalComments: "none",
};

await Deno.remove(new URL("_chunks/", OUT), { recursive: true }).catch(
  () => {},
);
try {
  await esbuild.build({
    ...common,
    entryPoints: entries,
    splitting: true,
    chunkNames: "_chunks/[name]-[hash]",
    plugins: [npmPlugin],
  });
  for (const program of PROGRAMS) {
    if (program.split("/").length !== 2) {
      throw new Error(`${program}: programs must be one directory deep`);
    }
  }
  await esbuild.build({
    ...common,
    entryPoints: PROGRAMS,
    plugins: [entryPlugin, npmPlugin],
  });
} finally {
  await esbuild.stop();
}

// The npm packages, at the versions deno.lock pins.
const lock = JSON.parse(
  await Deno.readTextFile(new URL("deno.lock", ROOT)),
) as { specifiers?: Record<string, string> };
const dependencies: Record<string, string> = {};
for (const name of [...npmPackages].sort()) {
  const pinned = Object.entries(lock.specifiers ?? {}).find(([specifier]) =>
    npmSpecifier(specifier).name === name
  )?.[1];
  if (pinned === undefined) {
    throw new Error(`deno.lock pins no version of npm:${name}`);
  }
  dependencies[name] = pinned.replace(/_.*$/, ""); // "1.2.3_peer@4" → "1.2.3"
}
await Deno.writeTextFile(
  new URL("package.json", OUT),
  JSON.stringify(
    {
      name: "netcode-node-build",
      private: true,
      description: "Generated by deno task build:node; not committed",
      type: "module",
      dependencies,
    },
    null,
    2,
  ) + "\n",
);

async function installed(name: string, version: string): Promise<boolean> {
  try {
    const text = await Deno.readTextFile(
      new URL(`node_modules/${name}/package.json`, OUT),
    );
    return (JSON.parse(text) as { version?: string }).version === version;
  } catch {
    return false;
  }
}
const missing = [];
for (const [name, version] of Object.entries(dependencies)) {
  if (!await installed(name, version)) missing.push(`${name}@${version}`);
}
if (missing.length > 0) {
  console.log(`build:node: npm install ${missing.join(" ")}`);
  const npm = await new Deno.Command("npm", {
    args: ["install", "--no-audit", "--no-fund", "--loglevel=error"],
    cwd: OUT.pathname,
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  if (npm.code !== 0) {
    throw new Error(`npm install in dist/node failed (exit ${npm.code})`);
  }
}
console.log(
  `build:node: ${entries.length} modules and ${PROGRAMS.length} programs in dist/node/ (${
    Object.entries(dependencies).map(([n, v]) => `${n}@${v}`).join(", ")
  } from npm)`,
);
