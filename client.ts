/**
 * The netcode client: connects with a connect token, falls back through the
 * token's server list, keeps the connection alive and carries payloads.
 *
 * Like the server it never reads a clock: call {@linkcode Client.update} with
 * monotonic seconds each tick. Unlike the reference, it sends its first
 * connection request on the first update and its challenge response as soon
 * as a challenge arrives, so connecting takes about one round trip per step
 * instead of waiting for the 10 Hz send slot.
 *
 * It is written the way the reference's client is: the states are tables
 * (the packet types each state accepts, the timeout each state runs), the
 * predicates {@linkcode isConnecting}, {@linkcode isError} and
 * {@linkcode isDisconnected} classify them, and every change of state goes
 * through one place, which calls `onStateChange`.
 *
 * @example
 * ```ts ignore
 * import { createClient, ClientState, isDisconnected } from "./client.ts";
 *
 * const token = await (await fetch("https://backend.example/token", { method: "POST" })).bytes();
 * using client = createClient({
 *   onStateChange: (_previous, next) => console.log("client is", next),
 * });
 * client.connect(token);
 * const start = performance.now();
 * const timer = setInterval(() => {
 *   client.update((performance.now() - start) / 1000);
 *   if (client.state === ClientState.CONNECTED) client.send(new Uint8Array([1, 2, 3]));
 *   for (let p = client.receive(); p; p = client.receive()) console.log("echo", p);
 *   if (isDisconnected(client.state)) clearInterval(timer);
 * }, 1000 / 60);
 * ```
 *
 * @module
 */

import {
  type Address,
  addressEqual,
  formatAddress,
  isIpv6,
  parseAddress,
} from "./address.ts";
import {
  CONNECTION_CHALLENGE_PACKET,
  CONNECTION_DENIED_PACKET,
  CONNECTION_DISCONNECT_PACKET,
  CONNECTION_KEEP_ALIVE_PACKET,
  CONNECTION_PAYLOAD_PACKET,
  CONNECTION_REQUEST_PACKET,
  CONNECTION_RESPONSE_PACKET,
  createPacketTypeCounters,
  createReplayProtection,
  type EncryptedPacket,
  MAX_PACKET_BYTES,
  MAX_PAYLOAD_BYTES,
  NUM_DISCONNECT_PACKETS,
  PACKET_DROP_REASON_NAMES,
  PACKET_SEND_RATE,
  PACKET_TYPE_NAMES,
  type PacketDropReason,
  type PacketTypeCounters,
  packetTypeMask,
  readPacket,
  type ReadPacketOptions,
  type ReplayProtection,
  resetReplayProtection,
  writeConnectionRequestPacket,
  writePacket,
  writePayloadPacket,
} from "./packet.ts";
import {
  checkReceiveBuffer,
  clearPayloadQueue,
  createPayloadQueue,
  type PayloadQueue,
  pushPayload,
  shiftPayload,
  shiftPayloadInto,
} from "./_payload_queue.ts";
import {
  checkDatagramSocket,
  type DatagramSocket,
  listenUdp,
} from "./socket.ts";
import { type ConnectToken, readConnectToken } from "./token.ts";
import { RECENT_DISCONNECT_SECONDS } from "./_recent_disconnects.ts";
import {
  type ConnectionQuality,
  connectionQuality,
  type MessageConfig,
  type MessageConnection,
  receiveMessage as receiveChannelMessage,
  type ResolvedMessageConfig,
  sendMessage as sendChannelMessage,
  sendMessagePackets,
  updateMessageConnection,
} from "./channel.ts";
import {
  createNetcodeMessageConnection,
  INVALID_PAYLOAD_TAG,
  resolveNetcodeMessageConfig,
  routePayload,
  tagRawPayload,
} from "./_messages.ts";

/**
 * The client's states. Negative ones are errors it settled in
 * ({@linkcode isError}); 1 and 2 are the steps of connecting
 * ({@linkcode isConnecting}).
 */
export const ClientState = {
  /** The connect attempt outlived the token (expire - create seconds). */
  CONNECT_TOKEN_EXPIRED: -6,
  /** The token could not be read. */
  INVALID_CONNECT_TOKEN: -5,
  /** Connected, then nothing arrived for the token's timeout. */
  CONNECTION_TIMED_OUT: -4,
  /** No keep-alive answered the challenge response in time. */
  CONNECTION_RESPONSE_TIMED_OUT: -3,
  /** No challenge answered the connection request in time. */
  CONNECTION_REQUEST_TIMED_OUT: -2,
  /** Every server denied the connection (full). */
  CONNECTION_DENIED: -1,
  /** Not connected and not trying. */
  DISCONNECTED: 0,
  /** Sending connection requests. */
  SENDING_CONNECTION_REQUEST: 1,
  /** Sending challenge responses. */
  SENDING_CONNECTION_RESPONSE: 2,
  /** Connected: payloads flow. */
  CONNECTED: 3,
} as const;

/** A {@linkcode ClientState} value. */
export type ClientState = typeof ClientState[keyof typeof ClientState];

const STATE_NAMES: Record<number, string> = {
  [ClientState.CONNECT_TOKEN_EXPIRED]: "connect token expired",
  [ClientState.INVALID_CONNECT_TOKEN]: "invalid connect token",
  [ClientState.CONNECTION_TIMED_OUT]: "connection timed out",
  [ClientState.CONNECTION_RESPONSE_TIMED_OUT]: "connection response timed out",
  [ClientState.CONNECTION_REQUEST_TIMED_OUT]: "connection request timed out",
  [ClientState.CONNECTION_DENIED]: "connection denied",
  [ClientState.DISCONNECTED]: "disconnected",
  [ClientState.SENDING_CONNECTION_REQUEST]: "sending connection request",
  [ClientState.SENDING_CONNECTION_RESPONSE]: "sending connection response",
  [ClientState.CONNECTED]: "connected",
};

