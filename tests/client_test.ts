// The client's state machine on its own: the state tables, the predicates,
// server fallback as seen through onStateChange, and the drop counters.

import { assert, assertEquals } from "./_assert.ts";
import {
  connected,
  createWorld,
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
    PACKET_DROP_REASON_NAMES,
  );
  assertEquals(CLIENT_DROP_REASONS.slice(PACKET_DROP_REASON_NAMES.length), [
    "wrongAddress",
    "wrongState",
    "receiveQueueFull",
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
