// The conformance prober (cli/probe_server.ts, cli/probe_client.ts): its
// codec against the reference's vectors, every check passing against our
// server and client, and every check failing when a fault-injecting socket
// (tests/_probe_faults.ts) makes our server or client break its rule, with
// every other check still passing. Then the command line, end to end, as
// subprocesses. Timeouts are shortened with the probe's options (1 s
// tokens, a 1.2 s connected phase) so the suites stay short; faults run a
// few suites at a time, each on its own loopback ports.

import { assert, assertEquals, assertStringIncludes } from "./_assert.ts";
import { hex, loadVectors, u64 } from "./_vectors.ts";
import { formatAddress } from "../address.ts";
import { generateKey } from "../crypto.ts";
import { createServer } from "../server.ts";
import { listenUdp } from "../socket.ts";
import {
  CLIENT_CHECKS,
  formatJson,
  formatTable,
  type ProbeReport,
  SERVER_CHECKS,
} from "../cli/_probe_checks.ts";
import {
  keepAliveBody,
  makeToken,
  openPacket,
  readRequest,
  sealPacket,
} from "../cli/_probe_wire.ts";
import { probeServer } from "../cli/probe_server.ts";
import { probeClient } from "../cli/probe_client.ts";
import {
  CLIENT_FAULTS,
  type ClientFault,
  faultyServerSocket,
  inProcessLauncher,
  SERVER_FAULTS,
  type ServerFault,
} from "./_probe_faults.ts";

const PROTOCOL_ID = 0x1122334455667788n;
const MAX_CLIENTS = 16;
const CLI = new URL("../cli/main.ts", import.meta.url).pathname;

/** Runs our echo server (optionally faulty) on loopback while `body` runs. */
async function withServer<T>(
  fault: ServerFault | undefined,
  body: (address: string, privateKey: Uint8Array) => Promise<T>,
): Promise<T> {
  const privateKey = generateKey();
  const inner = listenUdp({ hostname: "127.0.0.1", port: 0, maxQueue: 8192 });
  const socket = fault === undefined
    ? inner
    : faultyServerSocket(inner, fault, {
      protocolId: PROTOCOL_ID,
      privateKey,
      address: inner.address,
    });
  const server = createServer({
    protocolId: PROTOCOL_ID,
    privateKey,
    socket,
    maxClients: MAX_CLIENTS,
  });
  const start = performance.now();
  const timer = setInterval(() => {
    server.update((performance.now() - start) / 1000);
    for (const i of server.connectedClients()) {
      for (let p = server.receive(i); p; p = server.receive(i)) {
        server.send(i, p);
      }
    }
  }, 1000 / 60);
  try {
    return await body(formatAddress(server.address), privateKey);
  } finally {
    clearInterval(timer);
    await server.close();
  }
}

function probeOurServer(fault?: ServerFault): Promise<ProbeReport> {
  return withServer(fault, (address, privateKey) =>
    probeServer({
      address,
      protocolId: PROTOCOL_ID,
      privateKey,
      echo: true,
      maxClients: MAX_CLIENTS,
      timeoutSeconds: 1,
    }));
}

function probeOurClient(fault?: ClientFault): Promise<ProbeReport> {
  return probeClient({
    listen: "127.0.0.1:0",
    protocolId: PROTOCOL_ID,
    privateKey: generateKey(),
    launch: inProcessLauncher(fault),
    timeoutSeconds: 1,
    holdSeconds: 1.2,
    stopAfterSeconds: 0,
  });
}

function statuses(report: ProbeReport): Record<string, string> {
  return Object.fromEntries(report.checks.map((c) => [c.name, c.status]));
}

function explain(report: ProbeReport): string {
  return formatTable(report);
}

/** Asserts that exactly `expected` failed and every other check passed. */
function assertOnlyFails(
  report: ProbeReport,
  expected: string,
  what: string,
): void {
  const failed = report.checks.filter((c) => c.status === "fail").map((c) =>
    c.name
  );
  assertEquals(failed, [expected], `${what}:\n${explain(report)}`);
  const notPassed = report.checks.filter((c) =>
    c.status !== "pass" && c.name !== expected
  )
    .map((c) => c.name);
  assertEquals(
    notPassed,
    [],
    `${what}: the other checks pass:\n${explain(report)}`,
  );
  assertEquals(report.ok, false);
}

