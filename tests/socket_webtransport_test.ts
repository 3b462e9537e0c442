// The WebTransport transport on loopback, with Deno's own WebTransport client:
// a server for UDP and WebTransport players at once, payload limits, session
// churn, idle timeouts, garbage datagrams, limits and certificate rotation.
// Netcode time is driven by hand; QUIC runs on real time, so waits are
// bounded polls.

import {
  assert,
  assertEquals,
  assertGreater,
  assertRejects,
  assertStrictEquals,
  assertThrows,
} from "./_assert.ts";
import { token } from "./_harness.ts";
import {
  connectAndEcho,
  PRIVATE_KEY,
  PROTOCOL_ID,
  stepUntil,
  yieldToSockets,
} from "./_loopback.ts";
import { formatAddress } from "../address.ts";
import { generateCertificate, readCertificate } from "../certificate.ts";
import { ClientState, createClient } from "../client.ts";
import { createServer, type Server } from "../server.ts";
import {
  connectWebTransport,
  listenWebTransport,
  type WebTransportServerSocket,
} from "../socket_webtransport.ts";

const certificate = await generateCertificate();
const WAIT_MS = 5000;

async function waitFor(condition: () => boolean, what: string): Promise<void> {
  const deadline = performance.now() + WAIT_MS;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`Timed out: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** A server on UDP and WebTransport (both on free loopback ports). */
function serverWithWebTransport(): {
  server: Server;
  webTransport: WebTransportServerSocket;
} {
  const webTransport = listenWebTransport({
    address: "127.0.0.1:0",
    certificate,
  });
  const server = createServer({
    address: "127.0.0.1:0",
    webTransport,
    protocolId: PROTOCOL_ID,
    privateKey: PRIVATE_KEY,
  });
  return { server, webTransport };
}

function rawSession(
  socket: WebTransportServerSocket,
  hashes: Uint8Array[] = [certificate.hash],
  path = "/netcode",
): WebTransport {
  const session = new WebTransport(
    `https://${formatAddress(socket.address)}${path}`,
    {
      serverCertificateHashes: hashes.map((value) => ({
        algorithm: "sha-256",
        value: value as Uint8Array<ArrayBuffer>,
      })),
    },
  );
  session.closed.catch(() => {});
  session.ready.catch(() => {});
  return session;
}

Deno.test("createServer() serves a UDP client and a WebTransport client at once", async () => {
  const { server, webTransport } = serverWithWebTransport();
  assertEquals(server.addresses.length, 2);
  assertEquals(server.addresses[1], webTransport.address);
  await connectAndEcho(
    server,
    (index) =>
      index === 0 ? createClient() : createClient({
        socket: connectWebTransport({ certificateHashes: [certificate.hash] }),
      }),
  );
  assertGreater(webTransport.stats.received, 10);
  assertGreater(webTransport.stats.sent, 10);
  server.close();
  await webTransport.closed; // closing the server closed it
});

Deno.test("connectWebTransport() echoes 1..limit bytes and client.send() refuses more", async () => {
  // Chromium's sessions carry 1211-byte datagrams; Deno's carry more, so
  // this wraps Deno's WebTransport to report Chromium's limit.
  class SmallDatagrams extends WebTransport {
    override get datagrams(): WebTransportDatagramDuplexStream {
      const inner = super.datagrams;
      return {
        readable: inner.readable,
        writable: inner.writable,
        maxDatagramSize: 1211,
      } as unknown as WebTransportDatagramDuplexStream;
    }
  }
  const { server, webTransport } = serverWithWebTransport();
  const socket = connectWebTransport({
    certificateHashes: [certificate.hash],
    webTransport: SmallDatagrams,
  });
  using client = createClient({ socket });
  client.connect(
    token({ serverAddresses: [formatAddress(webTransport.address)] }),
  );
  const state = { time: 0 };
  assertGreater(
    await stepUntil(
      server,
      [client],
      state,
      () => client.state === ClientState.CONNECTED,
      500,
    ),
    0,
  );
  assertStrictEquals(client.maxPayloadBytes, 1186);
  const sizes = [1, 2, 100, 1000, 1185, 1186];
  const received: Uint8Array[] = [];
  for (const size of sizes) {
    client.send(new Uint8Array(size).fill(size & 0xff));
  }
  await stepUntil(server, [client], state, () => {
    for (let p = server.receive(0); p; p = server.receive(0)) {
      server.send(0, p);
    }
    for (let p = client.receive(); p; p = client.receive()) received.push(p);
    return received.length === sizes.length;
  }, 500);
  assertEquals(
    received.map((p) => p.length).sort((a, b) => a - b),
    sizes,
  );
  for (const p of received) {
    assert(p.every((byte) => byte === (p.length & 0xff)));
  }
  assertThrows(
    () => client.send(new Uint8Array(1187)),
    RangeError,
    "1187 bytes exceeds the 1186 byte limit",
  );
  server.close();
  await webTransport.closed; // closing the server closed it
});

