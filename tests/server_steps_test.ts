// The server's processing steps driven directly, with decrypted tokens made
// by hand: no datagram is encrypted to reach them.

import { assert, assertEquals } from "./_assert.ts";
import type { Address } from "../address.ts";
import {
  CONNECTION_CHALLENGE_PACKET,
  CONNECTION_DENIED_PACKET,
  CONNECTION_DISCONNECT_PACKET,
  CONNECTION_KEEP_ALIVE_PACKET,
  PACKET_DROP_REASON_NAMES,
} from "../packet.ts";
import type { Datagram, DatagramSocket } from "../socket.ts";
import type { PrivateConnectToken } from "../token.ts";
import {
  checkTimeouts,
  connectClient,
  createServerState,
  disconnectClient,
  type DisconnectReason,
  PENDING_CONNECTION_SECONDS,
  processConnectionRequest,
  processConnectionResponse,
  SERVER_DROP_REASONS,
  type ServerState,
  startServer,
} from "../_server_steps.ts";
import { findPendingConnection } from "../_pending_connections.ts";
import { recentlyDisconnected } from "../_recent_disconnects.ts";
import { PRIVATE_KEY, PROTOCOL_ID } from "./_harness.ts";

const SERVER: Address = { hostname: "127.0.0.1", port: 40000 };
const CLIENT: Address = { hostname: "127.0.0.1", port: 50000 };
const CLIENT_KEY = "127.0.0.1:50000";

/** A socket that records what is sent and hands out nothing. */
function recordingSocket(): DatagramSocket & { sent: Datagram[] } {
  const sent: Datagram[] = [];
  return {
    sent,
    address: SERVER,
    send: (data, to) => sent.push({ data: data.slice(), from: to }),
    poll: () => undefined,
    close() {},
  };
}

function serverState(maxClients: number) {
  const socket = recordingSocket();
  const events: string[] = [];
  const state = createServerState({
    protocolId: PROTOCOL_ID,
    privateKey: PRIVATE_KEY,
    socket,
    addresses: [SERVER],
    unixTime: () => 0,
    maxConnectionRequestsPerUpdate: 64,
    onConnect: (i) => events.push(`connect ${i}`),
    onDisconnect: (i, reason: DisconnectReason) =>
      events.push(`disconnect ${i} ${reason}`),
  });
  startServer(state, maxClients);
  return { state, socket, events };
}

function privateToken(
  clientId: bigint,
  options: Partial<PrivateConnectToken> = {},
): PrivateConnectToken {
  return {
    clientId,
    timeoutSeconds: 5,
    serverAddresses: [SERVER],
    clientToServerKey: new Uint8Array(32).fill(1),
    serverToClientKey: new Uint8Array(32).fill(2),
    userData: new Uint8Array(256).fill(Number(clientId)),
    ...options,
  };
}

/** An encrypted private token as far as the history cares: its MAC. */
function encrypted(mac: number): Uint8Array {
  return new Uint8Array(1024).fill(mac, 1008);
}

const typesSent = (socket: { sent: Datagram[] }) =>
  socket.sent.map((datagram) => datagram.data[0] & 0x0f);

/** Request then response from `from`: the client takes a slot. */
function connect(
  state: ServerState,
  from: Address,
  key: string,
  clientId: bigint,
): void {
  processConnectionRequest(
    state,
    from,
    key,
    privateToken(clientId),
    encrypted(Number(clientId)),
  );
  processConnectionResponse(
    state,
    from,
    key,
    findPendingConnection(state.pending, key, state.time)!,
    { clientId, userData: new Uint8Array(256) },
  );
}

Deno.test("SERVER_DROP_REASONS lists the packet reader's reasons in order, then the server's, and names every counter", () => {
  assertEquals(
    SERVER_DROP_REASONS.slice(0, PACKET_DROP_REASON_NAMES.length),
    [...PACKET_DROP_REASON_NAMES],
  );
  const { state } = serverState(1);
  assertEquals(Object.keys(state.stats.dropped), [...SERVER_DROP_REASONS]);
  assertEquals(new Set(SERVER_DROP_REASONS).size, SERVER_DROP_REASONS.length);
});