/**
 * The human name of a client state, as the reference prints it.
 *
 * @param state A client state.
 * @returns Its name, e.g. `"connection denied"`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ClientState, clientStateName } from "./client.ts";
 * assert.equal(clientStateName(ClientState.CONNECTED), "connected");
 * ```
 */
export function clientStateName(state: ClientState): string {
  return STATE_NAMES[state] ?? `unknown state ${state}`;
}

/**
 * Whether a state is an error the client settled in: token expired, invalid
 * token, connection timed out, response timed out, request timed out or
 * denied. The client stays there until the next `connect()`.
 *
 * @param state A client state.
 * @returns `true` for the six error states.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ClientState, isError } from "./client.ts";
 * assert.equal(isError(ClientState.CONNECTION_DENIED), true);
 * assert.equal(isError(ClientState.DISCONNECTED), false);
 * ```
 */
export function isError(state: ClientState): boolean {
  return state >= ClientState.CONNECT_TOKEN_EXPIRED &&
    state < ClientState.DISCONNECTED;
}

/**
 * Whether a state is a step of connecting: sending connection requests or
 * sending challenge responses. Only these states fall back to the token's
 * next server, and only in these does the connect token expire.
 *
 * @param state A client state.
 * @returns `true` while connecting.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ClientState, isConnecting } from "./client.ts";
 * assert.equal(isConnecting(ClientState.SENDING_CONNECTION_RESPONSE), true);
 * assert.equal(isConnecting(ClientState.CONNECTED), false);
 * ```
 */
export function isConnecting(state: ClientState): boolean {
  return state === ClientState.SENDING_CONNECTION_REQUEST ||
    state === ClientState.SENDING_CONNECTION_RESPONSE;
}

/**
 * Whether a state is neither connecting nor connected: disconnected, or an
 * error ({@linkcode isError}). A disconnected client sends nothing and drops
 * what arrives.
 *
 * @param state A client state.
 * @returns `true` for {@linkcode ClientState.DISCONNECTED} and the errors.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ClientState, isDisconnected } from "./client.ts";
 * assert.equal(isDisconnected(ClientState.CONNECTION_TIMED_OUT), true);
 * assert.equal(isDisconnected(ClientState.SENDING_CONNECTION_REQUEST), false);
 * ```
 */
export function isDisconnected(state: ClientState): boolean {
  return state === ClientState.DISCONNECTED || isError(state);
}

/**
 * Every reason the client drops a datagram: the keys of
 * {@linkcode ClientStats.dropped}. First the packet reader's twelve, in
 * {@linkcode PacketDropReason} order:
 *
 * - `tooSmall`: shorter than any packet of its kind can be;
 * - `invalidType`: packet type 7..15;
 * - `typeNotAllowed`: a type the client does not accept in its state
 *   (a challenge once connected, a payload before);
 * - `badLength`: a datagram over 1300 bytes;
 * - `badVersionInfo`, `badProtocolId`, `tokenExpired`: request fields,
 *   which a client never reads;
 * - `badSequenceBytes`: sequence byte count outside 1..8;
 * - `noKey`: no key to decrypt with;
 * - `replayed`: a sequence already received, or too old;
 * - `decryptFailed`: forged, corrupted, or under another key;
 * - `badSize`: the decrypted data has the wrong size for its type;
 *
 * then the client's own:
 *
 * - `wrongAddress`: not from the server being talked to;
 * - `wrongState`: arrived while disconnected (or in an error state) or in
 *   loopback mode;
 * - `receiveQueueFull`: a payload arrived with 256 already waiting unread;
 * - `redundantDisconnect`: a disconnect packet from the server that just
 *   disconnected this client, in the 2 seconds after (a server sends 10;
 *   the first ends the connection), counted here instead of `wrongState`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CLIENT_DROP_REASONS, createClient } from "./client.ts";
 * import { createNetworkSimulator } from "./simulator.ts";
 *
 * const network = createNetworkSimulator();
 * using client = createClient({ socket: network.createSocket("127.0.0.1:50000") });
 * // A stray datagram, while the client is not connected to any server:
 * using stranger = network.createSocket("127.0.0.1:60000");
 * stranger.send(new Uint8Array([0]), { hostname: "127.0.0.1", port: 50000 });
 * network.update(1);
 * client.update(1);
 * for (const reason of CLIENT_DROP_REASONS) {
 *   if (client.stats.dropped[reason] > 0) console.log(reason, client.stats.dropped[reason]);
 * }
 * assert.equal(client.stats.dropped.wrongState, 1);
 * ```
 */
export const CLIENT_DROP_REASONS = [
  // The packet reader's, indexed by PacketDropReason.
  ...PACKET_DROP_REASON_NAMES,
  // The client's own.
  "wrongAddress",
  "wrongState",
  "receiveQueueFull",
  "redundantDisconnect",
  "invalidPayloadTag",
] as const;

/** A name in {@linkcode CLIENT_DROP_REASONS}: why a datagram was dropped. */
export type ClientDropReason = typeof CLIENT_DROP_REASONS[number];

/** Counters kept by the client; read them, don't write them. */
export interface ClientStats {
  /** Valid packets received, by type. */
  readonly received: PacketTypeCounters;
  /** Packets sent, by type. */
  readonly sent: PacketTypeCounters;
  /**
   * Datagrams dropped, one counter per reason in
   * {@linkcode CLIENT_DROP_REASONS}: the packet reader's reasons, and
   * `wrongAddress` (not from the server being talked to), `wrongState`
   * (not expected now) and `receiveQueueFull`.
   */
  readonly dropped: Record<ClientDropReason, number>;
}

