/**
 * The netcode dedicated server: client slots, connection requests and
 * challenges, keep-alives, timeouts and payloads, over any
 * {@linkcode DatagramSocket}.
 *
 * The server never reads a clock: call {@linkcode Server.update} with
 * monotonic seconds each tick; callbacks fire from inside it. Hostile
 * datagrams are dropped and counted in {@linkcode Server.stats}, never thrown.
 *
 * @example An echo server on the in-memory simulator
 * ```ts
 * import assert from "node:assert/strict";
 * import { createClient } from "./client.ts";
 * import { generateKey } from "./crypto.ts";
 * import { createNetworkSimulator } from "./simulator.ts";
 * import { createServer } from "./server.ts";
 * import { generateConnectToken } from "./token.ts";
 *
 * const protocolId = 0x1122334455667788n;
 * const privateKey = generateKey();
 * const network = createNetworkSimulator();
 * using server = createServer({
 *   address: "127.0.0.1:40000",
 *   protocolId,
 *   privateKey,
 *   socket: network.createSocket("127.0.0.1:40000"),
 *   onConnect: (index) => console.log("client", index, "connected"),
 * });
 *
 * // A player, with a connect token from the backend.
 * using client = createClient({ socket: network.createSocket("127.0.0.1:50000") });
 * client.connect(generateConnectToken({
 *   serverAddresses: ["127.0.0.1:40000"],
 *   clientId: 42n,
 *   protocolId,
 *   privateKey,
 * }));
 *
 * for (let tick = 0; tick < 60; tick++) {
 *   const now = tick / 60;
 *   network.update(now);
 *   client.update(now);
 *   server.update(now);
 *   for (let i = 0; i < server.maxClients; i++) {
 *     for (let p = server.receive(i); p; p = server.receive(i)) server.send(i, p);
 *   }
 * }
 * assert.deepEqual(server.connectedClients(), [0]);
 * assert.equal(server.clientId(0), 42n);
 * ```
 *
 * @module
 */

import { type Address, formatAddress, parseAddress } from "./address.ts";
import { checkKey } from "./crypto.ts";
import { MAX_PAYLOAD_BYTES, USER_DATA_BYTES } from "./packet.ts";
import {
  checkDatagramSocket,
  createMultiSocket,
  type DatagramSocket,
} from "./socket.ts";
import {
  defaultBindAddress,
  listenServerSockets,
  resolvePublicAddresses,
} from "./_bind.ts";
import {
  checkReceiveBuffer,
  shiftPayload,
  shiftPayloadInto,
} from "./_payload_queue.ts";
import { connectedSlots, connectSlot } from "./_server_slots.ts";
import {
  type ConnectionQuality,
  connectionQuality,
  type MessageConfig,
  type MessageConnection,
  receiveMessage as receiveChannelMessage,
  sendMessage as sendChannelMessage,
} from "./channel.ts";
import {
  MAX_RAW_PAYLOAD_BYTES,
  resolveNetcodeMessageConfig,
  tagRawPayload,
} from "./_messages.ts";
import {
  createServerState,
  disconnectAllClients,
  disconnectClient,
  disconnectLoopbackSlot,
  queuePayload,
  receivePackets,
  sendPayload,
  startServer,
  stopServer,
  updateServer,
} from "./_server_steps.ts";

export {
  type DisconnectReason,
  PENDING_CONNECTION_SECONDS,
  SERVER_DROP_REASONS,
  type ServerDropReason,
  type ServerStats,
} from "./_server_steps.ts";
import type { DisconnectReason, ServerStats } from "./_server_steps.ts";

/** Default number of client slots, as in the reference. */
export const DEFAULT_MAX_CLIENTS = 256;
/** Largest number of client slots a server accepts. */
export const MAX_CLIENTS_LIMIT = 16384;

/** Connection requests decrypted per update by default; more are shed. */
export const DEFAULT_MAX_CONNECTION_REQUESTS_PER_UPDATE = 64;

