// The server's and client's `messages` option, over the network simulator:
// reliable-ordered messages arrive exactly once and in order through loss,
// jitter, duplicates and reordering; large ones reassemble; the connection
// quality estimates converge on what the simulator does; raw payloads work
// beside messages; a hostile client cannot make the server throw or grow.

import assert from "node:assert/strict";
import {
  createMessageConnection,
  type MessageConfig,
  sendMessage,
  sendMessagePackets,
  updateMessageConnection,
} from "../channel.ts";
import { type Client, ClientState, createClient } from "../client.ts";
import { generateKey } from "../crypto.ts";
import { writePayloadPacket } from "../packet.ts";
import { createServer, type Server } from "../server.ts";
import {
  createNetworkSimulator,
  createRandom,
  type NetworkSimulatorOptions,
} from "../simulator.ts";
import { generateConnectToken } from "../token.ts";
import { PRIVATE_KEY, PROTOCOL_ID, UNIX_NOW } from "./_harness.ts";

const MESSAGES: MessageConfig = {
  channels: [
    { kind: "reliable-ordered", onSendQueueFull: "drop" },
    { kind: "unreliable-unordered" },
  ],
};
const RELIABLE = 0;
const UNRELIABLE = 1;
const SERVER_ADDRESS = "127.0.0.1:40000";

interface MessageWorld {
  server: Server;
  clients: Client[];
  time: number;
  step(): void;
  run(done: () => boolean, maxTicks: number): number;
}

function createMessageWorld(
  network: NetworkSimulatorOptions,
  numClients: number,
  options: { tick?: number; clientMessages?: boolean } = {},
): MessageWorld {
  const tick = options.tick ?? 1 / 60;
  const simulator = createNetworkSimulator({ seed: 7, ...network });
  const server = createServer({
    address: SERVER_ADDRESS,
    protocolId: PROTOCOL_ID,
    privateKey: PRIVATE_KEY,
    socket: simulator.createSocket(SERVER_ADDRESS),
    unixTime: () => UNIX_NOW + world.time,
    messages: MESSAGES,
  });
  const clients = Array.from({ length: numClients }, (_, i) => {
    const client = createClient({
      socket: simulator.createSocket(`127.0.0.1:${50000 + i}`),
      messages: options.clientMessages === false ? undefined : MESSAGES,
    });
    client.connect(generateConnectToken({
      serverAddresses: [SERVER_ADDRESS],
      clientId: BigInt(i + 1),
      protocolId: PROTOCOL_ID,
      privateKey: PRIVATE_KEY,
      now: UNIX_NOW,
      timeoutSeconds: 30,
    }));
    return client;
  });
  const world: MessageWorld = {
    server,
    clients,
    time: 0,
    step() {
      world.time += tick;
      simulator.update(world.time);
      for (const client of clients) client.update(world.time);
      server.update(world.time);
    },
    run(done, maxTicks) {
      for (let t = 1; t <= maxTicks; t++) {
        world.step();
        if (done()) return t;
      }
      return -1;
    },
  };
  const ticks = world.run(
    () => clients.every((c) => c.state === ClientState.CONNECTED),
    60 * 20,
  );
  assert.ok(ticks > 0, "every client connects");
  return world;
}

/** Message `index` of a stream: its index in the first 4 bytes. */
function message(stream: number, index: number, length: number): Uint8Array {
  const bytes = new Uint8Array(Math.max(length, 8));
  for (let i = 8; i < bytes.length; i++) {
    bytes[i] = (stream * 131 + index * 31 + i) & 0xff;
  }
  const view = new DataView(bytes.buffer);
  view.setUint32(0, stream);
  view.setUint32(4, index);
  return bytes;
}

/** The reliable stream each side sends: chat lines and some large blobs. */
function streamLength(index: number): number {
  if (index % 50 === 25) return 50 * 1024; // a level blob
  if (index % 10 === 3) return 3000; // three parts
  return 10 + (index * 37) % 400;
}