/** Options of {@linkcode createClient}. */
export interface ClientOptions {
  /**
   * The transport. Without it, the client binds a Deno UDP socket on an
   * ephemeral port (`0.0.0.0:0` or `[::]:0`, by the server's family) when it
   * first needs one.
   * @default {UDP sockets on ephemeral ports}
   */
  socket?: DatagramSocket;
  /**
   * The local address the default UDP socket binds, to choose an interface
   * or a port (`"192.168.1.20:0"`, `"[::]:50000"`); port 0 picks a free
   * one. Servers of the other family are unreachable: their connection
   * requests time out and the client moves on to the next. Not with
   * `socket`.
   * @default {"0.0.0.0:0" or "[::]:0", by the server's family}
   */
  bindAddress?: string | Address;
  /**
   * Called from `update()` (or `connect()`/`disconnect()`) on every state
   * change, and when the client falls back to the token's next server:
   * then `previous` and `next` may both be
   * {@linkcode ClientState.SENDING_CONNECTION_REQUEST}. Inside the call,
   * {@linkcode Client.serverAddress} is the server the client now talks to.
   * @default {undefined}
   */
  onStateChange?: (previous: ClientState, next: ClientState) => void;
  /**
   * Receives payloads sent while in loopback mode
   * ({@linkcode Client.connectLoopback}).
   * @default {undefined}
   */
  sendLoopbackPacket?: (
    clientIndex: number,
    payload: Uint8Array,
    sequence: number,
  ) => void;
  /**
   * Message channels to the server (see channel.ts), the same option as the
   * server's: reliable ordered messages up to 64 KB and unreliable ones,
   * and the link's RTT, jitter, packet loss and bandwidth, through
   * {@linkcode Client.sendMessage}, {@linkcode Client.receiveMessage} and
   * {@linkcode Client.connectionQuality}. Raw payloads still work beside
   * them, up to 1199 bytes. Not in loopback mode.
   * @default {undefined (off)}
   */
  messages?: MessageConfig;
}

/** A netcode client. Create it with {@linkcode createClient}. */
export interface Client {
  /**
   * The current state. One `update()` can pass through several states (a
   * keep-alive and a disconnect in the same batch connect and then drop the
   * client): use `onStateChange` to see every transition.
   */
  readonly state: ClientState;
  /** The current state's name. */
  readonly stateName: string;
  /** The slot the server gave this client, or -1 while it has none. */
  readonly clientIndex: number;
  /** The server's number of slots (valid when connected). */
  readonly maxClients: number;
  /** The server being connected to, or `undefined`. */
  readonly serverAddress: Address | undefined;
  /**
   * The address the client's socket is bound to, port resolved (the
   * `socket` option's, or the default socket's once `connect()` made it),
   * or `undefined` before there is one.
   */
  readonly localAddress: Address | undefined;
  /**
   * The packet sequence of the payload last taken by `receive()` or
   * `receiveInto()` (the reference's `receive_packet` gives it too), or -1
   * before the first payload of this connection.
   */
  readonly receivedSequence: number;
  /**
   * The largest payload {@linkcode Client.send} takes now: 1200 bytes, or
   * less over a transport with smaller datagrams (WebTransport in Chromium:
   * 1186).
   */
  readonly maxPayloadBytes: number;
  /** Whether in loopback mode. */
  readonly loopback: boolean;
  /** The time of the last update, in the caller's seconds. */
  readonly time: number;
  /** The sequence the next packet will carry. */
  readonly nextPacketSequence: number;
  /** Counters of packets in, out and dropped. */
  readonly stats: ClientStats;
  /**
   * Starts connecting with a 2048-byte connect token; an unreadable token
   * moves to {@linkcode ClientState.INVALID_CONNECT_TOKEN}. Disconnects first
   * when connected.
   */
  connect(connectToken: Uint8Array): void;
  /** Receives and processes datagrams, sends what is due, checks timeouts. */
  update(now: number): void;
  /**
   * Sends a payload of 1..1200 bytes (1..1199 with `messages` on); ignored
   * unless connected.
   */
  send(payload: Uint8Array): void;
  /**
   * Queues a message to the server on one of the `messages` channels; it
   * goes out in the next `update()`. The client keeps a copy.
   *
   * @returns `true` when queued; `false` when not connected (it is
   * dropped) or when the channel's send queue is full and its
   * `onSendQueueFull` is `"drop"`.
   * @throws {Error} Without the `messages` option, or in loopback mode.
   * @throws {RangeError} For a channel that does not exist, a message over
   * its `maxMessageBytes`, or a full send queue set to `"throw"`.
   */
  sendMessage(channelId: number, message: Uint8Array): boolean;
  /**
   * The next message from the server on a channel (in order on a
   * reliable-ordered one), as a copy the caller owns, or `undefined`.
   */
  receiveMessage(channelId: number): Uint8Array | undefined;
  /**
   * The link's RTT, jitter, packet loss and bandwidth, estimated by the
   * message channels' reliable 1.0 endpoint; `undefined` unless connected
   * with `messages` on.
   */
  readonly connectionQuality: ConnectionQuality | undefined;
  /**
   * The message connection of the current connection (counters, endpoint),
   * or `undefined` unless connected with `messages` on.
   */
  readonly messageConnection: MessageConnection | undefined;
  /**
   * The next payload received from the server, as a copy the caller owns,
   * or `undefined`.
   */
  receive(): Uint8Array | undefined;
  /**
   * Copies the next payload received from the server into `buffer` (from
   * offset 0) and returns its length, or 0 when there is none: the
   * allocation-free form of `receive`. A buffer of 1200 bytes
   * (`MAX_PAYLOAD_BYTES`) takes any payload; a payload that does not fit
   * throws a `RangeError` and stays queued.
   */
  receiveInto(buffer: Uint8Array): number;
  /** Disconnects, sending 10 disconnect packets when connecting or connected. */
  disconnect(): void;
  /** Enters loopback mode: connected, in the given slot, without packets. */
  connectLoopback(clientIndex: number, maxClients: number): void;
  /** Leaves loopback mode. */
  disconnectLoopback(): void;
  /** Queues a payload from a loopback server as if it had arrived. */
  processLoopbackPacket(payload: Uint8Array, sequence: number): void;
  /**
   * Disconnects (10 disconnect packets when connecting or connected) and
   * closes the sockets.
   *
   * @returns Settles once the sockets have sent what was queued and are
   * closed (for a `socket` without a `closed` promise: at once).
   */
  close(): Promise<void>;
  /** Same as {@linkcode Client.close}, without waiting. */
  [Symbol.dispose](): void;
  /** Same as {@linkcode Client.close}. */
  [Symbol.asyncDispose](): Promise<void>;
}

