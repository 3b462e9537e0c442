/**
 * The conformance prober's own view of the wire: it writes and reads
 * encrypted packets with either nonce order (so it can tell an
 * implementation that builds the nonce the wrong way round, and go on
 * talking to it), builds connect tokens with any field it needs to test
 * (an expired one, another protocol id, another version, a timeout of 0)
 * and reads connection requests field by field, saying what is wrong with
 * each.
 *
 * It shares only the AEAD primitives and the token layouts with the library
 * it tests; the packet framing, nonce and associated data are built here.
 *
 * @module
 */

import {
  type Address,
  addressEqual,
  formatAddress,
  isIpv6,
  parseAddress,
} from "../address.ts";
import {
  chachaDecrypt,
  chachaEncrypt,
  generateKey,
  MAC_BYTES,
  randomBytes,
  xchachaDecrypt,
  xchachaEncrypt,
} from "../crypto.ts";
import {
  CONNECT_TOKEN_NONCE_BYTES,
  CONNECT_TOKEN_PRIVATE_BYTES,
  CONNECTION_REQUEST_PACKET_BYTES,
  USER_DATA_BYTES,
  VERSION_INFO,
  VERSION_INFO_BYTES,
} from "../packet.ts";
import {
  readPrivateConnectToken,
  writeConnectToken,
  writePrivateConnectToken,
} from "../token.ts";

/** The first sequence of a server's challenge and denied packets: 2^63. */
export const GLOBAL_SEQUENCE_START: bigint = 1n << 63n;

/** Packet type numbers, by name. */
export const PacketType = {
  REQUEST: 0,
  DENIED: 1,
  CHALLENGE: 2,
  RESPONSE: 3,
  KEEP_ALIVE: 4,
  PAYLOAD: 5,
  DISCONNECT: 6,
} as const;

/** Names of the packet types, for messages. */
export const PACKET_NAMES: readonly string[] = [
  "connection request",
  "connection denied",
  "connection challenge",
  "connection response",
  "keep-alive",
  "payload",
  "disconnect",
];

/**
 * How the 12-byte nonce is built from a sequence: `"standard"` is four zero
 * bytes then the sequence as a u64 little-endian (the errata's form);
 * `"swapped"` is the sequence first, then the four zero bytes (the most
 * common interop bug).
 */
export type NonceOrder = "standard" | "swapped";

/** The version info of netcode 1.01, for requests a 1.02 server must ignore. */
export const VERSION_INFO_1_01: Uint8Array = new TextEncoder().encode(
  "NETCODE 1.01\0",
);

function nonceFor(sequence: bigint, order: NonceOrder): Uint8Array {
  const nonce = new Uint8Array(12);
  new DataView(nonce.buffer).setBigUint64(
    order === "standard" ? 4 : 0,
    sequence,
    true,
  );
  return nonce;
}

function packetAdditionalData(protocolId: bigint, prefix: number): Uint8Array {
  const data = new Uint8Array(VERSION_INFO_BYTES + 9);
  data.set(VERSION_INFO, 0);
  new DataView(data.buffer).setBigUint64(VERSION_INFO_BYTES, protocolId, true);
  data[VERSION_INFO_BYTES + 8] = prefix;
  return data;
}

/**
 * Bytes the sequence takes on the wire: the fewest that hold it (1..8).
 *
 * @param sequence The sequence.
 * @returns 1..8.
 */
export function sequenceByteCount(sequence: bigint): number {
  let bytes = 1;
  while (bytes < 8 && sequence >> BigInt(8 * bytes) !== 0n) bytes++;
  return bytes;
}

/**
 * Writes an encrypted packet (types 1..6).
 *
 * @param type The packet type.
 * @param sequence Its sequence.
 * @param body The per-packet plaintext (0 bytes for denied and disconnect).
 * @param key The sender's write key.
 * @param protocolId The game's protocol id.
 * @param order The nonce order.
 * @returns The datagram.
 */
export function sealPacket(
  type: number,
  sequence: bigint,
  body: Uint8Array,
  key: Uint8Array,
  protocolId: bigint,
  order: NonceOrder = "standard",
): Uint8Array {
  const sequenceBytes = sequenceByteCount(sequence);
  const out = new Uint8Array(1 + sequenceBytes + body.length + MAC_BYTES);
  out[0] = (sequenceBytes << 4) | type;
  for (let i = 0; i < sequenceBytes; i++) {
    out[1 + i] = Number((sequence >> BigInt(8 * i)) & 0xffn);
  }
  const ad = packetAdditionalData(protocolId, out[0]);
  chachaEncrypt(
    body,
    0,
    body.length,
    ad,
    ad.length,
    nonceFor(sequence, order),
    key,
    out,
    1 + sequenceBytes,
  );
  return out;
}

