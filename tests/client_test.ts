// The client's state machine on its own: the state tables, the predicates,
// server fallback as seen through onStateChange, and the drop counters.

import { assert, assertEquals, assertThrows } from "./_assert.ts";
import { stepUntil } from "./_loopback.ts";
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
import { formatAddress, parseAddress } from "../address.ts";
import {
  CLIENT_DROP_REASONS,
  type ClientDropReason,
  ClientState,
  clientStateName,
  createClient,
  isConnecting,
  isDisconnected,
  isError,
} from "../client.ts";
import {
  CONNECTION_CHALLENGE_PACKET,
  CONNECTION_DISCONNECT_PACKET,
  CONNECTION_KEEP_ALIVE_PACKET,
  CONNECTION_PAYLOAD_PACKET,
  PACKET_DROP_REASON_NAMES,
  writePacket,
} from "../packet.ts";
import { createServer } from "../server.ts";
import { readConnectToken } from "../token.ts";

/** Records every onStateChange as "previous -> next (server)". */
function recordStates(world: ReturnType<typeof createWorld>, port: number) {
  const events: string[] = [];
  const client = createClient({
    socket: world.network.createSocket(`127.0.0.1:${port}`),
    onStateChange(previous, next) {
      const server = client.serverAddress;
      events.push(
        `${clientStateName(previous)} -> ${clientStateName(next)}${
          server ? ` (${formatAddress(server)})` : ""
        }`,
      );
    },
  });
  world.clients.push(client);
  return { client, events };
}

Deno.test("createClient() reports a state change when it falls back to the next server", () => {
  // Nobody listens on 40000: the request times out and the client moves on.
  const world = createWorld({ serverAddress: "127.0.0.1:40001" });
  const { client, events } = recordStates(world, 50100);
  client.connect(token({
    serverAddresses: ["127.0.0.1:40000", "127.0.0.1:40001"],
    timeoutSeconds: 1,
  }));
  assert(
    world.run(() => client.state === ClientState.CONNECTED, 300) > 0,
    client.stateName,
  );
  assertEquals(events, [
    "disconnected -> sending connection request (127.0.0.1:40000)",
    "sending connection request -> sending connection request (127.0.0.1:40001)",
    "sending connection request -> sending connection response (127.0.0.1:40001)",
    "sending connection response -> connected (127.0.0.1:40001)",
  ]);
  world.close();
});

Deno.test("createClient() reports each fallback before it settles in request timed out", () => {
  const world = createWorld({ serverAddress: "127.0.0.1:40009" });
  const { client, events } = recordStates(world, 50101);
  client.connect(token({
    serverAddresses: ["127.0.0.1:40000", "127.0.0.1:40001", "[::1]:40002"],
    timeoutSeconds: 1,
  }));
  world.run(() => client.state < 0, 600);
  assertEquals(client.state, ClientState.CONNECTION_REQUEST_TIMED_OUT);
  assertEquals(events, [
    "disconnected -> sending connection request (127.0.0.1:40000)",
    "sending connection request -> sending connection request (127.0.0.1:40001)",
    "sending connection request -> sending connection request ([::1]:40002)",
    "sending connection request -> connection request timed out",
  ]);
  world.close();
});

Deno.test("createClient() reports no change when an invalid token follows an invalid token", () => {
  const world = createWorld();
  const { client, events } = recordStates(world, 50102);
  client.connect(new Uint8Array(100));
  client.connect(new Uint8Array(100));
  assertEquals(events, ["disconnected -> invalid connect token"]);
  world.close();
});

Deno.test("createClient() reports a state change when a denied request falls back to the next server", () => {
  // The server at 40000 is full; the one at 40001 has room.
  const world = createWorld({ server: { maxClients: 1 } });
  const first = world.addClient();
  first.connect(token({ clientId: 1n }));
  assert(world.run(() => connected(first), 60) > 0, first.stateName);
  const roomy = createServer({
    address: "127.0.0.1:40001",
    protocolId: PROTOCOL_ID,
    privateKey: PRIVATE_KEY,
    socket: world.network.createSocket("127.0.0.1:40001"),
    unixTime: () => UNIX_NOW + world.time,
  });
  const { client, events } = recordStates(world, 50103);
  client.connect(token({
    clientId: 2n,
    serverAddresses: ["127.0.0.1:40000", "127.0.0.1:40001"],
  }));
  for (let i = 0; i < 120 && !connected(client); i++) {
    world.step();
    roomy.update(world.time);
  }
  assertEquals(client.stats.received.connectionDenied, 1);
  assertEquals(events, [
    "disconnected -> sending connection request (127.0.0.1:40000)",
    "sending connection request -> sending connection request (127.0.0.1:40001)",
    "sending connection request -> sending connection response (127.0.0.1:40001)",
    "sending connection response -> connected (127.0.0.1:40001)",
  ]);
  roomy.close();
  world.close();
});