// ---------------------------------------------------------------------------
// The state tables. Each is written as a record over every ClientState (so a
// state left out does not compile) and stored as an array indexed by
// `state - FIRST_STATE`, so a lookup per datagram is an element load.

const FIRST_STATE = ClientState.CONNECT_TOKEN_EXPIRED;

function byState<T>(table: Record<ClientState, T>): readonly T[] {
  const out: T[] = [];
  for (const state of Object.values(ClientState)) {
    out[state - FIRST_STATE] = table[state];
  }
  return out;
}

const NO_PACKETS = 0;

/**
 * The packet types the client accepts from its server in each state, as
 * {@linkcode packetTypeMask} bits (the reference's allowed packets). Any
 * other type is dropped by the packet reader as `typeNotAllowed`.
 */
const ALLOWED_PACKETS: readonly number[] = byState({
  [ClientState.CONNECT_TOKEN_EXPIRED]: NO_PACKETS,
  [ClientState.INVALID_CONNECT_TOKEN]: NO_PACKETS,
  [ClientState.CONNECTION_TIMED_OUT]: NO_PACKETS,
  [ClientState.CONNECTION_RESPONSE_TIMED_OUT]: NO_PACKETS,
  [ClientState.CONNECTION_REQUEST_TIMED_OUT]: NO_PACKETS,
  [ClientState.CONNECTION_DENIED]: NO_PACKETS,
  [ClientState.DISCONNECTED]: NO_PACKETS,
  [ClientState.SENDING_CONNECTION_REQUEST]: packetTypeMask(
    CONNECTION_DENIED_PACKET,
    CONNECTION_CHALLENGE_PACKET,
  ),
  [ClientState.SENDING_CONNECTION_RESPONSE]: packetTypeMask(
    CONNECTION_DENIED_PACKET,
    CONNECTION_KEEP_ALIVE_PACKET,
  ),
  [ClientState.CONNECTED]: packetTypeMask(
    CONNECTION_KEEP_ALIVE_PACKET,
    CONNECTION_PAYLOAD_PACKET,
    CONNECTION_DISCONNECT_PACKET,
  ),
});

/** What happens in a state when nothing arrives for the token's timeout. */
interface StateTimeout {
  /** The error state the client settles in. */
  readonly timedOut: ClientState;
  /** Whether it first tries the token's next server, if there is one. */
  readonly tryNextServer: boolean;
}

/**
 * The timeout each state runs: `undefined` where none does. (The connect
 * token's own expiry, `expire - create` seconds, runs in the states that
 * {@linkcode isConnecting}.)
 */
const STATE_TIMEOUTS: readonly (StateTimeout | undefined)[] = byState({
  [ClientState.CONNECT_TOKEN_EXPIRED]: undefined,
  [ClientState.INVALID_CONNECT_TOKEN]: undefined,
  [ClientState.CONNECTION_TIMED_OUT]: undefined,
  [ClientState.CONNECTION_RESPONSE_TIMED_OUT]: undefined,
  [ClientState.CONNECTION_REQUEST_TIMED_OUT]: undefined,
  [ClientState.CONNECTION_DENIED]: undefined,
  [ClientState.DISCONNECTED]: undefined,
  [ClientState.SENDING_CONNECTION_REQUEST]: {
    timedOut: ClientState.CONNECTION_REQUEST_TIMED_OUT,
    tryNextServer: true,
  },
  [ClientState.SENDING_CONNECTION_RESPONSE]: {
    timedOut: ClientState.CONNECTION_RESPONSE_TIMED_OUT,
    tryNextServer: true,
  },
  [ClientState.CONNECTED]: {
    timedOut: ClientState.CONNECTION_TIMED_OUT,
    tryNextServer: false,
  },
});

function allowedPackets(state: ClientState): number {
  return ALLOWED_PACKETS[state - FIRST_STATE];
}

function stateTimeout(state: ClientState): StateTimeout | undefined {
  return STATE_TIMEOUTS[state - FIRST_STATE];
}

// ---------------------------------------------------------------------------
// The client record and the steps over it, named as in the reference.

// A payload packet's bytes beyond its payload at most: prefix, 8 sequence
// bytes, MAC.
const PAYLOAD_OVERHEAD_BYTES = 25;

// Packets without per-send fields, written from these, not from new objects.
const KEEP_ALIVE: EncryptedPacket = {
  type: CONNECTION_KEEP_ALIVE_PACKET,
  clientIndex: 0,
  maxClients: 0,
};
const DISCONNECT: EncryptedPacket = { type: CONNECTION_DISCONNECT_PACKET };

/** Everything a client holds, as the reference's `netcode_client_t`. */
interface ClientRecord {
  readonly onStateChange: ClientOptions["onStateChange"];
  readonly sendLoopbackPacket: ClientOptions["sendLoopbackPacket"];
  /** The caller's transport, or undefined to bind UDP sockets by family. */
  readonly givenSocket: DatagramSocket | undefined;
  /** Where the default UDP socket binds, when chosen. */
  readonly bindAddress: Address | undefined;
  socketV4: DatagramSocket | undefined;
  socketV6: DatagramSocket | undefined;
  readonly stats: ClientStats;
  readonly received: Record<string, number>;
  readonly sent: Record<string, number>;
  state: ClientState;
  closed: boolean;
  time: number;
  token: ConnectToken | undefined;
  serverIndex: number;
  serverAddress: Address | undefined;
  sequence: number;
  clientIndex: number;
  maxClients: number;
  loopback: boolean;
  connectStartTime: number;
  lastSendTime: number;
  lastReceiveTime: number;
  shouldDisconnect: boolean;
  shouldDisconnectState: ClientState;
  /** The server that last disconnected this client, and when. */
  disconnectedBy: Address | undefined;
  disconnectedAt: number;
  challengeTokenSequence: bigint;
  challengeTokenData: Uint8Array | undefined;
  readonly replay: ReplayProtection;
  readonly queue: PayloadQueue;
  /** The `messages` option, resolved. */
  readonly messagesConfig: ResolvedMessageConfig | undefined;
  /** This connection's message channels, while connected with them on. */
  messages: MessageConnection | undefined;
  /** A raw payload with its tag in front, while messages are on. */
  readonly taggedPayload: Uint8Array;
  readonly packetBuffer: Uint8Array;
  readonly readOptions: ReadPacketOptions;
}