Deno.test("listenWebTransport() removes the peer of a closed or idle session", async () => {
  using socket = listenWebTransport({
    address: "127.0.0.1:0",
    certificate,
    idleTimeoutSeconds: 0.5,
  });
  const closing = rawSession(socket);
  await closing.ready;
  await waitFor(() => socket.numSessions === 1, "session listed");
  closing.close();
  await waitFor(() => socket.numSessions === 0, "closed session removed");

  const idle = rawSession(socket);
  await idle.ready;
  await waitFor(() => socket.numSessions === 1, "idle session listed");
  await waitFor(() => socket.numSessions === 0, "idle session removed");
  assertStrictEquals(socket.stats.sessionsOpened, 2);
  assertStrictEquals(socket.stats.sessionsClosed, 2);
});

Deno.test("listenWebTransport() leaves no peer after 200 abandoned sessions", async () => {
  using socket = listenWebTransport({
    address: "127.0.0.1:0",
    certificate,
    maxSessionsPerIp: 20,
  });
  for (let batch = 0; batch < 20; batch++) {
    const sessions = Array.from({ length: 10 }, () => rawSession(socket));
    await Promise.allSettled(sessions.map((s) => s.ready));
    for (const session of sessions) session.close();
    await waitFor(() => socket.numSessions === 0, `batch ${batch} removed`);
  }
  assertStrictEquals(socket.stats.sessionsOpened, 200);
  assertStrictEquals(socket.stats.sessionsClosed, 200);
  assertStrictEquals(socket.poll(), undefined);
});

Deno.test("createServer() drops and counts garbage datagrams in a session", async () => {
  const { server, webTransport } = serverWithWebTransport();
  const session = rawSession(webTransport);
  await session.ready;
  const writer = session.datagrams.writable.getWriter();
  for (let i = 0; i < 50; i++) {
    await writer.write(crypto.getRandomValues(new Uint8Array(1 + i * 20)));
  }
  await writer.write(new Uint8Array(1301)); // larger than any netcode packet
  let time = 0;
  await waitFor(() => {
    server.update(time += 1 / 60);
    return webTransport.stats.received + webTransport.stats.oversized === 51;
  }, "garbage received");
  server.update(time += 1 / 60);
  assertStrictEquals(webTransport.stats.oversized, 1);
  const droppedTotal = Object.values(server.stats.dropped).reduce(
    (a, b) => a + b,
    0,
  );
  assertStrictEquals(droppedTotal, 50);
  assertStrictEquals(server.numConnectedClients, 0);
  session.close();
  await waitFor(() => webTransport.numSessions === 0, "session removed");
  server.close();
  await webTransport.closed; // closing the server closed it
});

Deno.test("listenWebTransport() refuses sessions over the per-IP limit and counts them", async () => {
  using socket = listenWebTransport({
    address: "127.0.0.1:0",
    certificate,
    maxSessionsPerIp: 2,
  });
  const first = rawSession(socket);
  const second = rawSession(socket);
  await Promise.all([first.ready, second.ready]);
  const third = rawSession(socket);
  await assertRejects(() => third.ready);
  assertStrictEquals(socket.stats.sessionsRefused, 1);
  assertStrictEquals(socket.numSessions, 2);
  first.close();
  second.close();
  await waitFor(() => socket.numSessions === 0, "sessions removed");
});

