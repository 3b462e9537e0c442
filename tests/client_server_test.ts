// The client and server state machines over the simulator, porting the
// behaviours the reference's own test suite checks, plus the hostile-input
// properties of the protocol.

import {
  assert,
  assertEquals,
  assertGreater,
  assertLess,
  assertThrows,
} from "./_assert.ts";
import {
  connected,
  createWorld,
  packetSequence,
  packetType,
  PRIVATE_KEY,
  PROTOCOL_ID,
  tap,
  TICK,
  token,
  UNIX_NOW,
} from "./_harness.ts";
import { ClientState, clientStateName, createClient } from "../client.ts";
import { createServer, type DisconnectReason } from "../server.ts";
import { createNetworkSimulator } from "../simulator.ts";
import {
  CONNECTION_CHALLENGE_PACKET,
  CONNECTION_DENIED_PACKET,
  CONNECTION_DISCONNECT_PACKET,
  CONNECTION_KEEP_ALIVE_PACKET,
  CONNECTION_PAYLOAD_PACKET,
  CONNECTION_REQUEST_PACKET,
  CONNECTION_RESPONSE_PACKET,
  MAX_PACKET_BYTES,
  writePacket,
} from "../packet.ts";
import { readConnectToken } from "../token.ts";

Deno.test("client connects to server over the simulator and exchanges payloads", () => {
  const world = createWorld();
  const client = world.addClient();
  client.connect(token());
  assertEquals(client.state, ClientState.SENDING_CONNECTION_REQUEST);
  assert(world.run(() => connected(client), 60) > 0, client.stateName);
  assertEquals(client.clientIndex, 0);
  assertEquals(client.maxClients, 256);
  assertEquals(world.server.numConnectedClients, 1);
  assertEquals(world.server.clientId(0), 1n);
  assertEquals(world.server.clientAddress(0), {
    hostname: "127.0.0.1",
    port: 50000,
  });

  let serverGot = 0;
  let clientGot = 0;
  for (let i = 0; i < 60; i++) {
    client.send(new Uint8Array([1, 2, 3, i]));
    world.server.send(0, new Uint8Array([9, 8, 7, i]));
    world.step();
    for (let p = world.server.receive(0); p; p = world.server.receive(0)) {
      assertEquals(p.slice(0, 3), new Uint8Array([1, 2, 3]));
      serverGot++;
    }
    for (let p = client.receive(); p; p = client.receive()) {
      assertEquals(p.slice(0, 3), new Uint8Array([9, 8, 7]));
      clientGot++;
    }
  }
  assertEquals(serverGot, 60);
  assertEquals(clientGot, 60);
  world.close();
});

Deno.test("user data from the token reaches the server slot", () => {
  const world = createWorld();
  const client = world.addClient();
  const userData = new Uint8Array(256).map((_, i) => i ^ 0x5a);
  client.connect(token({ userData }));
  world.run(() => connected(client), 60);
  assertEquals(world.server.clientUserData(0), userData);
  world.close();
});

Deno.test("connected client and server stay connected on keep-alives alone", () => {
  const world = createWorld();
  const client = world.addClient();
  client.connect(token({ timeoutSeconds: 2 }));
  world.run(() => connected(client), 60);
  // 10 simulated seconds, five times the timeout, with no payloads.
  world.run(() => false, 600);
  assert(connected(client));
  assertEquals(world.server.numConnectedClients, 1);
  // 10 Hz on a 60 Hz tick: one every 7 ticks, about 86 in 10 seconds.
  assertGreater(world.server.stats.sent.keepAlive, 80);
  assertGreater(client.stats.sent.keepAlive, 80);
  world.close();
});

