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
 * import { generateKey } from "./crypto.ts";
 * import { createNetworkSimulator } from "./simulator.ts";
 * import { createServer } from "./server.ts";
 *
 * const network = createNetworkSimulator();
 * using server = createServer({
 *   address: "127.0.0.1:40000",
 *   protocolId: 0x1122334455667788n,
 *   privateKey: generateKey(),
 *   socket: network.createSocket("127.0.0.1:40000"),
 *   onConnect: (index) => console.log("client", index, "connected"),
 * });
 * for (let tick = 0; tick < 3; tick++) {
 *   const now = tick / 60;
 *   network.update(now);
 *   server.update(now);
 *   for (let i = 0; i < server.maxClients; i++) {
 *     for (let p = server.receive(i); p; p = server.receive(i)) server.send(i, p);
 *   }
 * }
 * ```
 *
 * @module
 */

import {
  type Address,
  addressEqual,
  addressKey,
  formatAddress,
  parseAddress,
} from "./address.ts";
import { checkKey, generateKey, MAC_BYTES } from "./crypto.ts";
import {
  CONNECT_TOKEN_PRIVATE_BYTES,
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
  type PacketTypeCounters,
  packetTypeMask,
  readPacket,
  type ReadPacketOptions,
  type ReplayProtection,
  resetReplayProtection,
  USER_DATA_BYTES,
  writePacket,
  writePayloadPacket,
} from "./packet.ts";
import {
  checkDatagramSocket,
  createMultiSocket,
  type DatagramSocket,
  listenUdp,
} from "./socket.ts";
import {
  decryptChallengeToken,
  encryptChallengeToken,
  readChallengeToken,
  readPrivateConnectToken,
  writeChallengeToken,
} from "./token.ts";
import {
  checkReceiveBuffer,
  clearPayloadQueue,
  createPayloadQueue,
  type PayloadQueue,
  pushPayload,
  shiftPayload,
  shiftPayloadInto,
} from "./_payload_queue.ts";

/** Default number of client slots, as in the reference. */
export const DEFAULT_MAX_CLIENTS = 256;
/** Largest number of client slots a server accepts. */
export const MAX_CLIENTS_LIMIT = 16384;
/**
 * Seconds a pending connection (challenge sent, no response yet) is kept when
 * its token disables timeouts.
 */
export const PENDING_CONNECTION_SECONDS = 10;

/** Connection requests decrypted per update by default; more are shed. */
export const DEFAULT_MAX_CONNECTION_REQUESTS_PER_UPDATE = 64;

const GLOBAL_SEQUENCE_START = 1n << 63n;

/** Why a client left its slot. */
export type DisconnectReason =
  | "timedOut"
  | "clientDisconnected"
  | "serverDisconnected";

/** Counters kept by the server; read them, don't write them. */
export interface ServerStats {
  /** Valid packets received, by type. */
  readonly received: PacketTypeCounters;
  /** Packets sent, by type. */
  readonly sent: PacketTypeCounters;
  /**
   * Datagrams dropped, by reason: the packet reader's reasons (`tooSmall`,
   * `decryptFailed`, `replayed`, ...) and the server's own (`invalidToken`,
   * `serverAddressNotInToken`, `clientIdConnected`, `tokenReused`,
   * `pendingConnectionsFull`, `challengeTokenInvalid`, `notRunning`,
   * `receiveQueueFull`, `connectionRequestsShed`).
   */
  readonly dropped: Record<string, number>;
}

/** Options of {@linkcode createServer}. */
export interface ServerOptions {
  /**
   * The address or addresses clients connect to, as written (internal
   * addresses) in their connect tokens: `"127.0.0.1:40000"`, or an IPv4 and
   * an IPv6 address for a dual-stack server. Without `socket`, the server
   * binds UDP sockets on them.
   * @default {the socket's address}
   */
  address?: string | Address | readonly (string | Address)[];
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
   * Connection requests processed per update. Each costs an XChaCha20
   * decryption of the 1 KB private token, the only expensive thing an
   * unauthenticated sender can ask for; requests past this budget are dropped
   * unread and counted in `stats.dropped.connectionRequestsShed`, so a flood
   * of requests costs at most this many decryptions a tick.
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
}

/** A running netcode server. Create it with {@linkcode createServer}. */
export interface Server {
  /** The first address the server is reached at (port resolved). */
  readonly address: Address;
  /** Every address the server is reached at. */
  readonly addresses: readonly Address[];
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
  /** Sends a payload of 1..1200 bytes to a connected client. */
  send(clientIndex: number, payload: Uint8Array): void;
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
  /** Disconnects a client, sending it 10 disconnect packets. */
  disconnect(clientIndex: number): void;
  /** Disconnects every client. */
  disconnectAll(): void;
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
  /** The 256 bytes of user data from the client's token. */
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
  /** Stops the server and closes its socket. */
  close(): void;
  /** Same as {@linkcode Server.close}. */
  [Symbol.dispose](): void;
}

interface PendingConnection {
  readonly address: Address;
  sendKey: Uint8Array;
  receiveKey: Uint8Array;
  timeoutSeconds: number;
  expireTime: number;
  lastAccessTime: number;
}

interface TokenUse {
  readonly addressKey: string;
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

function pendingExpired(pending: PendingConnection, time: number): boolean {
  return (pending.timeoutSeconds > 0 &&
    pending.lastAccessTime + pending.timeoutSeconds < time) ||
    pending.expireTime < time;
}

function macKey(encryptedPrivateToken: Uint8Array): string {
  let key = "";
  const start = CONNECT_TOKEN_PRIVATE_BYTES - MAC_BYTES;
  for (let i = start; i < CONNECT_TOKEN_PRIVATE_BYTES; i++) {
    key += String.fromCharCode(encryptedPrivateToken[i]);
  }
  return key;
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
  // Every option is checked: only now may sockets be bound.
  let socket: DatagramSocket;
  let addresses: Address[];
  if (options.socket !== undefined) {
    socket = options.socket;
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
    const sockets: DatagramSocket[] = [];
    try {
      for (const address of configured) sockets.push(listenUdp(address));
    } catch (error) {
      for (const opened of sockets) opened.close();
      throw error;
    }
    socket = sockets.length === 1 ? sockets[0] : createMultiSocket(sockets);
    addresses = configured.map((address, i) => ({
      hostname: address.hostname,
      port: sockets[i].address.port,
    }));
  }
  if (options.webTransport !== undefined) {
    socket = createMultiSocket([socket, options.webTransport]);
    addresses = [...addresses, options.webTransport.address];
  }
  const unixTime = options.unixTime ?? (() => Date.now() / 1000);
  let requestsThisUpdate = 0;
  const { onConnect, onDisconnect, sendLoopbackPacket } = options;

  const stats: ServerStats = {
    received: createPacketTypeCounters(),
    sent: createPacketTypeCounters(),
    dropped: Object.fromEntries(
      [
        ...PACKET_DROP_REASON_NAMES,
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
      ].map((name) => [name, 0]),
    ),
  };
  const dropped = stats.dropped;
  const received = stats.received as Record<string, number>;
  const sent = stats.sent as Record<string, number>;

  let running = false;
  let closed = false;
  let maxClients = 0;
  let numConnectedClients = 0;
  let time = 0;
  let globalSequence = GLOBAL_SEQUENCE_START;
  let challengeSequence = 0;
  let challengeKey = generateKey();

  // Per-slot state, struct-of-arrays style.
  let connected = new Uint8Array(0);
  let confirmed = new Uint8Array(0);
  let loopback = new Uint8Array(0);
  let sequence = new Float64Array(0);
  let lastSendTime = new Float64Array(0);
  let lastReceiveTime = new Float64Array(0);
  let timeoutSeconds = new Int32Array(0);
  let clientIds: bigint[] = [];
  let clientAddresses: (Address | undefined)[] = [];
  let clientAddressKeys: string[] = [];
  let clientAddressObjects: (Address | undefined)[] = [];
  let sendKeys: (Uint8Array | undefined)[] = [];
  let receiveKeys: (Uint8Array | undefined)[] = [];
  let userData: (Uint8Array | undefined)[] = [];
  let replay: ReplayProtection[] = [];
  let payloadQueues: PayloadQueue[] = [];

  const clientByAddress = new Map<string, number>();
  // Connected clients by the Address object their datagrams arrive with:
  // sockets that hand out one object per peer (the FFI transport, the
  // simulator) are matched without building a string per packet.
  const clientByAddressObject = new Map<Address, number>();
  const clientById = new Map<bigint, number>();
  const pending = new Map<string, PendingConnection>();
  const tokenHistory = new Map<string, TokenUse>();
  let maxPending = 0;
  let maxTokenHistory = 0;
  let lastPendingSweep = 0;

  const packetBuffer = new Uint8Array(MAX_PACKET_BYTES);
  // Views of packetBuffer by length, made once: a datagram sent is a view.
  const packetViews: (Uint8Array | undefined)[] = new Array(
    MAX_PACKET_BYTES + 1,
  ).fill(undefined);
  // Payloads decrypt here, then are copied into their client's queue.
  const payloadBuffer = new Uint8Array(MAX_PAYLOAD_BYTES);
  const connectedAllowed = packetTypeMask(
    CONNECTION_KEEP_ALIVE_PACKET,
    CONNECTION_PAYLOAD_PACKET,
    CONNECTION_DISCONNECT_PACKET,
  );
  const unconnectedAllowed = packetTypeMask(
    CONNECTION_REQUEST_PACKET,
    CONNECTION_RESPONSE_PACKET,
  );
  const readOptions: ReadPacketOptions = {
    protocolId,
    allowedPackets: 0,
    readKey: undefined,
    privateKey,
    currentTimestamp: 0,
    replayProtection: undefined,
    payloadBuffer,
  };

  function start(newMaxClients?: number): void {
    if (closed) throw new Error("Cannot start server: it is closed");
    const slots = checkMaxClients(newMaxClients ?? initialMaxClients);
    if (running) stop();
    running = true;
    maxClients = slots;
    numConnectedClients = 0;
    challengeSequence = 0;
    challengeKey = generateKey();
    // Reseeded at every start, not only at create (erratum 3).
    globalSequence = GLOBAL_SEQUENCE_START;
    connected = new Uint8Array(slots);
    confirmed = new Uint8Array(slots);
    loopback = new Uint8Array(slots);
    sequence = new Float64Array(slots);
    lastSendTime = new Float64Array(slots);
    lastReceiveTime = new Float64Array(slots);
    timeoutSeconds = new Int32Array(slots);
    clientIds = new Array(slots).fill(0n);
    clientAddresses = new Array(slots).fill(undefined);
    clientAddressKeys = new Array(slots).fill("");
    clientAddressObjects = new Array(slots).fill(undefined);
    sendKeys = new Array(slots).fill(undefined);
    receiveKeys = new Array(slots).fill(undefined);
    userData = new Array(slots).fill(undefined);
    replay = Array.from({ length: slots }, createReplayProtection);
    payloadQueues = Array.from({ length: slots }, createPayloadQueue);
    maxPending = slots * 4;
    maxTokenHistory = slots * 8;
  }

  function stop(): void {
    if (!running) return;
    disconnectAll();
    for (let i = 0; i < maxClients; i++) {
      if (connected[i] && loopback[i]) disconnectLoopbackClient(i);
    }
    running = false;
    maxClients = 0;
    numConnectedClients = 0;
    challengeSequence = 0;
    clientByAddress.clear();
    clientByAddressObject.clear();
    clientById.clear();
    pending.clear();
    tokenHistory.clear();
  }

  function transmit(bytes: number, to: Address, type: number): void {
    socket.send(
      packetViews[bytes] ??= packetBuffer.subarray(0, bytes),
      to,
    );
    sent[PACKET_TYPE_NAMES[type]]++;
  }

  function sendGlobalPacket(
    packet: EncryptedPacket,
    to: Address,
    key: Uint8Array,
  ): void {
    const bytes = writePacket(
      packetBuffer,
      packet,
      globalSequence,
      key,
      protocolId,
    );
    globalSequence++;
    transmit(bytes, to, packet.type);
  }

  function sendClientPacket(
    clientIndex: number,
    packet: EncryptedPacket,
  ): void {
    const key = sendKeys[clientIndex]!;
    const bytes = packet.type === CONNECTION_PAYLOAD_PACKET
      ? writePayloadPacket(
        packetBuffer,
        sequence[clientIndex],
        key,
        protocolId,
        packet.payload,
      )
      : writePacket(
        packetBuffer,
        packet,
        sequence[clientIndex],
        key,
        protocolId,
      );
    sequence[clientIndex]++;
    lastSendTime[clientIndex] = time;
    transmit(bytes, clientAddresses[clientIndex]!, packet.type);
  }

  function sendKeepAlive(clientIndex: number): void {
    sendClientPacket(clientIndex, {
      type: CONNECTION_KEEP_ALIVE_PACKET,
      clientIndex,
      maxClients,
    });
  }

  function resetSlot(clientIndex: number): void {
    if (!loopback[clientIndex]) {
      clientByAddress.delete(clientAddressKeys[clientIndex]);
      const object = clientAddressObjects[clientIndex];
      if (
        object !== undefined &&
        clientByAddressObject.get(object) === clientIndex
      ) {
        clientByAddressObject.delete(object);
      }
      clientAddressObjects[clientIndex] = undefined;
    }
    if (clientById.get(clientIds[clientIndex]) === clientIndex) {
      clientById.delete(clientIds[clientIndex]);
    }
    clearPayloadQueue(payloadQueues[clientIndex]);
    connected[clientIndex] = 0;
    loopback[clientIndex] = 0;
    confirmed[clientIndex] = 0;
    clientIds[clientIndex] = 0n;
    sequence[clientIndex] = 0;
    lastSendTime[clientIndex] = 0;
    lastReceiveTime[clientIndex] = 0;
    timeoutSeconds[clientIndex] = 0;
    clientAddresses[clientIndex] = undefined;
    clientAddressKeys[clientIndex] = "";
    sendKeys[clientIndex] = undefined;
    receiveKeys[clientIndex] = undefined;
    userData[clientIndex] = undefined;
    resetReplayProtection(replay[clientIndex]);
    numConnectedClients--;
  }

  function disconnectClient(
    clientIndex: number,
    sendDisconnectPackets: boolean,
    reason: DisconnectReason,
  ): void {
    // The callback sees the slot as it was; whatever it throws, the client
    // is still told and the slot freed, and the error reaches the caller.
    try {
      onDisconnect?.(clientIndex, reason);
    } finally {
      if (sendDisconnectPackets) {
        for (let i = 0; i < NUM_DISCONNECT_PACKETS; i++) {
          sendClientPacket(clientIndex, { type: CONNECTION_DISCONNECT_PACKET });
        }
      }
      resetSlot(clientIndex);
    }
  }

  function checkIndex(clientIndex: number, what: string): void {
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

  /** Queues a copy of the payload for `receive`. */
  function queuePayload(clientIndex: number, payload: Uint8Array): void {
    if (!pushPayload(payloadQueues[clientIndex], payload)) {
      dropped.receiveQueueFull++;
    }
  }

  function sweepPending(): void {
    for (const [key, entry] of pending) {
      if (pendingExpired(entry, time)) pending.delete(key);
    }
  }

  function processConnectionRequest(
    from: Address,
    fromKey: string,
    privateTokenBytes: Uint8Array,
    encryptedPrivateToken: Uint8Array,
  ): void {
    const token = readPrivateConnectToken(privateTokenBytes);
    if (!token) {
      dropped.invalidToken++;
      return;
    }
    let found = false;
    for (const tokenAddress of token.serverAddresses) {
      for (const own of addresses) {
        if (addressEqual(own, tokenAddress)) found = true;
      }
    }
    if (!found) {
      dropped.serverAddressNotInToken++;
      return;
    }
    if (clientByAddress.has(fromKey)) {
      dropped.addressConnected++;
      return;
    }
    if (clientById.has(token.clientId)) {
      dropped.clientIdConnected++;
      return;
    }
    // Token history: a token's MAC is accepted again only from the address
    // that first used it. The oldest entry makes room (Map keeps insertion order).
    const mac = macKey(encryptedPrivateToken);
    const use = tokenHistory.get(mac);
    if (use === undefined) {
      if (tokenHistory.size >= maxTokenHistory) {
        tokenHistory.delete(tokenHistory.keys().next().value!);
      }
      tokenHistory.set(mac, { addressKey: fromKey });
    } else if (use.addressKey !== fromKey) {
      dropped.tokenReused++;
      return;
    }
    if (numConnectedClients === maxClients) {
      sendGlobalPacket(
        { type: CONNECTION_DENIED_PACKET },
        from,
        token.serverToClientKey,
      );
      // The client gives up on denied: a challenge answered earlier must not
      // connect it later (see processConnectionResponse).
      pending.delete(fromKey);
      return;
    }
    const expireTime = time +
      (token.timeoutSeconds > 0
        ? token.timeoutSeconds
        : PENDING_CONNECTION_SECONDS);
    const existing = pending.get(fromKey);
    if (existing !== undefined && !pendingExpired(existing, time)) {
      existing.sendKey = token.serverToClientKey;
      existing.receiveKey = token.clientToServerKey;
      existing.timeoutSeconds = token.timeoutSeconds;
      existing.expireTime = expireTime;
      existing.lastAccessTime = time;
    } else {
      if (existing !== undefined) pending.delete(fromKey);
      if (pending.size >= maxPending) sweepPending();
      if (pending.size >= maxPending) {
        dropped.pendingConnectionsFull++;
        return;
      }
      pending.set(fromKey, {
        address: from,
        sendKey: token.serverToClientKey,
        receiveKey: token.clientToServerKey,
        timeoutSeconds: token.timeoutSeconds,
        expireTime,
        lastAccessTime: time,
      });
    }
    const challengeToken = writeChallengeToken({
      clientId: token.clientId,
      userData: token.userData,
    });
    encryptChallengeToken(challengeToken, challengeSequence, challengeKey);
    const packetSequence = BigInt(challengeSequence);
    challengeSequence++;
    sendGlobalPacket(
      {
        type: CONNECTION_CHALLENGE_PACKET,
        challengeTokenSequence: packetSequence,
        challengeTokenData: challengeToken,
      },
      from,
      token.serverToClientKey,
    );
  }

  function processConnectionResponse(
    from: Address,
    fromKey: string,
    entry: PendingConnection,
    challengeTokenSequence: bigint,
    challengeTokenData: Uint8Array,
  ): void {
    if (
      !decryptChallengeToken(
        challengeTokenData,
        challengeTokenSequence,
        challengeKey,
      )
    ) {
      dropped.challengeTokenInvalid++;
      return;
    }
    const challengeToken = readChallengeToken(challengeTokenData)!;
    if (clientByAddress.has(fromKey)) {
      dropped.addressConnected++;
      return;
    }
    if (clientById.has(challengeToken.clientId)) {
      dropped.clientIdConnected++;
      return;
    }
    if (numConnectedClients === maxClients) {
      sendGlobalPacket(
        { type: CONNECTION_DENIED_PACKET },
        from,
        entry.sendKey,
      );
      // Unlike the reference, forget the pending connection: the denied
      // client gives up, and a late copy of its response must not take a
      // slot that frees up later and hold it until the timeout.
      pending.delete(fromKey);
      return;
    }
    let clientIndex = 0;
    while (connected[clientIndex]) clientIndex++;
    pending.delete(fromKey);
    numConnectedClients++;
    connected[clientIndex] = 1;
    confirmed[clientIndex] = 0;
    loopback[clientIndex] = 0;
    timeoutSeconds[clientIndex] = entry.timeoutSeconds;
    clientIds[clientIndex] = challengeToken.clientId;
    // A copy: `from` may be an object its socket reuses for other peers.
    clientAddresses[clientIndex] = { hostname: from.hostname, port: from.port };
    clientAddressKeys[clientIndex] = fromKey;
    sendKeys[clientIndex] = entry.sendKey;
    receiveKeys[clientIndex] = entry.receiveKey;
    userData[clientIndex] = challengeToken.userData;
    sequence[clientIndex] = 0;
    lastSendTime[clientIndex] = time;
    lastReceiveTime[clientIndex] = time;
    resetReplayProtection(replay[clientIndex]);
    clientByAddress.set(fromKey, clientIndex);
    clientByAddressObject.set(from, clientIndex);
    clientAddressObjects[clientIndex] = from;
    clientById.set(challengeToken.clientId, clientIndex);
    sendKeepAlive(clientIndex);
    onConnect?.(clientIndex);
  }

  function processDatagram(data: Uint8Array, from: Address): void {
    let clientIndex = clientByAddressObject.get(from);
    let fromKey: string;
    if (
      clientIndex !== undefined &&
      from.port === clientAddresses[clientIndex]!.port &&
      from.hostname === clientAddresses[clientIndex]!.hostname
    ) {
      fromKey = clientAddressKeys[clientIndex];
    } else {
      fromKey = addressKey(from);
      clientIndex = clientByAddress.get(fromKey);
    }
    let entry: PendingConnection | undefined;
    if (clientIndex !== undefined) {
      readOptions.allowedPackets = connectedAllowed;
      readOptions.readKey = receiveKeys[clientIndex];
      readOptions.replayProtection = replay[clientIndex];
    } else {
      if (data[0] === CONNECTION_REQUEST_PACKET) {
        if (requestsThisUpdate >= maxRequestsPerUpdate) {
          dropped.connectionRequestsShed++;
          return;
        }
        requestsThisUpdate++;
      }
      entry = pending.get(fromKey);
      if (entry !== undefined && pendingExpired(entry, time)) {
        pending.delete(fromKey);
        entry = undefined;
      }
      readOptions.allowedPackets = unconnectedAllowed;
      readOptions.readKey = entry?.receiveKey;
      readOptions.replayProtection = undefined;
    }
    const packet = readPacket(data, readOptions);
    if (typeof packet === "number") {
      dropped[PACKET_DROP_REASON_NAMES[packet]]++;
      return;
    }
    received[PACKET_TYPE_NAMES[packet.type]]++;
    switch (packet.type) {
      case CONNECTION_REQUEST_PACKET:
        processConnectionRequest(
          from,
          fromKey,
          packet.privateToken!,
          packet.encryptedPrivateToken,
        );
        return;
      case CONNECTION_RESPONSE_PACKET:
        entry!.lastAccessTime = time;
        processConnectionResponse(
          from,
          fromKey,
          entry!,
          packet.challengeTokenSequence,
          packet.challengeTokenData,
        );
        return;
      case CONNECTION_KEEP_ALIVE_PACKET:
        lastReceiveTime[clientIndex!] = time;
        confirmed[clientIndex!] = 1;
        return;
      case CONNECTION_PAYLOAD_PACKET:
        lastReceiveTime[clientIndex!] = time;
        confirmed[clientIndex!] = 1;
        queuePayload(clientIndex!, packet.payload);
        return;
      case CONNECTION_DISCONNECT_PACKET:
        disconnectClient(clientIndex!, false, "clientDisconnected");
        return;
    }
  }

  function update(now: number): void {
    if (closed) throw new Error("Cannot update server: it is closed");
    if (typeof now !== "number" || Number.isNaN(now)) {
      throw new TypeError(`Cannot update server: time ${now} is not a number`);
    }
    time = now;
    // Receive.
    readOptions.currentTimestamp = unixTime();
    requestsThisUpdate = 0;
    for (let datagram = socket.poll(); datagram; datagram = socket.poll()) {
      if (!running) {
        dropped.notRunning++;
        continue;
      }
      processDatagram(datagram.data, datagram.from);
    }
    if (!running) return;
    // Keep-alives to clients sent nothing else for 1/10 s.
    const interval = 1 / PACKET_SEND_RATE;
    for (let i = 0; i < maxClients; i++) {
      if (connected[i] && !loopback[i] && lastSendTime[i] + interval <= time) {
        sendKeepAlive(i);
      }
    }
    // Timeouts.
    for (let i = 0; i < maxClients; i++) {
      if (
        connected[i] && !loopback[i] && timeoutSeconds[i] > 0 &&
        lastReceiveTime[i] + timeoutSeconds[i] <= time
      ) {
        disconnectClient(i, false, "timedOut");
      }
    }
    // Forget pending connections that expired, once a second.
    if (time - lastPendingSweep >= 1) {
      lastPendingSweep = time;
      sweepPending();
    }
  }

  function send(clientIndex: number, payload: Uint8Array): void {
    if (!(payload instanceof Uint8Array)) {
      throw new TypeError("Cannot send payload: expected a Uint8Array");
    }
    if (payload.length < 1 || payload.length > MAX_PAYLOAD_BYTES) {
      throw new RangeError(
        `Cannot send payload: ${payload.length} bytes is outside the 1..${MAX_PAYLOAD_BYTES} byte limit`,
      );
    }
    if (!running) return;
    checkIndex(clientIndex, "send payload");
    if (!connected[clientIndex]) return;
    if (loopback[clientIndex]) {
      const loopbackSequence = sequence[clientIndex]++;
      lastSendTime[clientIndex] = time;
      sendLoopbackPacket?.(clientIndex, payload, loopbackSequence);
      return;
    }
    if (!confirmed[clientIndex]) sendKeepAlive(clientIndex);
    sendClientPacket(clientIndex, { type: CONNECTION_PAYLOAD_PACKET, payload });
  }

  function receive(clientIndex: number): Uint8Array | undefined {
    if (!running) return undefined;
    checkIndex(clientIndex, "receive payload");
    return shiftPayload(payloadQueues[clientIndex]);
  }

  function receiveInto(clientIndex: number, buffer: Uint8Array): number {
    checkReceiveBuffer(buffer);
    if (!running) return 0;
    checkIndex(clientIndex, "receive payload");
    return shiftPayloadInto(payloadQueues[clientIndex], buffer);
  }

  function disconnect(clientIndex: number): void {
    if (!running) return;
    checkIndex(clientIndex, "disconnect client");
    if (!connected[clientIndex] || loopback[clientIndex]) return;
    disconnectClient(clientIndex, true, "serverDisconnected");
  }

  function disconnectAll(): void {
    if (!running) return;
    for (let i = 0; i < maxClients; i++) {
      if (connected[i] && !loopback[i]) {
        disconnectClient(i, true, "serverDisconnected");
      }
    }
  }

  function slot<T>(clientIndex: number, what: string, value: () => T): T {
    checkIndex(clientIndex, what);
    return value();
  }

  function connectLoopbackClient(
    clientIndex: number,
    clientId: bigint,
    loopbackUserData?: Uint8Array,
  ): void {
    if (!running) {
      throw new Error("Cannot connect loopback client: server is not running");
    }
    checkIndex(clientIndex, "connect loopback client");
    if (typeof clientId !== "bigint") {
      throw new TypeError(
        "Cannot connect loopback client: client id must be a bigint",
      );
    }
    if (connected[clientIndex]) {
      throw new RangeError(
        `Cannot connect loopback client: slot ${clientIndex} is taken`,
      );
    }
    if (clientById.has(clientId)) {
      throw new RangeError(
        `Cannot connect loopback client: client id ${clientId} is connected`,
      );
    }
    const data = new Uint8Array(USER_DATA_BYTES);
    if (loopbackUserData !== undefined) {
      if (
        !(loopbackUserData instanceof Uint8Array) ||
        loopbackUserData.length > USER_DATA_BYTES
      ) {
        throw new RangeError(
          `Cannot connect loopback client: user data must be a Uint8Array of at most ${USER_DATA_BYTES} bytes`,
        );
      }
      data.set(loopbackUserData);
    }
    numConnectedClients++;
    connected[clientIndex] = 1;
    loopback[clientIndex] = 1;
    confirmed[clientIndex] = 1;
    clientIds[clientIndex] = clientId;
    clientById.set(clientId, clientIndex);
    sequence[clientIndex] = 0;
    lastSendTime[clientIndex] = time;
    lastReceiveTime[clientIndex] = time;
    userData[clientIndex] = data;
    onConnect?.(clientIndex);
  }

  function disconnectLoopbackClient(clientIndex: number): void {
    if (!running) return;
    checkIndex(clientIndex, "disconnect loopback client");
    if (!connected[clientIndex] || !loopback[clientIndex]) return;
    try {
      onDisconnect?.(clientIndex, "serverDisconnected");
    } finally {
      resetSlot(clientIndex);
    }
  }

  function processLoopbackPacket(
    clientIndex: number,
    payload: Uint8Array,
    _sequence: number,
  ): void {
    if (
      !(payload instanceof Uint8Array) || payload.length < 1 ||
      payload.length > MAX_PAYLOAD_BYTES
    ) {
      throw new RangeError(
        `Cannot process loopback packet: payload must be 1..${MAX_PAYLOAD_BYTES} bytes`,
      );
    }
    if (!running) return;
    checkIndex(clientIndex, "process loopback packet");
    if (!connected[clientIndex] || !loopback[clientIndex]) return;
    lastReceiveTime[clientIndex] = time;
    queuePayload(clientIndex, payload);
  }

  function close(): void {
    if (closed) return;
    stop();
    closed = true;
    socket.close();
  }

  start(initialMaxClients);

  return {
    get address() {
      return addresses[0];
    },
    addresses,
    get running() {
      return running;
    },
    get maxClients() {
      return maxClients;
    },
    get numConnectedClients() {
      return numConnectedClients;
    },
    get time() {
      return time;
    },
    get numPendingConnections() {
      return pending.size;
    },
    get numTokenHistoryEntries() {
      return tokenHistory.size;
    },
    stats,
    start,
    stop,
    update,
    send,
    receive,
    receiveInto,
    disconnect,
    disconnectAll,
    clientConnected: (i) =>
      running && slot(i, "query client", () => connected[i] === 1),
    clientConfirmed: (i) =>
      running && slot(i, "query client", () => confirmed[i] === 1),
    clientLoopback: (i) =>
      running && slot(i, "query client", () => loopback[i] === 1),
    clientId: (i) =>
      running && slot(i, "query client", () => connected[i] === 1)
        ? clientIds[i]
        : undefined,
    clientAddress: (i) =>
      running && slot(i, "query client", () => connected[i] === 1)
        ? clientAddresses[i]
        : undefined,
    clientUserData: (i) =>
      running && slot(i, "query client", () => connected[i] === 1)
        ? userData[i]
        : undefined,
    nextPacketSequence: (i) =>
      running ? slot(i, "query client", () => sequence[i]) : 0,
    connectLoopbackClient,
    disconnectLoopbackClient,
    processLoopbackPacket,
    close,
    [Symbol.dispose]: close,
  };
}