/** Options of {@linkcode createServer}. */
export interface ServerOptions {
  /**
   * The address or addresses clients connect to, as written (internal
   * addresses) in their connect tokens: `"127.0.0.1:40000"`, or an IPv4 and
   * an IPv6 address for a dual-stack server. Without `socket`, the server
   * binds a UDP socket for each, where `bindAddress` says.
   * @default {the socket's address}
   */
  address?: string | Address | readonly (string | Address)[];
  /**
   * Where the UDP sockets bind, when that is not where clients reach the
   * server (the C reference binds apart too): one address per socket, such
   * as `"0.0.0.0:40000"` or `"10.0.0.5:40000"`. Not with `socket`.
   *
   * By default each `address` binds the wildcard address of its family on
   * its port (`"0.0.0.0:40000"` for `"203.0.113.7:40000"`), so a server
   * behind NAT or in a container, whose public address is on none of its
   * interfaces, binds; a loopback address (`127.0.0.1`, `::1`) binds
   * itself, so a local server stays local. Binding a wildcard needs
   * `--allow-net=0.0.0.0` (or `[::]`).
   *
   * @default {each address's wildcard, loopback addresses themselves}
   */
  bindAddress?: string | Address | readonly (string | Address)[];
  /** The game's protocol id; packets for another are dropped. */
  protocolId: bigint;
  /** The 32-byte private key shared with the backend that issues tokens. */
  privateKey: Uint8Array;
  /** Client slots, 1..16384. @default {256} */
  maxClients?: number;
  /**
   * The transport. Without it, the server binds Deno UDP sockets on
   * `address` (which needs `--unstable-net` in Deno 2.9).
   * @default {UDP sockets on `address`}
   */
  socket?: DatagramSocket;
  /**
   * A WebTransport socket for browser players
   * (`listenWebTransport()` from socket_webtransport.ts), served beside the UDP socket(s): its
   * address joins the server's addresses, so a token naming it is accepted,
   * and the server owns it (closing the server closes it).
   * @default {undefined}
   */
  webTransport?: DatagramSocket;
  /**
   * Connection requests decrypted per update. Each costs an XChaCha20
   * decryption of the 1 KB private token (about 6 µs), the only expensive
   * thing an unauthenticated sender can ask for, so a flood costs at most
   * this many decryptions a tick (64: about 0.4 ms).
   *
   * Only requests that pass every check needing no cryptography compete for
   * the budget: exactly 1078 bytes, the version info, the protocol id and an
   * unexpired token (junk failing one is counted by that reason, and costs
   * nothing). Of those, each source address offers one per update (its
   * others are shed), and the budget's worth is chosen at random among
   * them, so a request's place in the receive queue does not decide its
   * fate. The rest are counted in `stats.dropped.connectionRequestsShed`.
   * @default {64}
   */
  maxConnectionRequestsPerUpdate?: number;
  /**
   * The current unix time in seconds, read once per update to check connect
   * token expiry.
   * @default {() => Date.now() / 1000}
   */
  unixTime?: () => number;
  /** Called from `update()` when a client takes a slot. @default {undefined} */
  onConnect?: (clientIndex: number) => void;
  /** Called when a client leaves its slot, before the slot is cleared. @default {undefined} */
  onDisconnect?: (clientIndex: number, reason: DisconnectReason) => void;
  /**
   * Receives payloads sent to loopback clients (slots connected with
   * {@linkcode Server.connectLoopbackClient}).
   * @default {undefined}
   */
  sendLoopbackPacket?: (
    clientIndex: number,
    payload: Uint8Array,
    sequence: number,
  ) => void;
  /**
   * Message channels for every network client (see channel.ts): reliable
   * ordered messages up to 64 KB and unreliable ones, and per-client RTT,
   * jitter, packet loss and bandwidth, through
   * {@linkcode Server.sendMessage}, {@linkcode Server.receiveMessage} and
   * {@linkcode Server.connectionQuality}. Clients must use the same
   * `messages` option. Raw payloads (`send`, `receive`) still work beside
   * them, up to 1199 bytes: with messages on, each payload's first byte
   * says whether a raw payload or a message packet follows. Loopback
   * clients have no channels.
   * @default {undefined (off)}
   */
  messages?: MessageConfig;
}

