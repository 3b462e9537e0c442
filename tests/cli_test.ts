// The `netcode` program, run as a subprocess (`deno run cli/main.ts ...`): help,
// errors and exit codes, keygen and token output, and a server + client
// exchange over loopback UDP on a port the system picks. Every process is
// bounded by a flag and by the test's own deadline.

import {
  assert,
  assertEquals,
  assertMatch,
  assertStringIncludes,
} from "./_assert.ts";
import { formatAddress } from "../address.ts";
import { readConnectToken } from "../token.ts";

const CLI = new URL("../cli/main.ts", import.meta.url).pathname;
const KEY = "0f".repeat(32);

interface Output {
  code: number;
  stdout: string;
  stderr: string;
}

function command(
  args: string[],
  env: Record<string, string> = {},
  script = CLI,
) {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--unstable-net", script, ...args],
    env: { NO_COLOR: "1", NETCODE_PRIVATE_KEY: "", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  });
}

async function netcode(
  args: string[],
  env: Record<string, string> = {},
): Promise<Output> {
  const { code, stdout, stderr } = await command(args, env).output();
  const decoder = new TextDecoder();
  return {
    code,
    stdout: decoder.decode(stdout),
    stderr: decoder.decode(stderr),
  };
}

/** A running subprocess whose stdout is read line by line. */
function spawn(
  args: string[],
  env: Record<string, string> = {},
  script = CLI,
) {
  const child = command(args, env, script).spawn();
  const lines: string[] = [];
  const waiters: (() => void)[] = [];
  const stdoutDone = (async () => {
    let buffered = "";
    for await (
      const chunk of child.stdout.pipeThrough(new TextDecoderStream())
    ) {
      buffered += chunk;
      const parts = buffered.split("\n");
      buffered = parts.pop()!;
      lines.push(...parts);
      for (const wake of waiters.splice(0)) wake();
    }
    if (buffered) lines.push(buffered);
    for (const wake of waiters.splice(0)) wake();
  })();
  const stderrText = new Response(child.stderr).text();
  let exited = false;
  const status = child.status.then((status) => {
    exited = true;
    for (const wake of waiters.splice(0)) wake();
    return status;
  });
  let signalled = false;
  return {
    child,
    lines,
    /** Sends `signal` once, unless the process already exited. */
    signal(signal: Deno.Signal): void {
      if (exited || signalled) return;
      signalled = true;
      try {
        child.kill(signal);
      } catch {
        // exited meanwhile
      }
    },
    /** Waits for a line matching `pattern`, up to `ms`. */
    async waitFor(pattern: RegExp, ms: number): Promise<RegExpExecArray> {
      const deadline = Date.now() + ms;
      while (true) {
        for (const line of lines) {
          const match = pattern.exec(line);
          if (match) return match;
        }
        if (exited || Date.now() > deadline) {
          throw new Error(
            `no line matching ${pattern} within ${ms} ms:\n${lines.join("\n")}`,
          );
        }
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, 100);
          waiters.push(() => {
            clearTimeout(timer);
            resolve();
          });
        });
      }
    },
    /** Waits for exit; returns the code and everything printed. */
    async finish(): Promise<Output> {
      const { code } = await status;
      await stdoutDone;
      return { code, stdout: lines.join("\n"), stderr: await stderrText };
    },
  };
}

Deno.test("netcode --help lists the commands and exits 0", async () => {
  const { code, stdout } = await netcode(["--help"]);
  assertEquals(code, 0);
  assertStringIncludes(stdout, "Usage: netcode <command>");
  for (const name of ["keygen", "token", "server", "client"]) {
    assertStringIncludes(stdout, `  ${name}`);
  }
});

Deno.test("every command has --help", async () => {
  for (const name of ["keygen", "token", "server", "client"]) {
    const { code, stdout } = await netcode([name, "--help"]);
    assertEquals(code, 0, name);
    assertStringIncludes(stdout, `Usage: netcode ${name}`);
  }
});

Deno.test("netcode backend is a command, and the examples' scripts take the same flags", async () => {
  const { code, stdout } = await netcode(["backend", "--help"]);
  assertEquals(code, 0);
  assertStringIncludes(stdout, "Usage: netcode backend");
  for (const name of ["server", "client", "backend"]) {
    const script = new URL(`../examples/${name}.ts`, import.meta.url).pathname;
    const help = await command(["--help"], {}, script).output();
    assertEquals(help.code, 0, name);
    assertStringIncludes(
      new TextDecoder().decode(help.stdout),
      `Usage: examples/${name}.ts`,
    );
  }
});

