/**
 * The flood harness: a `netcode server` in one process, an attacker in
 * another sending a mixed hostile flood at its port, and an honest
 * `netcode client` echoing payloads through it, all on loopback. It reports
 * the flood's rate, the honest echoes lost, the kernel's drops at the
 * server's port (from the server's `/metrics`), what the server dropped by
 * reason, and the server's memory (VmRSS) over the run.
 *
 * ```sh
 * deno task flood                                  # FFI transport, 28,000 datagrams/s, 600 echoes
 * deno task flood --transport deno --rate 28000 --packets 2220
 * ```
 *
 * The flood: a quarter each of one-byte `00` datagrams, random garbage of
 * 1..1300 bytes, connection requests with genuine tokens (worth decrypting)
 * and payload-looking packets (type 5 with random bytes), from 32 source
 * addresses (127.0.9.1..32), at `--rate` datagrams a second, for as long as
 * the honest client runs. Flags: `--transport ffi|deno` (the server's;
 * default ffi; `none` passes no flag), `--cli PATH` (another checkout's
 * `cli/main.ts`, to measure it under the same flood), `--rate 28000`, `--packets 600` (echoes the honest client
 * waits for, one per 60 Hz update), `--sources 32`. Linux only (VmRSS and
 * the kernel drops come from /proc).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { formatAddress, parseAddress } from "../address.ts";
import { generateKey, keyFromHex } from "../crypto.ts";
import { bytesToHex } from "./_load_common.ts";
import {
  CONNECTION_REQUEST_PACKET_BYTES,
  writeConnectionRequestPacket,
} from "../packet.ts";
import { type DatagramSocket, listenUdp } from "../socket.ts";
import { ffiTransportUnavailable, listenUdpFfi } from "../socket_ffi.ts";
import { generateConnectToken, readConnectToken } from "../token.ts";

const DEFAULT_CLI = new URL("../cli/main.ts", import.meta.url).pathname;
const SELF = new URL(import.meta.url).pathname;

const { values: flags } = parseArgs({
  args: Deno.args,
  options: {
    transport: { type: "string", default: "ffi" },
    rate: { type: "string", default: "28000" },
    packets: { type: "string", default: "600" },
    sources: { type: "string", default: "32" },
    cli: { type: "string" },
    // Internal: run as the attacker.
    attack: { type: "string" },
    "private-key": { type: "string" },
    seconds: { type: "string" },
  },
});

const rate = Number(flags.rate);
const CLI = flags.cli ?? DEFAULT_CLI;
const sources = Number(flags.sources);

if (flags.attack !== undefined) {
  await attack(
    parseAddress(flags.attack),
    keyFromHex(flags["private-key"]!),
    Number(flags.seconds),
  );
  Deno.exit(0);
}

/** Sends the mixed flood at `target` for `seconds`. */
async function attack(
  target: { hostname: string; port: number },
  privateKey: Uint8Array,
  seconds: number,
): Promise<void> {
  const open = (hostname: string): DatagramSocket =>
    ffiTransportUnavailable() === undefined
      ? listenUdpFfi({ hostname, port: 0 })
      : listenUdp({ hostname, port: 0 });
  const sockets = Array.from(
    { length: sources },
    (_, i) => open(`127.0.9.${i + 1}`),
  );
  let seed = 12345;
  const random = () => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) / 2 ** 32;
  };
  const randomBytes = (length: number, first?: number) => {
    const bytes = new Uint8Array(length);
    for (let i = 0; i < length; i++) bytes[i] = Math.floor(random() * 256);
    if (first !== undefined) bytes[0] = first;
    return bytes;
  };
  const requests = Array.from({ length: 64 }, (_, i) => {
    const token = readConnectToken(generateConnectToken({
      serverAddresses: [formatAddress(target)],
      clientId: BigInt(1_000_000 + i),
      protocolId: 0x1122334455667788n,
      privateKey,
      expireSeconds: 3600,
    }))!;
    const request = new Uint8Array(CONNECTION_REQUEST_PACKET_BYTES);
    writeConnectionRequestPacket(request, { type: 0, ...token });
    return request;
  });
  const junk: Uint8Array[] = [];
  for (let i = 0; i < 256; i++) {
    switch (i & 3) {
      case 0:
        junk.push(new Uint8Array([0]));
        break;
      case 1:
        junk.push(randomBytes(1 + Math.floor(random() * 1300)));
        break;
      case 2:
        junk.push(requests[i % requests.length]);
        break;
      default:
        junk.push(randomBytes(30 + Math.floor(random() * 1000), 0x15));
    }
  }
  const start = performance.now();
  let sent = 0;
  while (performance.now() - start < seconds * 1000) {
    const due = Math.floor(((performance.now() - start) / 1000) * rate);
    while (sent < due) {
      sockets[sent % sockets.length].send(junk[sent & 255], target);
      sent++;
    }
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  for (const socket of sockets) socket.close();
  console.log(
    `attack: sent ${sent} datagrams in ${
      ((performance.now() - start) / 1000).toFixed(1)
    } s`,
  );
}

