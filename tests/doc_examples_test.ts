// The JSDoc examples of the entry points assert what they show (as
// denoland/std's do): `deno test --doc` type-checks and runs every example
// not marked `ignore`, so an assertion in it is checked on every run, where
// a `console.log(x); // expected` is not. These tests read the examples'
// text and keep it that way: an example that runs calls `assert`, none shows
// a value only in a comment after `console.log`, and an example without an
// assertion is `ignore`d and listed below with its reason.

import { assert, assertEquals } from "./_assert.ts";

/** The entry points whose examples are checked. */
const FILES = [
  "mod.ts",
  "crypto.ts",
  "address.ts",
  "packet.ts",
  "token.ts",
  "server.ts",
  "client.ts",
  "socket.ts",
  "socket_node.ts",
  "simulator.ts",
  "socket_ffi.ts",
  "socket_webtransport.ts",
  "certificate.ts",
  "browser.ts",
  "sodium_native.ts",
  "reliable.ts",
  "channel.ts",
];

/**
 * Examples without an assertion, by "file symbol" ("(module)" for the
 * module's own doc), each with why. Every one is `ignore`d: they need the
 * network, a browser or native code, or run until stopped.
 */
const UNASSERTED: Record<string, string> = {
  "server.ts createServer":
    "binds real UDP ports and ticks from setInterval forever; its point is the loop",
  "client.ts (module)":
    "fetches a token from a backend and ticks from setInterval until disconnected",
  "socket.ts listenUdp":
    "shows draining poll() from a later tick; nothing has arrived when the block ends",
  "socket_ffi.ts (module)":
    "an FFI server on a fixed port: needs --allow-ffi and Linux; its point is the wiring",
  "socket_ffi.ts ffiTransportUnavailable":
    "shows falling back to listenUdp; which socket it gets depends on the machine",
  "socket_ffi.ts listenUdpFfi":
    "shows draining poll(); whether the kernel has delivered yet is not promised",
  "socket_webtransport.ts connectWebTransport":
    "needs WebTransport (a browser) and a server holding that certificate",
  "browser.ts (module)":
    "needs WebTransport (a browser) and a server holding that certificate",
  "sodium_native.ts (module)":
    "loads the system's libsodium: needs --allow-ffi and libsodium installed",
  "sodium_native.ts loadNativeSodium":
    "opens libsodium at a fixed Debian x86-64 path: needs --allow-ffi and that file",
  "sodium_native.ts useNativeSodium":
    "loads the system's libsodium: needs --allow-ffi and libsodium installed",
};

interface Example {
  readonly file: string;
  /** "file symbol": the declaration the JSDoc documents, or "(module)". */
  readonly key: string;
  /** 1-based line of the opening fence. */
  readonly line: number;
  readonly ignored: boolean;
  readonly code: string;
}

const FENCE = /^```(\S*)(.*)$/;
const DECLARATION =
  /^\s*(?:export\s+)?(?:declare\s+)?(?:default\s+)?(?:async\s+)?(?:function\*?|const|let|class|interface|type|enum)?\s*([A-Za-z_$][\w$]*)/;

/** The fenced TypeScript and JavaScript blocks in the file's JSDoc comments. */
function examplesOf(file: string, text: string): Example[] {
  const examples: Example[] = [];
  for (const comment of text.matchAll(/\/\*\*([\s\S]*?)\*\//g)) {
    const firstLine = text.slice(0, comment.index).split("\n").length;
    const lines = comment[1].split("\n").map((line) =>
      line.replace(/^\s*\* ?/, "")
    );
    const after = text.slice(comment.index + comment[0].length)
      .split("\n").find((line) => line.trim() !== "") ?? "";
    const symbol = lines.some((line) => line.startsWith("@module"))
      ? "(module)"
      : DECLARATION.exec(after)?.[1] ?? "(unknown)";
    for (let i = 0; i < lines.length; i++) {
      const open = FENCE.exec(lines[i].trim());
      if (!open) continue;
      const end = lines.findIndex((line, j) => j > i && line.trim() === "```");
      assert(end > i, `${file}:${firstLine + i}: unclosed code block`);
      const language = open[1];
      if (/^(ts|js|tsx|jsx|typescript|javascript|)$/.test(language)) {
        examples.push({
          file,
          key: `${file} ${symbol}`,
          line: firstLine + i,
          ignored: /\bignore\b/.test(open[2]),
          code: lines.slice(i + 1, end).join("\n"),
        });
      }
      i = end;
    }
  }
  return examples;
}

async function allExamples(): Promise<Example[]> {
  const examples: Example[] = [];
  for (const file of FILES) {
    const text = await Deno.readTextFile(
      new URL(`../${file}`, import.meta.url),
    );
    const found = examplesOf(file, text);
    assert(
      found.length > 0,
      `${file}: no examples found (did the format change?)`,
    );
    examples.push(...found);
  }
  return examples;
}

const ASSERTS = /\bassert(?:\.\w+)?\(/;
const where = (e: Example) => `${e.file}:${e.line} (${e.key})`;

Deno.test("every doc example that runs asserts what it shows", async () => {
  const examples = await allExamples();
  const running = examples.filter((e) => !e.ignored);
  assert(running.length >= 30, `only ${running.length} examples run`);
  assertEquals(
    running.filter((e) => !ASSERTS.test(e.code)).map(where),
    [],
    "these examples run but assert nothing",
  );
});

Deno.test("no doc example shows a value only in a comment after console.log", async () => {
  const examples = await allExamples();
  assertEquals(
    examples.filter((e) => /console\.log\(.*\);?\s*\/\/\s*\S/.test(e.code))
      .map(where),
    [],
    "assert the value instead of printing it with the expected output in a comment",
  );
});

Deno.test("an example without an assertion is ignored and listed with its reason", async () => {
  const examples = await allExamples();
  const unasserted = examples.filter((e) => !ASSERTS.test(e.code));
  assertEquals(
    unasserted.filter((e) => !(e.key in UNASSERTED)).map(where),
    [],
    "assert in these examples, or list them in UNASSERTED with a reason",
  );
  assertEquals(
    unasserted.filter((e) => !e.ignored).map(where),
    [],
    "an example that runs cannot be an exception",
  );
  // The list does not outlive its examples.
  const keys = new Set(unasserted.map((e) => e.key));
  assertEquals(
    Object.keys(UNASSERTED).filter((key) => !keys.has(key)),
    [],
    "these UNASSERTED entries now assert, or are gone: remove them",
  );
  // Keys are unique, so an entry names one example.
  const counts = new Map<string, number>();
  for (const e of unasserted) counts.set(e.key, (counts.get(e.key) ?? 0) + 1);
  assertEquals([...counts].filter(([, n]) => n > 1).map(([key]) => key), []);
});