Deno.test("processConnectionRequest() remembers the keys and sends a challenge with a global sequence", () => {
  const { state, socket } = serverState(2);
  state.time = 3;
  processConnectionRequest(
    state,
    CLIENT,
    CLIENT_KEY,
    privateToken(1n),
    encrypted(1),
  );
  const entry = findPendingConnection(state.pending, CLIENT_KEY, 3)!;
  assertEquals(entry.receiveKey, new Uint8Array(32).fill(1));
  assertEquals(entry.sendKey, new Uint8Array(32).fill(2));
  assertEquals(entry.timeoutSeconds, 5);
  assertEquals(entry.expireTime, 8);
  assertEquals(typesSent(socket), [CONNECTION_CHALLENGE_PACKET]);
  assertEquals(socket.sent[0].from, CLIENT);
  assertEquals(state.globalSequence, (1n << 63n) + 1n);
  assertEquals(state.challengeSequence, 1);
  assertEquals(state.tokenHistory.entries.size, 1);
  // A token that disables timeouts keeps the pending connection 10 s.
  processConnectionRequest(
    state,
    { hostname: "127.0.0.1", port: 50001 },
    "127.0.0.1:50001",
    privateToken(2n, { timeoutSeconds: -1 }),
    encrypted(2),
  );
  assertEquals(
    findPendingConnection(state.pending, "127.0.0.1:50001", 3)!.expireTime,
    3 + PENDING_CONNECTION_SECONDS,
  );
});

Deno.test("processConnectionRequest() drops a token for another server, a connected address or id, and a reused token", () => {
  const { state, socket } = serverState(4);
  processConnectionRequest(
    state,
    CLIENT,
    CLIENT_KEY,
    privateToken(1n, { serverAddresses: [{ hostname: "127.0.0.1", port: 1 }] }),
    encrypted(1),
  );
  assertEquals(state.stats.dropped.serverAddressNotInToken, 1);
  connect(state, CLIENT, CLIENT_KEY, 1n);
  socket.sent.length = 0;
  processConnectionRequest(
    state,
    CLIENT,
    CLIENT_KEY,
    privateToken(9n),
    encrypted(9),
  );
  assertEquals(state.stats.dropped.addressConnected, 1);
  const other: Address = { hostname: "127.0.0.1", port: 50001 };
  processConnectionRequest(
    state,
    other,
    "127.0.0.1:50001",
    privateToken(1n),
    encrypted(3),
  );
  assertEquals(state.stats.dropped.clientIdConnected, 1);
  // Token 1's MAC was first used from CLIENT.
  processConnectionRequest(
    state,
    other,
    "127.0.0.1:50001",
    privateToken(5n),
    encrypted(1),
  );
  assertEquals(state.stats.dropped.tokenReused, 1);
  assertEquals(socket.sent.length, 0, "nothing answered");
  assertEquals(state.pending.entries.size, 0);
});

Deno.test("processConnectionRequest() denies when full and forgets the address's pending connection", () => {
  const { state, socket } = serverState(1);
  const other: Address = { hostname: "127.0.0.1", port: 50001 };
  processConnectionRequest(
    state,
    other,
    "127.0.0.1:50001",
    privateToken(2n),
    encrypted(2),
  );
  assertEquals(state.pending.entries.size, 1);
  connect(state, CLIENT, CLIENT_KEY, 1n);
  socket.sent.length = 0;
  processConnectionRequest(
    state,
    other,
    "127.0.0.1:50001",
    privateToken(2n),
    encrypted(2),
  );
  assertEquals(typesSent(socket), [CONNECTION_DENIED_PACKET]);
  assertEquals(state.pending.entries.size, 0);
});

Deno.test("processConnectionRequest() counts pendingConnectionsFull when the table holds 4 per slot", () => {
  const { state, socket } = serverState(1);
  for (let port = 50000; port < 50005; port++) {
    processConnectionRequest(
      state,
      { hostname: "127.0.0.1", port },
      `127.0.0.1:${port}`,
      privateToken(BigInt(port)),
      encrypted(port & 0xff),
    );
  }
  assertEquals(state.pending.entries.size, 4);
  assertEquals(state.stats.dropped.pendingConnectionsFull, 1);
  assertEquals(socket.sent.length, 4);
});

Deno.test("processConnectionResponse() connects in the first free slot: keep-alive, onConnect, keys and timeout from the pending connection", () => {
  const { state, socket, events } = serverState(3);
  connect(state, { hostname: "127.0.0.1", port: 50009 }, "127.0.0.1:50009", 9n);
  state.time = 2;
  socket.sent.length = 0;
  connect(state, CLIENT, CLIENT_KEY, 1n);
  assertEquals(events, ["connect 0", "connect 1"]);
  assertEquals(typesSent(socket), [
    CONNECTION_CHALLENGE_PACKET,
    CONNECTION_KEEP_ALIVE_PACKET,
  ]);
  const slots = state.slots;
  assertEquals(slots.clientIds[1], 1n);
  assertEquals(slots.sendKeys[1], new Uint8Array(32).fill(2));
  assertEquals(slots.receiveKeys[1], new Uint8Array(32).fill(1));
  assertEquals(slots.timeoutSeconds[1], 5);
  assertEquals(slots.lastReceiveTime[1], 2);
  assertEquals(slots.sequence[1], 1, "the keep-alive took sequence 0");
  assertEquals(state.pending.entries.size, 0);
  assertEquals(slots.numConnected, 2);
});