/** A running netcode server. Create it with {@linkcode createServer}. */
export interface Server {
  /** The first address the server is reached at (port resolved). */
  readonly address: Address;
  /** Every address the server is reached at. */
  readonly addresses: readonly Address[];
  /**
   * The addresses its sockets are bound to (a wildcard such as `0.0.0.0`
   * when bound apart from `addresses`), ports resolved.
   */
  readonly localAddresses: readonly Address[];
  /** Whether the server accepts connections (between start and stop). */
  readonly running: boolean;
  /** Number of client slots. */
  readonly maxClients: number;
  /** Number of slots in use. */
  readonly numConnectedClients: number;
  /** The time of the last update, in the caller's seconds. */
  readonly time: number;
  /**
   * Connections challenged but not yet connected (at most 4 x max clients);
   * each holds the address's encryption keys until it connects or expires.
   */
  readonly numPendingConnections: number;
  /** Connect token MACs remembered against reuse (at most 8 x max clients). */
  readonly numTokenHistoryEntries: number;
  /** Counters of packets in, out and dropped. */
  readonly stats: ServerStats;
  /**
   * Starts accepting clients (a new server is already started). Restarting
   * stops first, reseeds the global sequence at 2^63 and makes a new
   * challenge key.
   */
  start(maxClients?: number): void;
  /** Disconnects every client and stops accepting connections. */
  stop(): void;
  /** Receives and processes datagrams, sends keep-alives, times clients out. */
  update(now: number): void;
  /**
   * Sends a payload of 1..1200 bytes (1..1199 with `messages` on) to a
   * connected client.
   */
  send(clientIndex: number, payload: Uint8Array): void;
  /**
   * Sends one payload of 1..1200 bytes (1..1199 with `messages` on) to
   * every connected client (loopback clients through `sendLoopbackPacket`).
   *
   * @returns The number of clients it went to.
   */
  broadcast(payload: Uint8Array): number;
  /**
   * The next payload received from the client, as a copy the caller owns,
   * or `undefined`.
   */
  receive(clientIndex: number): Uint8Array | undefined;
  /**
   * Copies the next payload received from the client into `buffer` (from
   * offset 0) and returns its length, or 0 when there is none: the
   * allocation-free form of `receive`. A buffer of 1200 bytes
   * (`MAX_PAYLOAD_BYTES`) takes any payload; a payload that does not fit
   * throws a `RangeError` and stays queued.
   */
  receiveInto(clientIndex: number, buffer: Uint8Array): number;
  /**
   * The packet sequence of the payload last taken from the client with
   * `receive` or `receiveInto` (as the reference's `receive_packet` gives
   * it), or -1 before the first one.
   */
  receivedSequence(clientIndex: number): number;
  /**
   * Queues a message to a connected client on one of the `messages`
   * channels; it goes out in the next `update()`. The server keeps a copy.
   *
   * @returns `true` when queued (or the slot is empty, which drops it);
   * `false` when the channel's send queue is full and its `onSendQueueFull`
   * is `"drop"`.
   * @throws {Error} Without the `messages` option, or for a loopback client.
   * @throws {RangeError} For a channel that does not exist, a message over
   * its `maxMessageBytes`, or a full send queue set to `"throw"`.
   */
  sendMessage(
    clientIndex: number,
    channelId: number,
    message: Uint8Array,
  ): boolean;
  /**
   * The next message from the client on a channel (in order on a
   * reliable-ordered one), as a copy the caller owns, or `undefined`.
   */
  receiveMessage(
    clientIndex: number,
    channelId: number,
  ): Uint8Array | undefined;
  /**
   * The client's RTT, jitter, packet loss and bandwidth, estimated by its
   * message channels' reliable 1.0 endpoint; `undefined` for an empty slot,
   * a loopback client or without `messages`.
   */
  connectionQuality(clientIndex: number): ConnectionQuality | undefined;
  /**
   * The client's message connection (counters, endpoint), or `undefined`
   * for an empty slot, a loopback client or without `messages`.
   */
  messageConnection(clientIndex: number): MessageConnection | undefined;
  /** Disconnects a client, sending it 10 disconnect packets. */
  disconnect(clientIndex: number): void;
  /** Disconnects every client. */
  disconnectAll(): void;
  /**
   * The slots that hold a client, in ascending order, as a new array (so
   * disconnecting while walking it is safe); found without walking every
   * slot.
   */
  connectedClients(): number[];
  /** Whether the slot holds a client. */
  clientConnected(clientIndex: number): boolean;
  /** Whether the client has proven it received its keep-alive. */
  clientConfirmed(clientIndex: number): boolean;
  /** Whether the slot holds a loopback client. */
  clientLoopback(clientIndex: number): boolean;
  /** The client's id, or `undefined` for an empty slot. */
  clientId(clientIndex: number): bigint | undefined;
  /** The client's address, or `undefined` (empty or loopback slot). */
  clientAddress(clientIndex: number): Address | undefined;
  /**
   * A copy of the 256 bytes of user data from the client's token, or
   * `undefined` for an empty slot.
   */
  clientUserData(clientIndex: number): Uint8Array | undefined;
  /** The sequence the next packet to this client will carry. */
  nextPacketSequence(clientIndex: number): number;
  /** Connects a loopback client in a free slot, without any packets. */
  connectLoopbackClient(
    clientIndex: number,
    clientId: bigint,
    userData?: Uint8Array,
  ): void;
  /** Disconnects a loopback client. */
  disconnectLoopbackClient(clientIndex: number): void;
  /** Queues a payload from a loopback client as if it had arrived. */
  processLoopbackPacket(
    clientIndex: number,
    payload: Uint8Array,
    sequence: number,
  ): void;
  /**
   * Processes the datagrams already queued (a client's own disconnect
   * counts as its disconnect; nobody new connects), disconnects every
   * client with its disconnect packets, stops and closes the sockets.
   *
   * @returns Settles once the sockets have sent what was queued and are
   * closed (for a `socket` without a `closed` promise: at once).
   */
  close(): Promise<void>;
  /** Same as {@linkcode Server.close}, without waiting. */
  [Symbol.dispose](): void;
  /** Same as {@linkcode Server.close}. */
  [Symbol.asyncDispose](): Promise<void>;
}

