/**
 * Internal: the server's protocol steps, laid out after the reference's
 * `netcode_server_update` and the functions it calls, each over the
 * server's explicit state record ({@linkcode ServerState}):
 *
 * - {@linkcode updateServer}: {@linkcode receivePackets} (each datagram
 *   through {@linkcode processPacket}, then the update's sampled connection
 *   requests through {@linkcode processSampledRequests}),
 *   {@linkcode sendKeepAlives},
 *   {@linkcode checkTimeouts}, and once a second the pending-connection
 *   sweep;
 * - {@linkcode processConnectionRequest} (a request whose private token
 *   decrypted) and {@linkcode processConnectionResponse} (a response whose
 *   challenge token decrypted): they take the decrypted tokens, so a test can
 *   drive them without encrypting datagrams;
 * - {@linkcode connectClient} and {@linkcode disconnectClient}, the only
 *   ways a network client takes or leaves a slot.
 *
 * The state's tables live in their own modules: the slots in
 * `_server_slots.ts`, the pending connections (the reference's encryption
 * manager) in `_pending_connections.ts`, the connect token history in
 * `_token_history.ts`, and the recently disconnected addresses in
 * `_recent_disconnects.ts`. `server.ts` checks options, binds sockets and
 * wraps this module in the public {@linkcode Server} facade.
 *
 * @module
 */

import { type Address, addressEqual, addressKey } from "./address.ts";
import { generateKey } from "./crypto.ts";
import {
  checkConnectionRequest,
  CONNECTION_CHALLENGE_PACKET,
  CONNECTION_DENIED_PACKET,
  CONNECTION_DISCONNECT_PACKET,
  CONNECTION_KEEP_ALIVE_PACKET,
  CONNECTION_PAYLOAD_PACKET,
  CONNECTION_REQUEST_PACKET,
  CONNECTION_RESPONSE_PACKET,
  createPacketTypeCounters,
  type EncryptedPacket,
  MAX_PACKET_BYTES,
  MAX_PAYLOAD_BYTES,
  NUM_DISCONNECT_PACKETS,
  PACKET_DROP_REASON_NAMES,
  PACKET_SEND_RATE,
  PACKET_TYPE_NAMES,
  PacketDropReason,
  type PacketTypeCounters,
  packetTypeMask,
  readPacket,
  type ReadPacketOptions,
  writePacket,
  writePayloadPacket,
} from "./packet.ts";
import {
  clearRequestSample,
  createRequestSample,
  offerRequest,
  type RequestSample,
} from "./_request_sample.ts";
import type { DatagramSocket } from "./socket.ts";
import {
  type ChallengeToken,
  decryptChallengeToken,
  encryptChallengeToken,
  type PrivateConnectToken,
  readChallengeToken,
  readPrivateConnectToken,
  writeChallengeToken,
} from "./token.ts";
import { pushPayload } from "./_payload_queue.ts";
import {
  type ResolvedMessageConfig,
  sendMessagePackets,
  updateMessageConnection,
} from "./channel.ts";
import {
  createNetcodeMessageConnection,
  INVALID_PAYLOAD_TAG,
  routePayload,
} from "./_messages.ts";
import {
  addPendingConnection,
  clearPendingConnections,
  createPendingConnections,
  findPendingConnection,
  type PendingConnection,
  type PendingConnections,
  removePendingConnection,
  sweepPendingConnections,
  touchPendingConnection,
} from "./_pending_connections.ts";
import {
  clearRecentDisconnects,
  createRecentDisconnects,
  type RecentDisconnects,
  recentlyDisconnected,
  rememberDisconnect,
} from "./_recent_disconnects.ts";
import {
  connectSlot,
  createServerSlots,
  findFreeSlot,
  findSlotByAddressKey,
  findSlotByAddressObject,
  findSlotByClientId,
  resetSlot,
  type ServerSlots,
} from "./_server_slots.ts";
import {
  clearTokenHistory,
  createTokenHistory,
  findOrAddTokenUse,
  type TokenHistory,
} from "./_token_history.ts";

/**
 * Seconds a pending connection (challenge sent, no response yet) is kept when
 * its token disables timeouts.
 */
export const PENDING_CONNECTION_SECONDS = 10;

/** Pending connections kept per client slot (the reference: 4). */
export const PENDING_CONNECTIONS_PER_SLOT = 4;
/** Connect token MACs remembered per client slot (the reference: 8). */
export const TOKEN_HISTORY_PER_SLOT = 8;

