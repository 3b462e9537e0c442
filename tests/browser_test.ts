// End to end in headless Chromium: the page and the browser bundle are
// served over HTTP, the page gets a connect token over HTTP, connects to a
// Deno server (UDP + WebTransport) with the unmodified createClient over
// connectWebTransport, and checks 300 echoed payloads byte for byte.
// Without /usr/bin/chromium the test says so loudly and passes nothing off
// as checked: it is ignored.

import { assertEquals, assertGreater } from "./_assert.ts";
import { PRIVATE_KEY, PROTOCOL_ID } from "./_harness.ts";
import { assertRejects } from "./_assert.ts";
import {
  generateCertificate,
  readCertificate,
  type WebTransportCertificate,
} from "../certificate.ts";
import { formatAddress } from "../address.ts";
import { createServer } from "../server.ts";
import { listenWebTransport } from "../socket_webtransport.ts";
import {
  bundleBrowserEntry,
  CHROMIUM_PATH,
  hasChromium,
  launchChromium,
} from "../examples/_browser.ts";
import { startBackend } from "../cli/backend.ts";
import {
  screenshotBrowserDemo,
  startBrowserDemo,
} from "../examples/demo_browser.ts";

const chromiumHere = hasChromium();
if (!chromiumHere) {
  console.log(
    `\n!!! browser_test: no Chromium at ${CHROMIUM_PATH}; the browser end-to-end tests are IGNORED (apt-get install chromium) !!!\n`,
  );
}

const PAGE = `<!doctype html><script type="module">
import { ClientState, connectWebTransport, createClient } from "/browser.js";
window.runEcho = async (tokenBase64, hashHex, count) => {
  const token = Uint8Array.from(atob(tokenBase64), (c) => c.charCodeAt(0));
  const hash = Uint8Array.from(hashHex.match(/../g), (h) => parseInt(h, 16));
  const socket = connectWebTransport({ certificateHashes: [hash] });
  const client = createClient({ socket });
  client.connect(token);
  const start = performance.now();
  let sent = 0, echoed = 0, mismatched = 0;
  const expected = (n) => {
    const p = new Uint8Array(1 + (n * 37) % client.maxPayloadBytes);
    for (let i = 0; i < p.length; i++) p[i] = (n * 31 + i * 7) & 255;
    return p;
  };
  while (performance.now() - start < 30000 && echoed < count) {
    await new Promise((r) => setTimeout(r, 5));
    client.update((performance.now() - start) / 1000);
    if (client.state === ClientState.CONNECTED && sent < count && sent - echoed < 20) {
      client.send(expected(sent++));
    }
    for (let p = client.receive(); p; p = client.receive()) {
      const want = expected(echoed++);
      if (p.length !== want.length || p.some((b, i) => b !== want[i])) mismatched++;
    }
  }
  const result = { state: client.stateName, sent, echoed, mismatched, maxPayloadBytes: client.maxPayloadBytes };
  client.close();
  return result;
};
</script>`;

Deno.test("bundleBrowserEntry() bundles browser.ts from any working directory", async () => {
  const elsewhere = await Deno.makeTempDir();
  const here = Deno.cwd();
  Deno.chdir(elsewhere);
  try {
    const bundle = await bundleBrowserEntry();
    assertGreater(bundle.indexOf("connectWebTransport"), -1);
  } finally {
    Deno.chdir(here);
    await Deno.remove(elsewhere, { recursive: true });
  }
});

Deno.test({
  name:
    "a browser client in headless Chromium, page and token from the backend, echoes 300 payloads byte for byte",
  ignore: !chromiumHere,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const bundle = await bundleBrowserEntry();
    const certificate = await generateCertificate();
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
    const start = performance.now();
    const timer = setInterval(() => {
      server.update((performance.now() - start) / 1000);
      for (let i = 0; i < server.maxClients; i++) {
        for (let p = server.receive(i); p; p = server.receive(i)) {
          server.send(i, p);
        }
      }
    }, 1000 / 60);
    const backend = startBackend({
      address: "127.0.0.1:0",
      serverAddresses: [server.address],
      webTransportServers: [{
        address: webTransport.address,
        certificateHashes: () => webTransport.certificateHashes,
      }],
      assets: {
        "/": { contentType: "text/html", body: PAGE },
        "/browser.js": { contentType: "text/javascript", body: bundle },
      },
      protocolId: PROTOCOL_ID,
      privateKey: PRIVATE_KEY,
    });
    const chromium = await launchChromium();
    try {
      const page = await chromium.open(backend.tokenUrl.replace(/token$/, ""));
      await page.waitFor(
        () =>
          typeof (globalThis as { runEcho?: unknown }).runEcho === "function",
        10_000,
      );
      const result = await page.evaluate(async () => {
        const response = await fetch("/token?transport=webtransport", {
          method: "POST",
          headers: { authorization: "Bearer dev-alice" },
        });
        const answer = await response.json();
        // deno-lint-ignore no-explicit-any
        return await (globalThis as any).runEcho(
          answer.connectToken,
          answer.webTransport[0].certificateHashes[0],
          300,
        );
      });
      console.log(`browser_test: ${JSON.stringify(result)}`);
      assertEquals(
        { state: result.state, echoed: result.echoed, bad: result.mismatched },
        { state: "connected", echoed: 300, bad: 0 },
      );
    } finally {
      await chromium.close();
      clearInterval(timer);
      server.close();
      await webTransport.closed;
      await backend.shutdown();
    }
  },
});