Deno.test("listenWebTransport() closes sessions on another path", async () => {
  using socket = listenWebTransport({ address: "127.0.0.1:0", certificate });
  const session = rawSession(socket, [certificate.hash], "/elsewhere");
  await session.closed.catch(() => {});
  await waitFor(() => socket.stats.wrongPath === 1, "wrong path counted");
  assertStrictEquals(socket.numSessions, 0);
});

Deno.test("rotateCertificate() serves new sessions with the next certificate and keeps open ones", async () => {
  const next = await generateCertificate();
  using socket = listenWebTransport({
    address: "127.0.0.1:0",
    certificate,
    nextCertificate: next,
  });
  assertEquals(socket.certificateHashes, [certificate.hash, next.hash]);
  const before = rawSession(socket);
  await before.ready;
  socket.rotateCertificate();
  assertEquals(socket.certificateHashes, [next.hash]);
  const withNewHash = rawSession(socket, [next.hash]);
  await withNewHash.ready;
  await waitFor(() => socket.numSessions === 2, "both sessions listed");
  // The session from before the rotation still carries datagrams.
  const writer = before.datagrams.writable.getWriter();
  await writer.write(new Uint8Array([7]));
  await waitFor(() => socket.stats.received === 1, "datagram after rotation");
  assertEquals(socket.poll()?.data, new Uint8Array([7]));
  before.close();
  withNewHash.close();
  await waitFor(() => socket.numSessions === 0, "sessions removed");
});

Deno.test("listenWebTransport() explains a missing certificate and bad limits", () => {
  assertThrows(
    () =>
      listenWebTransport({
        address: "127.0.0.1:0",
        certificate: {} as never,
      }),
    TypeError,
    "certificate must come from generateCertificate() or readCertificate()",
  );
  assertThrows(
    () =>
      listenWebTransport({
        address: "127.0.0.1:0",
        certificate,
        maxSessions: 0,
      }),
    RangeError,
    "maxSessions must be an integer from 1 to 65536",
  );
});

Deno.test("close() of a WebTransport client waits for its datagrams to go out", async () => {
  using socket = listenWebTransport({ address: "127.0.0.1:0", certificate });
  const client = connectWebTransport({ certificateHashes: [certificate.hash] });
  for (let i = 0; i < 5; i++) {
    client.send(new Uint8Array([i]), socket.address);
  }
  await waitFor(() => client.ready, "client session ready");
  await waitFor(() => socket.numSessions === 1, "server session listed");
  // Datagrams of a session's first moments can be lost in Deno 2.9; probe
  // until one arrives, so the path is known to carry datagrams.
  await waitFor(() => {
    for (let d = socket.poll(); d; d = socket.poll()) {
      if (d.data[0] === 100) return true;
    }
    client.send(new Uint8Array([100]), socket.address);
    return false;
  }, "a probe datagram");
  for (let i = 5; i < 10; i++) {
    client.send(new Uint8Array([i]), socket.address);
  }
  client.close();
  await client.closed;
  // Datagrams sent while the session opened may be lost before the server
  // reads them (netcode resends its handshake); the last five, sent just
  // before close(), must all arrive.
  const got = new Set<number>();
  await waitFor(() => {
    for (let d = socket.poll(); d; d = socket.poll()) got.add(d.data[0]);
    return [5, 6, 7, 8, 9].every((i) => got.has(i));
  }, "the last five datagrams");
  await waitFor(() => socket.numSessions === 0, "session removed");
  await yieldToSockets();
});