for (const lossPercent of [5, 20]) {
  Deno.test(`server and client messages arrive exactly once and in order over ${lossPercent}% loss, jitter, duplicates and reordering`, () => {
    const world = createMessageWorld({
      latencyMs: 40,
      jitterMs: 20,
      packetLossPercent: lossPercent,
      duplicatePercent: 5,
    }, 3);
    const { server, clients } = world;
    const total = 120;
    const sentToServer = clients.map(() => 0);
    const sentToClient = clients.map(() => 0);
    const gotAtServer = clients.map(() => 0);
    const gotAtClient = clients.map(() => 0);
    let rawAtServer = 0;
    const check = (got: Uint8Array, stream: number, expected: number) => {
      const view = new DataView(got.buffer);
      assert.equal(view.getUint32(0), stream, "the message's stream");
      assert.equal(view.getUint32(4), expected, "in order, none missing");
      assert.deepEqual(
        got,
        message(stream, expected, streamLength(expected)),
      );
    };
    const done = () =>
      gotAtServer.every((n) => n === total) &&
      gotAtClient.every((n) => n === total);
    for (let t = 0; t < 60 * 60 && !done(); t++) {
      for (let i = 0; i < clients.length; i++) {
        // Offer the next message each tick; a full queue refuses it.
        if (
          sentToServer[i] < total &&
          clients[i].sendMessage(
            RELIABLE,
            message(i, sentToServer[i], streamLength(sentToServer[i])),
          )
        ) {
          sentToServer[i]++;
        }
        const slot = clients[i].clientIndex;
        if (
          sentToClient[i] < total &&
          server.sendMessage(
            slot,
            RELIABLE,
            message(100 + i, sentToClient[i], streamLength(sentToClient[i])),
          )
        ) {
          sentToClient[i]++;
        }
        // 60 Hz state and a raw payload beside the messages.
        server.sendMessage(slot, UNRELIABLE, message(200 + i, t, 64));
        clients[i].send(message(300 + i, t, 100));
      }
      world.step();
      for (let i = 0; i < clients.length; i++) {
        const slot = clients[i].clientIndex;
        for (
          let m = server.receiveMessage(slot, RELIABLE);
          m;
          m = server.receiveMessage(slot, RELIABLE)
        ) {
          check(m, i, gotAtServer[i]++);
        }
        for (
          let m = clients[i].receiveMessage(RELIABLE);
          m;
          m = clients[i].receiveMessage(RELIABLE)
        ) {
          check(m, 100 + i, gotAtClient[i]++);
        }
        for (
          let m = clients[i].receiveMessage(UNRELIABLE);
          m;
          m = clients[i].receiveMessage(UNRELIABLE)
        ) {
          const index = new DataView(m.buffer).getUint32(4);
          assert.deepEqual(m, message(200 + i, index, 64));
        }
        for (let p = server.receive(slot); p; p = server.receive(slot)) {
          const index = new DataView(p.buffer).getUint32(4);
          assert.deepEqual(p, message(300 + i, index, 100));
          rawAtServer++;
        }
      }
    }
    assert.deepEqual(gotAtServer, clients.map(() => total));
    assert.deepEqual(gotAtClient, clients.map(() => total));
    assert.ok(rawAtServer > 0, "raw payloads arrive beside messages");
    for (const client of clients) {
      assert.equal(client.state, ClientState.CONNECTED);
      const counters = client.messageConnection!.counters;
      assert.ok(counters.partsResent > 0, "lost parts were resent");
      assert.equal(counters.packetsMalformed, 0);
      assert.equal(
        server.receiveMessage(client.clientIndex, RELIABLE),
        undefined,
      );
    }
    assert.equal(server.stats.dropped.invalidPayloadTag, 0);
  });
}

Deno.test("connectionQuality() converges on the simulated round trip and loss, on the server and the client", () => {
  // 240 Hz updates, so waiting for the next update adds little to a round
  // trip of 200 ms (100 ms each way, +-10 ms of jitter).
  const tick = 1 / 240;
  const world = createMessageWorld(
    {
      latencyMs: 100,
      jitterMs: 10,
      packetLossPercent: 10,
    },
    2,
    { tick },
  );
  const { server, clients } = world;
  const loss = { server: 0, client: 0, samples: 0 };
  for (let t = 0; t < 240 * 40; t++) {
    // 60 Hz state both ways.
    if (t % 4 === 0) {
      for (const client of clients) {
        client.sendMessage(UNRELIABLE, message(1, t, 40));
        server.sendMessage(client.clientIndex, UNRELIABLE, message(2, t, 40));
      }
    }
    world.step();
    for (const client of clients) {
      while (client.receiveMessage(UNRELIABLE));
      while (server.receiveMessage(client.clientIndex, UNRELIABLE));
    }
    // The loss estimate looks at the last 128 packets: average its
    // readings over the last 30 s.
    if (t >= 240 * 10 && t % 24 === 0) {
      loss.server += server.connectionQuality(clients[0].clientIndex)!
        .packetLoss;
      loss.client += clients[0].connectionQuality!.packetLoss;
      loss.samples++;
    }
  }
  for (const client of clients) {
    const atServer = server.connectionQuality(client.clientIndex)!;
    const atClient = client.connectionQuality!;
    for (const quality of [atServer, atClient]) {
      assert.ok(
        Math.abs(quality.rtt - 200) <= 20,
        `rtt ${quality.rtt} ms is within 10% of 200`,
      );
      assert.ok(
        quality.jitter > 0 && quality.jitter < 30,
        `jitter ${quality.jitter}`,
      );
      assert.ok(quality.sentBandwidthKbps > 0);
      assert.ok(quality.receivedBandwidthKbps > 0);
    }
  }
  for (const side of ["server", "client"] as const) {
    const average = loss[side] / loss.samples;
    assert.ok(
      Math.abs(average - 10) <= 3,
      `${side} packet loss ${average.toFixed(2)}% is within 3 points of 10%`,
    );
  }
});