const GLOBAL_SEQUENCE_START = 1n << 63n;

/** Why a client left its slot. */
export type DisconnectReason =
  | "timedOut"
  | "clientDisconnected"
  | "serverDisconnected";

/**
 * Every reason the server drops a datagram: the keys of
 * {@linkcode ServerStats.dropped}. First the packet reader's twelve, in
 * `PacketDropReason` order:
 *
 * - `tooSmall`: shorter than any packet of its kind can be;
 * - `invalidType`: packet type 7..15;
 * - `typeNotAllowed`: a type the server does not accept from the sender
 *   (a keep-alive from an address without a slot, a request from a
 *   connected client);
 * - `badLength`: a connection request not exactly 1078 bytes, or a
 *   datagram over 1300 bytes;
 * - `badVersionInfo`, `badProtocolId`, `tokenExpired`: a connection
 *   request's plaintext fields;
 * - `badSequenceBytes`: sequence byte count outside 1..8;
 * - `noKey`: a response from an address with no pending connection;
 * - `replayed`: a sequence already received, or too old;
 * - `decryptFailed`: forged, corrupted, or under another key;
 * - `badSize`: the decrypted data has the wrong size for its type;
 *
 * then the server's own:
 *
 * - `invalidToken`: a request's private token does not decrypt or parse;
 * - `serverAddressNotInToken`: the token names none of the server's
 *   addresses;
 * - `addressConnected`: a request or response from an address that already
 *   holds a slot;
 * - `clientIdConnected`: the token's client id already holds a slot;
 * - `tokenReused`: a token first used from another address;
 * - `pendingConnectionsFull`: no room for another pending connection;
 * - `challengeTokenInvalid`: a response's challenge token does not decrypt;
 * - `notRunning`: arrived while the server was stopped (or closing);
 * - `receiveQueueFull`: a payload arrived with 256 already waiting unread;
 * - `connectionRequestsShed`: a request past this update's budget;
 * - `redundantDisconnect`: a disconnect packet from an address whose
 *   client left in the last 2 seconds (a client sends 10; the first frees
 *   the slot), counted here instead of `typeNotAllowed`;
 * - `invalidPayloadTag`: with `messages` on, a payload whose first byte is
 *   neither the raw-payload nor the message-packet tag.
 */
export const SERVER_DROP_REASONS = [
  // The packet reader's, indexed by PacketDropReason.
  ...PACKET_DROP_REASON_NAMES,
  // The server's own.
  "invalidToken",
  "serverAddressNotInToken",
  "addressConnected",
  "clientIdConnected",
  "tokenReused",
  "pendingConnectionsFull",
  "challengeTokenInvalid",
  "notRunning",
  "receiveQueueFull",
  "connectionRequestsShed",
  "redundantDisconnect",
  "invalidPayloadTag",
] as const;

/** A reason the server drops a datagram; see {@linkcode SERVER_DROP_REASONS}. */
export type ServerDropReason = typeof SERVER_DROP_REASONS[number];

/** Counters kept by the server; read them, don't write them. */
export interface ServerStats {
  /** Valid packets received, by type. */
  readonly received: PacketTypeCounters;
  /** Packets sent, by type. */
  readonly sent: PacketTypeCounters;
  /**
   * Datagrams dropped, by reason: every one of
   * {@linkcode SERVER_DROP_REASONS}, documented there.
   */
  readonly dropped: Record<ServerDropReason, number>;
}

/** What the steps need from the server's options, checked by `createServer`. */
export interface ServerConfig {
  /** The game's protocol id. */
  readonly protocolId: bigint;
  /** The private key shared with the backend. */
  readonly privateKey: Uint8Array;
  /** The transport. */
  readonly socket: DatagramSocket;
  /** Every address the server is reached at, as tokens name them. */
  readonly addresses: readonly Address[];
  /** The current unix time in seconds. */
  readonly unixTime: () => number;
  /** Connection requests decrypted per update. */
  readonly maxConnectionRequestsPerUpdate: number;
  /** Called when a client takes a slot. */
  readonly onConnect?: (clientIndex: number) => void;
  /** Called when a client leaves its slot, before the slot is cleared. */
  readonly onDisconnect?: (
    clientIndex: number,
    reason: DisconnectReason,
  ) => void;
  /** Receives payloads for loopback clients. */
  readonly sendLoopbackPacket?: (
    clientIndex: number,
    payload: Uint8Array,
    sequence: number,
  ) => void;
  /** Message channels for every network client, when on. */
  readonly messages?: ResolvedMessageConfig;
}