function toAddressList(
  address: ServerOptions["address"],
): Address[] {
  if (address === undefined) return [];
  const list = Array.isArray(address) ? address : [address];
  return list.map((entry) => {
    if (typeof entry === "string") return parseAddress(entry);
    if (
      typeof entry !== "object" || entry === null ||
      typeof entry.hostname !== "string" || typeof entry.port !== "number"
    ) {
      throw new TypeError(
        "Cannot create server: address must be a string or { hostname, port }",
      );
    }
    return parseAddress(formatAddress(entry));
  });
}

function checkMaxClients(maxClients: unknown): number {
  if (
    typeof maxClients !== "number" || !Number.isInteger(maxClients) ||
    maxClients < 1 || maxClients > MAX_CLIENTS_LIMIT
  ) {
    throw new RangeError(
      `Cannot start server: max clients ${
        String(maxClients)
      } is outside 1..${MAX_CLIENTS_LIMIT}`,
    );
  }
  return maxClients;
}

/**
 * Creates a netcode server and starts it. Without a `socket` it binds UDP
 * sockets on `address` (one per address, for dual stack).
 *
 * @param options Address, protocol id, private key, slots and callbacks.
 * @returns The running server.
 * @throws {TypeError} On an unparsable address or a value of the wrong type.
 * @throws {RangeError} On a private key that is not 32 bytes or max clients out of range.
 * @throws {Error} When a socket cannot be bound, naming the address and cause.
 *
 * @example
 * ```ts ignore
 * import { generateKey } from "./crypto.ts";
 * import { createServer } from "./server.ts";
 *
 * const server = createServer({
 *   address: ["127.0.0.1:40000", "[::1]:40000"],
 *   protocolId: 0x1122334455667788n,
 *   privateKey: generateKey(),
 * });
 * const start = performance.now();
 * setInterval(() => server.update((performance.now() - start) / 1000), 1000 / 60);
 * ```
 */