Deno.test("isError(), isConnecting() and isDisconnected() classify every state", () => {
  const classes = Object.values(ClientState).map((state) =>
    `${clientStateName(state)}: ${isError(state) ? "error " : ""}${
      isConnecting(state) ? "connecting " : ""
    }${isDisconnected(state) ? "disconnected" : ""}`.trim()
  );
  assertEquals(classes, [
    "connect token expired: error disconnected",
    "invalid connect token: error disconnected",
    "connection timed out: error disconnected",
    "connection response timed out: error disconnected",
    "connection request timed out: error disconnected",
    "connection denied: error disconnected",
    "disconnected: disconnected",
    "sending connection request: connecting",
    "sending connection response: connecting",
    "connected:",
  ]);
});

Deno.test("CLIENT_DROP_REASONS lists the packet reader's reasons in order, then the client's, and names every counter", () => {
  assertEquals(
    CLIENT_DROP_REASONS.slice(0, PACKET_DROP_REASON_NAMES.length),
    [...PACKET_DROP_REASON_NAMES],
  );
  assertEquals(CLIENT_DROP_REASONS.slice(PACKET_DROP_REASON_NAMES.length), [
    "wrongAddress",
    "wrongState",
    "receiveQueueFull",
    "redundantDisconnect",
    "invalidPayloadTag",
  ]);
  using client = createClient({
    socket: createWorld().network.createSocket("127.0.0.1:50104"),
  });
  assertEquals(Object.keys(client.stats.dropped), [...CLIENT_DROP_REASONS]);
  const reason: ClientDropReason = "wrongState";
  assertEquals(client.stats.dropped[reason], 0);
  // A misspelled counter does not compile.
  // @ts-expect-error: not a drop reason
  assertEquals(client.stats.dropped.wrongAdress, undefined);
});

Deno.test("createClient() drops packet types its state does not allow and counts them", () => {
  // A hand-made server: the client's state decides what it accepts.
  const world = createWorld({ serverAddress: "127.0.0.1:40005" });
  const { client, events } = recordStates(world, 50105);
  const server = world.network.createSocket("127.0.0.1:40006");
  const connectToken = token({ serverAddresses: ["127.0.0.1:40006"] });
  const keys = readConnectToken(connectToken)!;
  const clientAddress = parseAddress("127.0.0.1:50105");
  const buffer = new Uint8Array(1300);
  let sequence = 0;
  const challenge = {
    type: CONNECTION_CHALLENGE_PACKET,
    challengeTokenSequence: 0n,
    challengeTokenData: new Uint8Array(300),
  } as const;
  const keepAlive = {
    type: CONNECTION_KEEP_ALIVE_PACKET,
    clientIndex: 0,
    maxClients: 1,
  } as const;
  const payload = {
    type: CONNECTION_PAYLOAD_PACKET,
    payload: new Uint8Array([1]),
  } as const;
  const deliver = (
    packet: typeof challenge | typeof keepAlive | typeof payload,
  ) => {
    const bytes = writePacket(
      buffer,
      packet,
      sequence++,
      keys.serverToClientKey,
      PROTOCOL_ID,
    );
    server.send(buffer.subarray(0, bytes), clientAddress);
    world.step();
  };
  client.connect(connectToken);
  world.step();
  deliver(keepAlive);
  deliver(payload);
  assertEquals(client.state, ClientState.SENDING_CONNECTION_REQUEST);
  assertEquals(client.stats.dropped.typeNotAllowed, 2);
  deliver(challenge);
  assertEquals(client.state, ClientState.SENDING_CONNECTION_RESPONSE);
  deliver(challenge);
  deliver(payload);
  assertEquals(client.stats.dropped.typeNotAllowed, 4);
  deliver(keepAlive);
  assertEquals(client.state, ClientState.CONNECTED);
  deliver(challenge);
  assertEquals(client.stats.dropped.typeNotAllowed, 5);
  deliver(payload);
  assertEquals(client.receive(), new Uint8Array([1]));
  assertEquals(client.stats.received.payload, 1);
  assertEquals(events.length, 3);
  server.close();
  world.close();
});

Deno.test("createClient() has clientIndex -1 until a server gives it a slot, and after it leaves", () => {
  const world = createWorld();
  const client = world.addClient();
  assertEquals(client.clientIndex, -1);
  client.connect(token());
  assertEquals(client.clientIndex, -1);
  assert(world.run(() => connected(client), 120) > 0, client.stateName);
  assertEquals(client.clientIndex, 0);
  client.disconnect();
  assertEquals(client.clientIndex, -1);
  world.close();
});