Deno.test("a hostile client's random and mutated message packets cannot make the server throw or hold more than its bounds", () => {
  // The hostile client is an authenticated netcode client without the
  // messages option: the server reads its payloads' first byte as the tag.
  const simulator = createNetworkSimulator({ seed: 3 });
  let time = 0;
  const server = createServer({
    address: SERVER_ADDRESS,
    protocolId: PROTOCOL_ID,
    privateKey: PRIVATE_KEY,
    socket: simulator.createSocket(SERVER_ADDRESS),
    unixTime: () => UNIX_NOW + time,
    messages: MESSAGES,
  });
  const honest = createClient({
    socket: simulator.createSocket("127.0.0.1:50000"),
    messages: MESSAGES,
  });
  const hostileKey = generateKey();
  const hostileSocket = simulator.createSocket("127.0.0.1:50001");
  const hostile = createClient({ socket: hostileSocket });
  for (const [client, id] of [[honest, 1n], [hostile, 2n]] as const) {
    client.connect(generateConnectToken({
      serverAddresses: [SERVER_ADDRESS],
      clientId: id,
      protocolId: PROTOCOL_ID,
      privateKey: PRIVATE_KEY,
      now: UNIX_NOW,
      clientToServerKey: id === 2n ? hostileKey : undefined,
    }));
  }
  const step = () => {
    time += 1 / 60;
    simulator.update(time);
    honest.update(time);
    hostile.update(time);
    server.update(time);
  };
  for (let t = 0; t < 120 && hostile.state !== ClientState.CONNECTED; t++) {
    step();
  }
  assert.equal(hostile.state, ClientState.CONNECTED);
  assert.equal(honest.state, ClientState.CONNECTED);
  const slot = hostile.clientIndex;

  // Message-layer datagrams to mutate, from a connection of the same
  // config that the server never hears from directly.
  const random = createRandom(11);
  const forged: Uint8Array[] = [];
  let forgerTime = 0;
  const forger = createMessageConnection(
    MESSAGES,
    0,
    (d) => forged.push(d.slice()),
  );
  const honestLines: Uint8Array[] = [];
  let received = 0;
  let sent = 0;
  const buffer = new Uint8Array(1300);
  let sequence = 1_000_000;
  for (let t = 0; t < 600; t++) {
    if (
      honest.sendMessage(RELIABLE, message(0, sent, 20 + (sent * 71) % 3000))
    ) {
      honestLines.push(message(0, sent, 20 + (sent * 71) % 3000));
      sent++;
    }
    // 40 hostile payloads a tick, encrypted with the hostile client's key
    // and sent from its socket (so their bytes are exactly these).
    forgerTime += 1 / 60;
    updateMessageConnection(forger, forgerTime);
    sendMessage(forger, RELIABLE, message(9, t, 1 + (t * 97) % 2500));
    if (t % 4 === 0) {
      sendMessage(forger, UNRELIABLE, message(9, t, 1 + (t * 13) % 900));
    }
    sendMessagePackets(forger);
    for (let k = 0; k < 40; k++) {
      let payload: Uint8Array;
      if (k % 3 === 0) {
        // A message packet (tag 1) shaped like an honest one, with a few
        // bits flipped after the tag.
        const honestPacket = forged[(t * 40 + k) % forged.length];
        payload = new Uint8Array(1 + honestPacket.length);
        payload[0] = 1;
        payload.set(honestPacket, 1);
        const flips = 1 + Math.floor(random() * 4);
        for (let f = 0; f < flips; f++) {
          payload[1 + Math.floor(random() * honestPacket.length)] ^= 1 <<
            Math.floor(random() * 8);
        }
      } else {
        payload = new Uint8Array(1 + Math.floor(random() * 1199));
        for (let i = 0; i < payload.length; i++) payload[i] = random() * 256;
        if (k % 3 === 1) {
          // A message packet: tag 1, a reliable 1.0 header, then framing
          // that starts plausibly (flags, channel 0 or 1), random after.
          payload[0] = 1;
          if (payload.length > 12) {
            payload[1] = 0; // regular packet, every ack_bits byte 0xff
            payload[6] = k & 2 ? 1 : 0;
            payload[7] = k & 1;
          }
        }
      }
      const bytes = writePayloadPacket(
        buffer,
        sequence++,
        hostileKey,
        PROTOCOL_ID,
        payload,
      );
      hostileSocket.send(buffer.subarray(0, bytes), server.address);
    }
    step();
    for (
      let m = server.receiveMessage(honest.clientIndex, RELIABLE);
      m;
      m = server.receiveMessage(honest.clientIndex, RELIABLE)
    ) {
      assert.deepEqual(m, honestLines[received++]);
    }
  }
  assert.ok(
    server.clientConnected(slot),
    "the hostile client is not thrown out",
  );
  assert.ok(received > 100, `${received} honest messages arrived meanwhile`);
  const counters = server.messageConnection(slot)!.counters;
  const endpointCounters = server.messageConnection(slot)!.endpoint.counters;
  assert.ok(
    counters.packetsMalformed + endpointCounters.packetsInvalid +
        endpointCounters.fragmentsInvalid + endpointCounters.packetsStale >
      5000,
    JSON.stringify({ counters, endpointCounters }),
  );
  assert.ok(server.stats.dropped.invalidPayloadTag > 1000);
  // The hostile stream left at most the receive queues' worth of messages.
  let held = 0;
  while (server.receiveMessage(slot, RELIABLE)) held++;
  while (server.receiveMessage(slot, UNRELIABLE)) held++;
  assert.ok(held <= 2 * 1024, `${held} messages held`);
});