Deno.test({
  name:
    "the browser demo: the page connects, gets its pings back and sees the UDP bots",
  ignore: !chromiumHere,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const lines: string[] = [];
    const demo = await startBrowserDemo({
      httpAddress: "127.0.0.1:0",
      udpAddress: "127.0.0.1:0",
      webTransportAddress: "127.0.0.1:0",
      bots: 2,
      log: (line) => lines.push(line),
    });
    const dir = await Deno.makeTempDir();
    try {
      const status = await screenshotBrowserDemo(
        demo.pageUrl,
        `${dir}/demo.png`,
        (line) => lines.push(line),
      );
      assertEquals(status.state, "connected", lines.join("\n"));
      assertGreater(status.echoed, 7);
      assertEquals(status.dots.filter((dot) => dot.kind === 0).length, 2);
      assertEquals(status.dots.filter((dot) => dot.kind === 1).length, 1);
      assertEquals(demo.server.numConnectedClients, 3);
      // A PNG was written.
      const png = await Deno.readFile(`${dir}/demo.png`);
      assertEquals([...png.subarray(1, 4)], [0x50, 0x4e, 0x47]);
    } finally {
      await demo.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

const opensslHere = await new Deno.Command("openssl", {
  args: ["version"],
  stdout: "null",
  stderr: "null",
}).output().then((result) => result.success, () => false);
if (chromiumHere && !opensslHere) {
  console.log(
    "\n!!! browser_test: no openssl; the browser certificate test is IGNORED (apt-get install openssl) !!!\n",
  );
}

/** A self-signed certificate for 127.0.0.1 made by openssl. */
async function opensslCertificate(
  dir: string,
  name: string,
  key: string[],
  days: number,
): Promise<{ certPem: string; keyPem: string }> {
  const result = await new Deno.Command("openssl", {
    args: [
      "req",
      "-x509",
      ...key,
      "-nodes",
      "-days",
      String(days),
      "-subj",
      "/CN=127.0.0.1",
      "-addext",
      "subjectAltName=IP:127.0.0.1",
      "-keyout",
      `${dir}/${name}.key`,
      "-out",
      `${dir}/${name}.pem`,
    ],
    stdout: "null",
    stderr: "piped",
  }).output();
  assertEquals(result.success, true, new TextDecoder().decode(result.stderr));
  return {
    certPem: await Deno.readTextFile(`${dir}/${name}.pem`),
    keyPem: await Deno.readTextFile(`${dir}/${name}.key`),
  };
}

Deno.test({
  name:
    "Chromium refuses by hash the certificates readCertificate() refuses, and takes the rest",
  ignore: !chromiumHere || !opensslHere,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir();
    const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
    const files = {
      ec13: await opensslCertificate(dir, "ec13", ec, 13),
      ec15: await opensslCertificate(dir, "ec15", ec, 15),
      rsa13: await opensslCertificate(
        dir,
        "rsa13",
        ["-newkey", "rsa:2048"],
        13,
      ),
    };
    await Deno.remove(dir, { recursive: true });
    // The check refuses RSA and 15 days, unless told the certificate is
    // CA-signed (which these are not: so Chromium must refuse them by hash).
    await assertRejects(
      () => readCertificate(files.ec15.certPem, files.ec15.keyPem),
      RangeError,
      "14 days",
    );
    await assertRejects(
      () => readCertificate(files.rsa13.certPem, files.rsa13.keyPem),
      RangeError,
      "RSA",
    );
    const certificates: Record<string, WebTransportCertificate> = {
      generated: await generateCertificate(),
      ec13: await readCertificate(files.ec13.certPem, files.ec13.keyPem),
      ec15: await readCertificate(files.ec15.certPem, files.ec15.keyPem, {
        caSigned: true,
      }),
      rsa13: await readCertificate(files.rsa13.certPem, files.rsa13.keyPem, {
        caSigned: true,
      }),
    };
    const endpoints = Object.entries(certificates).map((
      [name, certificate],
    ) => ({
      name,
      hash: certificate.hash.toHex(),
      socket: listenWebTransport({ address: "127.0.0.1:0", certificate }),
    }));
    // WebTransport needs a secure context: an http://127.0.0.1 page is one.
    const http = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      () =>
        new Response("<!doctype html>", {
          headers: { "content-type": "text/html" },
        }),
    );
    const chromium = await launchChromium();
    try {
      const page = await chromium.open(`http://127.0.0.1:${http.addr.port}/`);
      const outcomes = await page.evaluate(
        async (arg) => {
          const targets = arg as { name: string; url: string; hash: string }[];
          const result: Record<string, string> = {};
          await Promise.all(targets.map(async ({ name, url, hash }) => {
            const session = new WebTransport(url, {
              serverCertificateHashes: [{
                algorithm: "sha-256",
                value: Uint8Array.fromHex(hash),
              }],
            });
            session.closed.catch(() => {});
            try {
              await session.ready;
              result[name] = "ready";
              session.close();
            } catch (error) {
              result[name] = `refused: ${(error as Error).message}`;
            }
          }));
          return result;
        },
        endpoints.map(({ name, hash, socket }) => ({
          name,
          hash,
          url: `https://${formatAddress(socket.address)}/netcode`,
        })),
      );
      console.log(`browser_test: ${JSON.stringify(outcomes)}`);
      assertEquals(outcomes.generated, "ready");
      assertEquals(outcomes.ec13, "ready");
      assertEquals(outcomes.ec15.startsWith("refused"), true, outcomes.ec15);
      assertEquals(outcomes.rsa13.startsWith("refused"), true, outcomes.rsa13);
    } finally {
      await chromium.close();
      await http.shutdown();
      for (const { socket } of endpoints) {
        socket.close();
        await socket.closed;
      }
    }
  },
});
