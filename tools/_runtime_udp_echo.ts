// One echo loop over loopback UDP on whatever runtime runs it: Deno
// (`deno run -A tools/_runtime_udp_echo.ts`), or Node.js and Bun from
// dist/node/ (`node dist/node/tools/_runtime_udp_echo.js`). Run by
// tools/runtime_udp_bench.ts, which compares the three; prints one line of
// JSON.
//
// Two modes, each on the runtime's default sockets (`listenUdp`: Deno's
// `Deno.listenDatagram`, Node.js's `node:dgram`, Bun's `Bun.udpSocket`):
//
// - `socket`: two sockets on 127.0.0.1; one sends `--size`-byte datagrams,
//   the other sends each back. An echo is two sends and two receives.
// - `netcode`: a server and a connected client; the client sends payloads,
//   the server echoes each. Adds netcode's encryption both ways and the
//   update() ticks.
//
// `--window` datagrams are in flight at once. The loop polls, echoes and
// refills the window, then yields with setImmediate (a macrotask, so the
// sockets' receives land between turns). The first tenth of the echoes is a
// warm-up; the rest are timed. At most 30 s.

import process from "node:process";
import { setImmediate } from "node:timers";
import { parseArgs } from "node:util";
import { formatAddress } from "../address.ts";
import { ClientState, createClient } from "../client.ts";
import { generateKey } from "../crypto.ts";
import { createServer } from "../server.ts";
import { listenUdp } from "../socket.ts";
import { generateConnectToken } from "../token.ts";

const PROTOCOL_ID = 0x1122334455667788n;
const DEADLINE_MS = 30_000;

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: {
    mode: { type: "string", default: "socket" },
    echoes: { type: "string", default: "20000" },
    window: { type: "string", default: "32" },
    size: { type: "string", default: "100" },
  },
});
const mode = values.mode;
const echoes = Number(values.echoes);
const window = Number(values.window);
const size = Number(values.size);
if (
  (mode !== "socket" && mode !== "netcode") || !(echoes > 0) ||
  !(window > 0) || !(size > 0 && size <= 1200)
) {
  console.error(
    "usage: --mode socket|netcode --echoes N --window W --size B (<= 1200)",
  );
  process.exit(2);
}

const turn = (): Promise<void> =>
  new Promise((resolve) => setImmediate(resolve));
const runtime = typeof (globalThis as { Bun?: unknown }).Bun === "object"
  ? `Bun ${process.versions.bun}`
  : (globalThis as { Deno?: unknown }).Deno !== undefined
  ? `Deno ${process.versions.deno}`
  : `Node.js ${process.versions.node}`;
const warmup = Math.floor(echoes / 10);
const payload = new Uint8Array(size).fill(42);

interface Result {
  echoed: number;
  timedMs: number;
  turns: number;
}

async function socketLoop(): Promise<Result> {
  await using a = listenUdp({ hostname: "127.0.0.1", maxQueue: 4096 });
  await using b = listenUdp({ hostname: "127.0.0.1", maxQueue: 4096 });
  let echoed = 0;
  let inFlight = 0;
  let turns = 0;
  let timedFrom = 0;
  const deadline = performance.now() + DEADLINE_MS;
  while (echoed < echoes + warmup && performance.now() < deadline) {
    while (inFlight < window) {
      a.send(payload, b.address);
      inFlight++;
    }
    for (let d = b.poll(); d !== undefined; d = b.poll()) {
      b.send(d.data, d.from);
    }
    for (let d = a.poll(); d !== undefined; d = a.poll()) {
      inFlight--;
      echoed++;
      if (echoed === warmup) timedFrom = performance.now();
    }
    turns++;
    await turn();
  }
  return {
    echoed: echoed - warmup,
    timedMs: performance.now() - timedFrom,
    turns,
  };
}

async function netcodeLoop(): Promise<Result> {
  const privateKey = generateKey();
  await using server = createServer({
    address: "127.0.0.1:0",
    protocolId: PROTOCOL_ID,
    privateKey,
  });
  await using client = createClient();
  client.connect(generateConnectToken({
    serverAddresses: [formatAddress(server.address)],
    clientId: 1n,
    protocolId: PROTOCOL_ID,
    privateKey,
  }));
  const start = performance.now();
  const now = () => (performance.now() - start) / 1000;
  const deadline = start + DEADLINE_MS;
  while (
    client.state !== ClientState.CONNECTED && performance.now() < deadline
  ) {
    client.update(now());
    server.update(now());
    await turn();
  }
  let echoed = 0;
  let inFlight = 0;
  let turns = 0;
  let timedFrom = 0;
  while (echoed < echoes + warmup && performance.now() < deadline) {
    const t = now();
    client.update(t);
    server.update(t);
    for (const i of server.connectedClients()) {
      for (let p = server.receive(i); p; p = server.receive(i)) {
        server.send(i, p);
      }
    }
    for (let p = client.receive(); p; p = client.receive()) {
      inFlight--;
      echoed++;
      if (echoed === warmup) timedFrom = performance.now();
    }
    // Lost payloads (a full queue) are not resent: refill from what came.
    if (client.state !== ClientState.CONNECTED) break;
    while (inFlight < window) {
      client.send(payload);
      inFlight++;
    }
    turns++;
    await turn();
  }
  return {
    echoed: echoed - warmup,
    timedMs: performance.now() - timedFrom,
    turns,
  };
}

const result = mode === "socket" ? await socketLoop() : await netcodeLoop();
console.log(JSON.stringify({
  runtime,
  mode,
  window,
  size,
  echoed: result.echoed,
  complete: result.echoed >= echoes,
  usPerEcho: result.timedMs * 1000 / result.echoed,
  echoesPerTurn: (result.echoed + warmup) / result.turns,
}));
