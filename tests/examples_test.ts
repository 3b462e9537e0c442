// The examples, in process: the web backend's handler (no network, injected
// clock), the flag parsers, and the echo server, client and demo over
// loopback UDP on ports the system picks. Every run is bounded.

import {
  assert,
  assertEquals,
  assertGreater,
  assertMatch,
  assertNotEquals,
  assertStringIncludes,
  assertThrows,
} from "./_assert.ts";
import { formatAddress } from "../address.ts";
import { generateCertificate } from "../certificate.ts";
import { generateKey } from "../crypto.ts";
import {
  decryptPrivateConnectToken,
  generateConnectToken,
  readConnectToken,
  readPrivateConnectToken,
} from "../token.ts";
import {
  isUsageError,
  parseAddressFlag,
  parseFlags,
  parseHexFlag,
  parseIntegerFlag,
  parseKeyFlag,
  parseTimeoutFlag,
  parseUint64Flag,
} from "../cli/_args.ts";
import { percentile } from "../cli/_common.ts";
import {
  type BackendOptions,
  clientIdForUser,
  createBackendHandler,
  startBackend,
} from "../cli/backend.ts";
import { runEchoClient } from "../cli/client.ts";
import { runDemo } from "../examples/demo.ts";
import { startEchoServer } from "../cli/server.ts";
import { listenWebTransport } from "../socket_webtransport.ts";
import { ffiTransportUnavailable } from "../socket_ffi.ts";

const PROTOCOL_ID = 0x1122334455667788n;
const SERVERS = ["127.0.0.1:40000", "[::1]:40000"];
const START_MS = 1_800_000_000_000;

function backend(overrides: Partial<BackendOptions> = {}) {
  const clock = { ms: START_MS };
  const lines: string[] = [];
  const privateKey = generateKey();
  const handler = createBackendHandler({
    serverAddresses: SERVERS,
    protocolId: PROTOCOL_ID,
    privateKey,
    now: () => clock.ms,
    log: (line) => lines.push(line),
    ...overrides,
  });
  return { handler, clock, lines, privateKey };
}

function request(
  credential?: string,
  init: { method?: string; path?: string } = {},
): Request {
  return new Request(`http://127.0.0.1:8080${init.path ?? "/token"}`, {
    method: init.method ?? "POST",
    headers: credential === undefined
      ? {}
      : { authorization: `Bearer ${credential}` },
  });
}

function from(hostname: string) {
  return {
    remoteAddr: { transport: "tcp" as const, hostname, port: 54321 },
  };
}

Deno.test("backend answers 401 without a credential", async () => {
  const { handler } = backend();
  const response = await handler(request(), from("127.0.0.1"));
  assertEquals(response.status, 401);
  assertEquals(
    response.headers.get("www-authenticate"),
    'Bearer realm="netcode"',
  );
  assertStringIncludes((await response.json()).error, "Bearer");
});

Deno.test("backend answers 401 for an unknown credential", async () => {
  const { handler, lines } = backend();
  for (const credential of ["dev-mallory", "alice", "dev-alice-x"]) {
    const response = await handler(request(credential), from("127.0.0.1"));
    assertEquals(response.status, 401);
    assertEquals((await response.json()).error, "unknown credential");
  }
  // The credential is not logged.
  assert(lines.every((line) => !line.includes("mallory")));
});

