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
 * @example
 * ```ts ignore
 * import { createClient, ClientState } from "./client.ts";
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
 *   if (client.state <= ClientState.DISCONNECTED) clearInterval(timer);
 * }, 1000 / 60);
 * ```
 *
 * @module
 */

import { type Address, addressEqual, isIpv6 } from "./address.ts";
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
  type PacketTypeCounters,
  packetTypeMask,
  readPacket,
  type ReadPacketOptions,
  resetReplayProtection,
  writeConnectionRequestPacket,
  writePacket,
  writePayloadPacket,
} from "./packet.ts";
import {
  checkReceiveBuffer,
  clearPayloadQueue,
  createPayloadQueue,
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

/** The client's states; negative ones are errors it settled in. */
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
  [-6]: "connect token expired",
  [-5]: "invalid connect token",
  [-4]: "connection timed out",
  [-3]: "connection response timed out",
  [-2]: "connection request timed out",
  [-1]: "connection denied",
  0: "disconnected",
  1: "sending connection request",
  2: "sending connection response",
  3: "connected",
};

/**
 * The human name of a client state, as the reference prints it.
 *
 * @param state A client state.
 * @returns Its name, e.g. `"connection denied"`.
 *
 * @example
 * ```ts
 * import { ClientState, clientStateName } from "./client.ts";
 * console.log(clientStateName(ClientState.CONNECTED)); // connected
 * ```
 */
export function clientStateName(state: ClientState): string {
  return STATE_NAMES[state] ?? `unknown state ${state}`;
}

/** Counters kept by the client; read them, don't write them. */
export interface ClientStats {
  /** Valid packets received, by type. */
  readonly received: PacketTypeCounters;
  /** Packets sent, by type. */
  readonly sent: PacketTypeCounters;
  /**
   * Datagrams dropped, by reason: the packet reader's reasons, and
   * `wrongAddress` (not from the server being talked to), `wrongState`
   * (valid, but not expected now) and `receiveQueueFull`.
   */
  readonly dropped: Record<string, number>;
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
  /** Called from `update()` (or `connect()`/`disconnect()`) on every state change. @default {undefined} */
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
  /** The slot the server gave this client (valid when connected). */
  readonly clientIndex: number;
  /** The server's number of slots (valid when connected). */
  readonly maxClients: number;
  /** The server being connected to, or `undefined`. */
  readonly serverAddress: Address | undefined;
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
  /** Sends a payload of 1..1200 bytes; ignored unless connected. */
  send(payload: Uint8Array): void;
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
  /** Disconnects and closes the sockets. */
  close(): void;
  /** Same as {@linkcode Client.close}. */
  [Symbol.dispose](): void;
}

// A payload packet's bytes beyond its payload at most: prefix, 8 sequence
// bytes, MAC.
const PAYLOAD_OVERHEAD_BYTES = 25;

const REQUEST_ALLOWED = packetTypeMask(
  CONNECTION_DENIED_PACKET,
  CONNECTION_CHALLENGE_PACKET,
);
const RESPONSE_ALLOWED = packetTypeMask(
  CONNECTION_DENIED_PACKET,
  CONNECTION_KEEP_ALIVE_PACKET,
);
const CONNECTED_ALLOWED = packetTypeMask(
  CONNECTION_KEEP_ALIVE_PACKET,
  CONNECTION_PAYLOAD_PACKET,
  CONNECTION_DISCONNECT_PACKET,
);