Deno.test("multiple clients connect, each in its own slot", () => {
  const world = createWorld({ server: { maxClients: 32 } });
  const clients = Array.from({ length: 32 }, (_, i) => {
    const client = world.addClient();
    client.connect(token({ clientId: BigInt(i + 1) }));
    return client;
  });
  assert(world.run(() => clients.every(connected), 120) > 0);
  const slots = new Set(clients.map((client) => client.clientIndex));
  assertEquals(slots.size, 32);
  assertEquals(world.server.numConnectedClients, 32);
  for (const client of clients) assertEquals(client.maxClients, 32);
  world.close();
});

Deno.test("256 clients connect over the simulator and get every echo back", () => {
  const world = createWorld({ latencyMs: 20, seed: 7 });
  const clients = Array.from({ length: 256 }, (_, i) => {
    const client = world.addClient();
    client.connect(token({ clientId: BigInt(i + 1) }));
    return client;
  });
  assert(world.run(() => clients.every(connected), 300) > 0);
  assertEquals(world.server.numConnectedClients, 256);
  const rounds = 10;
  const echoes = new Array(256).fill(0);
  for (let tick = 0; tick < rounds + 30; tick++) {
    if (tick < rounds) {
      clients.forEach((client, i) => {
        const payload = new Uint8Array(100);
        new DataView(payload.buffer).setUint32(0, i);
        payload[4] = tick;
        client.send(payload);
      });
    }
    world.step();
    for (let slot = 0; slot < 256; slot++) {
      for (
        let p = world.server.receive(slot);
        p;
        p = world.server.receive(slot)
      ) {
        world.server.send(slot, p);
      }
    }
    clients.forEach((client, i) => {
      for (let p = client.receive(); p; p = client.receive()) {
        assertEquals(new DataView(p.buffer).getUint32(0), i);
        echoes[i]++;
      }
    });
  }
  assertEquals(echoes, new Array(256).fill(rounds));
  world.close();
});

Deno.test("client falls back through the token's servers to one that answers", () => {
  const world = createWorld({ serverAddress: "127.0.0.1:40002" });
  const client = world.addClient();
  const seen: string[] = [];
  client.connect(token({
    serverAddresses: ["127.0.0.1:40000", "127.0.0.1:40001", "127.0.0.1:40002"],
    timeoutSeconds: 1,
  }));
  assert(
    world.run(() => {
      const server = client.serverAddress;
      if (server && !seen.includes(`${server.port}`)) {
        seen.push(`${server.port}`);
      }
      return connected(client);
    }, 600) > 0,
    client.stateName,
  );
  assertEquals(seen, ["40000", "40001", "40002"]);
  assertEquals(client.serverAddress, { hostname: "127.0.0.1", port: 40002 });
  world.close();
});

Deno.test("client settles in connect token expired when the attempt outlives the token", () => {
  const world = createWorld({ serverAddress: "127.0.0.1:40001" });
  const client = world.addClient();
  client.connect(token({ expireSeconds: 2, timeoutSeconds: -1 }));
  world.run(() => client.state < 0, 300);
  assertEquals(client.state, ClientState.CONNECT_TOKEN_EXPIRED);
  // Expiry runs on the client's own clock: 2 seconds after connect().
  assert(world.time >= 2 && world.time < 2.1, `${world.time}`);
  world.close();
});

Deno.test("client rejects an invalid connect token", () => {
  const world = createWorld();
  const client = world.addClient();
  const bad = token();
  bad[0] ^= 1; // version info
  client.connect(bad);
  assertEquals(client.state, ClientState.INVALID_CONNECT_TOKEN);
  client.connect(new Uint8Array(100));
  assertEquals(client.state, ClientState.INVALID_CONNECT_TOKEN);
  assertEquals(clientStateName(client.state), "invalid connect token");
  world.close();
});