Deno.test("backend issues a token for the configured servers", async () => {
  const { handler, privateKey, lines } = backend({
    expireSeconds: 45,
    timeoutSeconds: 7,
  });
  const response = await handler(request("dev-alice"), from("127.0.0.1"));
  assertEquals(response.status, 200);
  assertEquals(response.headers.get("content-type"), "application/json");
  assertEquals(response.headers.get("cache-control"), "no-store");
  const body = await response.json();
  assertEquals(body.user, "alice");
  assertEquals(body.servers, SERVERS);
  assertEquals(body.expiresAt, START_MS / 1000 + 45);
  assertEquals(BigInt(body.clientId), await clientIdForUser("alice"));

  const bytes = Uint8Array.fromBase64(body.connectToken);
  assertEquals(bytes.length, 2048);
  const token = readConnectToken(bytes);
  assert(token, "readConnectToken accepts the token");
  assertEquals(token.serverAddresses.map(formatAddress), SERVERS);
  assertEquals(token.protocolId, PROTOCOL_ID);
  assertEquals(token.createTimestamp, BigInt(START_MS / 1000));
  assertEquals(token.expireTimestamp, BigInt(START_MS / 1000 + 45));
  assertEquals(token.timeoutSeconds, 7);

  // The private part opens with the private key and names the user's id.
  const encrypted = token.encryptedPrivateToken.slice();
  assert(
    decryptPrivateConnectToken(
      encrypted,
      token.protocolId,
      token.expireTimestamp,
      token.nonce,
      privateKey,
    ),
  );
  const privateToken = readPrivateConnectToken(encrypted);
  assertEquals(privateToken?.clientId, await clientIdForUser("alice"));
  assertEquals(privateToken?.serverAddresses.map(formatAddress), SERVERS);

  // The private key is never logged.
  const keyHex = privateKey.toHex();
  assertEquals(lines.filter((line) => line.includes(keyHex)), []);
  assertEquals(lines.length, 1);
  assertStringIncludes(lines[0], "alice");
});

Deno.test("backend gives each user their own client id", async () => {
  const { handler } = backend();
  const ids = new Map<string, string>();
  for (const credential of ["dev-alice", "dev-bob", "dev-carol", "dev-alice"]) {
    const response = await handler(request(credential), from("127.0.0.1"));
    const body = await response.json();
    if (ids.has(body.user)) assertEquals(ids.get(body.user), body.clientId);
    ids.set(body.user, body.clientId);
  }
  assertEquals(ids.size, 3);
  assertEquals(new Set(ids.values()).size, 3);
  assertNotEquals(
    await clientIdForUser("alice"),
    await clientIdForUser("bob"),
  );
  // First 8 bytes of SHA-256("alice"), big-endian.
  assertEquals(await clientIdForUser("alice"), 0x2bd806c97f0e00afn);
});

Deno.test("backend rate-limits each IP with 429 and Retry-After", async () => {
  const { handler, clock } = backend({ rateLimitPerMinute: 3 });
  for (let i = 0; i < 3; i++) {
    const response = await handler(request("dev-bob"), from("127.0.0.1"));
    assertEquals(response.status, 200);
    await response.body?.cancel();
  }
  const limited = await handler(request("dev-bob"), from("127.0.0.1"));
  assertEquals(limited.status, 429);
  assertEquals(limited.headers.get("retry-after"), "20"); // 3 a minute
  assertEquals((await limited.json()).error, "too many requests");
  // Failed requests count too, so credentials cannot be guessed quickly.
  const guessing = await handler(request("dev-eve"), from("127.0.0.1"));
  assertEquals(guessing.status, 429);
  await guessing.body?.cancel();

  // Another IP has its own budget.
  const other = await handler(request("dev-bob"), from("10.0.0.2"));
  assertEquals(other.status, 200);
  await other.body?.cancel();

  // The budget refills with time.
  clock.ms += 19_000;
  const early = await handler(request("dev-bob"), from("127.0.0.1"));
  assertEquals(early.status, 429);
  assertEquals(early.headers.get("retry-after"), "1");
  await early.body?.cancel();
  clock.ms += 1_000;
  const later = await handler(request("dev-bob"), from("127.0.0.1"));
  assertEquals(later.status, 200);
  await later.body?.cancel();
});