Deno.test("send() takes raw payloads of up to 1199 bytes with messages on, and sendMessage() explains misuse", () => {
  const world = createMessageWorld({}, 1);
  const { server, clients: [client] } = world;
  assert.throws(() => client.send(new Uint8Array(1200)), {
    name: "RangeError",
    message:
      "Cannot send payload: 1200 bytes is outside the 1..1199 byte limit (with messages on)",
  });
  assert.throws(() => server.send(client.clientIndex, new Uint8Array(1200)), {
    name: "RangeError",
    message:
      "Cannot send payload: 1200 bytes is outside the 1..1199 byte limit (with messages on)",
  });
  client.send(new Uint8Array(1199).fill(9));
  server.send(client.clientIndex, new Uint8Array(1199).fill(8));
  world.step();
  world.step();
  assert.deepEqual(
    server.receive(client.clientIndex),
    new Uint8Array(1199).fill(9),
  );
  assert.deepEqual(client.receive(), new Uint8Array(1199).fill(8));
  assert.throws(() => client.sendMessage(5, new Uint8Array(1)), {
    name: "RangeError",
    message: "Cannot send message: channel 5 is outside 0..1",
  });
  assert.throws(
    () => server.sendMessage(client.clientIndex, 0, new Uint8Array(70000)),
    {
      name: "RangeError",
      message:
        "Cannot send message: 70000 bytes exceeds channel 0's 65536 byte limit",
    },
  );
  const plain = createClient({
    socket: createNetworkSimulator().createSocket("127.0.0.1:1"),
  });
  assert.throws(() => plain.sendMessage(0, new Uint8Array(1)), {
    name: "Error",
    message:
      "Cannot send message: the client was created without the messages option",
  });
  assert.equal(plain.connectionQuality, undefined);
  assert.throws(
    () =>
      createServer({
        protocolId: PROTOCOL_ID,
        privateKey: PRIVATE_KEY,
        socket: createNetworkSimulator().createSocket(SERVER_ADDRESS),
        messages: {
          channels: [{ kind: "reliable-ordered" }],
          reliable: { fragmentSize: 1190 },
        },
      }),
    {
      name: "RangeError",
      message:
        "Cannot create server: messages: reliable.fragmentSize 1190 exceeds the 1185 bytes a netcode payload has room for",
    },
  );
  // A client that disconnects loses its channels; a new connection starts
  // afresh.
  client.disconnect();
  assert.equal(client.messageConnection, undefined);
  assert.equal(client.sendMessage(0, new Uint8Array(1)), false);
});