function createClientRecord(options: ClientOptions): ClientRecord {
  const stats: ClientStats = {
    received: createPacketTypeCounters(),
    sent: createPacketTypeCounters(),
    dropped: Object.fromEntries(
      CLIENT_DROP_REASONS.map((name) => [name, 0]),
    ) as Record<ClientDropReason, number>,
  };
  const replay = createReplayProtection();
  return {
    onStateChange: options.onStateChange,
    sendLoopbackPacket: options.sendLoopbackPacket,
    givenSocket: options.socket,
    bindAddress: options.bindAddress === undefined
      ? undefined
      : typeof options.bindAddress === "string"
      ? parseAddress(options.bindAddress)
      : parseAddress(formatAddress(options.bindAddress)),
    socketV4: undefined,
    socketV6: undefined,
    stats,
    received: stats.received,
    sent: stats.sent,
    state: ClientState.DISCONNECTED,
    closed: false,
    time: 0,
    token: undefined,
    serverIndex: 0,
    serverAddress: undefined,
    sequence: 0,
    clientIndex: -1,
    maxClients: 0,
    loopback: false,
    connectStartTime: 0,
    lastSendTime: -Infinity,
    lastReceiveTime: 0,
    shouldDisconnect: false,
    shouldDisconnectState: ClientState.DISCONNECTED,
    disconnectedBy: undefined,
    disconnectedAt: 0,
    challengeTokenSequence: 0n,
    challengeTokenData: undefined,
    replay,
    queue: createPayloadQueue(),
    messagesConfig: options.messages === undefined
      ? undefined
      : resolveNetcodeMessageConfig(options.messages, "create client"),
    messages: undefined,
    taggedPayload: new Uint8Array(MAX_PAYLOAD_BYTES),
    packetBuffer: new Uint8Array(MAX_PACKET_BYTES),
    readOptions: {
      protocolId: 0n,
      allowedPackets: NO_PACKETS,
      readKey: undefined,
      replayProtection: replay,
      // Payloads decrypt here, then are copied into the queue.
      payloadBuffer: new Uint8Array(MAX_PAYLOAD_BYTES),
    },
  };
}

/**
 * The one place the state changes. `onStateChange` fires when the state
 * differs, and on `nextServer` (a fallback, which starts over in the same
 * state with another server). Called last by every step, so a throwing
 * callback leaves the client consistent.
 */
function setState(
  c: ClientRecord,
  next: ClientState,
  nextServer = false,
): void {
  const previous = c.state;
  c.state = next;
  if (previous !== next || nextServer) c.onStateChange?.(previous, next);
}

function socketFor(
  c: ClientRecord,
  address: Address,
): DatagramSocket | undefined {
  if (c.givenSocket !== undefined) return c.givenSocket;
  if (c.bindAddress !== undefined) {
    // A server of the other family is unreachable from this socket: its
    // requests go unsent and time out, and the client moves on.
    if (isIpv6(address) !== isIpv6(c.bindAddress)) return undefined;
    if (isIpv6(address)) {
      c.socketV6 ??= listenUdp(c.bindAddress);
      return c.socketV6;
    }
    c.socketV4 ??= listenUdp(c.bindAddress);
    return c.socketV4;
  }
  if (isIpv6(address)) {
    c.socketV6 ??= listenUdp({ hostname: "::", port: 0 });
    return c.socketV6;
  }
  c.socketV4 ??= listenUdp({ hostname: "0.0.0.0", port: 0 });
  return c.socketV4;
}

function resetBeforeNextConnect(c: ClientRecord): void {
  c.connectStartTime = c.time;
  c.lastSendTime = -Infinity;
  c.lastReceiveTime = c.time;
  c.shouldDisconnect = false;
  c.shouldDisconnectState = ClientState.DISCONNECTED;
  c.challengeTokenSequence = 0n;
  c.challengeTokenData = undefined;
  resetReplayProtection(c.replay);
}

function resetConnectionData(c: ClientRecord, next: ClientState): void {
  c.sequence = 0;
  c.loopback = false;
  c.clientIndex = -1;
  c.maxClients = 0;
  c.serverIndex = 0;
  c.serverAddress = undefined;
  c.token = undefined;
  c.readOptions.readKey = undefined;
  resetBeforeNextConnect(c);
  clearPayloadQueue(c.queue);
  c.messages = undefined;
  // Last: the callback may throw, and sees the client fully reset.
  setState(c, next);
}

function transmit(c: ClientRecord, bytes: number, type: number): void {
  const to = c.serverAddress!;
  c.lastSendTime = c.time;
  const socket = socketFor(c, to);
  if (socket === undefined) return;
  socket.send(c.packetBuffer.subarray(0, bytes), to);
  c.sent[PACKET_TYPE_NAMES[type]]++;
}

function sendPacketToServer(c: ClientRecord, packet: EncryptedPacket): void {
  const token = c.token!;
  const bytes = writePacket(
    c.packetBuffer,
    packet,
    c.sequence,
    token.clientToServerKey,
    token.protocolId,
  );
  c.sequence++;
  transmit(c, bytes, packet.type);
}