/** The plaintext header of an encrypted packet. */
export interface PacketHeader {
  /** The packet type (low 4 bits of the prefix byte). */
  readonly type: number;
  /** Sequence bytes (high 4 bits of the prefix byte). */
  readonly sequenceBytes: number;
  /** The sequence. */
  readonly sequence: bigint;
}

/**
 * Reads the plaintext header of an encrypted packet.
 *
 * @param data The datagram.
 * @returns The header, or `undefined` when it cannot be an encrypted packet.
 */
export function peekPacket(data: Uint8Array): PacketHeader | undefined {
  if (data.length < 1 + 1 + MAC_BYTES) return undefined;
  const type = data[0] & 0xf;
  const sequenceBytes = data[0] >> 4;
  if (type === 0 || type > 6 || sequenceBytes < 1 || sequenceBytes > 8) {
    return undefined;
  }
  if (data.length < 1 + sequenceBytes + MAC_BYTES) return undefined;
  let sequence = 0n;
  for (let i = sequenceBytes - 1; i >= 0; i--) {
    sequence = (sequence << 8n) | BigInt(data[1 + i]);
  }
  return { type, sequenceBytes, sequence };
}

/** An encrypted packet that decrypted. */
export interface OpenedPacket extends PacketHeader {
  /** The decrypted per-packet data. */
  readonly body: Uint8Array;
  /** The nonce order it decrypted with. */
  readonly order: NonceOrder;
}

/**
 * Decrypts an encrypted packet, trying the nonce orders given in turn.
 *
 * @param data The datagram.
 * @param key The sender's write key.
 * @param protocolId The game's protocol id.
 * @param orders The nonce orders to try, first one first.
 * @returns The packet, or `undefined` when it does not decrypt.
 */
export function openPacket(
  data: Uint8Array,
  key: Uint8Array,
  protocolId: bigint,
  orders: readonly NonceOrder[] = ["standard", "swapped"],
): OpenedPacket | undefined {
  const header = peekPacket(data);
  if (header === undefined) return undefined;
  const offset = 1 + header.sequenceBytes;
  const ad = packetAdditionalData(protocolId, data[0]);
  const body = new Uint8Array(data.length - offset - MAC_BYTES);
  for (const order of orders) {
    if (
      chachaDecrypt(
        data,
        offset,
        data.length - offset,
        ad,
        ad.length,
        nonceFor(header.sequence, order),
        key,
        body,
        0,
      )
    ) {
      return { ...header, body, order };
    }
  }
  return undefined;
}

/**
 * The body of a keep-alive packet.
 *
 * @param clientIndex The client's slot.
 * @param maxClients The server's slots.
 * @returns 8 bytes.
 */
export function keepAliveBody(
  clientIndex: number,
  maxClients: number,
): Uint8Array {
  const body = new Uint8Array(8);
  const view = new DataView(body.buffer);
  view.setUint32(0, clientIndex, true);
  view.setUint32(4, maxClients, true);
  return body;
}

/** A connect token made by the prober, with what it needs to use it. */
export interface ProbeToken {
  /** The 2048-byte public connect token. */
  readonly bytes: Uint8Array;
  /** The 1078-byte connection request a client sends for it. */
  readonly request: Uint8Array;
  /** The client id. */
  readonly clientId: bigint;
  /** Its timeout seconds. */
  readonly timeoutSeconds: number;
  /** Its expire timestamp (unix seconds). */
  readonly expireTimestamp: bigint;
  /** Key of packets from client to server. */
  readonly clientToServerKey: Uint8Array;
  /** Key of packets from server to client. */
  readonly serverToClientKey: Uint8Array;
}

/** What {@linkcode makeToken} writes. */
export interface TokenSpec {
  /** The servers, in the order tried. */
  readonly serverAddresses: readonly Address[];
  /** The client id. */
  readonly clientId: bigint;
  /** The protocol id. */
  readonly protocolId: bigint;
  /** The private key the private part is encrypted with. */
  readonly privateKey: Uint8Array;
  /** Timeout seconds: any 32-bit integer, 0 included. */
  readonly timeoutSeconds: number;
  /** Seconds from now until it expires (negative: already expired). */
  readonly expireSeconds: number;
  /** Unix seconds now. @default {Date.now() / 1000} */
  readonly now?: number;
  /**
   * The version info the private part is encrypted with and the request
   * carries. @default {NETCODE 1.02}
   */
  readonly versionInfo?: Uint8Array;
}

