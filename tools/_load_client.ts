/**
 * The load harness's client process (started by `tools/load.ts`): `--count`
 * netcode clients, each on its own UDP socket, connect to the server on
 * 127.0.0.1; the process prints `{"connected"}`, waits for `go` (stdin),
 * then every client sends a 100-byte payload at 60 Hz for `--seconds`,
 * carrying its id, a sequence and the send time, and measures the echo's
 * round trip. After a 1 s drain it prints what was sent, echoed, the RTT
 * histogram and its own CPU time, and whether it kept up with 60 Hz.
 *
 * The clients are spread over the 60 Hz frame in `--slots` groups (each
 * group updated and sending at its own offset), as real players are, so the
 * server does not get every client's packet in one burst.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { type Client, ClientState, createClient } from "../client.ts";
import { MAX_PAYLOAD_BYTES } from "../packet.ts";
import { generateConnectToken } from "../token.ts";
import { openClientMultiplexer } from "./_load_mux.ts";
import {
  createHistogram,
  emit,
  hexToBytes,
  histogramToJson,
  openSocket,
  parseTransport,
  PAYLOAD_BYTES,
  PAYLOAD_ID,
  PAYLOAD_SEQUENCE,
  PAYLOAD_TIME,
  processCpuSeconds,
  PROTOCOL_ID,
  readCommands,
  record,
  SEND_HZ,
  sleep,
  sleepUntil,
} from "./_load_common.ts";

const { values } = parseArgs({
  options: {
    transport: { type: "string", default: "deno" },
    count: { type: "string", default: "32" },
    "first-id": { type: "string", default: "1" },
    port: { type: "string" },
    key: { type: "string" },
    seconds: { type: "string", default: "10" },
    slots: { type: "string", default: "4" },
    lifetime: { type: "string", default: "300" },
  },
});
// "mux": every client of this process on one shared socket, each with its
// own 127.1.x.y address (tools/_load_mux.ts).
const transport = values.transport === "mux"
  ? "mux"
  : parseTransport(values.transport);
const count = Number(values.count);
const firstId = Number(values["first-id"]);
const seconds = Number(values.seconds);
const slots = Math.max(1, Math.min(count, Number(values.slots)));
const lifetimeMs = Number(values.lifetime) * 1000;
if (!values.key || !values.port) {
  throw new Error("--key and --port are required");
}
const privateKey = hexToBytes(values.key);
const serverAddress = `127.0.0.1:${values.port}`;
const frameMs = 1000 / SEND_HZ;
const slotMs = frameMs / slots;
const DRAIN_MS = 1000;
const CONNECT_MS = 30_000;

const mux = transport === "mux"
  ? openClientMultiplexer(firstId, count, {
    hostname: "127.0.0.1",
    port: Number(values.port),
  })
  : undefined;
const clients: Client[] = [];
for (let i = 0; i < count; i++) {
  const client = createClient({
    socket: transport === "mux" ? mux!.sockets[i] : openSocket(transport),
  });
  client.connect(generateConnectToken({
    serverAddresses: [serverAddress],
    clientId: BigInt(firstId + i),
    protocolId: PROTOCOL_ID,
    privateKey,
    expireSeconds: 300,
    timeoutSeconds: 10,
  }));
  clients.push(client);
}

type Phase = "connect" | "ready" | "send" | "drain" | "done";
let phase = "connect" as Phase;
/** The phase as the stdin reader may have changed it. */
const currentPhase = (): Phase => phase;
let quit = false;
let goAt = 0;
readCommands((command) => {
  if (command === "quit") quit = true;
  if (command === "go" && currentPhase() === "ready") {
    phase = "send";
    goAt = performance.now();
    cpuAtStart = processCpuSeconds();
  }
});

const payload = new Uint8Array(PAYLOAD_BYTES);
const echo = new Uint8Array(MAX_PAYLOAD_BYTES);
const echoView = new DataView(echo.buffer);
const payloadView = new DataView(payload.buffer);
const sequences = new Uint32Array(count);
let sent = 0;
let echoed = 0;
let stale = 0;
let cpuAtStart = 0;
let cpuSeconds = 0;
let lateFrames = 0;
const rtt = createHistogram();
const start = performance.now();

/** Updates the clients of one slot: receive echoes, then send. */
function runSlot(slot: number, now: number): void {
  const seconds = now / 1000;
  mux?.pump();
  for (let i = slot; i < count; i += slots) {
    const client = clients[i];
    client.update(seconds);
    for (
      let bytes = client.receiveInto(echo);
      bytes > 0;
      bytes = client.receiveInto(echo)
    ) {
      if (bytes !== PAYLOAD_BYTES) continue;
      const sentAt = echoView.getFloat64(PAYLOAD_TIME, true);
      if (sentAt >= goAt && goAt > 0) {
        echoed++;
        record(rtt, performance.now() - sentAt);
      } else {
        stale++;
      }
    }
    if (phase === "send" && client.state === ClientState.CONNECTED) {
      payloadView.setUint32(PAYLOAD_ID, firstId + i, true);
      payloadView.setUint32(PAYLOAD_SEQUENCE, sequences[i]++, true);
      payloadView.setFloat64(PAYLOAD_TIME, performance.now(), true);
      client.send(payload);
      sent++;
    }
  }
  mux?.flush();
}

let slot = 0;
let next = performance.now();
let frameStart = next;
while (
  !quit && performance.now() - start < lifetimeMs && currentPhase() !== "done"
) {
  const now = performance.now();
  if (slot === 0) {
    if (currentPhase() === "send" && now - frameStart > 2 * frameMs) {
      lateFrames++;
    }
    frameStart = now;
  }
  runSlot(slot, now);
  slot = (slot + 1) % slots;
  if (currentPhase() === "connect") {
    const connected = clients.filter((c) => c.state === ClientState.CONNECTED)
      .length;
    const failed = clients.filter((c) => c.state < ClientState.DISCONNECTED);
    if (connected === count || now - start > CONNECT_MS || failed.length > 0) {
      phase = "ready";
      emit({
        connected,
        failed: failed.map((c) => c.stateName).slice(0, 5),
        connectSeconds: (now - start) / 1000,
      });
    }
  } else if (currentPhase() === "send" && now - goAt >= seconds * 1000) {
    phase = "drain";
    cpuSeconds = processCpuSeconds() - cpuAtStart;
  } else if (
    currentPhase() === "drain" && now - goAt >= seconds * 1000 + DRAIN_MS
  ) {
    phase = "done";
  }
  next += slotMs;
  if (next < performance.now() - frameMs) next = performance.now();
  await sleepUntil(next);
}

if (currentPhase() === "done") {
  emit({
    result: true,
    transport,
    clients: count,
    windowSeconds: seconds,
    sent,
    echoed,
    stale,
    // The share of the 60 Hz sends that happened: below 1, this process
    // could not keep up.
    sendRate: sent / (count * SEND_HZ * seconds),
    lateFrames,
    cpuSeconds,
    rtt: histogramToJson(rtt),
    connected: clients.filter((c) => c.state === ClientState.CONNECTED).length,
  });
}
// Wait for quit (the server must not see 1024 disconnects mid-measurement).
const deadline = performance.now() + 30_000;
while (!quit && performance.now() < deadline) await sleep(20);
for (const client of clients) client.close();
mux?.flush();
mux?.close();
Deno.exit(0);