Deno.test("the netcode program does not import examples/", async () => {
  const info = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", CLI],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assertEquals(info.code, 0, new TextDecoder().decode(info.stderr));
  const graph = JSON.parse(new TextDecoder().decode(info.stdout)) as {
    modules: { specifier: string }[];
  };
  const local = graph.modules.map((module) => module.specifier).filter((
    specifier,
  ) => specifier.startsWith("file:"));
  assert(local.some((specifier) => specifier.endsWith("/cli/server.ts")));
  assertEquals(
    local.filter((specifier) => specifier.includes("/examples/")),
    [],
  );
});

Deno.test("netcode rejects unknown flags, bad values and commands", async () => {
  const unknown = await netcode(["server", "--bogus"]);
  assertEquals(unknown.code, 2);
  assertEquals(unknown.stdout, "");
  assertStringIncludes(unknown.stderr, "netcode server: unknown flag --bogus");
  assertStringIncludes(unknown.stderr, "Run 'netcode server --help'");

  const badValue = await netcode(["client", "--packets", "many"]);
  assertEquals(badValue.code, 2);
  assertStringIncludes(
    badValue.stderr,
    'netcode client: --packets: "many" is not an integer',
  );

  const badKey = await netcode(["token", "--private-key", "secret"]);
  assertEquals(badKey.code, 2);
  assertStringIncludes(badKey.stderr, "--private-key: expected 64 hex");
  assert(!badKey.stderr.includes("secret"), "the key is not echoed");

  const missing = await netcode(["token", "--server"]);
  assertEquals(missing.code, 2);
  assertStringIncludes(missing.stderr, "--server");

  const command = await netcode(["frobnicate"]);
  assertEquals(command.code, 2);
  assertStringIncludes(command.stderr, 'unknown command "frobnicate"');
});

Deno.test("netcode keygen prints 64 hex characters", async () => {
  const first = await netcode(["keygen"]);
  const second = await netcode(["keygen"]);
  assertEquals(first.code, 0);
  assertMatch(first.stdout, /^[0-9a-f]{64}\n$/);
  assert(first.stdout !== second.stdout, "keys are random");
});

Deno.test("netcode token prints a base64 token readConnectToken accepts", async () => {
  const { code, stdout, stderr } = await netcode([
    "token",
    "--server",
    "127.0.0.1:40000",
    "--server",
    "[::1]:40001",
    "--client-id",
    "0x2a",
    "--protocol-id",
    "1234",
    "--private-key",
    KEY,
    "--expire",
    "60",
    "--timeout",
    "9",
  ]);
  assertEquals(code, 0, stderr);
  assertEquals(stderr, "");
  const bytes = Uint8Array.fromBase64(stdout.trim());
  assertEquals(bytes.length, 2048);
  const token = readConnectToken(bytes);
  assert(token);
  assertEquals(token.serverAddresses.map(formatAddress), [
    "127.0.0.1:40000",
    "[::1]:40001",
  ]);
  assertEquals(token.protocolId, 1234n);
  assertEquals(token.timeoutSeconds, 9);
  assertEquals(token.expireTimestamp - token.createTimestamp, 60n);
});

Deno.test("netcode token takes the documented negative values and refuses a timeout of 0", async () => {
  for (
    const args of [["--expire", "-1", "--timeout", "-1"], [
      "--expire=-1",
      "--timeout=-1",
    ]]
  ) {
    const { code, stdout, stderr } = await netcode([
      "token",
      "--private-key",
      KEY,
      ...args,
    ]);
    assertEquals(code, 0, stderr);
    const token = readConnectToken(Uint8Array.fromBase64(stdout.trim()));
    assert(token);
    assertEquals(token.timeoutSeconds, -1);
    assertEquals(token.expireTimestamp, 0xffffffffffffffffn);
  }
  const zero = await netcode(["token", "--private-key", KEY, "--timeout", "0"]);
  assertEquals(zero.code, 2);
  assertStringIncludes(zero.stderr, "use -1 for no timeout");
});

