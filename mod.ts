/**
 * netcode: connection-oriented, encrypted and signed UDP between game
 * clients and dedicated servers, wire-compatible with the netcode 1.02 C
 * reference implementation.
 *
 * Three parts work together:
 *
 * - A **web backend** authenticates players and calls
 *   {@linkcode generateConnectToken} with the servers' private key.
 * - **Dedicated servers** ({@linkcode createServer}) accept only clients
 *   holding a valid, unexpired token.
 * - **Clients** ({@linkcode createClient}) connect with the token and
 *   exchange payloads of up to 1200 bytes, and, with the `messages` option,
 *   reliable-ordered messages up to 64 KB and unreliable ones on numbered
 *   channels, with each connection's RTT, jitter and packet loss.
 *
 * Servers and clients never read a clock: call `update(now)` every tick with
 * monotonic seconds. They run over real UDP by default (`Deno.listenDatagram`,
 * which needs `--unstable-net` in Deno 2.9) or over any
 * {@linkcode DatagramSocket}, such as the seeded in-memory
 * {@linkcode createNetworkSimulator}.
 *
 * This entry point holds what a game uses. The rest is reachable through the
 * package's other entry points:
 *
 * - `@netcode/netcode/socket_webtransport` and `@netcode/netcode/certificate`:
 *   browser players over WebTransport, served beside UDP;
 *   `@netcode/netcode/browser`: the client side, for a browser bundle.
 * - `@netcode/netcode/socket_ffi` (`listenUdpFfi`, batched UDP through libc)
 *   and `@netcode/netcode/sodium_native` (`useNativeSodium`, the system's
 *   libsodium): faster transports and crypto, with `--allow-ffi`.
 * - `@netcode/netcode/channel` and `@netcode/netcode/reliable`: the message
 *   channels behind the `messages` option of the server and client, and the
 *   reliable 1.0 endpoint under them, to run over another transport.
 * - `@netcode/netcode/packet`, `/token`, `/crypto`, `/address`: the wire
 *   format (packet and token codecs, replay protection, the AEADs), for tools
 *   and other implementations.
 *
 * @example Connect a client and echo a payload, on the simulator
 * ```ts
 * import assert from "node:assert/strict";
 * import {
 *   ClientState,
 *   createClient,
 *   createNetworkSimulator,
 *   createServer,
 *   generateConnectToken,
 *   generateKey,
 * } from "./mod.ts";
 *
 * const protocolId = 0x1122334455667788n;
 * const privateKey = generateKey(); // shared by the backend and the servers
 * const network = createNetworkSimulator({ latencyMs: 20 });
 *
 * using server = createServer({
 *   address: "127.0.0.1:40000",
 *   protocolId,
 *   privateKey,
 *   socket: network.createSocket("127.0.0.1:40000"),
 * });
 * using client = createClient({ socket: network.createSocket("127.0.0.1:50000") });
 *
 * // The backend's job: a token for an authenticated player.
 * const token = generateConnectToken({
 *   serverAddresses: ["127.0.0.1:40000"],
 *   clientId: 42n,
 *   protocolId,
 *   privateKey,
 * });
 * client.connect(token);
 *
 * let echoed: Uint8Array | undefined;
 * for (let tick = 1; tick <= 120 && !echoed; tick++) {
 *   const now = tick / 60;
 *   network.update(now);
 *   client.update(now);
 *   server.update(now);
 *   if (client.state === ClientState.CONNECTED) client.send(new Uint8Array([1, 2, 3]));
 *   for (let i = 0; i < server.maxClients; i++) {
 *     for (let p = server.receive(i); p; p = server.receive(i)) server.send(i, p);
 *   }
 *   echoed = client.receive();
 * }
 * assert.equal(client.state, ClientState.CONNECTED);
 * assert.deepEqual(echoed, new Uint8Array([1, 2, 3]));
 * ```
 *
 * @module
 */

export { type Address, formatAddress, parseAddress } from "./address.ts";
export { generateKey, KEY_BYTES, keyFromHex } from "./crypto.ts";
export {
  CONNECT_TOKEN_BYTES,
  MAX_PACKET_BYTES,
  MAX_PAYLOAD_BYTES,
  type PacketTypeCounters,
  USER_DATA_BYTES,
} from "./packet.ts";
export {
  DEFAULT_CONNECT_TOKEN_EXPIRY_SECONDS,
  DEFAULT_TIMEOUT_SECONDS,
  generateConnectToken,
  type GenerateConnectTokenOptions,
  MAX_SERVERS_PER_CONNECT,
} from "./token.ts";
export {
  type Datagram,
  type DatagramSocket,
  listenUdp,
  type ListenUdpOptions,
  type UdpSocket,
  type UdpSocketStats,
} from "./socket.ts";
export {
  createNetworkSimulator,
  type NetworkSimulator,
  type NetworkSimulatorOptions,
  type NetworkSimulatorStats,
  type SimulatedSocket,
} from "./simulator.ts";
export {
  createServer,
  DEFAULT_MAX_CLIENTS,
  type DisconnectReason,
  MAX_CLIENTS_LIMIT,
  type Server,
  SERVER_DROP_REASONS,
  type ServerDropReason,
  type ServerOptions,
  type ServerStats,
} from "./server.ts";
export type {
  ChannelConfig,
  ChannelKind,
  ConnectionQuality,
  MessageConfig,
  MessageConnection,
  MessageCounters,
  ResolvedChannelConfig,
  ResolvedMessageConfig,
} from "./channel.ts";
export {
  type Client,
  CLIENT_DROP_REASONS,
  type ClientDropReason,
  type ClientOptions,
  ClientState,
  clientStateName,
  type ClientStats,
  createClient,
  isConnecting,
  isDisconnected,
  isError,
} from "./client.ts";