Deno.test("backend answers 404 and 405 off its one route", async () => {
  const { handler } = backend();
  const notFound = await handler(
    request("dev-alice", { path: "/other" }),
    from("127.0.0.1"),
  );
  assertEquals(notFound.status, 404);
  await notFound.body?.cancel();
  const wrongMethod = await handler(
    request("dev-alice", { method: "GET" }),
    from("127.0.0.1"),
  );
  assertEquals(wrongMethod.status, 405);
  assertEquals(wrongMethod.headers.get("allow"), "POST");
  await wrongMethod.body?.cancel();
});

Deno.test("backend hands browser players WebTransport servers, URLs and current hashes", async () => {
  let hashes = [new Uint8Array(32).fill(1)];
  const { handler } = backend({
    webTransportServers: [
      { address: "127.0.0.1:40001", certificateHashes: () => hashes },
      {
        address: "[::1]:40001",
        certificateHashes: [new Uint8Array(32).fill(3)],
        path: "/game",
      },
    ],
  });
  const answer = async () => {
    const response = await handler(
      request("dev-bob", { path: "/token?transport=webtransport" }),
      from("127.0.0.1"),
    );
    assertEquals(response.status, 200);
    return await response.json();
  };
  const body = await answer();
  assertEquals(body.servers, ["127.0.0.1:40001", "[::1]:40001"]);
  const token = readConnectToken(Uint8Array.fromBase64(body.connectToken));
  assertEquals(token?.serverAddresses.map(formatAddress), body.servers);
  assertEquals(body.webTransport, [
    {
      url: "https://127.0.0.1:40001/netcode",
      certificateHashes: ["01".repeat(32)],
    },
    { url: "https://[::1]:40001/game", certificateHashes: ["03".repeat(32)] },
  ]);
  // A rotation: the next hash is handed out from the next request on.
  hashes = [hashes[0], new Uint8Array(32).fill(2)];
  assertEquals((await answer()).webTransport[0].certificateHashes, [
    "01".repeat(32),
    "02".repeat(32),
  ]);
  // UDP players still get the UDP servers, and no WebTransport field.
  const udp = await (await handler(request("dev-bob"), from("127.0.0.1")))
    .json();
  assertEquals(udp.servers, SERVERS);
  assertEquals(udp.webTransport, undefined);
});

Deno.test("backend refuses a transport it has no servers for with 400", async () => {
  const { handler } = backend();
  for (const transport of ["webtransport", "carrier-pigeon"]) {
    const response = await handler(
      request("dev-bob", { path: `/token?transport=${transport}` }),
      from("127.0.0.1"),
    );
    assertEquals(response.status, 400);
    assertStringIncludes((await response.json()).error, "transport");
  }
});

Deno.test("backend serves its assets on GET without spending the rate limit", async () => {
  const { handler } = backend({
    rateLimitPerMinute: 1,
    assets: {
      "/": { contentType: "text/html", body: "<p>hi</p>" },
      "/browser.js": {
        contentType: "text/javascript",
        body: new TextEncoder().encode("export {};"),
      },
    },
  });
  for (let i = 0; i < 5; i++) {
    const page = await handler(
      request(undefined, { method: "GET", path: "/" }),
      from("127.0.0.1"),
    );
    assertEquals(page.headers.get("content-type"), "text/html");
    assertEquals(await page.text(), "<p>hi</p>");
  }
  const script = await handler(
    request(undefined, { method: "GET", path: "/browser.js" }),
    from("127.0.0.1"),
  );
  assertEquals(await script.text(), "export {};");
  // The one request a minute is still there for the token.
  const token = await handler(request("dev-alice"), from("127.0.0.1"));
  assertEquals(token.status, 200);
  await token.body?.cancel();
  const posted = await handler(
    request("dev-alice", { path: "/" }),
    from("127.0.0.1"),
  );
  assertEquals(posted.status, 429);
  await posted.body?.cancel();
});