/** Everything a server holds; the steps read and write it. */
export interface ServerState {
  /** The checked options. */
  readonly config: ServerConfig;
  /** Counters of packets in, out and dropped. */
  readonly stats: ServerStats;
  /** Between start and stop. */
  running: boolean;
  /** Set by close, after which nothing runs again. */
  closed: boolean;
  /** Set while close processes what was queued: no new connections. */
  closing: boolean;
  /** The time of the last update, in the caller's seconds. */
  time: number;
  /** The sequence of the next challenge or denied packet (from 2^63). */
  globalSequence: bigint;
  /** The sequence of the next challenge token. */
  challengeSequence: number;
  /** The key challenge tokens are encrypted with, new at every start. */
  challengeKey: Uint8Array;
  /** The connection requests this update will decrypt. */
  readonly requestSample: RequestSample;
  /** When expired pending connections were last forgotten. */
  lastPendingSweep: number;
  /** The client slots. */
  slots: ServerSlots;
  /** Challenged addresses and their keys (the encryption manager). */
  pending: PendingConnections;
  /** Connect token MACs and the address that used each first. */
  tokenHistory: TokenHistory;
  /** Addresses whose client just left, to classify its late packets. */
  recentDisconnects: RecentDisconnects;
  /** Every packet is written here; a datagram sent is a view of it. */
  readonly packetBuffer: Uint8Array;
  /** Views of `packetBuffer` by length, made once each. */
  readonly packetViews: (Uint8Array | undefined)[];
  /** A raw payload with its tag in front, while messages are on. */
  readonly taggedPayload: Uint8Array;
  /** The packet reader's options, updated per datagram. */
  readonly readOptions: ReadPacketOptions;
}

const CONNECTED_ALLOWED = packetTypeMask(
  CONNECTION_KEEP_ALIVE_PACKET,
  CONNECTION_PAYLOAD_PACKET,
  CONNECTION_DISCONNECT_PACKET,
);
const UNCONNECTED_ALLOWED = packetTypeMask(
  CONNECTION_REQUEST_PACKET,
  CONNECTION_RESPONSE_PACKET,
);

/**
 * Creates the state of a stopped server; {@linkcode startServer} gives it
 * slots.
 *
 * @param config The checked options.
 * @returns The state.
 */
export function createServerState(config: ServerConfig): ServerState {
  return {
    config,
    stats: {
      received: createPacketTypeCounters(),
      sent: createPacketTypeCounters(),
      dropped: Object.fromEntries(
        SERVER_DROP_REASONS.map((name) => [name, 0]),
      ) as Record<ServerDropReason, number>,
    },
    running: false,
    closed: false,
    closing: false,
    time: 0,
    globalSequence: GLOBAL_SEQUENCE_START,
    challengeSequence: 0,
    challengeKey: generateKey(),
    requestSample: createRequestSample(
      config.maxConnectionRequestsPerUpdate,
      crypto.getRandomValues(new Uint32Array(1))[0],
    ),
    lastPendingSweep: 0,
    slots: createServerSlots(0),
    pending: createPendingConnections(0),
    tokenHistory: createTokenHistory(0),
    recentDisconnects: createRecentDisconnects(0),
    packetBuffer: new Uint8Array(MAX_PACKET_BYTES),
    packetViews: new Array(MAX_PACKET_BYTES + 1).fill(undefined),
    taggedPayload: new Uint8Array(MAX_PAYLOAD_BYTES),
    readOptions: {
      protocolId: config.protocolId,
      allowedPackets: 0,
      readKey: undefined,
      privateKey: config.privateKey,
      currentTimestamp: 0,
      replayProtection: undefined,
      // Payloads decrypt here, then are copied into their client's queue.
      payloadBuffer: new Uint8Array(MAX_PAYLOAD_BYTES),
    },
  };
}

/**
 * Starts the server with `maxClients` slots (stopping it first when
 * running): new tables, a new challenge key, and the global sequence
 * reseeded at 2^63 (erratum 3: at every start, not only at create).
 *
 * @param state The server.
 * @param maxClients Number of slots, already checked.
 */
