/**
 * Message channels in one short program: a server and a client with the
 * `messages` option, over the in-memory network simulator with 50 ms of
 * latency each way, 10 ms of jitter and 10% packet loss. The client sends a
 * chat line on the reliable-ordered channel; the server answers with a
 * 50 KB level blob on the same channel, then 60 Hz state on the unreliable
 * one. Every five simulated seconds it prints the link's RTT and loss as
 * each side estimates them (the RTT also holds the wait for each side's
 * next update, up to 1/60 s each way). It stops by itself after 15
 * simulated seconds.
 *
 * ```sh
 * deno run examples/messages.ts
 * ```
 *
 * Over real UDP the code is the same without the `socket` options (and with
 * `update()` driven by a timer).
 *
 * @module
 */

import {
  ClientState,
  createClient,
  createNetworkSimulator,
  createServer,
  generateConnectToken,
  generateKey,
  type MessageConfig,
} from "../mod.ts";

const PROTOCOL_ID = 0x1122334455667788n;
const PRIVATE_KEY = generateKey();
const SERVER_ADDRESS = "127.0.0.1:40000";

// Both sides use the same channels: 0 reliable-ordered, 1 unreliable.
const CHAT = 0;
const STATE = 1;
const messages: MessageConfig = {
  channels: [{ kind: "reliable-ordered" }, { kind: "unreliable-unordered" }],
};

const network = createNetworkSimulator({
  latencyMs: 50,
  jitterMs: 10,
  packetLossPercent: 10,
});
const server = createServer({
  address: SERVER_ADDRESS,
  protocolId: PROTOCOL_ID,
  privateKey: PRIVATE_KEY,
  socket: network.createSocket(SERVER_ADDRESS),
  messages,
});
const client = createClient({
  socket: network.createSocket("127.0.0.1:50000"),
  messages,
});
client.connect(generateConnectToken({
  serverAddresses: [SERVER_ADDRESS],
  clientId: 1n,
  protocolId: PROTOCOL_ID,
  privateKey: PRIVATE_KEY,
}));

const text = new TextEncoder();
const level = new Uint8Array(50 * 1024).map((_, i) => i % 251);
let said = false;
let statesReceived = 0;
let lastState = -1;

for (let tick = 1; tick <= 15 * 60; tick++) {
  const now = tick / 60;
  network.update(now);
  client.update(now);
  server.update(now);

  // The client says hello once connected.
  if (client.state === ClientState.CONNECTED && !said) {
    client.sendMessage(CHAT, text.encode("hello from the client"));
    said = true;
  }

  // The server answers a chat line with the level, then sends 60 Hz state.
  for (const index of server.connectedClients()) {
    for (
      let line = server.receiveMessage(index, CHAT);
      line;
      line = server.receiveMessage(index, CHAT)
    ) {
      console.log(`server got: "${new TextDecoder().decode(line)}"`);
      server.sendMessage(index, CHAT, level);
    }
    const state = new Uint8Array(8);
    new DataView(state.buffer).setUint32(0, tick);
    server.sendMessage(index, STATE, state);
  }

  // The client takes the level and the newest state.
  for (
    let blob = client.receiveMessage(CHAT);
    blob;
    blob = client.receiveMessage(CHAT)
  ) {
    const intact = blob.length === level.length &&
      blob.every((byte, i) => byte === level[i]);
    console.log(
      `client got the level: ${blob.length} bytes, ${
        intact ? "intact" : "CORRUPT"
      }, at ${now.toFixed(2)} s`,
    );
  }
  for (
    let state = client.receiveMessage(STATE);
    state;
    state = client.receiveMessage(STATE)
  ) {
    statesReceived++;
    lastState = Math.max(lastState, new DataView(state.buffer).getUint32(0));
  }

  if (tick % (5 * 60) === 0 && client.state === ClientState.CONNECTED) {
    const atClient = client.connectionQuality!;
    const atServer = server.connectionQuality(client.clientIndex)!;
    console.log(
      `${now.toFixed(0)} s: rtt ${atClient.rtt.toFixed(0)} ms (server sees ${
        atServer.rtt.toFixed(0)
      }), loss ${atClient.packetLoss.toFixed(1)}% (server sees ${
        atServer.packetLoss.toFixed(1)
      }%), state messages received ${statesReceived}, newest from tick ${lastState}`,
    );
  }
}

await client.close();
await server.close();