Deno.test("backend refuses a bad configuration at once", () => {
  assertThrows(() => backend({ privateKey: new Uint8Array(16) }), RangeError);
  assertThrows(() => backend({ serverAddresses: ["nowhere"] }), TypeError);
  assertThrows(
    () =>
      backend({
        webTransportServers: [{ address: "nowhere", certificateHashes: [] }],
      }),
    TypeError,
  );
});

Deno.test("flag parsers accept good values and name the flag otherwise", () => {
  assertEquals(parseUint64Flag("--id", "0x1122334455667788"), PROTOCOL_ID);
  assertEquals(parseUint64Flag("--id", "1234605616436508552"), PROTOCOL_ID);
  assertEquals(parseUint64Flag("--id", "0xffffffffffffffff"), 2n ** 64n - 1n);
  for (const bad of ["", "-1", "0x", "12a", "0x10000000000000000"]) {
    const error = assertThrows(() => parseUint64Flag("--id", bad));
    assert(isUsageError(error));
    assertStringIncludes(error.message, "--id");
  }
  assertEquals(parseIntegerFlag("--n", "42", 0, 100), 42);
  assertThrows(() => parseIntegerFlag("--n", "4.5", 0, 100), Error, "--n");
  assertThrows(() => parseIntegerFlag("--n", "101", 0, 100), Error, "0..100");
  assertEquals(parseKeyFlag("--key", "ab".repeat(32)).length, 32);
  const secret = "g".repeat(64);
  const error = assertThrows(() => parseKeyFlag("--key", secret));
  assert(!error.message.includes(secret), "the message hides the value");
  assertEquals(parseHexFlag("--data", "0x0102", 4), new Uint8Array([1, 2]));
  assertThrows(() => parseHexFlag("--data", "010203", 2), Error, "2 allowed");
  assertEquals(parseAddressFlag("--server", "[::1]:5").hostname, "::1");
  assertThrows(
    () => parseAddressFlag("--server", "127.0.0.1"),
    Error,
    "needs a port",
  );
  assertEquals(parseAddressFlag("--address", "127.0.0.1:0", true).port, 0);

  const spec = { a: { type: "string" }, b: { type: "boolean" } } as const;
  assertEquals({ ...parseFlags(["--a", "x", "--b"], spec) }, {
    a: "x",
    b: true,
  });
  assertThrows(() => parseFlags(["--c"], spec), Error, "unknown flag --c");
  assertThrows(() => parseFlags(["x"], spec), Error, 'unexpected argument "x"');
  assertThrows(() => parseFlags(["--a"], spec), Error, "--a");
});

Deno.test("parseFlags() takes negative numbers as values, in both forms, and keeps the parser's hint", () => {
  const spec = { expire: { type: "string" }, b: { type: "boolean" } } as const;
  assertEquals(parseFlags(["--expire", "-1"], spec).expire, "-1");
  assertEquals(parseFlags(["--expire=-1"], spec).expire, "-1");
  assertEquals(parseFlags(["--expire", "-0.5", "--b"], spec).expire, "-0.5");
  // A flag after a string flag is still a missing value, hint and all.
  const error = assertThrows(() => parseFlags(["--expire", "--b"], spec));
  assert(isUsageError(error));
  assertStringIncludes(error.message, "--expire=-XYZ");
});

Deno.test("parseAddressFlag() refuses an address without a port even where port 0 is allowed", () => {
  for (const text of ["127.0.0.1", "::1", "[::1]"]) {
    assertThrows(
      () => parseAddressFlag("--address", text, true),
      Error,
      "needs a port",
    );
  }
  assertEquals(parseAddressFlag("--address", "[::1]:0", true).port, 0);
});

Deno.test("parseTimeoutFlag() refuses 0 and says to use -1", () => {
  assertEquals(parseTimeoutFlag("--timeout", "-1"), -1);
  assertEquals(parseTimeoutFlag("--timeout", "9"), 9);
  assertThrows(
    () => parseTimeoutFlag("--timeout", "0"),
    Error,
    "use -1 for no timeout",
  );
});