function sendPayloadToServer(c: ClientRecord, payload: Uint8Array): void {
  const token = c.token!;
  const bytes = writePayloadPacket(
    c.packetBuffer,
    c.sequence,
    token.clientToServerKey,
    token.protocolId,
    payload,
  );
  c.sequence++;
  transmit(c, bytes, CONNECTION_PAYLOAD_PACKET);
}

function sendConnectionRequest(c: ClientRecord): void {
  const token = c.token!;
  const bytes = writeConnectionRequestPacket(c.packetBuffer, {
    type: CONNECTION_REQUEST_PACKET,
    protocolId: token.protocolId,
    expireTimestamp: token.expireTimestamp,
    nonce: token.nonce,
    encryptedPrivateToken: token.encryptedPrivateToken,
  });
  c.sequence++;
  transmit(c, bytes, CONNECTION_REQUEST_PACKET);
}

/** Settles in `destination` (disconnected or an error state). */
function disconnectInternal(
  c: ClientRecord,
  destination: ClientState,
  sendDisconnectPackets: boolean,
): void {
  if (isDisconnected(c.state) || c.state === destination) return;
  if (!c.loopback && sendDisconnectPackets) {
    for (let i = 0; i < NUM_DISCONNECT_PACKETS; i++) {
      sendPacketToServer(c, DISCONNECT);
    }
  }
  resetConnectionData(c, destination);
}

/** Moves on to the token's next server; false when there is none. */
function connectToNextServer(c: ClientRecord): boolean {
  const token = c.token;
  if (
    token === undefined || c.serverIndex + 1 >= token.serverAddresses.length
  ) {
    return false;
  }
  c.serverIndex++;
  c.serverAddress = token.serverAddresses[c.serverIndex];
  resetBeforeNextConnect(c);
  setState(c, ClientState.SENDING_CONNECTION_REQUEST, true);
  return true;
}

function connectClient(c: ClientRecord, connectToken: Uint8Array): void {
  disconnectInternal(c, ClientState.DISCONNECTED, true);
  const token = readConnectToken(connectToken);
  if (token === undefined) {
    setState(c, ClientState.INVALID_CONNECT_TOKEN);
    return;
  }
  c.token = token;
  c.serverIndex = 0;
  c.serverAddress = token.serverAddresses[0];
  c.readOptions.protocolId = token.protocolId;
  c.readOptions.readKey = token.serverToClientKey;
  resetBeforeNextConnect(c);
  setState(c, ClientState.SENDING_CONNECTION_REQUEST);
}

function processPacket(c: ClientRecord, data: Uint8Array, from: Address): void {
  if (c.serverAddress === undefined || !addressEqual(from, c.serverAddress)) {
    c.stats.dropped.wrongAddress++;
    return;
  }
  c.readOptions.allowedPackets = allowedPackets(c.state);
  const packet = readPacket(data, c.readOptions);
  if (typeof packet === "number") {
    c.stats.dropped[packetDropName(packet)]++;
    return;
  }
  c.received[PACKET_TYPE_NAMES[packet.type]]++;
  // The allowed-packets table has checked the type against the state.
  switch (packet.type) {
    case CONNECTION_DENIED_PACKET:
      c.shouldDisconnect = true;
      c.shouldDisconnectState = ClientState.CONNECTION_DENIED;
      c.lastReceiveTime = c.time;
      return;
    case CONNECTION_CHALLENGE_PACKET:
      c.challengeTokenSequence = packet.challengeTokenSequence;
      c.challengeTokenData = packet.challengeTokenData;
      c.lastReceiveTime = c.time;
      // Answer at once rather than at the next 10 Hz send slot.
      c.lastSendTime = -Infinity;
      setState(c, ClientState.SENDING_CONNECTION_RESPONSE);
      return;
    case CONNECTION_KEEP_ALIVE_PACKET:
      c.lastReceiveTime = c.time;
      if (c.state === ClientState.SENDING_CONNECTION_RESPONSE) {
        c.clientIndex = packet.clientIndex;
        c.maxClients = packet.maxClients;
        if (c.messagesConfig !== undefined) {
          c.messages = createNetcodeMessageConnection(
            c.messagesConfig,
            c.time,
            (payload) => sendPayloadToServer(c, payload),
          );
        }
        setState(c, ClientState.CONNECTED);
      }
      return;
    case CONNECTION_PAYLOAD_PACKET: {
      c.lastReceiveTime = c.time;
      const raw = c.messages === undefined
        ? packet.payload
        : routePayload(packet.payload, c.messages);
      if (raw instanceof Uint8Array) {
        queuePayload(c, raw, packet.sequence);
      } else if (raw === INVALID_PAYLOAD_TAG) {
        c.stats.dropped.invalidPayloadTag++;
      }
      return;
    }
    case CONNECTION_DISCONNECT_PACKET:
      c.shouldDisconnect = true;
      c.shouldDisconnectState = ClientState.DISCONNECTED;
      c.lastReceiveTime = c.time;
      return;
    default:
      c.stats.dropped.wrongState++;
  }
}

function queuePayload(
  c: ClientRecord,
  payload: Uint8Array,
  sequence: number | bigint,
): void {
  if (!pushPayload(c.queue, payload, sequence)) {
    c.stats.dropped.receiveQueueFull++;
  }
}

function packetDropName(reason: PacketDropReason): ClientDropReason {
  // The first names of CLIENT_DROP_REASONS are the reader's, by reason.
  return CLIENT_DROP_REASONS[reason];
}

function receivePacketsFrom(
  c: ClientRecord,
  socket: DatagramSocket | undefined,
): void {
  if (socket === undefined) return;
  for (let datagram = socket.poll(); datagram; datagram = socket.poll()) {
    if (c.loopback || allowedPackets(c.state) === NO_PACKETS) {
      if (redundantDisconnect(c, datagram.data, datagram.from)) {
        c.stats.dropped.redundantDisconnect++;
      } else {
        c.stats.dropped.wrongState++;
      }
      continue;
    }
    processPacket(c, datagram.data, datagram.from);
  }
}

