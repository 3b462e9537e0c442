// The server's public API as users asked for it: walking connected clients,
// broadcast, close() that settles, user data copies, receive sequences, and
// the redundant disconnect packets counted as such.

import { assert, assertEquals } from "./_assert.ts";
import {
  connected,
  createWorld,
  packetSequence,
  packetType,
  PRIVATE_KEY,
  PROTOCOL_ID,
  token,
  UNIX_NOW,
} from "./_harness.ts";
import { CONNECTION_PAYLOAD_PACKET } from "../packet.ts";
import { createServer, type DisconnectReason } from "../server.ts";
import { listenUdp } from "../socket.ts";

function connectClients(count: number, options = {}) {
  const world = createWorld({ server: { maxClients: 8, ...options } });
  const clients = Array.from({ length: count }, (_, i) => {
    const client = world.addClient();
    client.connect(token({ clientId: BigInt(i + 1) }));
    return client;
  });
  assert(world.run(() => clients.every(connected), 200) > 0, "all connect");
  return { world, clients };
}

Deno.test("a client's clean disconnect counts its 9 other disconnect packets as redundantDisconnect, not typeNotAllowed", () => {
  const { world, clients } = connectClients(1);
  clients[0].disconnect();
  for (let i = 0; i < 5; i++) world.step();
  assertEquals(world.server.numConnectedClients, 0);
  assertEquals(world.server.stats.received.disconnect, 1);
  assertEquals(world.server.stats.dropped.redundantDisconnect, 9);
  assertEquals(world.server.stats.dropped.typeNotAllowed, 0);
  world.close();
});

Deno.test("disconnect packets from an address that never had a slot still count as typeNotAllowed", () => {
  const { world } = connectClients(1);
  const stranger = world.network.createSocket("127.0.0.1:60000");
  // Prefix: a disconnect packet (type 6) with a 1-byte sequence; then a MAC.
  const packet = new Uint8Array(18);
  packet[0] = 0x16;
  stranger.send(packet, world.server.address);
  stranger.send(packet, world.server.address);
  world.step();
  assertEquals(world.server.stats.dropped.typeNotAllowed, 2);
  assertEquals(world.server.stats.dropped.redundantDisconnect, 0);
  stranger.close();
  world.close();
});

Deno.test("server.connectedClients() lists the slots in use in ascending order and numConnectedClients counts them", () => {
  const { world, clients } = connectClients(3);
  world.server.connectLoopbackClient(5, 99n);
  assertEquals(world.server.connectedClients(), [0, 1, 2, 5]);
  assertEquals(world.server.numConnectedClients, 4);
  const walked: number[] = [];
  for (const i of world.server.connectedClients()) {
    walked.push(i);
    if (i === 1) world.server.disconnect(1); // safe while walking
  }
  assertEquals(walked, [0, 1, 2, 5]);
  assertEquals(world.server.connectedClients(), [0, 2, 5]);
  clients[0].disconnect();
  for (let i = 0; i < 3; i++) world.step();
  assertEquals(world.server.connectedClients(), [2, 5]);
  world.server.stop();
  assertEquals(world.server.connectedClients(), []);
  world.close();
});

Deno.test("server.broadcast() sends one payload to every connected client, loopback clients included", () => {
  const loopback: [number, number[]][] = [];
  const { world, clients } = connectClients(3, {
    sendLoopbackPacket: (i: number, payload: Uint8Array) =>
      loopback.push([i, [...payload]]),
  });
  world.server.connectLoopbackClient(6, 99n);
  assertEquals(world.server.broadcast(new Uint8Array([7, 8])), 4);
  world.step();
  for (const client of clients) {
    assertEquals(client.receive(), new Uint8Array([7, 8]));
    assertEquals(client.receive(), undefined);
  }
  assertEquals(loopback, [[6, [7, 8]]]);
  world.server.stop();
  assertEquals(world.server.broadcast(new Uint8Array([1])), 0);
  world.close();
});