/** Runs `run` over `items`, `width` at a time. */
async function inBatches<T>(
  items: readonly T[],
  width: number,
  run: (item: T) => Promise<void>,
): Promise<void> {
  const errors: string[] = [];
  for (let i = 0; i < items.length; i += width) {
    const settled = await Promise.allSettled(
      items.slice(i, i + width).map(run),
    );
    for (const outcome of settled) {
      if (outcome.status === "rejected") {
        errors.push(String(outcome.reason?.message ?? outcome.reason));
      }
    }
  }
  assertEquals(errors.length, 0, errors.join("\n\n"));
}

Deno.test("the probe's packet codec writes the reference's packet vectors byte for byte and reads them", async () => {
  const vectors = await loadVectors();
  assert(vectors.packets && vectors.packets.length >= 8);
  for (const v of vectors.packets) {
    const f = v.fields;
    let body: Uint8Array;
    if (v.type === 2 || v.type === 3) {
      body = new Uint8Array(308);
      new DataView(body.buffer).setBigUint64(
        0,
        u64(f.challenge_token_sequence!),
        true,
      );
      body.set(hex(f.challenge_token_data!), 8);
    } else if (v.type === 4) {
      body = keepAliveBody(f.client_index!, f.max_clients!);
    } else if (v.type === 5) body = hex(f.payload!);
    else body = new Uint8Array(0);
    const packet = hex(v.packet);
    const key = hex(v.key);
    const protocolId = u64(v.protocol_id);
    assertEquals(
      sealPacket(v.type, u64(v.sequence), body, key, protocolId),
      packet,
      v.name,
    );
    const opened = openPacket(packet, key, protocolId);
    assertEquals(opened?.order, "standard", v.name);
    assertEquals(opened?.body, body, v.name);
    // The other nonce order makes other bytes, which read back as "swapped"
    // (for sequence 0 both orders are twelve zero bytes).
    if (u64(v.sequence) === 0n) continue;
    const swapped = sealPacket(
      v.type,
      u64(v.sequence),
      body,
      key,
      protocolId,
      "swapped",
    );
    assert(swapped.toHex() !== packet.toHex(), v.name);
    assertEquals(
      openPacket(swapped, key, protocolId)?.order,
      "swapped",
      v.name,
    );
  }
});

Deno.test("the probe reads a connection request field by field and names each problem", () => {
  const privateKey = generateKey();
  const address = { hostname: "127.0.0.1", port: 40000 };
  const base = {
    serverAddresses: [address],
    clientId: 7n,
    protocolId: PROTOCOL_ID,
    privateKey,
    timeoutSeconds: 0,
    expireSeconds: 30,
  };
  const good = readRequest(
    makeToken(base).request,
    PROTOCOL_ID,
    privateKey,
    Date.now() / 1000,
    address,
  );
  assertEquals(good.problems, []);
  assertEquals(good.token?.timeoutSeconds, 0, "a timeout of 0 can be written");
  const expired = readRequest(
    makeToken({ ...base, expireSeconds: -60 }).request,
    PROTOCOL_ID,
    privateKey,
    Date.now() / 1000,
    address,
  );
  assertEquals(expired.problems.length, 1);
  assertStringIncludes(expired.problems[0], "expired");
  assert(expired.token !== undefined, "an expired token still decrypts");
  const wrong = readRequest(
    makeToken({
      ...base,
      serverAddresses: [{ hostname: "127.0.0.1", port: 1 }],
    }).request.subarray(0, 1077),
    PROTOCOL_ID + 1n,
    privateKey,
    Date.now() / 1000,
    address,
  );
  assertEquals(wrong.problems.length, 3, wrong.problems.join("; "));
  assertStringIncludes(wrong.problems[0], "1077 bytes, not 1078");
  assertStringIncludes(wrong.problems[1], "protocol id");
  assertStringIncludes(wrong.problems[2], "does not decrypt");
});