Deno.test("both sides time out when the other goes silent", () => {
  const world = createWorld();
  const client = world.addClient();
  const reasons: DisconnectReason[] = [];
  world.server.stop();
  const server = createServer({
    address: "127.0.0.1:40001",
    protocolId: PROTOCOL_ID,
    privateKey: PRIVATE_KEY,
    socket: world.network.createSocket("127.0.0.1:40001"),
    unixTime: () => UNIX_NOW,
    onDisconnect: (_, reason) => reasons.push(reason),
  });
  client.connect(
    token({ serverAddresses: ["127.0.0.1:40001"], timeoutSeconds: 3 }),
  );
  let time = 0;
  const tick = (updateServer: boolean, updateClient: boolean) => {
    time += TICK;
    world.network.update(time);
    if (updateClient) client.update(time);
    if (updateServer) server.update(time);
  };
  for (let i = 0; i < 60 && !connected(client); i++) tick(true, true);
  assert(connected(client));
  // The server stops updating: the client times out after 3 seconds.
  for (let i = 0; i < 4 * 60; i++) tick(false, true);
  assertEquals(client.state, ClientState.CONNECTION_TIMED_OUT);
  // The client is gone: the server times it out too.
  for (let i = 0; i < 4 * 60; i++) tick(true, false);
  assertEquals(reasons, ["timedOut"]);
  assertEquals(server.numConnectedClients, 0);
  server.close();
  world.close();
});

Deno.test("client settles in response timed out when responses never arrive", () => {
  const world = createWorld();
  const client = world.addClient();
  world.clientSockets[0].filter = (data) =>
    packetType(data) !== CONNECTION_RESPONSE_PACKET;
  client.connect(token({ timeoutSeconds: 2 }));
  world.run(() => client.state < 0, 600);
  assertEquals(client.state, ClientState.CONNECTION_RESPONSE_TIMED_OUT);
  world.close();
});

Deno.test("client settles in request timed out when requests never arrive", () => {
  const world = createWorld();
  const client = world.addClient();
  world.clientSockets[0].filter = (data) =>
    packetType(data) !== CONNECTION_REQUEST_PACKET;
  client.connect(token({ timeoutSeconds: 2 }));
  world.run(() => client.state < 0, 600);
  assertEquals(client.state, ClientState.CONNECTION_REQUEST_TIMED_OUT);
  world.close();
});

Deno.test("a full server denies the next client", () => {
  const world = createWorld({ server: { maxClients: 1 } });
  const first = world.addClient();
  first.connect(token({ clientId: 1n }));
  world.run(() => connected(first), 60);
  const second = world.addClient();
  second.connect(token({ clientId: 2n }));
  world.run(() => second.state < 0, 120);
  assertEquals(second.state, ClientState.CONNECTION_DENIED);
  assert(connected(first));
  assertGreater(world.server.stats.sent.connectionDenied, 0);
  world.close();
});

Deno.test("client-side disconnect frees the slot with reason clientDisconnected", () => {
  const reasons: [number, DisconnectReason][] = [];
  const world = createWorld({
    server: { onDisconnect: (index, reason) => reasons.push([index, reason]) },
  });
  const client = world.addClient();
  client.connect(token());
  world.run(() => connected(client), 60);
  client.disconnect();
  assertEquals(client.state, ClientState.DISCONNECTED);
  assertEquals(
    world.clientSockets[0].sent.filter((s) =>
      packetType(s.data) === CONNECTION_DISCONNECT_PACKET
    ).length,
    10,
  );
  world.step();
  assertEquals(reasons, [[0, "clientDisconnected"]]);
  assertEquals(world.server.numConnectedClients, 0);
  world.close();
});

Deno.test("server-side disconnect sends 10 disconnect packets and the client leaves", () => {
  const reasons: DisconnectReason[] = [];
  const world = createWorld({
    server: { onDisconnect: (_, reason) => reasons.push(reason) },
  });
  const client = world.addClient();
  client.connect(token());
  world.run(() => connected(client), 60);
  world.server.disconnect(0);
  assertEquals(reasons, ["serverDisconnected"]);
  assertEquals(
    world.serverSocket.sent.filter((s) =>
      packetType(s.data) === CONNECTION_DISCONNECT_PACKET
    ).length,
    10,
  );
  world.run(() => client.state === ClientState.DISCONNECTED, 10);
  assertEquals(client.state, ClientState.DISCONNECTED);
  world.close();
});