/**
 * A connect token with exactly the fields asked for, even ones the
 * library's generator refuses (a timeout of 0, an expired token, another
 * version), and the request a client sends for it.
 *
 * @param spec The fields.
 * @returns The token, its request and its keys.
 */
export function makeToken(spec: TokenSpec): ProbeToken {
  const versionInfo = spec.versionInfo ?? VERSION_INFO;
  const now = Math.floor(spec.now ?? Date.now() / 1000);
  const createTimestamp = BigInt(
    spec.expireSeconds < 0 ? now + spec.expireSeconds - 30 : now,
  );
  const expireTimestamp = BigInt(now + spec.expireSeconds);
  const clientToServerKey = generateKey();
  const serverToClientKey = generateKey();
  const nonce = randomBytes(new Uint8Array(CONNECT_TOKEN_NONCE_BYTES));
  const privateToken = writePrivateConnectToken({
    clientId: spec.clientId,
    timeoutSeconds: spec.timeoutSeconds,
    serverAddresses: spec.serverAddresses,
    clientToServerKey,
    serverToClientKey,
    userData: new Uint8Array(USER_DATA_BYTES),
  });
  const ad = tokenAdditionalData(versionInfo, spec.protocolId, expireTimestamp);
  xchachaEncrypt(
    privateToken,
    0,
    CONNECT_TOKEN_PRIVATE_BYTES - MAC_BYTES,
    ad,
    ad.length,
    nonce,
    spec.privateKey,
    privateToken,
    0,
  );
  const bytes = writeConnectToken({
    protocolId: spec.protocolId,
    createTimestamp,
    expireTimestamp,
    nonce,
    encryptedPrivateToken: privateToken,
    timeoutSeconds: spec.timeoutSeconds,
    serverAddresses: spec.serverAddresses,
    clientToServerKey,
    serverToClientKey,
  });
  const request = new Uint8Array(CONNECTION_REQUEST_PACKET_BYTES);
  const view = new DataView(request.buffer);
  request[0] = 0;
  request.set(versionInfo, 1);
  view.setBigUint64(1 + VERSION_INFO_BYTES, spec.protocolId, true);
  view.setBigUint64(1 + VERSION_INFO_BYTES + 8, expireTimestamp, true);
  request.set(nonce, 1 + VERSION_INFO_BYTES + 16);
  request.set(privateToken, 1 + VERSION_INFO_BYTES + 16 + nonce.length);
  return {
    bytes,
    request,
    clientId: spec.clientId,
    timeoutSeconds: spec.timeoutSeconds,
    expireTimestamp,
    clientToServerKey,
    serverToClientKey,
  };
}

function tokenAdditionalData(
  versionInfo: Uint8Array,
  protocolId: bigint,
  expireTimestamp: bigint,
): Uint8Array {
  const ad = new Uint8Array(VERSION_INFO_BYTES + 16);
  ad.set(versionInfo.subarray(0, VERSION_INFO_BYTES), 0);
  const view = new DataView(ad.buffer);
  view.setBigUint64(VERSION_INFO_BYTES, protocolId, true);
  view.setBigUint64(VERSION_INFO_BYTES + 8, expireTimestamp, true);
  return ad;
}

/** What a connection request says, read the way a server reads it. */
export interface ReadRequest {
  /** Datagram bytes. */
  readonly size: number;
  /** Whether the version info is `NETCODE 1.02\0`. */
  readonly versionOk: boolean;
  /** The protocol id it names. */
  readonly protocolId: bigint;
  /** Its expire timestamp. */
  readonly expireTimestamp: bigint;
  /** The 1024 encrypted private token bytes as sent. */
  readonly encryptedPrivateToken: Uint8Array;
  /** The private token, when it decrypted and parsed. */
  readonly token?: {
    readonly clientId: bigint;
    readonly timeoutSeconds: number;
    readonly serverAddresses: readonly Address[];
    readonly clientToServerKey: Uint8Array;
    readonly serverToClientKey: Uint8Array;
  };
  /** Everything wrong with it, in the order a server checks; empty when valid. */
  readonly problems: readonly string[];
}