function assertAllPass(report: ProbeReport, names: readonly string[]): void {
  assertEquals(report.checks.map((c) => c.name), names);
  assertEquals(
    report.checks.filter((c) => c.status !== "pass").map((c) => c.name),
    [],
    explain(report),
  );
  assert(report.ok);
}

Deno.test("probeServer() passes our server on every check, and fails exactly the check each server fault breaks", async () => {
  const faults = Object.keys(SERVER_FAULTS) as ServerFault[];
  assertEquals(
    new Set(Object.values(SERVER_FAULTS)).size,
    SERVER_CHECKS.length,
    "every server check has a fault",
  );
  await inBatches([undefined, ...faults], 8, async (fault) => {
    const report = await probeOurServer(fault);
    assertEquals(report.target, "server");
    if (fault === undefined) {
      assertAllPass(
        report,
        SERVER_CHECKS.map((c) => c.name),
      );
    } else assertOnlyFails(report, SERVER_FAULTS[fault], fault);
  });
});

Deno.test("probeClient() passes our client on every check, and fails exactly the check each client fault breaks", async () => {
  const faults = Object.keys(CLIENT_FAULTS) as ClientFault[];
  assertEquals(
    new Set(Object.values(CLIENT_FAULTS)).size,
    CLIENT_CHECKS.length,
    "every client check has a fault",
  );
  await inBatches([undefined, ...faults], 12, async (fault) => {
    const report = await probeOurClient(fault);
    assertEquals(report.target, "client");
    if (fault === undefined) {
      assertAllPass(
        report,
        CLIENT_CHECKS.map((c) => c.name),
      );
    } else assertOnlyFails(report, CLIENT_FAULTS[fault], fault);
  });
});

Deno.test("probe reports skip checks by name and refuse unknown names", async () => {
  const report = await withServer(
    undefined,
    (address, privateKey) =>
      probeServer({
        address,
        protocolId: PROTOCOL_ID,
        privateKey,
        timeoutSeconds: 1,
        skip: ["timeout-zero"],
      }),
  );
  const byName = statuses(report);
  assertEquals(byName["timeout-zero"], "not_applicable");
  assertEquals(
    byName["payload-echo"],
    "not_applicable",
    "no --echo: no payloads",
  );
  assertEquals(
    byName["denied-when-full"],
    "not_applicable",
    "no --max-clients",
  );
  assertEquals(byName["handshake"], "pass");
  assert(report.ok, "not applicable checks do not fail a report");
  const table = formatTable(report);
  assertStringIncludes(table, "timeout-zero");
  assertStringIncludes(table, "skipped with --skip");
  const json = JSON.parse(formatJson(report));
  assertEquals(json.tool, "netcode probe");
  assertEquals(json.summary.notApplicable, 4);
  let error: unknown;
  try {
    await probeServer({
      address: "127.0.0.1:9",
      protocolId: 1n,
      privateKey: generateKey(),
      skip: ["nope"],
    });
  } catch (e) {
    error = e;
  }
  assert(
    error instanceof RangeError && error.message.includes('Cannot skip "nope"'),
    String(error),
  );
});

// ---------------------------------------------------------------------------
// The command line, as subprocesses.