Deno.test("client reconnects after disconnecting", () => {
  const world = createWorld();
  const client = world.addClient();
  for (let attempt = 0; attempt < 3; attempt++) {
    client.connect(token({ clientId: 5n }));
    assert(world.run(() => connected(client), 60) > 0, `attempt ${attempt}`);
    client.disconnect();
    world.run(() => world.server.numConnectedClients === 0, 10);
    assertEquals(world.server.numConnectedClients, 0);
  }
  world.close();
});

Deno.test("timeout <= 0 in the token disables timeouts on both sides", () => {
  const world = createWorld();
  const client = world.addClient();
  client.connect(token({ timeoutSeconds: -1 }));
  world.run(() => connected(client), 60);
  // Neither side hears the other for a minute.
  world.clientSockets[0].filter = () => false;
  world.serverSocket.filter = () => false;
  world.run(() => false, 60 * 60);
  assert(connected(client));
  assertEquals(world.server.numConnectedClients, 1);
  world.close();
});

Deno.test("loopback client and server exchange payloads without packets", () => {
  const network = createNetworkSimulator();
  const toClient: Uint8Array[] = [];
  const toServer: Uint8Array[] = [];
  const server = createServer({
    address: "127.0.0.1:40000",
    protocolId: PROTOCOL_ID,
    privateKey: PRIVATE_KEY,
    socket: network.createSocket("127.0.0.1:40000"),
    sendLoopbackPacket: (_, payload) => toClient.push(payload.slice()),
  });
  const client = createClient({
    socket: network.createSocket("127.0.0.1:50000"),
    sendLoopbackPacket: (_, payload) => toServer.push(payload.slice()),
  });
  server.connectLoopbackClient(3, 99n);
  client.connectLoopback(3, 256);
  assert(server.clientLoopback(3));
  assertEquals(client.state, ClientState.CONNECTED);
  assert(client.loopback);
  for (let i = 0; i < 10; i++) {
    client.send(new Uint8Array([i + 1]));
    server.send(3, new Uint8Array([i + 100]));
    server.update(i * TICK);
    client.update(i * TICK);
  }
  for (const payload of toServer) server.processLoopbackPacket(3, payload, 0);
  for (const payload of toClient) client.processLoopbackPacket(payload, 0);
  assertEquals(server.receive(3), new Uint8Array([1]));
  assertEquals(client.receive(), new Uint8Array([100]));
  // Loopback clients never time out and never get keep-alives.
  server.update(100);
  assert(server.clientConnected(3));
  assertEquals(server.stats.sent.keepAlive, 0);
  server.disconnectLoopbackClient(3);
  client.disconnectLoopback();
  assertEquals(server.numConnectedClients, 0);
  assertEquals(client.state, ClientState.DISCONNECTED);
  server.close();
  client.close();
});

Deno.test("restarting the server reseeds the global sequence at 2^63", () => {
  const world = createWorld();
  const client = world.addClient();
  const challengeSequences = () =>
    world.serverSocket.sent
      .filter((s) => packetType(s.data) === CONNECTION_CHALLENGE_PACKET)
      .map((s) => packetSequence(s.data));
  client.connect(token({ clientId: 1n }));
  world.run(() => connected(client), 60);
  assertEquals(challengeSequences(), [1n << 63n]);
  world.server.stop();
  world.server.start(8);
  client.connect(token({ clientId: 2n }));
  world.run(() => connected(client), 120);
  assert(connected(client));
  assertEquals(challengeSequences(), [1n << 63n, 1n << 63n]);
  world.close();
});