/** A late disconnect packet from the server that just disconnected us. */
function redundantDisconnect(
  c: ClientRecord,
  data: Uint8Array,
  from: Address,
): boolean {
  return c.state === ClientState.DISCONNECTED &&
    c.disconnectedBy !== undefined &&
    (data[0] & 0x0f) === CONNECTION_DISCONNECT_PACKET &&
    c.time - c.disconnectedAt <= RECENT_DISCONNECT_SECONDS &&
    addressEqual(from, c.disconnectedBy);
}

function receivePackets(c: ClientRecord): void {
  if (c.givenSocket !== undefined) {
    receivePacketsFrom(c, c.givenSocket);
    return;
  }
  receivePacketsFrom(c, c.socketV4);
  receivePacketsFrom(c, c.socketV6);
}

function sendPackets(c: ClientRecord): void {
  if (c.messages !== undefined && c.state === ClientState.CONNECTED) {
    sendMessagePackets(c.messages);
  }
  if (c.lastSendTime + 1 / PACKET_SEND_RATE >= c.time) return;
  switch (c.state) {
    case ClientState.SENDING_CONNECTION_REQUEST:
      sendConnectionRequest(c);
      return;
    case ClientState.SENDING_CONNECTION_RESPONSE:
      sendPacketToServer(c, {
        type: CONNECTION_RESPONSE_PACKET,
        challengeTokenSequence: c.challengeTokenSequence,
        challengeTokenData: c.challengeTokenData!,
      });
      return;
    case ClientState.CONNECTED:
      sendPacketToServer(c, KEEP_ALIVE);
      return;
  }
}

function updateClient(c: ClientRecord, now: number): void {
  c.time = now;
  if (c.loopback) return;
  if (c.messages !== undefined) {
    // Before the datagrams, so the acks they carry are timed by now.
    updateMessageConnection(c.messages, Math.max(now, c.messages.time));
  }
  receivePackets(c);
  if (isConnecting(c.state)) {
    const token = c.token!;
    const expireSeconds = Number(
      token.expireTimestamp - token.createTimestamp,
    );
    if (c.time - c.connectStartTime >= expireSeconds) {
      disconnectInternal(c, ClientState.CONNECT_TOKEN_EXPIRED, false);
      return;
    }
  }
  if (c.shouldDisconnect) {
    if (connectToNextServer(c)) {
      sendPackets(c);
      return;
    }
    if (c.shouldDisconnectState === ClientState.DISCONNECTED) {
      // Its other disconnect packets are on the way.
      c.disconnectedBy = c.serverAddress;
      c.disconnectedAt = c.time;
    }
    disconnectInternal(c, c.shouldDisconnectState, false);
    return;
  }
  const timeout = stateTimeout(c.state);
  const timeoutSeconds = c.token?.timeoutSeconds ?? 0;
  if (
    timeout !== undefined && timeoutSeconds > 0 &&
    c.lastReceiveTime + timeoutSeconds < c.time
  ) {
    if (timeout.tryNextServer && connectToNextServer(c)) {
      sendPackets(c);
      return;
    }
    disconnectInternal(c, timeout.timedOut, false);
    return;
  }
  sendPackets(c);
}

function maxPayloadBytes(c: ClientRecord): number {
  const datagramBytes = c.loopback || c.givenSocket === undefined
    ? undefined
    : c.givenSocket.maxDatagramBytes;
  return datagramBytes === undefined ? MAX_PAYLOAD_BYTES : Math.max(
    0,
    Math.min(MAX_PAYLOAD_BYTES, datagramBytes - PAYLOAD_OVERHEAD_BYTES),
  );
}

function sendPayload(c: ClientRecord, payload: Uint8Array): void {
  if (c.state !== ClientState.CONNECTED) return;
  const limit = maxPayloadBytes(c);
  if (payload.length > limit) {
    throw new RangeError(
      `Cannot send payload: ${payload.length} bytes exceeds the ${limit} byte limit of this transport`,
    );
  }
  if (c.loopback) {
    c.sendLoopbackPacket?.(c.clientIndex, payload, c.sequence++);
    return;
  }
  sendPayloadToServer(c, payload);
}

/** The connection's message channels; throws when they cannot exist. */
function messagesOf(
  c: ClientRecord,
  what: string,
): MessageConnection | undefined {
  if (c.messagesConfig === undefined) {
    throw new Error(
      `Cannot ${what}: the client was created without the messages option`,
    );
  }
  if (c.loopback) {
    throw new Error(
      `Cannot ${what}: the client is in loopback mode, which has no message channels`,
    );
  }
  return c.messages;
}

function connectLoopback(c: ClientRecord, index: number, slots: number): void {
  disconnectInternal(c, ClientState.DISCONNECTED, true);
  c.clientIndex = index;
  c.maxClients = slots;
  c.loopback = true;
  setState(c, ClientState.CONNECTED);
}

function closeClient(c: ClientRecord): Promise<void> {
  if (!c.closed) {
    disconnectInternal(c, ClientState.DISCONNECTED, true);
    c.closed = true;
    c.givenSocket?.close();
    c.socketV4?.close();
    c.socketV6?.close();
  }
  return Promise.all(
    [c.givenSocket, c.socketV4, c.socketV6].map((socket) => socket?.closed),
  ).then(() => {});
}

// ---------------------------------------------------------------------------

/**
 * Creates a netcode client, disconnected. Call `connect(token)`, then
 * `update(now)` every tick.
 *
 * @param options Socket and callbacks.
 * @returns The client.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ClientState, createClient } from "./client.ts";
 * import { createNetworkSimulator } from "./simulator.ts";
 *
 * const network = createNetworkSimulator();
 * using client = createClient({ socket: network.createSocket("127.0.0.1:50000") });
 * assert.equal(client.state, ClientState.DISCONNECTED);
 * assert.equal(client.stateName, "disconnected");
 * ```
 */