/**
 * Creates a netcode client, disconnected. Call `connect(token)`, then
 * `update(now)` every tick.
 *
 * @param options Socket and callbacks.
 * @returns The client.
 *
 * @example
 * ```ts
 * import { createClient } from "./client.ts";
 * import { createNetworkSimulator } from "./simulator.ts";
 *
 * const network = createNetworkSimulator();
 * using client = createClient({ socket: network.createSocket("127.0.0.1:50000") });
 * console.log(client.stateName); // disconnected
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
  }
  const { onStateChange, sendLoopbackPacket } = options;
  const givenSocket = options.socket;
  let socketV4: DatagramSocket | undefined;
  let socketV6: DatagramSocket | undefined;

  const stats: ClientStats = {
    received: createPacketTypeCounters(),
    sent: createPacketTypeCounters(),
    dropped: Object.fromEntries(
      [
        ...PACKET_DROP_REASON_NAMES,
        "wrongAddress",
        "wrongState",
        "receiveQueueFull",
      ].map((name) => [name, 0]),
    ),
  };
  const dropped = stats.dropped;
  const received = stats.received as Record<string, number>;
  const sent = stats.sent as Record<string, number>;

  let state: ClientState = ClientState.DISCONNECTED;
  let closed = false;
  let time = 0;
  let token: ConnectToken | undefined;
  let serverIndex = 0;
  let serverAddress: Address | undefined;
  let sequence = 0;
  let clientIndex = 0;
  let maxClients = 0;
  let loopback = false;
  let connectStartTime = 0;
  let lastSendTime = -Infinity;
  let lastReceiveTime = 0;
  let shouldDisconnect = false;
  let shouldDisconnectState: ClientState = ClientState.DISCONNECTED;
  let challengeTokenSequence = 0n;
  let challengeTokenData: Uint8Array | undefined;
  const replay = createReplayProtection();
  const queue = createPayloadQueue();
  const packetBuffer = new Uint8Array(MAX_PACKET_BYTES);
  const readOptions: ReadPacketOptions = {
    protocolId: 0n,
    allowedPackets: 0,
    readKey: undefined,
    replayProtection: replay,
    // Payloads decrypt here, then are copied into the queue.
    payloadBuffer: new Uint8Array(MAX_PAYLOAD_BYTES),
  };

  function setState(next: ClientState): void {
    const previous = state;
    state = next;
    if (previous !== next) onStateChange?.(previous, next);
  }

  function socketFor(address: Address): DatagramSocket {
    if (givenSocket !== undefined) return givenSocket;
    if (isIpv6(address)) {
      socketV6 ??= listenUdp({ hostname: "::", port: 0 });
      return socketV6;
    }
    socketV4 ??= listenUdp({ hostname: "0.0.0.0", port: 0 });
    return socketV4;
  }

  function clearQueue(): void {
    clearPayloadQueue(queue);
  }

  function resetBeforeNextConnect(): void {
    connectStartTime = time;
    lastSendTime = -Infinity;
    lastReceiveTime = time;
    shouldDisconnect = false;
    shouldDisconnectState = ClientState.DISCONNECTED;
    challengeTokenSequence = 0n;
    challengeTokenData = undefined;
    resetReplayProtection(replay);
  }

  function resetConnectionData(next: ClientState): void {
    sequence = 0;
    loopback = false;
    clientIndex = 0;
    maxClients = 0;
    serverIndex = 0;
    serverAddress = undefined;
    token = undefined;
    readOptions.readKey = undefined;
    resetBeforeNextConnect();
    clearQueue();
    // Last: the callback may throw, and sees the client fully reset.
    setState(next);
  }

  function sendToServer(packet: EncryptedPacket): void {
    const bytes = packet.type === CONNECTION_PAYLOAD_PACKET
      ? writePayloadPacket(
        packetBuffer,
        sequence,
        token!.clientToServerKey,
        token!.protocolId,
        packet.payload,
      )
      : writePacket(
        packetBuffer,
        packet,
        sequence,
        token!.clientToServerKey,
        token!.protocolId,
      );
    sequence++;
    transmit(bytes, packet.type);
  }

  function transmit(bytes: number, type: number): void {
    socketFor(serverAddress!).send(
      packetBuffer.subarray(0, bytes),
      serverAddress!,
    );
    sent[PACKET_TYPE_NAMES[type]]++;
    lastSendTime = time;
  }

  function disconnectInternal(
    destination: ClientState,
    sendDisconnectPackets: boolean,
  ): void {
    if (state <= ClientState.DISCONNECTED || state === destination) return;
    if (!loopback && sendDisconnectPackets) {
      for (let i = 0; i < NUM_DISCONNECT_PACKETS; i++) {
        sendToServer({ type: CONNECTION_DISCONNECT_PACKET });
      }
    }
    resetConnectionData(destination);
  }

  function connectToNextServer(): boolean {
    if (
      token === undefined || serverIndex + 1 >= token.serverAddresses.length
    ) {
      return false;
    }
    serverIndex++;
    serverAddress = token.serverAddresses[serverIndex];
    resetBeforeNextConnect();
    setState(ClientState.SENDING_CONNECTION_REQUEST);
    return true;
  }

  function connect(connectToken: Uint8Array): void {
    if (closed) throw new Error("Cannot connect: client is closed");
    if (!(connectToken instanceof Uint8Array)) {
      throw new TypeError("Cannot connect: connect token must be a Uint8Array");
    }
    disconnect();
    const read = readConnectToken(connectToken);
    if (read === undefined) {
      setState(ClientState.INVALID_CONNECT_TOKEN);
      return;
    }
    token = read;
    serverIndex = 0;
    serverAddress = read.serverAddresses[0];
    readOptions.protocolId = read.protocolId;
    readOptions.readKey = read.serverToClientKey;
    resetBeforeNextConnect();
    setState(ClientState.SENDING_CONNECTION_REQUEST);
  }

  function processDatagram(data: Uint8Array, from: Address): void {
    if (serverAddress === undefined || !addressEqual(from, serverAddress)) {
      dropped.wrongAddress++;
      return;
    }
    readOptions.allowedPackets = state === ClientState.CONNECTED
      ? CONNECTED_ALLOWED
      : state === ClientState.SENDING_CONNECTION_RESPONSE
      ? RESPONSE_ALLOWED
      : state === ClientState.SENDING_CONNECTION_REQUEST
      ? REQUEST_ALLOWED
      : 0;
    const packet = readPacket(data, readOptions);
    if (typeof packet === "number") {
      dropped[PACKET_DROP_REASON_NAMES[packet]]++;
      return;
    }
    received[PACKET_TYPE_NAMES[packet.type]]++;
    switch (packet.type) {
      case CONNECTION_DENIED_PACKET:
        shouldDisconnect = true;
        shouldDisconnectState = ClientState.CONNECTION_DENIED;
        lastReceiveTime = time;
        return;
      case CONNECTION_CHALLENGE_PACKET:
        challengeTokenSequence = packet.challengeTokenSequence;
        challengeTokenData = packet.challengeTokenData;
        lastReceiveTime = time;
        // Answer at once rather than at the next 10 Hz send slot.
        lastSendTime = -Infinity;
        setState(ClientState.SENDING_CONNECTION_RESPONSE);
        return;
      case CONNECTION_KEEP_ALIVE_PACKET:
        lastReceiveTime = time;
        if (state === ClientState.SENDING_CONNECTION_RESPONSE) {
          clientIndex = packet.clientIndex;
          maxClients = packet.maxClients;
          setState(ClientState.CONNECTED);
        }
        return;
      case CONNECTION_PAYLOAD_PACKET:
        lastReceiveTime = time;
        if (!pushPayload(queue, packet.payload)) dropped.receiveQueueFull++;
        return;
      case CONNECTION_DISCONNECT_PACKET:
        shouldDisconnect = true;
        shouldDisconnectState = ClientState.DISCONNECTED;
        lastReceiveTime = time;
        return;
      default:
        dropped.wrongState++;
    }
  }

  function receivePackets(): void {
    const sockets = givenSocket !== undefined
      ? [givenSocket]
      : [socketV4, socketV6];
    for (const socket of sockets) {
      if (socket === undefined) continue;
      for (let datagram = socket.poll(); datagram; datagram = socket.poll()) {
        if (state <= ClientState.DISCONNECTED || loopback) {
          dropped.wrongState++;
          continue;
        }
        processDatagram(datagram.data, datagram.from);
      }
    }
  }

  function sendPackets(): void {
    if (lastSendTime + 1 / PACKET_SEND_RATE >= time) return;
    switch (state) {
      case ClientState.SENDING_CONNECTION_REQUEST: {
        const bytes = writeConnectionRequestPacket(packetBuffer, {
          type: CONNECTION_REQUEST_PACKET,
          protocolId: token!.protocolId,
          expireTimestamp: token!.expireTimestamp,
          nonce: token!.nonce,
          encryptedPrivateToken: token!.encryptedPrivateToken,
        });
        sequence++;
        transmit(bytes, CONNECTION_REQUEST_PACKET);
        return;
      }
      case ClientState.SENDING_CONNECTION_RESPONSE:
        sendToServer({
          type: CONNECTION_RESPONSE_PACKET,
          challengeTokenSequence,
          challengeTokenData: challengeTokenData!,
        });
        return;
      case ClientState.CONNECTED:
        sendToServer({
          type: CONNECTION_KEEP_ALIVE_PACKET,
          clientIndex: 0,
          maxClients: 0,
        });
        return;
    }
  }

  function update(now: number): void {
    if (closed) throw new Error("Cannot update client: it is closed");
    if (typeof now !== "number" || Number.isNaN(now)) {
      throw new TypeError(`Cannot update client: time ${now} is not a number`);
    }
    time = now;
    if (loopback) return;
    receivePackets();
    if (state > ClientState.DISCONNECTED && state < ClientState.CONNECTED) {
      const expireSeconds = Number(
        token!.expireTimestamp - token!.createTimestamp,
      );
      if (time - connectStartTime >= expireSeconds) {
        disconnectInternal(ClientState.CONNECT_TOKEN_EXPIRED, false);
        return;
      }
    }
    if (shouldDisconnect) {
      if (connectToNextServer()) {
        sendPackets();
        return;
      }
      disconnectInternal(shouldDisconnectState, false);
      return;
    }
    const timeout = token?.timeoutSeconds ?? 0;
    if (
      state > ClientState.DISCONNECTED && timeout > 0 &&
      lastReceiveTime + timeout < time
    ) {
      if (state === ClientState.CONNECTED) {
        disconnectInternal(ClientState.CONNECTION_TIMED_OUT, false);
        return;
      }
      if (connectToNextServer()) {
        sendPackets();
        return;
      }
      disconnectInternal(
        state === ClientState.SENDING_CONNECTION_REQUEST
          ? ClientState.CONNECTION_REQUEST_TIMED_OUT
          : ClientState.CONNECTION_RESPONSE_TIMED_OUT,
        false,
      );
      return;
    }
    sendPackets();
  }

  function send(payload: Uint8Array): void {
    if (!(payload instanceof Uint8Array)) {
      throw new TypeError("Cannot send payload: expected a Uint8Array");
    }
    if (payload.length < 1 || payload.length > MAX_PAYLOAD_BYTES) {
      throw new RangeError(
        `Cannot send payload: ${payload.length} bytes is outside the 1..${MAX_PAYLOAD_BYTES} byte limit`,
      );
    }
    if (state !== ClientState.CONNECTED) return;
    const limit = maxPayloadBytes();
    if (payload.length > limit) {
      throw new RangeError(
        `Cannot send payload: ${payload.length} bytes exceeds the ${limit} byte limit of this transport`,
      );
    }
    if (loopback) {
      sendLoopbackPacket?.(clientIndex, payload, sequence++);
      return;
    }
    sendToServer({ type: CONNECTION_PAYLOAD_PACKET, payload });
  }

  function maxPayloadBytes(): number {
    const datagramBytes = loopback || givenSocket === undefined
      ? undefined
      : givenSocket.maxDatagramBytes;
    return datagramBytes === undefined ? MAX_PAYLOAD_BYTES : Math.max(
      0,
      Math.min(MAX_PAYLOAD_BYTES, datagramBytes - PAYLOAD_OVERHEAD_BYTES),
    );
  }

  function receive(): Uint8Array | undefined {
    return shiftPayload(queue);
  }

  function receiveInto(buffer: Uint8Array): number {
    checkReceiveBuffer(buffer);
    return shiftPayloadInto(queue, buffer);
  }

  function disconnect(): void {
    disconnectInternal(ClientState.DISCONNECTED, true);
  }

  function connectLoopback(index: number, slots: number): void {
    if (closed) throw new Error("Cannot connect loopback: client is closed");
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
    disconnect();
    clientIndex = index;
    maxClients = slots;
    loopback = true;
    setState(ClientState.CONNECTED);
  }

  function disconnectLoopback(): void {
    if (!loopback) return;
    resetConnectionData(ClientState.DISCONNECTED);
  }

  function processLoopbackPacket(payload: Uint8Array, _sequence: number): void {
    if (
      !(payload instanceof Uint8Array) || payload.length < 1 ||
      payload.length > MAX_PAYLOAD_BYTES
    ) {
      throw new RangeError(
        `Cannot process loopback packet: payload must be 1..${MAX_PAYLOAD_BYTES} bytes`,
      );
    }
    if (!loopback) return;
    if (!pushPayload(queue, payload)) dropped.receiveQueueFull++;
  }

  function close(): void {
    if (closed) return;
    disconnect();
    closed = true;
    if (givenSocket !== undefined) givenSocket.close();
    socketV4?.close();
    socketV6?.close();
  }

  return {
    get state() {
      return state;
    },
    get stateName() {
      return clientStateName(state);
    },
    get clientIndex() {
      return clientIndex;
    },
    get maxClients() {
      return maxClients;
    },
    get maxPayloadBytes() {
      return maxPayloadBytes();
    },
    get serverAddress() {
      return serverAddress;
    },
    get loopback() {
      return loopback;
    },
    get time() {
      return time;
    },
    get nextPacketSequence() {
      return sequence;
    },
    stats,
    connect,
    update,
    send,
    receive,
    receiveInto,
    disconnect,
    connectLoopback,
    disconnectLoopback,
    processLoopbackPacket,
    close,
    [Symbol.dispose]: close,
  };
}