Deno.test("createServer() rejects bad keys, max clients and addresses", () => {
  const network = createNetworkSimulator();
  const base = {
    protocolId: PROTOCOL_ID,
    privateKey: PRIVATE_KEY,
    socket: network.createSocket("127.0.0.1:40000"),
  };
  assertThrows(
    () => createServer({ ...base, privateKey: new Uint8Array(31) }),
    RangeError,
    "31 bytes",
  );
  assertThrows(
    () => createServer({ ...base, maxClients: 0 }),
    RangeError,
    "max clients",
  );
  assertThrows(
    () => createServer({ ...base, maxClients: 100_000 }),
    RangeError,
    "max clients",
  );
  assertThrows(
    () => createServer({ ...base, address: "localhost:40000" }),
    TypeError,
    "localhost:40000",
  );
  assertThrows(
    // deno-lint-ignore no-explicit-any
    () => createServer({ ...base, protocolId: 5 as any }),
    TypeError,
    "protocol id",
  );
  const server = createServer({ ...base, maxClients: 4096 });
  assertEquals(server.maxClients, 4096);
  assertThrows(
    () => server.send(4096, new Uint8Array(1)),
    RangeError,
    "client index 4096",
  );
  assertThrows(
    () => server.send(0, new Uint8Array(1201)),
    RangeError,
    "1201 bytes",
  );
  server.close();
});

Deno.test("a token replayed from another address gets no answer", () => {
  const world = createWorld();
  const client = world.addClient();
  client.connect(token());
  world.run(() => connected(client), 60);
  const request = world.clientSockets[0].sent.find((s) =>
    packetType(s.data) === CONNECTION_REQUEST_PACKET
  )!;
  const attacker = tap(world.network.createSocket("127.0.0.1:666"));
  const sentBefore = world.serverSocket.sent.length;
  for (let i = 0; i < 5; i++) {
    attacker.send(request.data, request.to);
    world.step();
  }
  assertEquals(attacker.poll(), undefined);
  const repliesToAttacker = world.serverSocket.sent.slice(sentBefore).filter((
    s,
  ) => s.to.port === 666);
  assertEquals(repliesToAttacker.length, 0);
  assertGreater(
    world.server.stats.dropped.tokenReused +
      world.server.stats.dropped.clientIdConnected,
    4,
  );
  world.close();
});

Deno.test("replayed keep-alive, payload and disconnect packets are ignored", () => {
  const world = createWorld();
  const client = world.addClient();
  const connectToken = token();
  client.connect(connectToken);
  world.run(() => connected(client), 60);
  client.send(new Uint8Array([42]));
  world.run(() => false, 12);
  assertEquals(world.server.receive(0), new Uint8Array([42]));
  const clientSocket = world.clientSockets[0];
  const keepAlive = clientSocket.sent.find((s) =>
    packetType(s.data) === CONNECTION_KEEP_ALIVE_PACKET
  )!;
  const payload = clientSocket.sent.find((s) =>
    packetType(s.data) === CONNECTION_PAYLOAD_PACKET
  )!;
  clientSocket.send(keepAlive.data, keepAlive.to);
  clientSocket.send(payload.data, payload.to);
  world.step();
  assertEquals(world.server.receive(0), undefined);
  assertEquals(world.server.stats.dropped.replayed, 2);
  // A disconnect carrying a sequence the server already received, properly
  // encrypted with the client's key, is a replay: the client stays.
  const key = readConnectToken(connectToken)!.clientToServerKey;
  const forged = new Uint8Array(MAX_PACKET_BYTES);
  const bytes = writePacket(
    forged,
    { type: CONNECTION_DISCONNECT_PACKET },
    Number(packetSequence(payload.data)),
    key,
    PROTOCOL_ID,
  );
  clientSocket.send(forged.subarray(0, bytes), payload.to);
  world.step();
  assertEquals(world.server.stats.dropped.replayed, 3);
  assertEquals(world.server.numConnectedClients, 1);
  assert(connected(client));
  // The same disconnect with a fresh sequence is accepted: the check above
  // failed for the replay, not for the forgery.
  const fresh = writePacket(
    forged,
    { type: CONNECTION_DISCONNECT_PACKET },
    client.nextPacketSequence + 1000,
    key,
    PROTOCOL_ID,
  );
  clientSocket.send(forged.subarray(0, fresh), payload.to);
  world.step();
  assertEquals(world.server.numConnectedClients, 0);
  world.close();
});