export function startServer(state: ServerState, maxClients: number): void {
  if (state.running) stopServer(state);
  state.running = true;
  state.challengeSequence = 0;
  state.challengeKey = generateKey();
  state.globalSequence = GLOBAL_SEQUENCE_START;
  state.slots = createServerSlots(maxClients);
  state.pending = createPendingConnections(
    maxClients * PENDING_CONNECTIONS_PER_SLOT,
  );
  state.tokenHistory = createTokenHistory(maxClients * TOKEN_HISTORY_PER_SLOT);
  state.recentDisconnects = createRecentDisconnects(maxClients);
}

/**
 * Disconnects every client (network clients get their 10 disconnect
 * packets) and stops accepting connections.
 *
 * @param state The server.
 */
export function stopServer(state: ServerState): void {
  if (!state.running) return;
  disconnectAllClients(state);
  const slots = state.slots;
  for (let i = 0; i < slots.maxClients; i++) {
    if (slots.connected[i] && slots.loopback[i]) {
      disconnectLoopbackSlot(state, i);
    }
  }
  state.running = false;
  state.challengeSequence = 0;
  state.slots = createServerSlots(0);
  clearPendingConnections(state.pending);
  clearTokenHistory(state.tokenHistory);
  clearRecentDisconnects(state.recentDisconnects);
}

/**
 * One tick, as `netcode_server_update`: receive and process packets, send
 * keep-alives, check for timeouts, and once a second forget expired pending
 * connections.
 *
 * @param state The server.
 * @param now Monotonic seconds.
 */
export function updateServer(state: ServerState, now: number): void {
  state.time = now;
  if (state.config.messages !== undefined) advanceMessages(state);
  receivePackets(state);
  if (!state.running) return;
  if (state.config.messages !== undefined) sendMessages(state);
  sendKeepAlives(state);
  checkTimeouts(state);
  if (now - state.lastPendingSweep >= 1) {
    state.lastPendingSweep = now;
    sweepPendingConnections(state.pending, now);
  }
}

/**
 * Reads every datagram the socket holds and processes it; a stopped server
 * counts them `notRunning`.
 *
 * @param state The server.
 */
export function receivePackets(state: ServerState): void {
  const socket = state.config.socket;
  state.readOptions.currentTimestamp = state.config.unixTime();
  clearRequestSample(state.requestSample);
  for (let datagram = socket.poll(); datagram; datagram = socket.poll()) {
    if (!state.running) {
      state.stats.dropped.notRunning++;
      continue;
    }
    processPacket(state, datagram.data, datagram.from);
  }
  processSampledRequests(state);
}

/**
 * Decrypts and processes the connection requests sampled in this update
 * (at most the budget of them, chosen fairly: see `_request_sample.ts`);
 * the others offered are counted `connectionRequestsShed`.
 *
 * @param state The server.
 */
export function processSampledRequests(state: ServerState): void {
  const { requestSample: sample, readOptions, stats } = state;
  stats.dropped.connectionRequestsShed += sample.offered - sample.count;
  readOptions.allowedPackets = UNCONNECTED_ALLOWED;
  readOptions.readKey = undefined;
  readOptions.replayProtection = undefined;
  for (let i = 0; i < sample.count; i++) {
    const fromKey = sample.fromKeys[i];
    if (findSlotByAddressKey(state.slots, fromKey) >= 0) {
      // It connected earlier in this update.
      stats.dropped.addressConnected++;
      continue;
    }
    const packet = readPacket(sample.slots[i], readOptions);
    if (typeof packet === "number") {
      stats.dropped[SERVER_DROP_REASONS[packet]]++;
      continue;
    }
    if (packet.type !== CONNECTION_REQUEST_PACKET) continue;
    stats.received.connectionRequest++;
    const token = readPrivateConnectToken(packet.privateToken!);
    if (!token) {
      stats.dropped.invalidToken++;
      continue;
    }
    processConnectionRequest(
      state,
      sample.from[i]!,
      fromKey,
      token,
      packet.encryptedPrivateToken,
    );
  }
  clearRequestSample(sample);
}

/**
 * Reads one datagram with the keys and allowed types of its sender (a
 * connected client, a pending connection, or a stranger) and hands a valid
 * packet to its step. Drops are counted, never thrown.
 *
 * @param state The server.
 * @param data The datagram.
 * @param from Its source, as the socket handed it out.
 */