Deno.test("processConnectionResponse() drops a connected address or id and denies when full", () => {
  const { state, socket } = serverState(1);
  processConnectionRequest(
    state,
    CLIENT,
    CLIENT_KEY,
    privateToken(1n),
    encrypted(1),
  );
  const entry = findPendingConnection(state.pending, CLIENT_KEY, 0)!;
  const other: Address = { hostname: "127.0.0.1", port: 50001 };
  connect(state, other, "127.0.0.1:50001", 2n);
  socket.sent.length = 0;
  processConnectionResponse(state, CLIENT, CLIENT_KEY, entry, {
    clientId: 2n,
    userData: new Uint8Array(256),
  });
  assertEquals(state.stats.dropped.clientIdConnected, 1);
  processConnectionResponse(state, other, "127.0.0.1:50001", entry, {
    clientId: 3n,
    userData: new Uint8Array(256),
  });
  assertEquals(state.stats.dropped.addressConnected, 1);
  assertEquals(socket.sent.length, 0);
  processConnectionResponse(state, CLIENT, CLIENT_KEY, entry, {
    clientId: 1n,
    userData: new Uint8Array(256),
  });
  assertEquals(typesSent(socket), [CONNECTION_DENIED_PACKET]);
  assertEquals(findPendingConnection(state.pending, CLIENT_KEY, 0), undefined);
});

Deno.test("connectClient() and disconnectClient(): onDisconnect sees the slot, 10 disconnect packets, the slot empties", () => {
  const { state, socket, events } = serverState(2);
  processConnectionRequest(
    state,
    CLIENT,
    CLIENT_KEY,
    privateToken(4n),
    encrypted(4),
  );
  const entry = findPendingConnection(state.pending, CLIENT_KEY, 0)!;
  connectClient(state, 1, CLIENT, CLIENT_KEY, entry, {
    clientId: 4n,
    userData: new Uint8Array(256),
  });
  assertEquals(events, ["connect 1"]);
  socket.sent.length = 0;
  let seenId: bigint | undefined;
  const recorded = events.length;
  const original = state.config.onDisconnect!;
  (state.config as { onDisconnect: typeof original }).onDisconnect = (
    i,
    reason,
  ) => {
    seenId = state.slots.clientIds[i];
    original(i, reason);
  };
  disconnectClient(state, 1, true, "serverDisconnected");
  assertEquals(seenId, 4n);
  assertEquals(events.slice(recorded), ["disconnect 1 serverDisconnected"]);
  assertEquals(
    typesSent(socket),
    new Array(10).fill(CONNECTION_DISCONNECT_PACKET),
  );
  assertEquals(state.slots.connected[1], 0);
  assertEquals(state.slots.numConnected, 0);
  assertEquals(
    recentlyDisconnected(state.recentDisconnects, CLIENT_KEY, 0),
    false,
    "a server-side disconnect expects no disconnect packets back",
  );
});

Deno.test("disconnectClient() for a client's own disconnect sends nothing and remembers its address", () => {
  const { state, socket, events } = serverState(1);
  connect(state, CLIENT, CLIENT_KEY, 1n);
  socket.sent.length = 0;
  disconnectClient(state, 0, false, "clientDisconnected");
  assertEquals(socket.sent.length, 0);
  assertEquals(events.at(-1), "disconnect 0 clientDisconnected");
  assert(recentlyDisconnected(state.recentDisconnects, CLIENT_KEY, 1));
});

Deno.test("checkTimeouts() times out a silent client after its token's timeout, never one whose timeout is negative", () => {
  const { state, events } = serverState(2);
  connect(state, CLIENT, CLIENT_KEY, 1n);
  processConnectionRequest(
    state,
    { hostname: "127.0.0.1", port: 50001 },
    "127.0.0.1:50001",
    privateToken(2n, { timeoutSeconds: -1 }),
    encrypted(2),
  );
  processConnectionResponse(
    state,
    { hostname: "127.0.0.1", port: 50001 },
    "127.0.0.1:50001",
    findPendingConnection(state.pending, "127.0.0.1:50001", 0)!,
    { clientId: 2n, userData: new Uint8Array(256) },
  );
  state.time = 4.9;
  checkTimeouts(state);
  assertEquals(state.slots.numConnected, 2);
  state.time = 5;
  checkTimeouts(state);
  assertEquals(events.at(-1), "disconnect 0 timedOut");
  state.time = 1e6;
  checkTimeouts(state);
  assertEquals(state.slots.connected[1], 1);
});