Deno.test("an unconfirmed client gets a keep-alive before each payload", () => {
  const world = createWorld();
  const client = world.addClient();
  // Hold back everything the client sends once it is connecting, so the
  // server never hears the keep-alive that would confirm it.
  client.connect(token());
  world.run(() => world.server.numConnectedClients === 1, 60);
  world.clientSockets[0].filter = () => false;
  assert(!world.server.clientConfirmed(0));
  const before = world.serverSocket.sent.length;
  world.server.send(0, new Uint8Array([1]));
  world.server.send(0, new Uint8Array([2]));
  const types = world.serverSocket.sent.slice(before).map((s) =>
    packetType(s.data)
  );
  assertEquals(types, [
    CONNECTION_KEEP_ALIVE_PACKET,
    CONNECTION_PAYLOAD_PACKET,
    CONNECTION_KEEP_ALIVE_PACKET,
    CONNECTION_PAYLOAD_PACKET,
  ]);
  // Once the client's packets get through it is confirmed: payloads go alone.
  world.clientSockets[0].filter = () => true;
  world.run(() => world.server.clientConfirmed(0), 30);
  assert(world.server.clientConfirmed(0));
  const after = world.serverSocket.sent.length;
  world.server.send(0, new Uint8Array([3]));
  assertEquals(
    world.serverSocket.sent.slice(after).map((s) => packetType(s.data)),
    [CONNECTION_PAYLOAD_PACKET],
  );
  world.close();
});

Deno.test("every reply to an unauthenticated packet is smaller than the packet that caused it", () => {
  const world = createWorld({ server: { maxClients: 1 } });
  const clients = [world.addClient(), world.addClient()];
  clients[0].connect(token({ clientId: 1n }));
  world.run(() => connected(clients[0]), 60);
  clients[1].connect(token({ clientId: 2n }));
  world.run(() => clients[1].state < 0, 120);
  assertEquals(clients[1].state, ClientState.CONNECTION_DENIED);
  const replies = world.serverSocket.sent.filter((s) =>
    packetType(s.data) === CONNECTION_CHALLENGE_PACKET ||
    packetType(s.data) === CONNECTION_DENIED_PACKET
  );
  assertGreater(replies.length, 1);
  const requestSize = 1078;
  for (const reply of replies) assertLess(reply.data.length, requestSize);
  world.close();
});

Deno.test("connect() to connected takes at most 3 updates beyond the round trip at 60 Hz", () => {
  for (const latencyMs of [0, 25, 50, 100]) {
    const world = createWorld({ latencyMs });
    const client = world.addClient();
    client.connect(token());
    const ticks = world.run(() => connected(client), 120);
    // The handshake is two round trips (request/challenge, response/keep-
    // alive): four one-way hops. On the simulator a hop takes at least the
    // next tick, and as many ticks as the latency spans.
    const hopTicks = Math.max(1, Math.ceil(latencyMs / 1000 / TICK - 1e-9));
    const roundTripTicks = 4 * hopTicks;
    assert(ticks > 0);
    assert(
      ticks - roundTripTicks <= 3,
      `latency ${latencyMs} ms: ${ticks} updates, the round trips take ${roundTripTicks}`,
    );
    world.close();
  }
});

Deno.test("a run with the same seed is deterministic", () => {
  const trace = () => {
    const world = createWorld({
      seed: 42,
      latencyMs: 50,
      jitterMs: 20,
      packetLossPercent: 10,
      duplicatePercent: 5,
    });
    const clients = Array.from({ length: 8 }, (_, i) => {
      const client = world.addClient();
      client.connect(token({ clientId: BigInt(i + 1) }));
      return client;
    });
    const states: string[] = [];
    for (let tick = 0; tick < 300; tick++) {
      clients.forEach((client) => client.send(new Uint8Array([tick & 255])));
      world.step();
      states.push(clients.map((c) => c.state).join(","));
    }
    const result = JSON.stringify([
      states,
      world.server.stats,
      world.network.stats,
    ]);
    world.close();
    return result;
  };
  assertEquals(trace(), trace());
});