export function processPacket(
  state: ServerState,
  data: Uint8Array,
  from: Address,
): void {
  const { slots, readOptions, stats } = state;
  let clientIndex = findSlotByAddressObject(slots, from);
  let fromKey: string;
  if (clientIndex >= 0) {
    fromKey = slots.addressKeys[clientIndex];
  } else {
    fromKey = addressKey(from);
    clientIndex = findSlotByAddressKey(slots, fromKey);
  }
  let entry: PendingConnection | undefined;
  if (clientIndex >= 0) {
    readOptions.allowedPackets = CONNECTED_ALLOWED;
    readOptions.readKey = slots.receiveKeys[clientIndex];
    readOptions.replayProtection = slots.replay[clientIndex];
  } else {
    if (state.closing) {
      stats.dropped.notRunning++;
      return;
    }
    if (data[0] === CONNECTION_REQUEST_PACKET) {
      // Only a request that passes every check needing no cryptography is
      // a candidate for this update's decryption budget.
      const reason = checkConnectionRequest(
        data,
        state.config.protocolId,
        readOptions.currentTimestamp!,
      );
      if (reason >= 0) {
        stats.dropped[SERVER_DROP_REASONS[reason as PacketDropReason]]++;
      } else if (!offerRequest(state.requestSample, data, from, fromKey)) {
        stats.dropped.connectionRequestsShed++;
      }
      return;
    }
    entry = findPendingConnection(state.pending, fromKey, state.time);
    readOptions.allowedPackets = UNCONNECTED_ALLOWED;
    readOptions.readKey = entry?.receiveKey;
    readOptions.replayProtection = undefined;
  }
  const packet = readPacket(data, readOptions);
  if (typeof packet === "number") {
    if (
      packet === PacketDropReason.TYPE_NOT_ALLOWED &&
      (data[0] & 0x0f) === CONNECTION_DISCONNECT_PACKET &&
      recentlyDisconnected(state.recentDisconnects, fromKey, state.time)
    ) {
      stats.dropped.redundantDisconnect++;
    } else {
      stats.dropped[SERVER_DROP_REASONS[packet]]++;
    }
    return;
  }
  (stats.received as Record<string, number>)[PACKET_TYPE_NAMES[packet.type]]++;
  switch (packet.type) {
    case CONNECTION_RESPONSE_PACKET: {
      touchPendingConnection(entry!, state.time);
      if (
        !decryptChallengeToken(
          packet.challengeTokenData,
          packet.challengeTokenSequence,
          state.challengeKey,
        )
      ) {
        stats.dropped.challengeTokenInvalid++;
        return;
      }
      processConnectionResponse(
        state,
        from,
        fromKey,
        entry!,
        readChallengeToken(packet.challengeTokenData)!,
      );
      return;
    }
    case CONNECTION_KEEP_ALIVE_PACKET:
      slots.lastReceiveTime[clientIndex] = state.time;
      slots.confirmed[clientIndex] = 1;
      return;
    case CONNECTION_PAYLOAD_PACKET: {
      slots.lastReceiveTime[clientIndex] = state.time;
      slots.confirmed[clientIndex] = 1;
      const messages = slots.messages[clientIndex];
      const raw = messages === undefined
        ? packet.payload
        : routePayload(packet.payload, messages);
      if (raw instanceof Uint8Array) {
        queuePayload(state, clientIndex, raw, packet.sequence);
      } else if (raw === INVALID_PAYLOAD_TAG) {
        stats.dropped.invalidPayloadTag++;
      }
      return;
    }
    case CONNECTION_DISCONNECT_PACKET:
      disconnectClient(state, clientIndex, false, "clientDisconnected");
      return;
  }
}

/**
 * A connection request whose private token decrypted and parsed (as
 * `netcode_server_process_connection_request_packet`): checks that the
 * token names this server, that neither the address nor the client id
 * holds a slot and that the token was not first used from elsewhere; then
 * denies (full) or remembers the address's keys as a pending connection and
 * sends a challenge.
 *
 * @param state The server.
 * @param from The sender.
 * @param fromKey `addressKey(from)`.
 * @param token The decrypted private connect token.
 * @param encryptedPrivateToken The token as it arrived (its MAC is the
 * history's key).
 */