async function netcode(args: string[], env: Record<string, string> = {}) {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--unstable-net", CLI, ...args],
    env: { NO_COLOR: "1", NETCODE_PRIVATE_KEY: "", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return {
    code,
    stdout: decoder.decode(stdout),
    stderr: decoder.decode(stderr),
  };
}

Deno.test("netcode probe --help lists every check, and bad command lines exit 2", async () => {
  const server = await netcode(["probe", "server", "--help"]);
  assertEquals(server.code, 0);
  assertStringIncludes(server.stdout, "Usage: netcode probe server ADDRESS");
  for (const check of SERVER_CHECKS) {
    assertStringIncludes(server.stdout, `  ${check.name} `);
  }
  const client = await netcode(["probe", "client", "--help"]);
  assertEquals(client.code, 0);
  assertStringIncludes(client.stdout, "{token}");
  for (const check of CLIENT_CHECKS) {
    assertStringIncludes(client.stdout, `  ${check.name} `);
  }
  const top = await netcode(["--help"]);
  assertStringIncludes(top.stdout, "  probe ");
  for (
    const [args, message] of [
      [["probe", "server"], "give the server's ADDRESS"],
      [
        ["probe", "client", "--listen", "127.0.0.1:0"],
        "give the client's command after --",
      ],
      [["probe", "client", "--", "true"], "--listen"],
      [
        ["probe", "server", "127.0.0.1:40000", "--skip", "nope"],
        'no check named "nope"',
      ],
      [["probe", "frobnicate"], 'expected "server" or "client"'],
    ] as const
  ) {
    const result = await netcode([...args]);
    assertEquals(result.code, 2, `${args.join(" ")}: ${result.stderr}`);
    assertStringIncludes(result.stderr, message);
  }
});

Deno.test("netcode probe server and probe client pass netcode server and netcode client over loopback, with --json", async () => {
  const key = "0f".repeat(32);
  const decoder = new TextDecoder();
  const server = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--unstable-net",
      CLI,
      "server",
      "--address",
      "127.0.0.1:0",
      "--max-clients",
      "16",
      "--duration",
      "40",
      "--stats-interval",
      "0",
      "--transport",
      "deno",
    ],
    env: { NETCODE_PRIVATE_KEY: key, NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stdout = server.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  let address: string | undefined;
  const deadline = Date.now() + 15_000;
  while (address === undefined && Date.now() < deadline) {
    const { value, done } = await stdout.read();
    if (done) break;
    text += value;
    address = /listening on (127\.0\.0\.1:\d+)/.exec(text)?.[1];
  }
  try {
    assert(address, text);
    const [probedServer, probedClient] = await Promise.all([
      netcode([
        "probe",
        "server",
        address,
        "--echo",
        "--max-clients",
        "16",
        "--timeout",
        "1",
        "--json",
      ], { NETCODE_PRIVATE_KEY: key }),
      netcode([
        "probe",
        "client",
        "--listen",
        "127.0.0.1:0",
        "--timeout",
        "1",
        "--private-key",
        key,
        "--json",
        "--",
        Deno.execPath(),
        "run",
        "-A",
        "--unstable-net",
        CLI,
        "client",
        "--token-file",
        "{token}",
        "--packets",
        "150",
      ]),
    ]);
    const serverReport = JSON.parse(probedServer.stdout);
    assertEquals(
      probedServer.code,
      0,
      probedServer.stdout + probedServer.stderr,
    );
    assertEquals(serverReport.ok, true);
    assertEquals(serverReport.summary, {
      pass: SERVER_CHECKS.length,
      fail: 0,
      notApplicable: 0,
    });
    const clientReport = JSON.parse(probedClient.stdout);
    assertEquals(
      probedClient.code,
      0,
      probedClient.stdout + probedClient.stderr,
    );
    assertEquals(clientReport.summary, {
      pass: CLIENT_CHECKS.length,
      fail: 0,
      notApplicable: 0,
    });
    assertEquals(clientReport.checks[0].name, "request");
    assertEquals(typeof clientReport.checks[0].rule, "string");
  } finally {
    try {
      server.kill("SIGINT");
    } catch {
      // exited
    }
    await stdout.cancel();
    decoder.decode();
    await server.status;
    await server.stderr.cancel().catch(() => {});
  }
});

Deno.test("netcode probe server exits 1 with a table naming the failure when nothing answers", async () => {
  const silent = listenUdp("127.0.0.1:0");
  try {
    const result = await netcode([
      "probe",
      "server",
      formatAddress(silent.address),
      "--timeout",
      "1",
      "--wait",
      "0.2",
      "--private-key",
      "0f".repeat(32),
    ]);
    assertEquals(result.code, 1, result.stderr);
    assertStringIncludes(result.stdout, "handshake");
    assertStringIncludes(result.stdout, "FAIL");
    assertStringIncludes(result.stdout, "no challenge within");
    assertStringIncludes(result.stdout, "NOT CONFORMING");
  } finally {
    silent.close();
  }
});