Deno.test("a socket that reuses one Address object for every sender still tells clients apart", () => {
  const world = createWorld();
  // Every datagram the server polls carries the same mutable `from` object.
  const shared = { hostname: "", port: 0 };
  const inner = world.serverSocket.poll.bind(world.serverSocket);
  world.serverSocket.poll = () => {
    const datagram = inner();
    if (!datagram) return undefined;
    shared.hostname = datagram.from.hostname;
    shared.port = datagram.from.port;
    return { data: datagram.data, from: shared };
  };
  const clients = [world.addClient(), world.addClient(), world.addClient()];
  clients.forEach((client, i) =>
    client.connect(token({ clientId: BigInt(i + 1) }))
  );
  assert(world.run(() => clients.every(connected), 120) > 0);
  const echoes = [0, 0, 0];
  for (let tick = 0; tick < 30; tick++) {
    clients.forEach((client, i) => client.send(new Uint8Array([i])));
    world.step();
    for (let slot = 0; slot < 3; slot++) {
      for (
        let p = world.server.receive(slot);
        p;
        p = world.server.receive(slot)
      ) {
        world.server.send(slot, p);
      }
    }
    clients.forEach((client, i) => {
      for (let p = client.receive(); p; p = client.receive()) {
        assertEquals(p, new Uint8Array([i]));
        echoes[i]++;
      }
    });
  }
  for (const count of echoes) assert(count >= 28, `echoes ${echoes}`);
  assertEquals(world.server.stats.dropped.decryptFailed, 0);
  // Disconnects clean up whichever slot the shared object last pointed at.
  clients[1].disconnect();
  world.run(() => world.server.numConnectedClients === 2, 10);
  assertEquals(world.server.numConnectedClients, 2);
  world.close();
});

Deno.test("a throwing onDisconnect callback still frees the slot", () => {
  let calls = 0;
  const world = createWorld({
    server: {
      onDisconnect: () => {
        calls++;
        if (calls === 1) throw new Error("game code failed");
      },
    },
  });
  const client = world.addClient();
  client.connect(token());
  world.run(() => connected(client), 60);
  assertThrows(() => world.server.disconnect(0), Error, "game code failed");
  assertEquals(calls, 1);
  assertEquals(world.server.numConnectedClients, 0);
  assert(!world.server.clientConnected(0));
  // The client was still told: its 10 disconnect packets went out.
  world.run(() => client.state === ClientState.DISCONNECTED, 10);
  assertEquals(client.state, ClientState.DISCONNECTED);
  // And the slot takes a new client.
  client.connect(token({ clientId: 2n }));
  assert(world.run(() => connected(client), 60) > 0);
  world.close();
});

Deno.test("a throwing onStateChange callback leaves the client consistent", () => {
  const world = createWorld();
  let throwOn: ClientState | undefined = ClientState.DISCONNECTED;
  const client = createClient({
    socket: world.network.createSocket("127.0.0.1:50999"),
    onStateChange: (_previous, next) => {
      if (next === throwOn) {
        throwOn = undefined;
        throw new Error("game code failed");
      }
    },
  });
  world.clients.push(client);
  client.connect(token());
  assert(world.run(() => connected(client), 60) > 0);
  // A payload waits in the client's queue, unread.
  world.server.send(0, new Uint8Array([7]));
  world.run(() => false, 3);
  assertThrows(() => client.disconnect(), Error, "game code failed");
  assertEquals(client.state, ClientState.DISCONNECTED);
  // Nothing from the old connection comes out after the reset.
  assertEquals(client.receive(), undefined);
  assertEquals(client.serverAddress, undefined);
  assertEquals(client.nextPacketSequence, 0);
  client.connect(token({ clientId: 2n }));
  assert(world.run(() => connected(client), 60) > 0, client.stateName);
  world.close();
});