export function processConnectionRequest(
  state: ServerState,
  from: Address,
  fromKey: string,
  token: PrivateConnectToken,
  encryptedPrivateToken: Uint8Array,
): void {
  const { slots, stats } = state;
  if (!tokenNamesServer(token, state.config.addresses)) {
    stats.dropped.serverAddressNotInToken++;
    return;
  }
  if (findSlotByAddressKey(slots, fromKey) >= 0) {
    stats.dropped.addressConnected++;
    return;
  }
  if (findSlotByClientId(slots, token.clientId) >= 0) {
    stats.dropped.clientIdConnected++;
    return;
  }
  if (!findOrAddTokenUse(state.tokenHistory, encryptedPrivateToken, fromKey)) {
    stats.dropped.tokenReused++;
    return;
  }
  if (slots.numConnected === slots.maxClients) {
    denyConnection(state, from, fromKey, token.serverToClientKey);
    return;
  }
  const expireTime = state.time +
    (token.timeoutSeconds > 0
      ? token.timeoutSeconds
      : PENDING_CONNECTION_SECONDS);
  if (
    !addPendingConnection(
      state.pending,
      fromKey,
      token.serverToClientKey,
      token.clientToServerKey,
      token.timeoutSeconds,
      expireTime,
      state.time,
    )
  ) {
    stats.dropped.pendingConnectionsFull++;
    return;
  }
  const challengeToken = writeChallengeToken({
    clientId: token.clientId,
    userData: token.userData,
  });
  encryptChallengeToken(
    challengeToken,
    state.challengeSequence,
    state.challengeKey,
  );
  const challengeTokenSequence = BigInt(state.challengeSequence);
  state.challengeSequence++;
  sendGlobalPacket(
    state,
    {
      type: CONNECTION_CHALLENGE_PACKET,
      challengeTokenSequence,
      challengeTokenData: challengeToken,
    },
    from,
    token.serverToClientKey,
  );
}

/**
 * A connection response whose challenge token decrypted (as
 * `netcode_server_process_connection_response_packet`): checks that neither
 * the address nor the client id holds a slot, then denies (full) or
 * connects the client in the first free slot.
 *
 * @param state The server.
 * @param from The sender.
 * @param fromKey `addressKey(from)`.
 * @param entry The sender's pending connection.
 * @param challengeToken The decrypted challenge token.
 */
export function processConnectionResponse(
  state: ServerState,
  from: Address,
  fromKey: string,
  entry: PendingConnection,
  challengeToken: ChallengeToken,
): void {
  const { slots, stats } = state;
  if (findSlotByAddressKey(slots, fromKey) >= 0) {
    stats.dropped.addressConnected++;
    return;
  }
  if (findSlotByClientId(slots, challengeToken.clientId) >= 0) {
    stats.dropped.clientIdConnected++;
    return;
  }
  const clientIndex = findFreeSlot(slots);
  if (clientIndex < 0) {
    denyConnection(state, from, fromKey, entry.sendKey);
    return;
  }
  removePendingConnection(state.pending, fromKey);
  connectClient(
    state,
    clientIndex,
    from,
    fromKey,
    entry,
    challengeToken,
  );
}

/**
 * Puts a network client in an empty slot with its pending connection's keys
 * and timeout, sends it a keep-alive (which tells it its index) and calls
 * `onConnect` (as `netcode_server_connect_client`).
 *
 * @param state The server.
 * @param clientIndex An empty slot.
 * @param from The client's address as its datagrams arrive.
 * @param fromKey `addressKey(from)`.
 * @param entry Its pending connection (keys and timeout).
 * @param challengeToken Its client id and user data.
 */
export function connectClient(
  state: ServerState,
  clientIndex: number,
  from: Address,
  fromKey: string,
  entry: PendingConnection,
  challengeToken: ChallengeToken,
): void {
  connectSlot(state.slots, clientIndex, {
    clientId: challengeToken.clientId,
    userData: challengeToken.userData,
    address: from,
    addressKey: fromKey,
    sendKey: entry.sendKey,
    receiveKey: entry.receiveKey,
    timeoutSeconds: entry.timeoutSeconds,
    messages: state.config.messages === undefined
      ? undefined
      : createNetcodeMessageConnection(
        state.config.messages,
        state.time,
        (payload) => sendPayload(state, clientIndex, payload),
      ),
  }, state.time);
  sendKeepAlive(state, clientIndex);
  state.config.onConnect?.(clientIndex);
}