Deno.test("backend answers 413 to a large body without reading all of it", async () => {
  const { handler, lines } = backend();
  const big = new Request("http://127.0.0.1:8080/token", {
    method: "POST",
    headers: { authorization: "Bearer dev-alice" },
    body: new Uint8Array(20 << 20),
  });
  const response = await handler(big, from("127.0.0.1"));
  assertEquals(response.status, 413);
  assertStringIncludes((await response.json()).error, "4096 bytes");
  // Streamed without a length: read only until past the limit.
  let pulled = 0;
  const chunk = new Uint8Array(1024);
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      pulled++;
      if (pulled > 20_000) controller.close();
      else controller.enqueue(chunk);
    },
  });
  const streamed = await handler(
    new Request("http://127.0.0.1:8080/token", {
      method: "POST",
      headers: { authorization: "Bearer dev-alice" },
      body: stream,
    }),
    from("127.0.0.2"),
  );
  assertEquals(streamed.status, 413);
  assert(pulled < 10, `pulled ${pulled} chunks of a 20 MB stream`);
  assert(lines.some((line) => line.startsWith("413 for 127.0.0.1")));
  // A small body is still fine.
  const small = await handler(
    new Request("http://127.0.0.1:8080/token", {
      method: "POST",
      headers: { authorization: "Bearer dev-alice" },
      body: "{}",
    }),
    from("127.0.0.3"),
  );
  assertEquals(small.status, 200);
});

Deno.test("startBackend() names the address it cannot listen on", () => {
  const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    assertThrows(
      () =>
        startBackend({
          address: `127.0.0.1:${taken.addr.port}`,
          serverAddresses: SERVERS,
          protocolId: PROTOCOL_ID,
          privateKey: generateKey(),
        }),
      Deno.errors.AddrInUse,
      `Cannot listen on 127.0.0.1:${taken.addr.port}`,
    );
  } finally {
    taken.close();
  }
});

Deno.test("percentile takes the nearest rank", () => {
  assert(Number.isNaN(percentile([], 50)));
  assertEquals(percentile([5], 99), 5);
  const values = Array.from({ length: 100 }, (_, i) => i + 1);
  assertEquals(percentile(values, 50), 50);
  assertEquals(percentile(values, 99), 99);
  assertEquals(percentile(values, 100), 100);
});

Deno.test("echo server and client exchange payloads over loopback UDP", async () => {
  const privateKey = generateKey();
  const lines: string[] = [];
  const echo = startEchoServer({
    addresses: ["127.0.0.1:0"],
    privateKey,
    maxClients: 4,
    metricsPort: 0,
    statsIntervalSeconds: 0,
    durationSeconds: 20, // bound, in case the test fails half-way
    log: (line) => lines.push(line),
  });
  try {
    const token = generateConnectToken({
      serverAddresses: echo.addresses,
      clientId: 7n,
      protocolId: PROTOCOL_ID,
      privateKey,
    });
    const report = await runEchoClient({
      token,
      packets: 30,
      size: 1200,
      timeoutSeconds: 10,
      log: () => {},
    });
    assert(report.ok, report.failure);
    assertEquals(report.echoed, 30);
    assertEquals(report.lost, 0);
    assertEquals(report.corrupt, 0);
    assertEquals(report.finalStateName, "connected");
    assertGreater(report.connectMs, 0);
    assert(report.rttP50Ms <= report.rttP99Ms);
    assertEquals(echo.counters.payloadsEchoed, 30);
    assertEquals(echo.counters.bytesEchoed, 30 * 1200);

    assert(echo.metricsUrl);
    const metrics = await (await fetch(echo.metricsUrl)).text();
    assertStringIncludes(metrics, "# TYPE netcode_server_clients gauge");
    assertStringIncludes(metrics, "netcode_server_payloads_echoed_total 30");
    assertStringIncludes(
      metrics,
      'netcode_server_packets_received_total{type="payload"} 30',
    );
    assertStringIncludes(metrics, "netcode_server_connects_total 1");
    const notFound = await fetch(echo.metricsUrl.replace("/metrics", "/x"));
    assertEquals(notFound.status, 404);
    await notFound.body?.cancel();
  } finally {
    await echo.stop();
  }
  const connect = lines.find((line) => line.startsWith("connect:"));
  assertStringIncludes(connect ?? "", "client 0x0000000000000007");
  const disconnect = lines.find((line) => line.startsWith("disconnect:"));
  assertStringIncludes(disconnect ?? "", "client disconnected, echoed 30");
  assertStringIncludes(lines.at(-1)!, "stopped after");
});