function spawn(args: string[]) {
  const child = new Deno.Command(Deno.execPath(), {
    args,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const decoder = new TextDecoder();
  let text = "";
  const waiters: { pattern: RegExp; resolve: (m: RegExpMatchArray) => void }[] =
    [];
  const done = (async () => {
    for await (const chunk of child.stdout) {
      text += decoder.decode(chunk);
      for (const waiter of [...waiters]) {
        const match = text.match(waiter.pattern);
        if (match) {
          waiters.splice(waiters.indexOf(waiter), 1);
          waiter.resolve(match);
        }
      }
    }
  })();
  const stderr = new Response(child.stderr).text();
  return {
    child,
    get text() {
      return text;
    },
    waitFor(pattern: RegExp): Promise<RegExpMatchArray> {
      const match = text.match(pattern);
      if (match) return Promise.resolve(match);
      return new Promise((resolve) => waiters.push({ pattern, resolve }));
    },
    async finish() {
      const status = await child.status;
      await done;
      return { code: status.code, stdout: text, stderr: await stderr };
    },
  };
}

function rssKilobytes(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  return Number(status.match(/VmRSS:\s+(\d+)/)?.[1] ?? NaN);
}

const keyHex = bytesToHex(generateKey());
const packets = Number(flags.packets);
const server = spawn([
  "run",
  "-A",
  "--unstable-net",
  CLI,
  "server",
  "--address",
  "127.0.0.1:0",
  ...(flags.transport === "none" ? [] : ["--transport", flags.transport!]),
  "--metrics-port",
  "0",
  "--stats-interval",
  "0",
  "--private-key",
  keyHex,
]);
const [, address] = await server.waitFor(/listening on (127\.0\.0\.1:\d+)/);
const [, metricsUrl] = await server.waitFor(/metrics at (\S+)/);
const [transportLine] = flags.transport === "none"
  ? ["transport: the CLI's own (no --transport flag)"]
  : await server.waitFor(/transport: [^\n]+/);
const seconds = packets / 60 + 8;
const attacker = spawn([
  "run",
  "-A",
  "--unstable-net",
  SELF,
  "--attack",
  address,
  "--private-key",
  keyHex,
  "--seconds",
  String(seconds),
  "--rate",
  String(rate),
  "--sources",
  String(sources),
]);
// Let the flood reach its rate before the honest client starts.
await new Promise((resolve) => setTimeout(resolve, 2000));
const rss: number[] = [];
const sampler = setInterval(
  () => rss.push(rssKilobytes(server.child.pid)),
  1000,
);
const client = spawn([
  "run",
  "-A",
  "--unstable-net",
  CLI,
  "client",
  "--server",
  address,
  "--private-key",
  keyHex,
  "--packets",
  String(packets),
  "--timeout",
  String(seconds + 20),
]);
const honest = await client.finish();
clearInterval(sampler);
const metrics = await (await fetch(metricsUrl)).text();
const attackResult = await attacker.finish();
server.child.kill("SIGINT");
await server.finish();

const echoed = honest.stdout.match(
  /echoed (\d+)\/(\d+) payloads[^\n]*lost (\d+)/,
);
const kernelDrops = metrics.match(
  /netcode_udp_kernel_drops_total\{socket="[^"]+"\} (\d+)/,
)?.[1];
const dropped = [
  ...metrics.matchAll(
    /netcode_server_packets_dropped_total\{reason="(\w+)"\} (\d+)/g,
  ),
]
  .filter((m) => m[2] !== "0")
  .map((m) => `${m[1]} ${m[2]}`);
console.log(transportLine);
console.log(
  attackResult.stdout.trim(),
  `(asked ${rate}/s from ${sources} addresses)`,
);
console.log(
  `honest client: ${
    echoed ? `echoed ${echoed[1]}/${echoed[2]}, lost ${echoed[3]}` : "FAILED"
  } (exit ${honest.code})${
    honest.code === 0 ? "" : `\n${honest.stdout}${honest.stderr}`
  }`,
);
console.log(`kernel drops at the server's port: ${kernelDrops ?? "unknown"}`);
console.log(`server dropped: ${dropped.join(", ")}`);
console.log(
  `server VmRSS (MB, each second from the client's start): ${
    rss.map((kb) => (kb / 1024).toFixed(1)).join(" ")
  }`,
);
Deno.exit(honest.code === 0 && kernelDrops === "0" ? 0 : 1);