/**
 * Frees a network client's slot (as `netcode_server_disconnect_client`):
 * `onDisconnect` first (it sees the slot as it was), then, when
 * `sendDisconnectPackets`, the 10 disconnect packets, then the reset.
 * Whatever the callback throws, the client is still told and the slot freed,
 * and the error reaches the caller.
 *
 * @param state The server.
 * @param clientIndex A slot holding a network client.
 * @param sendDisconnectPackets Whether to tell the client.
 * @param reason What `onDisconnect` is told.
 */
export function disconnectClient(
  state: ServerState,
  clientIndex: number,
  sendDisconnectPackets: boolean,
  reason: DisconnectReason,
): void {
  try {
    state.config.onDisconnect?.(clientIndex, reason);
  } finally {
    if (sendDisconnectPackets) {
      for (let i = 0; i < NUM_DISCONNECT_PACKETS; i++) {
        sendClientPacket(state, clientIndex, {
          type: CONNECTION_DISCONNECT_PACKET,
        });
      }
    } else if (reason === "clientDisconnected") {
      // Its other disconnect packets are on the way.
      rememberDisconnect(
        state.recentDisconnects,
        state.slots.addressKeys[clientIndex],
        state.time,
      );
    }
    resetSlot(state.slots, clientIndex);
  }
}

/**
 * Disconnects every network client, sending each its disconnect packets.
 *
 * @param state The server.
 */
export function disconnectAllClients(state: ServerState): void {
  const slots = state.slots;
  for (let i = 0; i < slots.maxClients; i++) {
    if (slots.connected[i] && !slots.loopback[i]) {
      disconnectClient(state, i, true, "serverDisconnected");
    }
  }
}

/**
 * Frees a loopback client's slot, after `onDisconnect`.
 *
 * @param state The server.
 * @param clientIndex A slot holding a loopback client.
 */
export function disconnectLoopbackSlot(
  state: ServerState,
  clientIndex: number,
): void {
  try {
    state.config.onDisconnect?.(clientIndex, "serverDisconnected");
  } finally {
    resetSlot(state.slots, clientIndex);
  }
}

/**
 * Moves every client's message channels to the update's time, before its
 * datagrams are read (so acks are timed by it).
 *
 * @param state The server, with messages on.
 */
export function advanceMessages(state: ServerState): void {
  const { slots, time } = state;
  const list = slots.connectedList;
  for (let k = 0; k < slots.numConnected; k++) {
    const messages = slots.messages[list[k]];
    if (messages !== undefined) {
      updateMessageConnection(messages, Math.max(time, messages.time));
    }
  }
}

/**
 * Sends every client's due messages, acks and message keep-alives, after
 * the update's datagrams were read.
 *
 * @param state The server, with messages on.
 */
export function sendMessages(state: ServerState): void {
  const slots = state.slots;
  const list = slots.connectedList;
  // Sending disconnects nobody, so the list stays put while we walk it.
  for (let k = 0; k < slots.numConnected; k++) {
    const messages = slots.messages[list[k]];
    if (messages !== undefined) sendMessagePackets(messages);
  }
}

/**
 * Sends a keep-alive to every network client that was sent nothing for
 * 1/10 s.
 *
 * @param state The server.
 */
export function sendKeepAlives(state: ServerState): void {
  const { slots, time } = state;
  const interval = 1 / PACKET_SEND_RATE;
  const { connected, loopback, lastSendTime } = slots;
  for (let i = 0; i < slots.maxClients; i++) {
    if (connected[i] && !loopback[i] && lastSendTime[i] + interval <= time) {
      sendKeepAlive(state, i);
    }
  }
}

/**
 * Times out every network client whose token's timeout passed without a
 * packet from it (a timeout <= 0 never does).
 *
 * @param state The server.
 */
export function checkTimeouts(state: ServerState): void {
  const { slots, time } = state;
  const { connected, loopback, timeoutSeconds, lastReceiveTime } = slots;
  for (let i = 0; i < slots.maxClients; i++) {
    if (
      connected[i] && !loopback[i] && timeoutSeconds[i] > 0 &&
      lastReceiveTime[i] + timeoutSeconds[i] <= time
    ) {
      disconnectClient(state, i, false, "timedOut");
    }
  }
}

