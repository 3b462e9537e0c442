/**
 * A playable browser demo: one netcode server for browser players over
 * WebTransport and native UDP bots at once, the web backend that hands out
 * tokens and serves the page, all in one process.
 *
 * ```sh
 * deno task demo:browser            # prints the page URL; open it in Chromium or Firefox
 * deno task demo:browser --screenshot docs/demo_browser.png --seconds 20
 * ```
 *
 * The page (`examples/demo_browser.html` with the `browser.ts` bundle) asks
 * `POST /token?transport=webtransport` for a token, connects with the
 * unmodified `createClient` over `connectWebTransport`, and draws every
 * player's dot on a canvas; the arrow keys or WASD move yours. The server is
 * authoritative: clients send the keys they hold, the server moves the dots
 * and sends the world to everyone 20 times a second. The page also pings
 * (the server echoes a ping payload as is) and shows the round-trip time,
 * the pings echoed and the client state.
 *
 * The payloads: input `[1, keys, kind]` (keys: 1 left, 2 right, 4 up,
 * 8 down; kind 1 for a browser, 0 for a bot), ping `[2, f64]`, world
 * `[3, count, then per dot: slot, x u16, y u16, kind]`, big-endian.
 *
 * With `--screenshot FILE` it opens the page in headless Chromium itself,
 * moves the player, saves a screenshot and exits 0 when the page connected,
 * got its pings back and saw the bots.
 *
 * @module
 */

import { formatAddress } from "../address.ts";
import { generateCertificate } from "../certificate.ts";
import { type Client, ClientState, createClient } from "../client.ts";
import { generateKey } from "../crypto.ts";
import { createServer, type Server } from "../server.ts";
import {
  listenWebTransport,
  type WebTransportServerSocket,
} from "../socket_webtransport.ts";
import { generateConnectToken } from "../token.ts";
import {
  type Command,
  EXIT_FAILURE,
  EXIT_OK,
  parseAddressFlag,
  parseFlags,
  parseIntegerFlag,
  runCommand,
} from "../cli/_args.ts";
import { DEFAULT_PROTOCOL_ID, monotonicSeconds } from "../cli/_common.ts";
import { bundleBrowserEntry, hasChromium, launchChromium } from "./_browser.ts";
import { type Backend, startBackend } from "../cli/backend.ts";

/** Payload types of the demo game. */
export const DemoPayload = {
  /** Client to server: `[1, keys, kind]`. */
  INPUT: 1,
  /** Both ways: `[2, f64 sender time]`, echoed as is. */
  PING: 2,
  /** Server to client: `[3, count, (slot, x u16, y u16, kind) * count]`. */
  WORLD: 3,
} as const;

/** The world's size in pixels, as the page's canvas. */
export const WORLD_WIDTH = 720;
/** The world's height in pixels. */
export const WORLD_HEIGHT = 480;
const SPEED = 180; // pixels per second
const TICK_HZ = 60;
const WORLD_EVERY_TICKS = 3; // 20 Hz

/** Options of {@linkcode startBrowserDemo}. */
export interface BrowserDemoOptions {
  /** The backend's HTTP address. @default {"127.0.0.1:8080"} */
  httpAddress?: string;
  /** The server's UDP address. @default {"127.0.0.1:40000"} */
  udpAddress?: string;
  /** The server's WebTransport (QUIC) address. @default {"127.0.0.1:40001"} */
  webTransportAddress?: string;
  /** Native UDP bots. @default {3} */
  bots?: number;
  /**
   * The key the server and the backend share, to let other clients (the C
   * reference's, say) make their own tokens. @default {a fresh random key}
   */
  privateKey?: Uint8Array;
  /** Where log lines go. @default {console.log} */
  log?: (line: string) => void;
}

/** A running browser demo. */
export interface BrowserDemo {
  /** The page to open: `http://127.0.0.1:8080/`. */
  readonly pageUrl: string;
  /** The game server. */
  readonly server: Server;
  /** Its WebTransport endpoint. */
  readonly webTransport: WebTransportServerSocket;
  /** How many bots are connected now. */
  readonly botsConnected: number;
  /** Stops everything and waits for it to be released. */
  stop(): Promise<void>;
}