Deno.test("netcode token --out writes the raw 2048 bytes", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/token.bin`;
    const { code, stdout, stderr } = await netcode(["token", "--out", path]);
    assertEquals(code, 0, stderr);
    assertEquals(stdout, "");
    assertStringIncludes(stderr, "development key"); // no key given: warned
    const bytes = await Deno.readFile(path);
    assertEquals(bytes.length, 2048);
    assert(readConnectToken(bytes));
    if (Deno.build.os !== "windows") {
      assertEquals((await Deno.stat(path)).mode! & 0o777, 0o600);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("netcode server and client exchange payloads on loopback", async () => {
  // The server reads the key from the environment, the client from its flag.
  const server = spawn(
    [
      "server",
      "--address",
      "127.0.0.1:0",
      "--duration",
      "20",
      "--stats-interval",
      "0",
    ],
    { NETCODE_PRIVATE_KEY: KEY },
  );
  try {
    const [, address] = await server.waitFor(
      /^listening on (127\.0\.0\.1:\d+)/,
      10_000,
    );
    const client = await netcode([
      "client",
      "--server",
      address,
      "--private-key",
      KEY,
      "--packets",
      "20",
      "--timeout",
      "10",
    ]);
    assertEquals(client.code, 0, client.stdout + client.stderr);
    assertStringIncludes(client.stdout, `connected to ${address} in`);
    assertStringIncludes(
      client.stdout,
      "echoed 20/20 payloads of 100 bytes: lost 0 (0.0%)",
    );
    assertMatch(client.stdout, /round trip p50 [\d.]+ ms, p99 [\d.]+ ms/);
    assertEquals(client.stdout.trim().split("\n").at(-1), "ok");
    await server.waitFor(/client disconnected, echoed 20 payloads/, 5_000);
  } finally {
    server.signal("SIGINT");
  }
  const { code, stdout, stderr } = await server.finish();
  assertEquals(code, 0, stdout + stderr);
  assertEquals(
    stderr,
    "",
    "no development key warning: the key came from the environment",
  );
  assertStringIncludes(stdout, "SIGINT: shutting down");
  assertStringIncludes(stdout, "echoed 20 payloads");
});

Deno.test("netcode server disconnects its clients on SIGTERM", async () => {
  const server = spawn([
    "server",
    "--address",
    "127.0.0.1:0",
    "--duration",
    "20",
    "--stats-interval",
    "0",
    "--private-key",
    KEY,
  ]);
  let client: ReturnType<typeof spawn> | undefined;
  try {
    const [, address] = await server.waitFor(
      /^listening on (127\.0\.0\.1:\d+)/,
      10_000,
    );
    client = spawn([
      "client",
      "--server",
      address,
      "--private-key",
      KEY,
      "--packets",
      "100000",
      "--timeout",
      "15",
    ]);
    await client.waitFor(/-> connected$/, 10_000);
    server.signal("SIGTERM");
    const result = await client.finish();
    // The server's disconnect packets arrive: no 5 s timeout.
    assertEquals(result.code, 1);
    assertStringIncludes(
      result.stderr,
      "FAILED: connection lost: disconnected (final client state: disconnected)",
    );
  } finally {
    server.signal("SIGINT");
    if (client) {
      client.signal("SIGINT");
      await client.finish();
    }
  }
  const { code, stdout } = await server.finish();
  assertEquals(code, 0);
  assertStringIncludes(stdout, "SIGTERM: disconnecting 1 clients");
  assertStringIncludes(stdout, ": server disconnected, echoed");
});

Deno.test("netcode server --bind binds apart from --address, and an address on no interface binds the wildcard", async () => {
  for (
    const [flags, bound] of [
      [
        ["--bind", "127.0.0.1:0"],
        /^listening on 192\.0\.2\.1:(\d+) \(udp\), bound to 127\.0\.0\.1:(\d+),/,
      ],
      [
        [],
        /^listening on 192\.0\.2\.1:(\d+) \(udp\), bound to 0\.0\.0\.0:(\d+),/,
      ],
    ] as const
  ) {
    const server = spawn([
      "server",
      "--address",
      "192.0.2.1:0",
      ...flags,
      "--duration",
      "0.5",
      "--stats-interval",
      "0",
      "--private-key",
      KEY,
    ]);
    // It stops by itself after --duration.
    const [, publicPort, boundPort] = await server.waitFor(bound, 10_000);
    assertEquals(publicPort, boundPort, "port 0 takes the bound port");
    const { code, stdout, stderr } = await server.finish();
    assertEquals(code, 0, stdout + stderr);
  }
  const help = await netcode(["server", "--help"]);
  assertStringIncludes(help.stdout, "--bind ADDRESS");
});

Deno.test("netcode server --webtransport prints the URL and a development certificate hash", async () => {
  const { code, stdout, stderr } = await netcode(
    [
      "server",
      "--address",
      "127.0.0.1:0",
      "--webtransport",
      "127.0.0.1:0",
      "--duration",
      "0.5",
      "--stats-interval",
      "0",
    ],
    { NETCODE_PRIVATE_KEY: KEY },
  );
  assertEquals(code, 0, stderr);
  assertMatch(
    stdout,
    /^webtransport: https:\/\/127\.0\.0\.1:\d+\/netcode certificate sha-256 [0-9a-f]{64} \(generated for development\)$/m,
  );
  assertMatch(
    stdout,
    /^listening on 127\.0\.0\.1:\d+ \(udp\) and 127\.0\.0\.1:\d+ \(webtransport\)/m,
  );
});

Deno.test("netcode client --webtransport echoes through netcode server --webtransport, hash from the flag or from netcode backend", async () => {
  const server = spawn(
    [
      "server",
      "--address",
      "127.0.0.1:0",
      "--webtransport",
      "127.0.0.1:0",
      "--duration",
      "30",
      "--stats-interval",
      "0",
    ],
    { NETCODE_PRIVATE_KEY: KEY },
  );
  let backend: ReturnType<typeof spawn> | undefined;
  try {
    const [, address, hash] = await server.waitFor(
      /^webtransport: https:\/\/(127\.0\.0\.1:\d+)\/netcode certificate sha-256 ([0-9a-f]{64})/,
      10_000,
    );
    const direct = await netcode([
      "client",
      "--webtransport",
      "--server",
      address,
      "--cert-hash",
      hash,
      "--private-key",
      KEY,
      "--packets",
      "20",
      "--size",
      "1200",
    ]);
    assertEquals(direct.code, 0, direct.stdout + direct.stderr);
    assertStringIncludes(direct.stdout, `over WebTransport`);
    assertStringIncludes(direct.stdout, "echoed 20/20 payloads of 1200 bytes");

    backend = spawn(
      [
        "--address",
        "127.0.0.1:0",
        "--webtransport",
        address,
        "--cert-hash",
        hash,
      ],
      { NETCODE_PRIVATE_KEY: KEY },
      new URL("../examples/backend.ts", import.meta.url).pathname,
    );
    const [, tokenUrl] = await backend.waitFor(/^backend: POST (\S+)/, 10_000);
    const viaBackend = await netcode([
      "client",
      "--webtransport",
      "--token-url",
      tokenUrl,
      "--credential",
      "dev-carol",
      "--packets",
      "20",
    ]);
    assertEquals(viaBackend.code, 0, viaBackend.stdout + viaBackend.stderr);
    assertStringIncludes(viaBackend.stdout, `connecting to ${address} over`);
    assertStringIncludes(viaBackend.stdout, "echoed 20/20 payloads");
    await backend.waitFor(/200 for 127\.0\.0\.1: webtransport token/, 5_000);
  } finally {
    backend?.signal("SIGINT");
    server.signal("SIGINT");
  }
  if (backend) assertEquals((await backend.finish()).code, 0);
  const { code, stdout } = await server.finish();
  assertEquals(code, 0, stdout);
});

Deno.test("netcode client refuses --cert-hash without --webtransport", async () => {
  const { code, stderr } = await netcode([
    "client",
    "--cert-hash",
    "00".repeat(32),
  ]);
  assertEquals(code, 2);
  assertStringIncludes(stderr, "--cert-hash goes with --webtransport");
});

Deno.test("netcode server refuses --cert without --key", async () => {
  const { code, stderr } = await netcode([
    "server",
    "--webtransport",
    "127.0.0.1:0",
    "--cert",
    "cert.pem",
  ]);
  assertEquals(code, 2);
  assertStringIncludes(stderr, "--cert and --key go together");
});
