// Floods: 64 connected clients keep echoing while the server is hit by
// valid-token connection requests from many addresses, and separately by
// garbage. Connected clients must not notice; the server's decryption work
// per update stays within its budget, and what it shed is counted.

import { assert, assertEquals, assertGreater } from "./_assert.ts";
import {
  cheapJunkTick,
  connected,
  createWorld,
  tap,
  token,
  type World,
} from "./_harness.ts";
import { createRandom } from "../simulator.ts";
import { DEFAULT_MAX_CONNECTION_REQUESTS_PER_UPDATE } from "../server.ts";
import { readConnectToken } from "../token.ts";
import {
  CONNECTION_REQUEST_PACKET_BYTES,
  writeConnectionRequestPacket,
} from "../packet.ts";

const CLIENTS = 64;
const ATTACKERS = 200;
// Each tick brings 1000 attack datagrams plus the clients' traffic: the
// sockets' receive queues must hold a tick's worth, or the socket itself
// drops datagrams (legitimate ones too) before the server sees them.
const MAX_QUEUE = 4096;

function connectClients(world: World) {
  const clients = Array.from({ length: CLIENTS }, (_, i) => {
    const client = world.addClient();
    client.connect(token({ clientId: BigInt(i + 1), timeoutSeconds: 2 }));
    return client;
  });
  assert(world.run(() => clients.every(connected), 120) > 0);
  return clients;
}

/** Steps the world for `ticks`, echoing; returns echoes per client. */
function echoFor(
  world: World,
  clients: ReturnType<typeof connectClients>,
  ticks: number,
  attack: () => void,
): number[] {
  const echoes = new Array(CLIENTS).fill(0);
  for (let tick = 0; tick < ticks; tick++) {
    attack();
    clients.forEach((client) =>
      client.send(new Uint8Array(100).fill(tick & 255))
    );
    world.step();
    for (let slot = 0; slot < world.server.maxClients; slot++) {
      for (
        let p = world.server.receive(slot);
        p;
        p = world.server.receive(slot)
      ) {
        world.server.send(slot, p);
      }
    }
    clients.forEach((client, i) => {
      while (client.receive()) echoes[i]++;
    });
  }
  return echoes;
}

Deno.test("a flood of valid-token connection requests from many addresses does not disturb connected clients", () => {
  const world = createWorld({
    server: { maxClients: 256 },
    maxQueue: MAX_QUEUE,
  });
  const clients = connectClients(world);
  const attackers = Array.from(
    { length: ATTACKERS },
    (_, i) => tap(world.network.createSocket(`10.0.${i >> 8}.${i & 255}:7777`)),
  );
  // Each attacker holds a genuine token: every request decrypts, so every
  // one processed costs the server a full XChaCha20 decryption.
  const requests = attackers.map((_, i) => {
    const connectToken = readConnectToken(
      token({ clientId: BigInt(100_000 + i), timeoutSeconds: 2 }),
    )!;
    const request = new Uint8Array(CONNECTION_REQUEST_PACKET_BYTES);
    writeConnectionRequestPacket(request, { type: 0, ...connectToken });
    return request;
  });
  let decryptedBefore = world.server.stats.received.connectionRequest;
  let maxPerUpdate = 0;
  const perAttackerPerTick = 5;
  const echoes = echoFor(world, clients, 300, () => {
    const decrypted = world.server.stats.received.connectionRequest;
    maxPerUpdate = Math.max(maxPerUpdate, decrypted - decryptedBefore);
    decryptedBefore = decrypted;
    attackers.forEach((attacker, i) => {
      for (let k = 0; k < perAttackerPerTick; k++) {
        attacker.send(requests[i], world.server.address);
      }
    });
  });
  for (const client of clients) assert(connected(client), client.stateName);
  assertEquals(world.server.numConnectedClients, CLIENTS);
  // Every echo of the 300 ticks came back, but the last round trip's.
  for (const count of echoes) assert(count >= 298, `echoes ${count}`);
  const stats = world.server.stats;
  assert(
    maxPerUpdate <= DEFAULT_MAX_CONNECTION_REQUESTS_PER_UPDATE,
    `${maxPerUpdate}`,
  );
  assertGreater(stats.dropped.connectionRequestsShed, 200_000);
  console.log(
    `valid-token flood: ${ATTACKERS * perAttackerPerTick * 300} requests, ` +
      `${stats.received.connectionRequest} decrypted (at most ${maxPerUpdate} an update), ` +
      `${stats.dropped.connectionRequestsShed} shed, ` +
      `${stats.sent.connectionChallenge} challenges sent`,
  );
  world.close();
});