Deno.test("readCertificate() accepts its own certificates and refuses RSA and long validity", async () => {
  const read = await readCertificate(
    certificate.certificate,
    certificate.privateKey,
  );
  assertEquals(read.hash, certificate.hash);
  await assertRejects(
    () => generateCertificate({ validitySeconds: 15 * 86400 }),
    RangeError,
    "is not from 1 s to 14 days",
  );
  await assertRejects(
    () => readCertificate("nothing", certificate.privateKey),
    TypeError,
    'no PEM "CERTIFICATE" block',
  );
  const openssl = await makeWithOpenssl();
  if (openssl === undefined) {
    console.log(
      "readCertificate test: openssl not found, RSA and 30-day checks skipped",
    );
    return;
  }
  await assertRejects(
    () => readCertificate(openssl.rsa.certificate, openssl.rsa.key),
    RangeError,
    "it has an RSA key",
  );
  await assertRejects(
    () => readCertificate(openssl.long.certificate, openssl.long.key),
    RangeError,
    "browsers accept at most 14 days",
  );
  const ca = await readCertificate(openssl.rsa.certificate, openssl.rsa.key, {
    caSigned: true,
  });
  assert(ca.caSigned);
});

async function makeWithOpenssl(): Promise<
  | {
    rsa: { certificate: string; key: string };
    long: { certificate: string; key: string };
  }
  | undefined
> {
  const dir = await Deno.makeTempDir();
  try {
    const run = async (args: string[]) => {
      const out = await new Deno.Command("openssl", {
        args,
        stdout: "null",
        stderr: "null",
      }).output();
      if (!out.success) throw new Error(`openssl ${args[0]} failed`);
    };
    const subject = ["-subj", "/CN=localhost", "-nodes"];
    await run([
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-days",
      "10",
      "-keyout",
      `${dir}/rsa.key`,
      "-out",
      `${dir}/rsa.pem`,
      ...subject,
    ]);
    await run([
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-days",
      "30",
      "-keyout",
      `${dir}/long.key`,
      "-out",
      `${dir}/long.pem`,
      ...subject,
    ]);
    const read = (name: string) => Deno.readTextFileSync(`${dir}/${name}`);
    return {
      rsa: { certificate: read("rsa.pem"), key: read("rsa.key") },
      long: { certificate: read("long.pem"), key: read("long.key") },
    };
  } catch {
    return undefined;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("connectWebTransport() backs off after a failed handshake and counts what it lost", async () => {
  using server = listenWebTransport({ address: "127.0.0.1:0", certificate });
  const client = connectWebTransport({
    certificateHashes: [new Uint8Array(32)], // not the server's
    retrySeconds: 60,
  });
  try {
    client.send(new Uint8Array(10), server.address);
    client.send(new Uint8Array(10), server.address);
    await waitFor(
      () => client.stats.sessionsClosed === 1,
      "the handshake fails",
    );
    assertStrictEquals(client.stats.sessionsOpened, 0);
    // The two datagrams waiting for the session are counted as dropped ...
    assertStrictEquals(client.stats.sendDropped, 2);
    // ... and the next sends wait out the retry period instead of opening
    // a session each.
    for (let i = 0; i < 5; i++) client.send(new Uint8Array(10), server.address);
    await new Promise((resolve) => setTimeout(resolve, 100));
    assertStrictEquals(client.stats.sessionsClosed, 1);
    assertStrictEquals(client.stats.sendDropped, 7);
    assertStrictEquals(client.sessionAddress, undefined);
  } finally {
    client.close();
    await client.closed;
  }
});

Deno.test("listenWebTransport() keeps memory flat over rounds of 200 abandoned sessions", async () => {
  // In a subprocess, for --expose-gc: three rounds of 200 sessions, half
  // closed by the client and half left to the idle timeout. A session held
  // after it ended costs about 15 KB here (3 MB a round when tried), so more
  // than 1 MB of growth from the second round to the third is a leak.
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--unstable-net",
      "--v8-flags=--expose-gc",
      new URL("./_webtransport_churn.ts", import.meta.url).pathname,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  assertStrictEquals(code, 0, decoder.decode(stderr));
  const result = JSON.parse(decoder.decode(stdout));
  console.log(`heap after each round: ${result.heap.join(", ")} bytes`);
  assertStrictEquals(result.numSessions, 0);
  assertStrictEquals(result.stats.sessionsOpened, 600);
  assertStrictEquals(result.stats.sessionsClosed, 600);
  assertStrictEquals(result.queued, false);
  const growth = result.heap[2] - result.heap[1];
  assert(growth < 1_000_000, `heap grew ${growth} bytes over 200 sessions`);
});