/**
 * Reads a connection request in the server's order, collecting every
 * problem rather than stopping at the first, and decrypts its private token
 * when the fields allow.
 *
 * @param data The datagram (its first byte is 0).
 * @param protocolId The expected protocol id.
 * @param privateKey The private key the token should decrypt with.
 * @param nowUnix Unix seconds now.
 * @param serverAddress When given, the token must name it.
 * @returns What it says and what is wrong with it.
 */
export function readRequest(
  data: Uint8Array,
  protocolId: bigint,
  privateKey: Uint8Array,
  nowUnix: number,
  serverAddress?: Address,
): ReadRequest {
  const problems: string[] = [];
  if (data.length !== CONNECTION_REQUEST_PACKET_BYTES) {
    problems.push(
      `${data.length} bytes, not ${CONNECTION_REQUEST_PACKET_BYTES}`,
    );
  }
  const padded = new Uint8Array(CONNECTION_REQUEST_PACKET_BYTES);
  padded.set(data.subarray(0, CONNECTION_REQUEST_PACKET_BYTES));
  const view = new DataView(padded.buffer);
  const version = padded.subarray(1, 1 + VERSION_INFO_BYTES);
  const versionOk = version.every((byte, i) => byte === VERSION_INFO[i]);
  if (!versionOk) {
    problems.push(
      `version info ${
        JSON.stringify(new TextDecoder().decode(version))
      }, not "NETCODE 1.02\\0"`,
    );
  }
  const requestProtocolId = view.getBigUint64(1 + VERSION_INFO_BYTES, true);
  if (requestProtocolId !== protocolId) {
    problems.push(
      `protocol id 0x${requestProtocolId.toString(16)}, not 0x${
        protocolId.toString(16)
      }`,
    );
  }
  const expireTimestamp = view.getBigUint64(1 + VERSION_INFO_BYTES + 8, true);
  if (expireTimestamp <= BigInt(Math.floor(nowUnix))) {
    problems.push(
      `token expired at ${expireTimestamp}, now ${Math.floor(nowUnix)}`,
    );
  }
  const nonceOffset = 1 + VERSION_INFO_BYTES + 16;
  const tokenOffset = nonceOffset + CONNECT_TOKEN_NONCE_BYTES;
  const encryptedPrivateToken = padded.slice(tokenOffset);
  const plain = new Uint8Array(CONNECT_TOKEN_PRIVATE_BYTES);
  const ad = tokenAdditionalData(version, requestProtocolId, expireTimestamp);
  let token: ReadRequest["token"];
  if (
    xchachaDecrypt(
      padded,
      tokenOffset,
      CONNECT_TOKEN_PRIVATE_BYTES,
      ad,
      ad.length,
      padded.subarray(nonceOffset, tokenOffset),
      privateKey,
      plain,
      0,
    )
  ) {
    token = readPrivateConnectToken(plain);
    if (token === undefined) {
      problems.push("the private token does not parse (addresses?)");
    } else if (
      serverAddress !== undefined &&
      !token.serverAddresses.some((address) =>
        addressEqual(address, serverAddress)
      )
    ) {
      problems.push(
        `the private token names ${
          token.serverAddresses.map(formatAddress).join(", ")
        }, not ${formatAddress(serverAddress)}`,
      );
    }
  } else {
    problems.push("the private token does not decrypt with the private key");
  }
  return {
    size: data.length,
    versionOk,
    protocolId: requestProtocolId,
    expireTimestamp,
    encryptedPrivateToken,
    token,
    problems,
  };
}

/**
 * Where a socket binds to reach `target`: the wildcard of its family on a
 * free port.
 *
 * @param target The peer.
 * @returns `0.0.0.0:0` or `[::]:0`.
 */
export function bindAddressFor(target: Address): Address {
  return parseAddress(isIpv6(target) ? "[::]:0" : "0.0.0.0:0");
}

/**
 * A documentation-only address of the target's family that no server is
 * at (TEST-NET-1 or 2001:db8::/32), for a token naming another server.
 *
 * @param target The server probed.
 * @returns An address on the same port, on no real host.
 */
export function otherServerAddress(target: Address): Address {
  return parseAddress(
    isIpv6(target)
      ? `[2001:db8::7]:${target.port}`
      : `192.0.2.7:${target.port}`,
  );
}