Deno.test("a flood of garbage from many addresses does not disturb connected clients", () => {
  const world = createWorld({
    server: { maxClients: 64 },
    maxQueue: MAX_QUEUE,
  });
  const clients = connectClients(world);
  const random = createRandom(99);
  const attackers = Array.from(
    { length: ATTACKERS },
    (_, i) => world.network.createSocket(`10.1.${i >> 8}.${i & 255}:7777`),
  );
  const garbage = Array.from({ length: 64 }, () => {
    const length = 1 + Math.floor(random() * 1300);
    const bytes = new Uint8Array(length);
    for (let i = 0; i < length; i++) bytes[i] = Math.floor(random() * 256);
    return bytes;
  });
  let sent = 0;
  const echoes = echoFor(world, clients, 300, () => {
    for (const attacker of attackers) {
      for (let k = 0; k < 5; k++) {
        attacker.send(garbage[(sent++) & 63], world.server.address);
      }
    }
  });
  for (const client of clients) assert(connected(client), client.stateName);
  for (const count of echoes) assert(count >= 298, `echoes ${count}`);
  const dropped = world.server.stats.dropped;
  const totalDropped = Object.values(dropped).reduce((a, b) => a + b, 0);
  assertGreater(totalDropped, sent - 1000);
  // Garbage gets no reply at all.
  assertEquals(world.server.stats.sent.connectionChallenge, CLIENTS);
  assertEquals(world.server.stats.sent.connectionDenied, 0);
  console.log(
    `garbage flood: ${sent} datagrams, dropped by reason ${
      JSON.stringify(
        Object.fromEntries(Object.entries(dropped).filter(([, n]) => n > 0)),
      )
    }`,
  );
  world.close();
});

/**
 * Honest clients connect one after another, each starting at another phase
 * of the server's tick (their requests go out every 6 ticks), while
 * `attack()` queues its datagrams ahead of theirs every tick. Returns the
 * clients, once all are connected and each got `echoes` echoes, or after
 * `maxTicks`.
 */
function connectDuringAttack(
  world: World,
  count: number,
  attack: () => void,
  maxTicks: number,
) {
  const clients: ReturnType<World["addClient"]>[] = [];
  const echoed: number[] = [];
  const ECHOES = 30;
  for (let tick = 0; tick < maxTicks; tick++) {
    // One new client every 37 ticks: 37 = 1 mod 6, so each starts at
    // another phase of its 6-tick request rhythm relative to the others.
    if (tick % 37 === 0 && clients.length < count) {
      const client = world.addClient();
      client.connect(token({
        clientId: BigInt(clients.length + 1),
        timeoutSeconds: 5,
      }));
      clients.push(client);
      echoed.push(0);
    }
    world.time += 1 / 60;
    world.network.update(world.time);
    attack(); // ahead of everything the clients send this tick
    for (const client of world.clients) client.update(world.time);
    world.server.update(world.time);
    for (const i of world.server.connectedClients()) {
      for (let p = world.server.receive(i); p; p = world.server.receive(i)) {
        world.server.send(i, p);
      }
    }
    clients.forEach((client, i) => {
      while (client.receive()) echoed[i]++;
      if (connected(client)) client.send(new Uint8Array([i, tick & 255]));
    });
    if (
      clients.length === count &&
      echoed.every((n) => n >= ECHOES)
    ) break;
  }
  return { clients, echoed, ECHOES };
}