/**
 * Sends a payload to a connected network client, with a keep-alive first
 * while it is unconfirmed (so it learns its index even if the payload is
 * the first packet to arrive), or hands it to `sendLoopbackPacket` for a
 * loopback client.
 *
 * @param state The server.
 * @param clientIndex A connected slot.
 * @param payload 1..1200 bytes, already checked.
 */
export function sendPayload(
  state: ServerState,
  clientIndex: number,
  payload: Uint8Array,
): void {
  const slots = state.slots;
  if (slots.loopback[clientIndex]) {
    const loopbackSequence = slots.sequence[clientIndex]++;
    slots.lastSendTime[clientIndex] = state.time;
    state.config.sendLoopbackPacket?.(clientIndex, payload, loopbackSequence);
    return;
  }
  if (!slots.confirmed[clientIndex]) sendKeepAlive(state, clientIndex);
  sendClientPacket(state, clientIndex, {
    type: CONNECTION_PAYLOAD_PACKET,
    payload,
  });
}

/**
 * Queues a copy of a payload for `receive`, counting `receiveQueueFull`
 * when 256 are already waiting.
 *
 * @param state The server.
 * @param clientIndex The connected slot it came from.
 * @param payload The payload.
 * @param sequence The packet sequence it arrived with.
 */
export function queuePayload(
  state: ServerState,
  clientIndex: number,
  payload: Uint8Array,
  sequence: number | bigint,
): void {
  if (!pushPayload(state.slots.payloadQueues[clientIndex], payload, sequence)) {
    state.stats.dropped.receiveQueueFull++;
  }
}

/**
 * Sends a connection denied packet and forgets the address's pending
 * connection. Unlike the reference, which keeps it: the denied client gives
 * up, and a challenge it answered earlier, or a late copy of its response,
 * must not take a slot that frees up later and hold it until the timeout.
 */
function denyConnection(
  state: ServerState,
  to: Address,
  toKey: string,
  key: Uint8Array,
): void {
  sendGlobalPacket(state, { type: CONNECTION_DENIED_PACKET }, to, key);
  removePendingConnection(state.pending, toKey);
}

/** Whether any of the token's server addresses is one of the server's. */
function tokenNamesServer(
  token: PrivateConnectToken,
  addresses: readonly Address[],
): boolean {
  for (const tokenAddress of token.serverAddresses) {
    for (const own of addresses) {
      if (addressEqual(own, tokenAddress)) return true;
    }
  }
  return false;
}

function transmit(
  state: ServerState,
  bytes: number,
  to: Address,
  type: number,
): void {
  state.config.socket.send(
    state.packetViews[bytes] ??= state.packetBuffer.subarray(0, bytes),
    to,
  );
  (state.stats.sent as Record<string, number>)[PACKET_TYPE_NAMES[type]]++;
}

/** Sends a challenge or denied packet, with the next global sequence. */
function sendGlobalPacket(
  state: ServerState,
  packet: EncryptedPacket,
  to: Address,
  key: Uint8Array,
): void {
  const bytes = writePacket(
    state.packetBuffer,
    packet,
    state.globalSequence,
    key,
    state.config.protocolId,
  );
  state.globalSequence++;
  transmit(state, bytes, to, packet.type);
}

/** Sends a packet to a connected network client, with its next sequence. */
function sendClientPacket(
  state: ServerState,
  clientIndex: number,
  packet: EncryptedPacket,
): void {
  const slots = state.slots;
  const key = slots.sendKeys[clientIndex];
  const sequence = slots.sequence[clientIndex];
  const protocolId = state.config.protocolId;
  const bytes = packet.type === CONNECTION_PAYLOAD_PACKET
    ? writePayloadPacket(
      state.packetBuffer,
      sequence,
      key,
      protocolId,
      packet.payload,
    )
    : writePacket(state.packetBuffer, packet, sequence, key, protocolId);
  slots.sequence[clientIndex] = sequence + 1;
  slots.lastSendTime[clientIndex] = state.time;
  transmit(state, bytes, slots.addresses[clientIndex]!, packet.type);
}

function sendKeepAlive(state: ServerState, clientIndex: number): void {
  sendClientPacket(state, clientIndex, {
    type: CONNECTION_KEEP_ALIVE_PACKET,
    clientIndex,
    maxClients: state.slots.maxClients,
  });
}