interface Dot {
  x: number;
  y: number;
  keys: number;
  kind: number;
}

interface Bot {
  client: Client;
  keys: number;
  x: number;
  y: number;
  targetX: number;
  targetY: number;
  nextTurn: number;
}

/**
 * Starts the server (UDP + WebTransport), the backend serving the page and
 * the bundle, and the bots.
 *
 * @param options Addresses, bots, logging.
 * @returns The running demo.
 */
export async function startBrowserDemo(
  options: BrowserDemoOptions = {},
): Promise<BrowserDemo> {
  const log = options.log ?? ((line: string) => console.log(line));
  const privateKey = options.privateKey ?? generateKey();
  const protocolId = DEFAULT_PROTOCOL_ID;
  const [bundle, page, certificate] = await Promise.all([
    bundleBrowserEntry(),
    Deno.readTextFile(new URL("./demo_browser.html", import.meta.url)),
    generateCertificate(),
  ]);
  const webTransport = listenWebTransport({
    address: options.webTransportAddress ?? "127.0.0.1:40001",
    certificate,
  });
  let server: Server;
  try {
    server = createServer({
      address: options.udpAddress ?? "127.0.0.1:40000",
      webTransport,
      protocolId,
      privateKey,
    });
  } catch (error) {
    webTransport.close();
    throw error;
  }
  let backend: Backend;
  try {
    backend = startBackend({
      address: options.httpAddress ?? "127.0.0.1:8080",
      serverAddresses: [server.address],
      webTransportServers: [{
        address: webTransport.address,
        certificateHashes: () => webTransport.certificateHashes,
      }],
      assets: {
        "/": { contentType: "text/html; charset=utf-8", body: page },
        "/browser.js": { contentType: "text/javascript", body: bundle },
      },
      privateKey,
      protocolId,
      rateLimitPerMinute: 60,
      log: (line) => log(`backend | ${line}`),
    });
  } catch (error) {
    server.close();
    await webTransport.closed;
    throw error;
  }
  const pageUrl = backend.tokenUrl.replace(/token$/, "");
  log(
    `server  | udp ${
      formatAddress(server.address)
    }, webtransport ${webTransport.url} (certificate sha-256 ${certificate.hash.toHex()})`,
  );

  const dots = new Map<number, Dot>();
  const world = new Uint8Array(2 + 6 * server.maxClients);
  const worldView = new DataView(world.buffer);
  const bots: Bot[] = Array.from({ length: options.bots ?? 3 }, (_, i) => {
    const client = createClient({});
    client.connect(generateConnectToken({
      serverAddresses: [server.address],
      clientId: 1_000_000n + BigInt(i),
      protocolId,
      privateKey,
    }));
    return { client, keys: 0, x: 0, y: 0, targetX: 0, targetY: 0, nextTurn: 0 };
  });

  const start = monotonicSeconds();
  let ticks = 0;
  const timer = setInterval(() => {
    const now = monotonicSeconds() - start;
    server.update(now);
    for (let slot = 0; slot < server.maxClients; slot++) {
      if (!server.clientConnected(slot)) {
        if (dots.delete(slot)) log(`server  | slot ${slot} left`);
        continue;
      }
      let dot = dots.get(slot);
      if (dot === undefined) {
        dot = {
          x: 40 + Math.random() * (WORLD_WIDTH - 80),
          y: 40 + Math.random() * (WORLD_HEIGHT - 80),
          keys: 0,
          kind: 0,
        };
        dots.set(slot, dot);
        log(
          `server  | slot ${slot} joined from ${
            formatAddress(server.clientAddress(slot)!)
          }`,
        );
      }
      for (let p = server.receive(slot); p; p = server.receive(slot)) {
        if (p[0] === DemoPayload.INPUT && p.length === 3) {
          dot.keys = p[1];
          dot.kind = p[2] === 1 ? 1 : 0;
        } else if (p[0] === DemoPayload.PING && p.length === 9) {
          server.send(slot, p);
        }
      }
      const step = SPEED / TICK_HZ;
      dot.x += ((dot.keys & 2 ? 1 : 0) - (dot.keys & 1 ? 1 : 0)) * step;
      dot.y += ((dot.keys & 8 ? 1 : 0) - (dot.keys & 4 ? 1 : 0)) * step;
      dot.x = Math.min(WORLD_WIDTH - 12, Math.max(12, dot.x));
      dot.y = Math.min(WORLD_HEIGHT - 12, Math.max(12, dot.y));
    }
    if (++ticks % WORLD_EVERY_TICKS === 0 && dots.size > 0) {
      world[0] = DemoPayload.WORLD;
      world[1] = dots.size;
      let at = 2;
      for (const [slot, dot] of dots) {
        world[at] = slot;
        worldView.setUint16(at + 1, Math.round(dot.x));
        worldView.setUint16(at + 3, Math.round(dot.y));
        world[at + 5] = dot.kind;
        at += 6;
      }
      const message = world.subarray(0, at);
      for (const slot of dots.keys()) server.send(slot, message);
    }
    for (const bot of bots) {
      bot.client.update(now);
      if (bot.client.state !== ClientState.CONNECTED) continue;
      for (let p = bot.client.receive(); p; p = bot.client.receive()) {
        // Find the bot's own dot in the world, to steer it.
        if (p[0] !== DemoPayload.WORLD) continue;
        const view = new DataView(p.buffer, p.byteOffset, p.byteLength);
        for (let at = 2; at + 6 <= p.length; at += 6) {
          if (p[at] !== bot.client.clientIndex) continue;
          bot.x = view.getUint16(at + 1);
          bot.y = view.getUint16(at + 3);
        }
      }
      if (now >= bot.nextTurn) {
        bot.targetX = 40 + Math.random() * (WORLD_WIDTH - 80);
        bot.targetY = 40 + Math.random() * (WORLD_HEIGHT - 80);
        bot.nextTurn = now + 1 + 2 * Math.random();
      }
      // Head for the target, one key per axis, stopping near it.
      const dx = bot.targetX - bot.x, dy = bot.targetY - bot.y;
      const keys = (dx < -8 ? 1 : dx > 8 ? 2 : 0) |
        (dy < -8 ? 4 : dy > 8 ? 8 : 0);
      if (keys !== bot.keys || ticks % 6 === 0) {
        bot.keys = keys;
        bot.client.send(Uint8Array.of(DemoPayload.INPUT, keys, 0));
      }
    }
  }, 1000 / TICK_HZ);

  return {
    pageUrl,
    server,
    webTransport,
    get botsConnected() {
      return bots.filter((bot) => bot.client.state === ClientState.CONNECTED)
        .length;
    },
    async stop() {
      clearInterval(timer);
      for (const bot of bots) bot.client.close();
      server.close();
      await webTransport.closed;
      await backend.shutdown();
    },
  };
}