export function createServer(options: ServerOptions): Server {
  if (typeof options !== "object" || options === null) {
    throw new TypeError("Cannot create server: options is not an object");
  }
  const protocolId = options.protocolId;
  if (
    typeof protocolId !== "bigint" || protocolId < 0n ||
    protocolId > 0xffffffffffffffffn
  ) {
    throw new TypeError(
      "Cannot create server: protocol id must be a bigint 0..2^64-1",
    );
  }
  const privateKey = checkKey(options.privateKey, "private key").slice();
  const initialMaxClients = checkMaxClients(
    options.maxClients ?? DEFAULT_MAX_CLIENTS,
  );
  const configured = toAddressList(options.address);
  for (
    const name of [
      "onConnect",
      "onDisconnect",
      "unixTime",
      "sendLoopbackPacket",
    ] as const
  ) {
    if (options[name] !== undefined && typeof options[name] !== "function") {
      throw new TypeError(`Cannot create server: ${name} must be a function`);
    }
  }
  if (options.socket !== undefined) {
    checkDatagramSocket(options.socket, "create server");
  }
  const bindAddresses = toAddressList(options.bindAddress);
  if (options.socket !== undefined && bindAddresses.length > 0) {
    throw new TypeError(
      "Cannot create server: give socket or bindAddress, not both (a socket is already bound)",
    );
  }
  const maxRequestsPerUpdate = options.maxConnectionRequestsPerUpdate ??
    DEFAULT_MAX_CONNECTION_REQUESTS_PER_UPDATE;
  if (!Number.isInteger(maxRequestsPerUpdate) || maxRequestsPerUpdate < 0) {
    throw new RangeError(
      `Cannot create server: max connection requests per update ${maxRequestsPerUpdate} is not a non-negative integer`,
    );
  }
  if (options.webTransport !== undefined) {
    checkDatagramSocket(options.webTransport, "create server: webTransport");
  }
  const messages = options.messages === undefined
    ? undefined
    : resolveNetcodeMessageConfig(options.messages, "create server");
  // Every option is checked: only now may sockets be bound.
  let socket: DatagramSocket;
  let addresses: Address[];
  let localAddresses: Address[];
  if (options.socket !== undefined) {
    socket = options.socket;
    localAddresses = [socket.address];
    // The socket's port stands in for a configured port 0.
    addresses = configured.length === 0
      ? [socket.address]
      : configured.map((address) =>
        address.port === 0
          ? { hostname: address.hostname, port: socket.address.port }
          : address
      );
  } else {
    if (configured.length === 0) {
      throw new TypeError("Cannot create server: give an address or a socket");
    }
    const sockets = listenServerSockets(
      bindAddresses.length > 0
        ? bindAddresses
        : configured.map(defaultBindAddress),
    );
    try {
      addresses = resolvePublicAddresses(configured, sockets);
    } catch (error) {
      for (const opened of sockets) opened.close();
      throw error;
    }
    socket = sockets.length === 1 ? sockets[0] : createMultiSocket(sockets);
    localAddresses = sockets.map((one) => one.address);
  }

  if (options.webTransport !== undefined) {
    socket = createMultiSocket([socket, options.webTransport]);
    addresses = [...addresses, options.webTransport.address];
    localAddresses = [...localAddresses, options.webTransport.address];
  }

  const state = createServerState({
    protocolId,
    privateKey,
    socket,
    addresses,
    unixTime: options.unixTime ?? (() => Date.now() / 1000),
    maxConnectionRequestsPerUpdate: maxRequestsPerUpdate,
    onConnect: options.onConnect,
    onDisconnect: options.onDisconnect,
    sendLoopbackPacket: options.sendLoopbackPacket,
    messages,
  });
  const maxPayload = messages === undefined
    ? MAX_PAYLOAD_BYTES
    : MAX_RAW_PAYLOAD_BYTES;

  function checkIndex(clientIndex: number, what: string): void {
    const maxClients = state.slots.maxClients;
    if (
      typeof clientIndex !== "number" || !Number.isInteger(clientIndex) ||
      clientIndex < 0 || clientIndex >= maxClients
    ) {
      throw new RangeError(
        `Cannot ${what}: client index ${clientIndex} is outside 0..${
          maxClients - 1
        }`,
      );
    }
  }

  function checkPayload(payload: Uint8Array): void {
    if (!(payload instanceof Uint8Array)) {
      throw new TypeError("Cannot send payload: expected a Uint8Array");
    }
    if (payload.length < 1 || payload.length > maxPayload) {
      throw new RangeError(
        `Cannot send payload: ${payload.length} bytes is outside the 1..${maxPayload} byte limit${
          messages === undefined ? "" : " (with messages on)"
        }`,
      );
    }
  }

  /** A raw payload as it goes out: tagged while messages are on. */
  function rawPayload(clientIndex: number, payload: Uint8Array): Uint8Array {
    return messages === undefined || state.slots.loopback[clientIndex]
      ? payload
      : tagRawPayload(payload, state.taggedPayload);
  }

  /** The client's message connection; throws without one. */
  function messagesOf(
    clientIndex: number,
    what: string,
  ): MessageConnection | undefined {
    if (messages === undefined) {
      throw new Error(
        `Cannot ${what}: the server was created without the messages option`,
      );
    }
    if (!holdsClient(clientIndex, what)) return undefined;
    if (state.slots.loopback[clientIndex]) {
      throw new Error(
        `Cannot ${what}: client ${clientIndex} is a loopback client, which has no message channels`,
      );
    }
    return state.slots.messages[clientIndex];
  }

  /** Whether the server runs and the slot (checked) holds a client. */
  function holdsClient(clientIndex: number, what: string): boolean {
    if (!state.running) return false;
    checkIndex(clientIndex, what);
    return state.slots.connected[clientIndex] === 1;
  }

  function start(newMaxClients?: number): void {
    if (state.closed) throw new Error("Cannot start server: it is closed");
    startServer(state, checkMaxClients(newMaxClients ?? initialMaxClients));
  }

  function update(now: number): void {
    if (state.closed) throw new Error("Cannot update server: it is closed");
    if (typeof now !== "number" || Number.isNaN(now)) {
      throw new TypeError(`Cannot update server: time ${now} is not a number`);
    }
    updateServer(state, now);
  }

  function send(clientIndex: number, payload: Uint8Array): void {
    checkPayload(payload);
    if (!holdsClient(clientIndex, "send payload")) return;
    sendPayload(state, clientIndex, rawPayload(clientIndex, payload));
  }

  function broadcast(payload: Uint8Array): number {
    checkPayload(payload);
    if (!state.running) return 0;
    const slots = state.slots;
    const count = slots.numConnected;
    // A copy of the list: a loopback callback may disconnect clients.
    for (const clientIndex of slots.connectedList.slice(0, count)) {
      if (slots.connected[clientIndex]) {
        sendPayload(state, clientIndex, rawPayload(clientIndex, payload));
      }
    }
    return count;
  }

  function receive(clientIndex: number): Uint8Array | undefined {
    if (!state.running) return undefined;
    checkIndex(clientIndex, "receive payload");
    return shiftPayload(state.slots.payloadQueues[clientIndex]);
  }

  function receiveInto(clientIndex: number, buffer: Uint8Array): number {
    checkReceiveBuffer(buffer);
    if (!state.running) return 0;
    checkIndex(clientIndex, "receive payload");
    return shiftPayloadInto(state.slots.payloadQueues[clientIndex], buffer);
  }

  function disconnect(clientIndex: number): void {
    if (!holdsClient(clientIndex, "disconnect client")) return;
    if (state.slots.loopback[clientIndex]) return;
    disconnectClient(state, clientIndex, true, "serverDisconnected");
  }

  function connectLoopbackClient(
    clientIndex: number,
    clientId: bigint,
    loopbackUserData?: Uint8Array,
  ): void {
    if (!state.running) {
      throw new Error("Cannot connect loopback client: server is not running");
    }
    checkIndex(clientIndex, "connect loopback client");
    if (typeof clientId !== "bigint") {
      throw new TypeError(
        "Cannot connect loopback client: client id must be a bigint",
      );
    }
    if (state.slots.connected[clientIndex]) {
      throw new RangeError(
        `Cannot connect loopback client: slot ${clientIndex} is taken`,
      );
    }
    if (state.slots.byClientId.has(clientId)) {
      throw new RangeError(
        `Cannot connect loopback client: client id ${clientId} is connected`,
      );
    }
    const userData = new Uint8Array(USER_DATA_BYTES);
    if (loopbackUserData !== undefined) {
      if (
        !(loopbackUserData instanceof Uint8Array) ||
        loopbackUserData.length > USER_DATA_BYTES
      ) {
        throw new RangeError(
          `Cannot connect loopback client: user data must be a Uint8Array of at most ${USER_DATA_BYTES} bytes`,
        );
      }
      userData.set(loopbackUserData);
    }
    connectSlot(state.slots, clientIndex, { clientId, userData }, state.time);
    state.config.onConnect?.(clientIndex);
  }

  function disconnectLoopbackClient(clientIndex: number): void {
    if (!holdsClient(clientIndex, "disconnect loopback client")) return;
    if (!state.slots.loopback[clientIndex]) return;
    disconnectLoopbackSlot(state, clientIndex);
  }

  function processLoopbackPacket(
    clientIndex: number,
    payload: Uint8Array,
    sequence: number,
  ): void {
    if (
      !(payload instanceof Uint8Array) || payload.length < 1 ||
      payload.length > MAX_PAYLOAD_BYTES
    ) {
      throw new RangeError(
        `Cannot process loopback packet: payload must be 1..${MAX_PAYLOAD_BYTES} bytes`,
      );
    }
    if (!holdsClient(clientIndex, "process loopback packet")) return;
    if (!state.slots.loopback[clientIndex]) return;
    state.slots.lastReceiveTime[clientIndex] = state.time;
    queuePayload(state, clientIndex, payload, sequence);
  }

  function close(): Promise<void> {
    if (!state.closed) {
      if (state.running) {
        // What already arrived first: a client's own disconnect packet in
        // the queue is its disconnect, not ours. Nobody new connects now.
        state.closing = true;
        try {
          receivePackets(state);
        } finally {
          state.closing = false;
          stopServer(state);
          state.closed = true;
          socket.close();
        }
      } else {
        state.closed = true;
        socket.close();
      }
    }
    return socket.closed?.then(() => {}, () => {}) ?? Promise.resolve();
  }

  function query<T>(clientIndex: number, value: () => T): T | undefined {
    return holdsClient(clientIndex, "query client") ? value() : undefined;
  }

  startServer(state, initialMaxClients);

  return {
    get address() {
      return addresses[0];
    },
    addresses,
    localAddresses,
    get running() {
      return state.running;
    },
    get maxClients() {
      return state.slots.maxClients;
    },
    get numConnectedClients() {
      return state.slots.numConnected;
    },
    get time() {
      return state.time;
    },
    get numPendingConnections() {
      return state.pending.entries.size;
    },
    get numTokenHistoryEntries() {
      return state.tokenHistory.entries.size;
    },
    stats: state.stats,
    start,
    stop: () => stopServer(state),
    update,
    send,
    broadcast,
    receive,
    receiveInto,
    sendMessage(clientIndex, channelId, message) {
      const connection = messagesOf(clientIndex, "send message");
      if (connection === undefined) {
        if (!(message instanceof Uint8Array)) {
          throw new TypeError("Cannot send message: expected a Uint8Array");
        }
        return true;
      }
      return sendChannelMessage(connection, channelId, message);
    },
    receiveMessage(clientIndex, channelId) {
      const connection = messagesOf(clientIndex, "receive message");
      return connection === undefined
        ? undefined
        : receiveChannelMessage(connection, channelId);
    },
    connectionQuality(clientIndex) {
      if (!holdsClient(clientIndex, "query client")) return undefined;
      const connection = state.slots.messages[clientIndex];
      return connection === undefined
        ? undefined
        : connectionQuality(connection);
    },
    messageConnection: (i) =>
      holdsClient(i, "query client") ? state.slots.messages[i] : undefined,
    receivedSequence: (i: number) =>
      state.running
        ? (checkIndex(i, "query client"),
          state.slots.payloadQueues[i].lastSequence)
        : -1,
    disconnect,
    disconnectAll: () => {
      if (state.running) disconnectAllClients(state);
    },
    connectedClients: () => state.running ? connectedSlots(state.slots) : [],
    clientConnected: (i) => holdsClient(i, "query client"),
    clientConfirmed: (i) =>
      query(i, () => state.slots.confirmed[i] === 1) ?? false,
    clientLoopback: (i) =>
      query(i, () => state.slots.loopback[i] === 1) ?? false,
    clientId: (i) => query(i, () => state.slots.clientIds[i]),
    clientAddress: (i) => query(i, () => state.slots.addresses[i]),
    clientUserData: (i) => query(i, () => state.slots.userData[i]!.slice()),
    nextPacketSequence: (i) =>
      state.running
        ? (checkIndex(i, "query client"), state.slots.sequence[i])
        : 0,
    connectLoopbackClient,
    disconnectLoopbackClient,
    processLoopbackPacket,
    close,
    [Symbol.dispose]: () => void close(),
    [Symbol.asyncDispose]: close,
  };
}