Deno.test("receiveInto() hands server and client payloads over in order without a copy of their own", () => {
  const world = createWorld();
  const client = world.addClient();
  client.connect(token());
  assert(world.run(() => connected(client), 60) > 0, client.stateName);
  const serverBuffer = new Uint8Array(1200);
  const clientBuffer = new Uint8Array(1200);
  const sizes = [1, 100, 1200, 37, 1200, 1200, 1200, 5];
  for (const [i, size] of sizes.entries()) {
    client.send(new Uint8Array(size).fill(i + 1));
    world.server.send(0, new Uint8Array(size).fill(i + 101));
  }
  world.step();
  world.step();
  for (const [i, size] of sizes.entries()) {
    assertEquals(world.server.receiveInto(0, serverBuffer), size);
    assertEquals(
      serverBuffer.subarray(0, size),
      new Uint8Array(size).fill(i + 1),
    );
    assertEquals(client.receiveInto(clientBuffer), size);
    assertEquals(
      clientBuffer.subarray(0, size),
      new Uint8Array(size).fill(i + 101),
    );
  }
  assertEquals(world.server.receiveInto(0, serverBuffer), 0);
  assertEquals(client.receiveInto(clientBuffer), 0);
  world.close();
});

Deno.test("receive() payloads have an ArrayBuffer of their own and outlive later traffic", () => {
  const world = createWorld();
  const client = world.addClient();
  client.connect(token());
  assert(world.run(() => connected(client), 60) > 0, client.stateName);
  const kept: Uint8Array[] = [];
  for (let round = 0; round < 50; round++) {
    client.send(new Uint8Array(100).fill(round));
    world.server.send(0, new Uint8Array(100).fill(round));
    world.step();
    for (let p = world.server.receive(0); p; p = world.server.receive(0)) {
      kept.push(p);
    }
    for (let p = client.receive(); p; p = client.receive()) kept.push(p);
  }
  assertEquals(kept.length, 100);
  for (const payload of kept) {
    assertEquals(payload.byteOffset, 0);
    assertEquals(payload.buffer.byteLength, 100);
  }
  // Each round's pair still holds that round's bytes.
  const rounds = kept.map((payload) => payload[0]).sort((a, b) => a - b);
  assertEquals(rounds, Array.from({ length: 100 }, (_, i) => i >> 1));
  world.close();
});

Deno.test("receiveInto() leaves a payload that does not fit queued and throws", () => {
  const world = createWorld();
  const client = world.addClient();
  client.connect(token());
  assert(world.run(() => connected(client), 60) > 0, client.stateName);
  client.send(new Uint8Array(300).fill(3));
  world.server.send(0, new Uint8Array(300).fill(4));
  world.step();
  world.step();
  assertThrows(
    () => world.server.receiveInto(0, new Uint8Array(100)),
    RangeError,
    "Cannot receive payload: 300 bytes do not fit in a 100 byte buffer",
  );
  assertThrows(
    () => client.receiveInto(new Uint8Array(299)),
    RangeError,
    "Cannot receive payload: 300 bytes do not fit in a 299 byte buffer",
  );
  assertThrows(
    // @ts-expect-error: not a Uint8Array
    () => client.receiveInto([0, 0, 0]),
    TypeError,
    "the buffer is not a Uint8Array",
  );
  assertThrows(
    () => world.server.receiveInto(256, new Uint8Array(1200)),
    RangeError,
    "client index 256 is outside 0..255",
  );
  assertEquals(world.server.receive(0), new Uint8Array(300).fill(3));
  assertEquals(client.receive(), new Uint8Array(300).fill(4));
  world.close();
});