/** What the page reports, as `window.demoStatus`. */
export interface BrowserDemoPageStatus {
  /** The client's state name. */
  state: string;
  /** Pings echoed back. */
  echoed: number;
  /** Pings sent. */
  pings: number;
  /** The last round-trip times, in milliseconds. */
  rtt: number[];
  /** The dots last received: `kind` 1 for a browser player, 0 for a bot. */
  dots: { slot: number; x: number; y: number; kind: number }[];
  /** This client's slot. */
  slot: number;
}

/**
 * Opens the demo page in headless Chromium, moves the player, saves a
 * screenshot and returns what the page showed.
 *
 * @param pageUrl The demo page.
 * @param screenshotPath Where the PNG goes.
 * @param log Where the page's console lines go.
 * @returns The page's status at the time of the screenshot.
 */
export async function screenshotBrowserDemo(
  pageUrl: string,
  screenshotPath: string,
  log: (line: string) => void = () => {},
): Promise<BrowserDemoPageStatus> {
  const chromium = await launchChromium();
  try {
    const page = await chromium.open(
      pageUrl,
      (line) => log(`page    | ${line}`),
    );
    const connected = () =>
      // deno-lint-ignore no-explicit-any
      (globalThis as any).demoStatus?.state === "connected";
    await page.waitFor(connected, 15_000);
    await page.holdKey("ArrowRight", 700);
    await page.holdKey("ArrowDown", 500);
    await page.waitFor(
      // deno-lint-ignore no-explicit-any
      () => (globalThis as any).demoStatus.echoed >= 8,
      10_000,
    );
    await page.screenshot(screenshotPath);
    return await page.evaluate(() =>
      // deno-lint-ignore no-explicit-any
      (globalThis as any).demoStatus as BrowserDemoPageStatus
    );
  } finally {
    await chromium.close();
  }
}