Deno.test("echo server metrics: socket and WebTransport counters, GET and HEAD only, on a chosen address", async () => {
  const certificate = await generateCertificate();
  const echo = startEchoServer({
    addresses: ["127.0.0.1:0"],
    privateKey: generateKey(),
    metricsAddress: "127.0.0.1:0",
    statsIntervalSeconds: 0,
    durationSeconds: 20,
    log: () => {},
    webTransport: listenWebTransport({ address: "127.0.0.1:0", certificate }),
  });
  try {
    assert(echo.metricsUrl);
    assert(echo.metricsUrl.startsWith("http://127.0.0.1:"), echo.metricsUrl);
    // One datagram larger than any netcode packet: counted as oversized.
    const sender = Deno.listenDatagram({
      transport: "udp",
      hostname: "127.0.0.1",
      port: 0,
    });
    const socket = formatAddress(echo.addresses[0]);
    let metrics = "";
    try {
      await sender.send(new Uint8Array(1500), {
        transport: "udp",
        ...echo.addresses[0],
      });
      for (let i = 0; i < 100; i++) {
        metrics = await (await fetch(echo.metricsUrl)).text();
        if (
          metrics.includes(`netcode_udp_oversized_total{socket="${socket}"} 1`)
        ) break;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    } finally {
      sender.close();
    }
    assertStringIncludes(
      metrics,
      `netcode_udp_oversized_total{socket="${socket}"} 1`,
    );
    assertStringIncludes(
      metrics,
      `netcode_udp_send_dropped_total{socket="${socket}"} 0`,
    );
    assertStringIncludes(metrics, "netcode_webtransport_sessions 0");
    assertStringIncludes(
      metrics,
      'netcode_webtransport_events_total{event="sessionsRefused"} 0',
    );
    const head = await fetch(echo.metricsUrl, { method: "HEAD" });
    assertEquals(head.status, 200);
    assertEquals(await head.text(), "");
    const post = await fetch(echo.metricsUrl, { method: "POST" });
    assertEquals(post.status, 405);
    assertEquals(post.headers.get("allow"), "GET, HEAD");
    await post.body?.cancel();
  } finally {
    await echo.stop();
  }
  assertThrows(
    () =>
      startEchoServer({
        privateKey: generateKey(),
        metricsPort: 0,
        metricsAddress: "127.0.0.1:0",
      }),
    TypeError,
    "not both",
  );
});

Deno.test("the README example runs with exactly the permissions the README states", async () => {
  const readme = await Deno.readTextFile(
    new URL("../README.md", import.meta.url),
  );
  const example = /## Example\n\n```ts\n([\s\S]*?)```/.exec(readme)?.[1];
  assert(example, "README has an Example section with a ts block");
  const command = /deno run ((?:--[\w-]+(?:=\S+)? )+)example\.ts/.exec(readme);
  assert(command, "README says how to run example.ts");
  const flags = command[1].trim().split(" ");
  assert(!flags.includes("-A") && !flags.includes("--allow-all"));
  const dir = await Deno.makeTempDir();
  try {
    const mod = new URL("../mod.ts", import.meta.url).href;
    await Deno.writeTextFile(
      `${dir}/example.ts`,
      example.replace('"jsr:@netcode/netcode"', JSON.stringify(mod)),
    );
    const run = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--config",
        new URL("../deno.json", import.meta.url).pathname,
        ...flags,
        "example.ts",
      ],
      cwd: dir,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(run.stderr);
    assertEquals(run.code, 0, stderr);
    assertStringIncludes(
      new TextDecoder().decode(run.stdout),
      "echo Uint8Array(3) [ 1, 2, 3 ]",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("echo server disconnects its clients when it stops", async () => {
  const privateKey = generateKey();
  const echo = startEchoServer({
    addresses: ["127.0.0.1:0"],
    privateKey,
    statsIntervalSeconds: 0,
    durationSeconds: 20,
    log: () => {},
  });
  const token = generateConnectToken({
    serverAddresses: echo.addresses,
    clientId: 8n,
    protocolId: PROTOCOL_ID,
    privateKey,
  });
  const running = runEchoClient({
    token,
    packets: 10_000,
    timeoutSeconds: 10,
    log: () => {},
  });
  while (echo.counters.payloadsEchoed < 5) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  await echo.stop("test");
  const report = await running;
  assert(!report.ok);
  // Told by the disconnect packets, not by a 5 s timeout.
  assertEquals(report.failure, "connection lost: disconnected");
  assertEquals(echo.counters.disconnects.serverDisconnected, 1);
});

Deno.test("echo client fails with the client state when nobody answers", async () => {
  const token = generateConnectToken({
    serverAddresses: ["127.0.0.1:9"], // discard port: nobody answers
    clientId: 9n,
    protocolId: PROTOCOL_ID,
    privateKey: generateKey(),
    timeoutSeconds: 1,
  });
  const report = await runEchoClient({ token, packets: 5, log: () => {} });
  assert(!report.ok);
  assert(!report.connected);
  assertEquals(report.sent, 0);
  assertEquals(report.finalStateName, "connection request timed out");
  assertEquals(
    report.failure,
    "could not connect: connection request timed out",
  );
});

Deno.test("demo runs the token flow end to end", async () => {
  const lines: string[] = [];
  const report = await runDemo({
    clients: 2,
    packets: 20,
    timeoutSeconds: 15,
    log: (line) => lines.push(line),
  });
  assert(report.ok, [...report.problems, ...lines].join("\n"));
  assertEquals(Object.keys(report.clients).sort(), ["alice", "bob"]);
  assertEquals(lines.at(-1), "ok");
  assert(lines.some((line) => line.includes("401 for 127.0.0.1")));
  assert(lines.some((line) => line.includes("40/40 echoed")));
});

Deno.test("echo server says which transport it runs on, and /metrics shows the kernel's drops at its port", async () => {
  for (const transport of ["ffi", "deno"] as const) {
    if (transport === "ffi" && ffiTransportUnavailable() !== undefined) {
      console.log("skipped the FFI case: FFI transport unavailable");
      continue;
    }
    const lines: string[] = [];
    const echo = startEchoServer({
      addresses: ["127.0.0.1:0"],
      privateKey: generateKey(),
      transport,
      metricsPort: 0,
      statsIntervalSeconds: 0,
      durationSeconds: 20,
      log: (line) => lines.push(line),
    });
    try {
      const line = lines.find((text) => text.startsWith("transport: "));
      assert(line, lines.join("\n"));
      if (transport === "ffi") {
        assertMatch(
          line,
          /^transport: ffi \(recvmmsg\/sendmmsg\), kernel buffers: receive \d+ bytes, send \d+ bytes/,
        );
      } else {
        assertStringIncludes(line, "transport: Deno.listenDatagram");
      }
      const metrics = await (await fetch(echo.metricsUrl!)).text();
      assertMatch(
        metrics,
        new RegExp(
          `netcode_udp_kernel_drops_total\\{socket="${
            formatAddress(echo.addresses[0])
          }"\\} \\d+`,
        ),
      );
    } finally {
      await echo.stop();
    }
  }
});