Deno.test("client.receivedSequence is the packet sequence of the payload last taken", () => {
  const world = createWorld();
  const client = world.addClient();
  client.connect(token());
  assert(world.run(() => connected(client), 120) > 0, client.stateName);
  assertEquals(client.receivedSequence, -1);
  world.server.send(0, new Uint8Array([1]));
  world.server.send(0, new Uint8Array([2]));
  world.step();
  // The payload packets as they arrived, with the sequence on the wire.
  const arrived = world.clientSockets[0].received
    .filter((datagram) =>
      packetType(datagram.data) === CONNECTION_PAYLOAD_PACKET
    )
    .map((datagram) => Number(packetSequence(datagram.data)));
  assertEquals(arrived.length, 2);
  assertEquals(client.receive(), new Uint8Array([1]));
  assertEquals(client.receivedSequence, arrived[0]);
  assertEquals(client.receiveInto(new Uint8Array(4)), 1);
  assertEquals(client.receivedSequence, arrived[1]);
  assert(arrived[1] > arrived[0], `${arrived}`);
  // Loopback payloads carry the sequence the loopback server gives them.
  client.connectLoopback(3, 8);
  client.processLoopbackPacket(new Uint8Array([9]), 77);
  client.receive();
  assertEquals(client.receivedSequence, 77);
  world.close();
});

Deno.test("createClient() binds bindAddress, reports localAddress, and waits for its socket in close()", async () => {
  const server = createServer({
    address: "127.0.0.1:0",
    protocolId: PROTOCOL_ID,
    privateKey: PRIVATE_KEY,
    unixTime: () => UNIX_NOW,
  });
  const reasons: string[] = [];
  const watched = createServer({
    address: "127.0.0.1:0",
    protocolId: PROTOCOL_ID,
    privateKey: PRIVATE_KEY,
    unixTime: () => UNIX_NOW,
    onDisconnect: (_index, reason) => reasons.push(reason),
  });
  server.close();
  const client = createClient({ bindAddress: "127.0.0.1:0" });
  try {
    assertEquals(client.localAddress, undefined);
    client.connect(token({
      serverAddresses: [formatAddress(watched.address)],
    }));
    const state = { time: 0 };
    assert(
      await stepUntil(watched, [client], state, () => connected(client), 300) >
        0,
      client.stateName,
    );
    const local = client.localAddress;
    assert(local, "bound once connect() sent");
    assertEquals(local.hostname, "127.0.0.1");
    assert(local.port > 0);
    assertEquals(watched.clientAddress(0), local);
    const closing = client.close();
    assert(closing instanceof Promise);
    await closing;
    // The disconnect packets went out before the socket closed.
    assert(
      await stepUntil(watched, [], state, () => reasons.length > 0, 300) > 0,
    );
    assertEquals(reasons, ["clientDisconnected"]);
  } finally {
    await client.close();
    watched.close();
  }
});

Deno.test("createClient() cannot reach a server of the other family than bindAddress, and says so for socket + bindAddress", async () => {
  await using client = createClient({ bindAddress: "[::1]:0" });
  client.connect(token({ serverAddresses: ["127.0.0.1:40000"] }));
  for (let tick = 1; tick <= 30; tick++) client.update(tick / 60);
  assertEquals(client.stats.sent.connectionRequest, 0);
  assertEquals(client.localAddress, undefined);
  assertEquals(client.state, ClientState.SENDING_CONNECTION_REQUEST);
  const network = createWorld().network;
  assertThrows(
    () =>
      createClient({
        socket: network.createSocket("127.0.0.1:50000"),
        bindAddress: "127.0.0.1:0",
      }),
    TypeError,
    "not both",
  );
});

Deno.test("createClient() counts the server's 9 other disconnect packets as redundantDisconnect, not wrongState", () => {
  const world = createWorld();
  const client = world.addClient();
  client.connect(token());
  assert(world.run(() => connected(client), 120) > 0, client.stateName);
  // Hold back all but the first of the server's 10 disconnect packets, so
  // they arrive after the client has gone.
  let disconnects = 0;
  const held: Uint8Array[] = [];
  world.serverSocket.filter = (data) => {
    if (packetType(data) !== CONNECTION_DISCONNECT_PACKET) return true;
    if (disconnects++ === 0) return true;
    held.push(data.slice());
    return false;
  };
  world.server.disconnect(0);
  world.step();
  world.step();
  assertEquals(client.stateName, "disconnected");
  assertEquals(held.length, 9);
  world.serverSocket.filter = () => true;
  for (const data of held) {
    world.serverSocket.send(data, world.clientSockets[0].address);
  }
  // And a keep-alive-sized stray from the server: still wrongState.
  world.serverSocket.send(new Uint8Array(30), world.clientSockets[0].address);
  world.step();
  assertEquals(client.stats.dropped.redundantDisconnect, 9);
  assertEquals(client.stats.dropped.wrongState, 1);
  world.close();
});