const DEMO_BROWSER_FLAGS = {
  http: { type: "string" },
  udp: { type: "string" },
  webtransport: { type: "string" },
  bots: { type: "string" },
  screenshot: { type: "string" },
  seconds: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

function demoBrowserUsage(program: string): string {
  return `Usage: ${program} [flags]

Runs a netcode server for browser players (WebTransport) and UDP bots, and
the backend that serves the demo page and its tokens. Open the printed URL.

Flags:
  --http ADDRESS        the backend and page [default: 127.0.0.1:8080]
  --udp ADDRESS         the server's UDP address [default: 127.0.0.1:40000]
  --webtransport ADDRESS  the server's WebTransport address [default: 127.0.0.1:40001]
  --bots N              native UDP bots, 0..16 [default: 3]
  --screenshot FILE     open the page in headless Chromium, save a PNG, exit
  --seconds N           stop after N seconds [default: run until Ctrl-C]
  -h, --help            show this help`;
}

/** The browser demo as a command. */
export const demoBrowserCommand: Command = {
  name: "demo:browser",
  summary: "run a browser demo: WebTransport players and UDP bots",
  usage: demoBrowserUsage,
  async run(args, program) {
    const flags = parseFlags(args, DEMO_BROWSER_FLAGS);
    if (flags.help) {
      console.log(demoBrowserUsage(program));
      return EXIT_OK;
    }
    const address = (flag: string, text: string | undefined) =>
      text === undefined ? undefined : formatAddress(
        parseAddressFlag(flag, text, true),
      );
    const seconds = flags.seconds === undefined
      ? undefined
      : parseIntegerFlag("--seconds", flags.seconds, 1, 86_400);
    const demo = await startBrowserDemo({
      httpAddress: address("--http", flags.http),
      udpAddress: address("--udp", flags.udp),
      webTransportAddress: address("--webtransport", flags.webtransport),
      bots: flags.bots === undefined
        ? 3
        : parseIntegerFlag("--bots", flags.bots, 0, 16),
    });
    console.log(`demo    | open ${demo.pageUrl} in Chromium or Firefox`);
    let code = EXIT_OK;
    const stopped = Promise.withResolvers<void>();
    const stop = () => stopped.resolve();
    Deno.addSignalListener("SIGINT", stop);
    const bound = seconds === undefined
      ? undefined
      : setTimeout(stop, seconds * 1000);
    try {
      if (flags.screenshot !== undefined) {
        if (!hasChromium()) {
          console.error("demo    | --screenshot needs /usr/bin/chromium");
          code = EXIT_FAILURE;
        } else {
          const status = await Promise.race([
            screenshotBrowserDemo(
              demo.pageUrl,
              flags.screenshot,
              (line) => console.log(line),
            ),
            stopped.promise.then(() => {
              throw new Error("stopped before the screenshot");
            }),
          ]);
          const bots = status.dots.filter((dot) => dot.kind === 0).length;
          const rtt = status.rtt.toSorted((a, b) => a - b);
          console.log(
            `demo    | page: ${status.state}, ${status.echoed}/${status.pings} pings echoed, RTT median ${
              rtt[rtt.length >> 1]?.toFixed(1)
            } ms, ${status.dots.length} dots (${bots} bots); screenshot ${flags.screenshot}`,
          );
          const ok = status.state === "connected" && status.echoed > 0 &&
            bots === demo.botsConnected;
          code = ok ? EXIT_OK : EXIT_FAILURE;
        }
      } else {
        await stopped.promise;
      }
    } finally {
      clearTimeout(bound);
      Deno.removeSignalListener("SIGINT", stop);
      await demo.stop();
    }
    console.log("demo    | stopped");
    return code;
  },
};

if (import.meta.main) {
  Deno.exit(
    await runCommand(demoBrowserCommand, Deno.args, "examples/demo_browser.ts"),
  );
}
