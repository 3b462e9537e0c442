// The other end of tests/runtime_interop_test.ts, run by Node.js or Bun
// from dist/node/ (`deno task build:node` builds it):
//
//   node dist/node/tests/_runtime_peer.js server <bind address> <key hex>
//     prints "listening <address>", echoes every payload, and exits 0 once
//     a client connected and disconnected ("done <echoes>").
//   node dist/node/tests/_runtime_peer.js client <connect token hex>
//     connects, sends 100-byte payloads until 10 came back byte for byte,
//     prints "echoed 10", disconnects and exits 0.
//
// Either exits 1 after 15 s. Both run on the runtime's own clock: the other
// end is another process.

import process from "node:process";
import { formatAddress } from "../address.ts";
import {
  ClientState,
  clientStateName,
  createClient,
  isDisconnected,
} from "../client.ts";
import { keyFromHex } from "../crypto.ts";
import { createServer } from "../server.ts";

/** The protocol id both ends use (tests/_harness.ts's PROTOCOL_ID). */
const PROTOCOL_ID = 0x1122334455667788n;
const DEADLINE_MS = 15_000;
const ECHOES = 10;

const pause = (): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, 1));
const start = performance.now();
const now = (): number => (performance.now() - start) / 1000;

function hexBytes(text: string): Uint8Array {
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) {
    out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  }
  return out;
}

async function runServer(address: string, keyHex: string): Promise<number> {
  let connects = 0;
  let disconnects = 0;
  let echoes = 0;
  await using server = createServer({
    address,
    protocolId: PROTOCOL_ID,
    privateKey: keyFromHex(keyHex),
    onConnect: () => connects++,
    onDisconnect: () => disconnects++,
  });
  console.log(`listening ${formatAddress(server.address)}`);
  while (performance.now() - start < DEADLINE_MS) {
    server.update(now());
    for (const i of server.connectedClients()) {
      for (let p = server.receive(i); p; p = server.receive(i)) {
        server.send(i, p);
        echoes++;
      }
    }
    if (connects > 0 && disconnects === connects) {
      console.log(`done ${echoes}`);
      return 0;
    }
    await pause();
  }
  console.log(`timeout: ${connects} connected, ${echoes} echoed`);
  return 1;
}

async function runClient(tokenHex: string): Promise<number> {
  await using client = createClient();
  client.connect(hexBytes(tokenHex));
  const payload = new Uint8Array(100);
  for (let i = 0; i < payload.length; i++) payload[i] = (i * 7 + 3) & 0xff;
  let echoes = 0;
  while (performance.now() - start < DEADLINE_MS) {
    client.update(now());
    for (let p = client.receive(); p; p = client.receive()) {
      if (p.length !== payload.length || p.some((b, i) => b !== payload[i])) {
        console.log("a payload came back changed");
        return 1;
      }
      echoes++;
    }
    if (echoes >= ECHOES) {
      console.log(`echoed ${echoes}`);
      return 0;
    }
    if (client.state === ClientState.CONNECTED) client.send(payload);
    else if (isDisconnected(client.state)) {
      console.log(`failed: ${clientStateName(client.state)}`);
      return 1;
    }
    await pause();
  }
  console.log(`timeout: ${clientStateName(client.state)}, ${echoes} echoed`);
  return 1;
}

const [role, ...args] = process.argv.slice(2);
process.exitCode = role === "server"
  ? await runServer(args[0], args[1])
  : role === "client"
  ? await runClient(args[0])
  : (console.log("usage: server <address> <key hex> | client <token hex>"), 2);
