// End to end in headless Chromium: the page and the browser bundle are
// served over HTTP, the page gets a connect token over HTTP, connects to a
// Deno server (UDP + WebTransport) with the unmodified createClient over
// connectWebTransport, and checks 300 echoed payloads byte for byte.
// Without /usr/bin/chromium the test says so loudly and passes nothing off
// as checked: it is ignored.

import { assertEquals } from "./_assert.ts";
import { PRIVATE_KEY, PROTOCOL_ID } from "./_harness.ts";
import { toHex } from "./_vectors.ts";
import { formatAddress } from "../address.ts";
import { generateCertificate } from "../certificate.ts";
import { createServer } from "../server.ts";
import { listenWebTransport } from "../socket_webtransport.ts";
import { generateConnectToken } from "../token.ts";

const CHROMIUM = "/usr/bin/chromium";
const hasChromium = (() => {
  try {
    return Deno.statSync(CHROMIUM).isFile;
  } catch {
    return false;
  }
})();
if (!hasChromium) {
  console.log(
    "\n!!! browser_test: no Chromium at /usr/bin/chromium; the browser end-to-end test is IGNORED (apt-get install chromium) !!!\n",
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

Deno.test({
  name:
    "a browser client in headless Chromium echoes 300 payloads byte for byte",
  ignore: !hasChromium,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir();
    const bundlePath = `${dir}/browser.js`;
    const built = await new Deno.Command(Deno.execPath(), {
      args: [
        "bundle",
        "--platform",
        "browser",
        "-o",
        bundlePath,
        new URL("../browser.ts", import.meta.url).pathname,
      ],
      stdout: "null",
      stderr: "piped",
    }).output();
    assertEquals(built.success, true, new TextDecoder().decode(built.stderr));
    const bundle = await Deno.readTextFile(bundlePath);
    await Deno.remove(dir, { recursive: true });

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
    const http = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      (request) => {
        const path = new URL(request.url).pathname;
        if (path === "/browser.js") {
          return new Response(bundle, {
            headers: { "content-type": "text/javascript" },
          });
        }
        if (path === "/token" && request.method === "POST") {
          const token = generateConnectToken({
            serverAddresses: [formatAddress(webTransport.address)],
            clientId: 7n,
            protocolId: PROTOCOL_ID,
            privateKey: PRIVATE_KEY,
          });
          return Response.json({
            connectToken: btoa(String.fromCharCode(...token)),
            certificateHash: toHex(certificate.hash),
          });
        }
        return new Response(PAGE, { headers: { "content-type": "text/html" } });
      },
    );
    const { chromium } = await import("npm:playwright-core@1.65.1");
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        "--no-sandbox",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
      ],
    });
    try {
      const page = await browser.newPage();
      await page.goto(`http://127.0.0.1:${http.addr.port}/`);
      await page.waitForFunction(() =>
        typeof (globalThis as { runEcho?: unknown }).runEcho === "function"
      );
      const result = await page.evaluate(async () => {
        const answer = await (await fetch("/token", { method: "POST" }))
          .json();
        // deno-lint-ignore no-explicit-any
        return await (globalThis as any).runEcho(
          answer.connectToken,
          answer.certificateHash,
          300,
        );
      });
      console.log(`browser_test: ${JSON.stringify(result)}`);
      assertEquals(
        { state: result.state, echoed: result.echoed, bad: result.mismatched },
        { state: "connected", echoed: 300, bad: 0 },
      );
    } finally {
      await browser.close();
      clearInterval(timer);
      server.close();
      await webTransport.closed;
      await http.shutdown();
    }
  },
});