Deno.test("cheap junk (1-byte, short, wrong-size, wrong version or protocol id, expired) does not keep honest clients from connecting", () => {
  const world = createWorld({ maxQueue: MAX_QUEUE });
  const junk = world.network.createSocket("10.2.0.1:6666");
  const tick = cheapJunkTick();
  const { clients, echoed, ECHOES } = connectDuringAttack(world, 6, () => {
    for (const bytes of tick) junk.send(bytes, world.server.address);
  }, 1200);
  const dropped = world.server.stats.dropped;
  for (const client of clients) assert(connected(client), client.stateName);
  for (const count of echoed) assert(count >= ECHOES, `echoes ${echoed}`);
  // None of it was worth a decryption, so none of it was shed: each is
  // counted by what is wrong with it.
  assertEquals(dropped.connectionRequestsShed, 0);
  assertGreater(dropped.tooSmall + dropped.badLength, 0);
  assertGreater(dropped.badVersionInfo, 0);
  assertGreater(dropped.badProtocolId, 0);
  assertGreater(dropped.tokenExpired, 0);
  console.log(
    `junk flood: ${clients.length} honest clients connected and echoed, junk dropped ${
      JSON.stringify(
        Object.fromEntries(Object.entries(dropped).filter(([, n]) => n > 0)),
      )
    }`,
  );
  junk.close();
  world.close();
});

Deno.test("honest clients connect within their token timeout during a flood of valid requests from many addresses", () => {
  const world = createWorld({ maxQueue: MAX_QUEUE });
  const attackers = Array.from(
    { length: ATTACKERS },
    (_, i) => world.network.createSocket(`10.3.${i >> 8}.${i & 255}:7777`),
  );
  const requests = attackers.map((_, i) => {
    const connectToken = readConnectToken(
      token({ clientId: BigInt(100_000 + i) }),
    )!;
    const request = new Uint8Array(CONNECTION_REQUEST_PACKET_BYTES);
    writeConnectionRequestPacket(request, { type: 0, ...connectToken });
    return request;
  });
  let decryptedBefore = 0;
  let maxPerUpdate = 0;
  const { clients, echoed, ECHOES } = connectDuringAttack(world, 6, () => {
    const decrypted = world.server.stats.received.connectionRequest;
    maxPerUpdate = Math.max(maxPerUpdate, decrypted - decryptedBefore);
    decryptedBefore = decrypted;
    // 5 a tick from each of 200 addresses: 60,000 requests a second, every
    // one of them worth decrypting.
    attackers.forEach((attacker, i) => {
      for (let k = 0; k < 5; k++) {
        attacker.send(requests[i], world.server.address);
      }
    });
  }, 1200);
  for (const client of clients) assert(connected(client), client.stateName);
  for (const count of echoed) assert(count >= ECHOES, `echoes ${echoed}`);
  assert(
    maxPerUpdate <= DEFAULT_MAX_CONNECTION_REQUESTS_PER_UPDATE,
    `${maxPerUpdate}`,
  );
  assertGreater(world.server.stats.dropped.connectionRequestsShed, 0);
  for (const attacker of attackers) attacker.close();
  world.close();
});

Deno.test("a client under a flood of junk at its own port keeps its connection and every payload", () => {
  const world = createWorld({ maxQueue: MAX_QUEUE });
  const client = world.addClient();
  client.connect(token({ timeoutSeconds: 2 }));
  assert(world.run(() => connected(client), 120) > 0, client.stateName);
  const random = createRandom(7);
  const attackers = Array.from(
    { length: 20 },
    (_, i) => world.network.createSocket(`10.4.0.${i + 1}:7777`),
  );
  // Junk of every size, and copies of the server's own packets to this
  // client, 400 datagrams a tick (24,000 a second).
  const captured = world.serverSocket.sent.map((sent) => sent.data);
  const junk = Array.from({ length: 64 }, (_, i) => {
    if (i < captured.length) return captured[i];
    const bytes = new Uint8Array(1 + Math.floor(random() * 1300));
    for (let b = 0; b < bytes.length; b++) {
      bytes[b] = Math.floor(random() * 256);
    }
    return bytes;
  });
  const target = world.clientSockets[0].address;
  let echoed = 0;
  let sent = 0;
  for (let tick = 0; tick < 300; tick++) {
    for (const attacker of attackers) {
      for (let k = 0; k < 20; k++) {
        attacker.send(junk[(sent++) & 63], target);
      }
    }
    client.send(new Uint8Array([tick & 255, 1]));
    world.step();
    for (const i of world.server.connectedClients()) {
      for (let p = world.server.receive(i); p; p = world.server.receive(i)) {
        world.server.send(i, p);
      }
    }
    while (client.receive()) echoed++;
  }
  assert(connected(client), client.stateName);
  assert(echoed >= 298, `echoed ${echoed} of 300`);
  assertGreater(client.stats.dropped.wrongAddress, sent - 1000);
  for (const attacker of attackers) attacker.close();
  world.close();
});