Deno.test("server.close() first processes what is queued: a client's own disconnect is clientDisconnected", async () => {
  const reasons: DisconnectReason[] = [];
  const { world, clients } = connectClients(2, {
    onDisconnect: (_i: number, reason: DisconnectReason) =>
      reasons.push(reason),
  });
  clients[0].disconnect();
  world.network.update(world.time + 1 / 60); // its packets reach the queue
  await world.server.close();
  assertEquals(reasons.sort(), ["clientDisconnected", "serverDisconnected"]);
  assertEquals(world.server.running, false);
  // Its other 9 arrive with no slot to go to while closing.
  assertEquals(world.server.stats.dropped.notRunning, 9);
  for (const client of world.clients) client.close();
});

Deno.test("server.close() does not connect a client whose connection packets are still queued", () => {
  const connects: number[] = [];
  const world = createWorld({
    server: { onConnect: (i: number) => connects.push(i) },
  });
  const client = world.addClient();
  client.connect(token());
  world.time += 1 / 60;
  client.update(world.time); // sends a connection request
  world.network.update(world.time);
  world.server.close();
  assertEquals(connects, []);
  assertEquals(world.server.stats.received.connectionRequest, 0);
  assertEquals(world.server.stats.dropped.notRunning, 1);
  client.close();
});

Deno.test("server.close() settles once its UDP socket is closed; await using closes it too", async () => {
  let port: number;
  {
    await using server = createServer({
      address: "127.0.0.1:0",
      protocolId: PROTOCOL_ID,
      privateKey: PRIVATE_KEY,
      unixTime: () => UNIX_NOW,
    });
    port = server.address.port;
  }
  // The port is free again: the socket was closed when the scope ended.
  const again = listenUdp({ hostname: "127.0.0.1", port });
  again.close();
  await again.closed;
  const server = createServer({
    address: `127.0.0.1:${port}`,
    protocolId: PROTOCOL_ID,
    privateKey: PRIVATE_KEY,
    unixTime: () => UNIX_NOW,
  });
  const closing = server.close();
  assert(closing instanceof Promise);
  await closing;
  assertEquals(server.running, false);
  const last = listenUdp({ hostname: "127.0.0.1", port });
  last.close();
  await last.closed;
});

Deno.test("server.clientUserData() returns a copy the caller may change", () => {
  const userData = new Uint8Array(256).fill(3);
  const world = createWorld();
  const client = world.addClient();
  client.connect(token({ userData }));
  assert(world.run(() => connected(client), 120) > 0);
  const copy = world.server.clientUserData(0)!;
  assertEquals(copy, userData);
  copy.fill(0);
  assertEquals(world.server.clientUserData(0), userData);
  world.close();
});

Deno.test("server.receivedSequence() is the packet sequence of the payload last taken from the client", () => {
  const world = createWorld();
  const client = world.addClient();
  client.connect(token());
  assert(world.run(() => connected(client), 120) > 0);
  assertEquals(world.server.receivedSequence(0), -1);
  client.send(new Uint8Array([1]));
  client.send(new Uint8Array([2]));
  world.step();
  const sent = world.clientSockets[0].sent
    .filter((datagram) =>
      packetType(datagram.data) === CONNECTION_PAYLOAD_PACKET
    )
    .map((datagram) => Number(packetSequence(datagram.data)));
  assertEquals(sent.length, 2);
  assertEquals(world.server.receive(0), new Uint8Array([1]));
  assertEquals(world.server.receivedSequence(0), sent[0]);
  assertEquals(world.server.receiveInto(0, new Uint8Array(8)), 1);
  assertEquals(world.server.receivedSequence(0), sent[1]);
  world.server.connectLoopbackClient(1, 50n);
  world.server.processLoopbackPacket(1, new Uint8Array([5]), 1234);
  world.server.receive(1);
  assertEquals(world.server.receivedSequence(1), 1234);
  world.close();
});