export function createClient(options: ClientOptions = {}): Client {
  if (typeof options !== "object" || options === null) {
    throw new TypeError("Cannot create client: options is not an object");
  }
  for (const name of ["onStateChange", "sendLoopbackPacket"] as const) {
    if (options[name] !== undefined && typeof options[name] !== "function") {
      throw new TypeError(`Cannot create client: ${name} must be a function`);
    }
  }
  if (options.socket !== undefined) {
    checkDatagramSocket(options.socket, "create client");
    if (options.bindAddress !== undefined) {
      throw new TypeError(
        "Cannot create client: give socket or bindAddress, not both",
      );
    }
  }
  if (
    options.bindAddress !== undefined &&
    typeof options.bindAddress !== "string" &&
    (typeof options.bindAddress !== "object" || options.bindAddress === null)
  ) {
    throw new TypeError(
      'Cannot create client: bindAddress must be "ip:port" or { hostname, port }',
    );
  }
  const c = createClientRecord(options);

  return {
    get state() {
      return c.state;
    },
    get stateName() {
      return clientStateName(c.state);
    },
    get clientIndex() {
      return c.clientIndex;
    },
    get maxClients() {
      return c.maxClients;
    },
    get maxPayloadBytes() {
      return maxPayloadBytes(c);
    },
    get serverAddress() {
      return c.serverAddress;
    },
    get localAddress() {
      return (c.givenSocket ?? c.socketV4 ?? c.socketV6)?.address;
    },
    get receivedSequence() {
      return c.queue.lastSequence;
    },
    get loopback() {
      return c.loopback;
    },
    get time() {
      return c.time;
    },
    get nextPacketSequence() {
      return c.sequence;
    },
    get connectionQuality() {
      return c.messages === undefined
        ? undefined
        : connectionQuality(c.messages);
    },
    get messageConnection() {
      return c.messages;
    },
    sendMessage(channelId: number, message: Uint8Array): boolean {
      const connection = messagesOf(c, "send message");
      if (connection === undefined) {
        if (!(message instanceof Uint8Array)) {
          throw new TypeError("Cannot send message: expected a Uint8Array");
        }
        return false;
      }
      return sendChannelMessage(connection, channelId, message);
    },
    receiveMessage(channelId: number): Uint8Array | undefined {
      const connection = messagesOf(c, "receive message");
      return connection === undefined
        ? undefined
        : receiveChannelMessage(connection, channelId);
    },
    stats: c.stats,
    connect(connectToken: Uint8Array): void {
      if (c.closed) throw new Error("Cannot connect: client is closed");
      if (!(connectToken instanceof Uint8Array)) {
        throw new TypeError(
          "Cannot connect: connect token must be a Uint8Array",
        );
      }
      connectClient(c, connectToken);
    },
    update(now: number): void {
      if (c.closed) throw new Error("Cannot update client: it is closed");
      if (typeof now !== "number" || Number.isNaN(now)) {
        throw new TypeError(
          `Cannot update client: time ${now} is not a number`,
        );
      }
      updateClient(c, now);
    },
    send(payload: Uint8Array): void {
      if (!(payload instanceof Uint8Array)) {
        throw new TypeError("Cannot send payload: expected a Uint8Array");
      }
      const limit = c.messagesConfig === undefined
        ? MAX_PAYLOAD_BYTES
        : MAX_PAYLOAD_BYTES - 1;
      if (payload.length < 1 || payload.length > limit) {
        throw new RangeError(
          `Cannot send payload: ${payload.length} bytes is outside the 1..${limit} byte limit${
            c.messagesConfig === undefined ? "" : " (with messages on)"
          }`,
        );
      }
      if (c.messagesConfig === undefined || c.loopback) {
        sendPayload(c, payload);
        return;
      }
      if (c.state !== ClientState.CONNECTED) return;
      const transportLimit = maxPayloadBytes(c) - 1;
      if (payload.length > transportLimit) {
        throw new RangeError(
          `Cannot send payload: ${payload.length} bytes exceeds the ${transportLimit} byte limit of this transport (with messages on)`,
        );
      }
      sendPayload(c, tagRawPayload(payload, c.taggedPayload));
    },
    receive(): Uint8Array | undefined {
      return shiftPayload(c.queue);
    },
    receiveInto(buffer: Uint8Array): number {
      checkReceiveBuffer(buffer);
      return shiftPayloadInto(c.queue, buffer);
    },
    disconnect(): void {
      disconnectInternal(c, ClientState.DISCONNECTED, true);
    },
    connectLoopback(index: number, slots: number): void {
      if (c.closed) {
        throw new Error("Cannot connect loopback: client is closed");
      }
      if (!Number.isInteger(slots) || slots < 1) {
        throw new RangeError(
          `Cannot connect loopback: max clients ${slots} is not a positive integer`,
        );
      }
      if (!Number.isInteger(index) || index < 0 || index >= slots) {
        throw new RangeError(
          `Cannot connect loopback: client index ${index} is outside 0..${
            slots - 1
          }`,
        );
      }
      connectLoopback(c, index, slots);
    },
    disconnectLoopback(): void {
      if (c.loopback) resetConnectionData(c, ClientState.DISCONNECTED);
    },
    processLoopbackPacket(payload: Uint8Array, sequence: number): void {
      if (
        !(payload instanceof Uint8Array) || payload.length < 1 ||
        payload.length > MAX_PAYLOAD_BYTES
      ) {
        throw new RangeError(
          `Cannot process loopback packet: payload must be 1..${MAX_PAYLOAD_BYTES} bytes`,
        );
      }
      if (!c.loopback) return;
      if (!pushPayload(c.queue, payload, sequence)) {
        c.stats.dropped.receiveQueueFull++;
      }
    },
    close(): Promise<void> {
      return closeClient(c);
    },
    [Symbol.dispose](): void {
      closeClient(c);
    },
    [Symbol.asyncDispose](): Promise<void> {
      return closeClient(c);
    },
  };
}
