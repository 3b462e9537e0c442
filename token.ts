/**
 * Connect tokens and challenge tokens.
 *
 * The web backend calls {@linkcode generateConnectToken} with the game
 * servers' private key and gives the 2048 bytes to an authenticated client.
 * The public part tells the client where to connect and with which keys; the
 * private part, encrypted with XChaCha20-Poly1305 under the private key, is
 * passed to the server in the connection request. Challenge tokens are the
 * server's own, encrypted with a key random per server start.
 *
 * @example Generate a token and read its public part
 * ```ts
 * import assert from "node:assert/strict";
 * import { generateKey } from "./crypto.ts";
 * import { generateConnectToken, readConnectToken } from "./token.ts";
 *
 * const privateKey = generateKey(); // shared by the backend and the servers
 * const bytes = generateConnectToken({
 *   serverAddresses: ["127.0.0.1:40000"],
 *   clientId: 42n,
 *   protocolId: 0x1122334455667788n,
 *   privateKey,
 * });
 * const token = readConnectToken(bytes);
 * assert.equal(bytes.length, 2048);
 * assert.deepEqual(token?.serverAddresses, [{ hostname: "127.0.0.1", port: 40000 }]);
 * ```
 *
 * @module
 */

import {
  type Address,
  addressBytes,
  formatAddress,
  parseAddress,
  readAddress,
  writeAddress,
} from "./address.ts";
import {
  chachaDecrypt,
  chachaEncrypt,
  checkKey,
  generateKey,
  KEY_BYTES,
  MAC_BYTES,
  randomBytes,
  xchachaDecrypt,
  xchachaEncrypt,
} from "./crypto.ts";
import {
  CHALLENGE_TOKEN_BYTES,
  CONNECT_TOKEN_BYTES,
  CONNECT_TOKEN_NONCE_BYTES,
  CONNECT_TOKEN_PRIVATE_BYTES,
  type Sequence,
  USER_DATA_BYTES,
  VERSION_INFO,
  VERSION_INFO_BYTES,
  writeSequenceNonce,
} from "./packet.ts";

/** Most server addresses one connect token may carry. */
export const MAX_SERVERS_PER_CONNECT = 32;
/** Default lifetime of a connect token, in seconds. */
export const DEFAULT_CONNECT_TOKEN_EXPIRY_SECONDS = 30;
/** Default connection timeout written into tokens, in seconds. */
export const DEFAULT_TIMEOUT_SECONDS = 5;
/** Expire timestamp of a token that never expires. */
export const NEVER_EXPIRES = 0xffffffffffffffffn;

/** The public connect token, as the client sees it. */
export interface ConnectToken {
  /** The game's protocol id. */
  readonly protocolId: bigint;
  /** Unix seconds when the token was made. */
  readonly createTimestamp: bigint;
  /** Unix seconds after which servers refuse it. */
  readonly expireTimestamp: bigint;
  /** The 24-byte nonce the private part was encrypted with. */
  readonly nonce: Uint8Array;
  /** The encrypted private connect token (1024 bytes). */
  readonly encryptedPrivateToken: Uint8Array;
  /** Seconds without packets before the connection times out; <= 0: never. */
  readonly timeoutSeconds: number;
  /** The servers to try, in order (1..32). */
  readonly serverAddresses: readonly Address[];
  /** Key for packets from client to server. */
  readonly clientToServerKey: Uint8Array;
  /** Key for packets from server to client. */
  readonly serverToClientKey: Uint8Array;
}

/** The private connect token, as the server sees it after decryption. */
export interface PrivateConnectToken {
  /** The client's id, chosen by the backend. */
  readonly clientId: bigint;
  /** Seconds without packets before the connection times out; <= 0: never. */
  readonly timeoutSeconds: number;
  /** The servers' internal addresses (1..32). */
  readonly serverAddresses: readonly Address[];
  /** Key for packets from client to server. */
  readonly clientToServerKey: Uint8Array;
  /** Key for packets from server to client. */
  readonly serverToClientKey: Uint8Array;
  /** 256 bytes of user data for the game server. */
  readonly userData: Uint8Array;
}

/** The challenge token: what the server needs to finish a connection. */
export interface ChallengeToken {
  /** The client's id. */
  readonly clientId: bigint;
  /** The 256 bytes of user data from the connect token. */
  readonly userData: Uint8Array;
}

/** Options of {@linkcode generateConnectToken}. */
export interface GenerateConnectTokenOptions {
  /**
   * The addresses clients connect to (`"1.2.3.4:40000"`, `"[::1]:40000"`),
   * in the order the client tries them, 1..32 of them.
   */
  serverAddresses: readonly (string | Address)[];
  /**
   * The addresses the servers see themselves at, written in the private
   * token and compared by the server with its own. They differ from
   * `serverAddresses` behind NAT or in containers; same length and order.
   * @default {serverAddresses}
   */
  internalServerAddresses?: readonly (string | Address)[];
  /** Seconds until the token expires; negative: never. @default {30} */
  expireSeconds?: number;
  /**
   * Seconds without packets before a connection times out; negative (-1)
   * disables the timeout. 0 is refused: the C reference server would expire
   * the pending connection at once. @default {5}
   */
  timeoutSeconds?: number;
  /** The client's id (unique per player), 0..2^64-1. */
  clientId: bigint;
  /** The game's protocol id, 0..2^64-1. */
  protocolId: bigint;
  /** The 32-byte private key shared by the backend and the game servers. */
  privateKey: Uint8Array;
  /** Up to 256 bytes for the game server, zero-padded. @default {256 zero bytes} */
  userData?: Uint8Array;
  /** Unix seconds to use as the create timestamp. @default {Math.floor(Date.now() / 1000)} */
  now?: number;
  /** The 24-byte nonce, for reproducible output. @default {random} */
  nonce?: Uint8Array;
  /** The client-to-server key, for reproducible output. @default {random} */
  clientToServerKey?: Uint8Array;
  /** The server-to-client key, for reproducible output. @default {random} */
  serverToClientKey?: Uint8Array;
}

function toAddresses(
  list: readonly (string | Address)[],
  what: string,
): Address[] {
  if (!Array.isArray(list)) {
    throw new TypeError(
      `Cannot generate connect token: ${what} is not an array`,
    );
  }
  if (list.length < 1 || list.length > MAX_SERVERS_PER_CONNECT) {
    throw new RangeError(
      `Cannot generate connect token: ${list.length} ${what}, expected 1..${MAX_SERVERS_PER_CONNECT}`,
    );
  }
  return list.map((entry, index) => {
    const address = toAddress(entry, index);
    if (address.port === 0) {
      throw new RangeError(
        `Cannot generate connect token: ${what.slice(0, -2)} ${index} (${
          formatAddress(address)
        }) has no port; a client cannot reach port 0`,
      );
    }
    return address;
  });
}

function toAddress(entry: string | Address, index: number): Address {
  if (typeof entry === "string") return parseAddress(entry);
  if (
    typeof entry !== "object" || entry === null ||
    typeof entry.hostname !== "string" || typeof entry.port !== "number"
  ) {
    throw new TypeError(
      `Cannot generate connect token: server address ${index} is ${
        entry === null ? "null" : typeof entry
      }, expected "ip:port" or { hostname, port }`,
    );
  }
  return parseAddress(formatAddress(entry));
}

function checkBigUint64(value: unknown, what: string): bigint {
  if (typeof value !== "bigint") {
    throw new TypeError(`Cannot use ${what}: expected a bigint`);
  }
  if (value < 0n || value > 0xffffffffffffffffn) {
    throw new RangeError(`Cannot use ${what} ${value}: outside 0..2^64-1`);
  }
  return value;
}

function checkBytes(value: unknown, bytes: number, what: string): Uint8Array {
  if (!(value instanceof Uint8Array)) {
    throw new TypeError(`Cannot use ${what}: expected a Uint8Array`);
  }
  if (value.length !== bytes) {
    throw new RangeError(
      `Cannot use ${what}: ${value.length} bytes, expected ${bytes}`,
    );
  }
  return value;
}

function viewOf(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function writeAddressList(
  view: DataView,
  offset: number,
  addresses: readonly Address[],
): number {
  if (
    !Array.isArray(addresses) || addresses.length < 1 ||
    addresses.length > MAX_SERVERS_PER_CONNECT
  ) {
    throw new RangeError(
      `Cannot write connect token: ${
        Array.isArray(addresses) ? addresses.length : "no"
      } server addresses, expected 1..${MAX_SERVERS_PER_CONNECT}`,
    );
  }
  view.setUint32(offset, addresses.length, true);
  offset += 4;
  for (const address of addresses) offset = writeAddress(view, offset, address);
  return offset;
}

function readAddressList(
  view: DataView,
  offset: number,
): { addresses: Address[]; offset: number } | undefined {
  const count = view.getUint32(offset, true);
  offset += 4;
  if (count < 1 || count > MAX_SERVERS_PER_CONNECT) return undefined;
  const addresses: Address[] = [];
  for (let i = 0; i < count; i++) {
    const read = readAddress(view, offset);
    if (!read) return undefined;
    addresses.push(read.address);
    offset = read.offset;
  }
  return { addresses, offset };
}

// Scratch space reused by every call (the library is single-threaded):
// allocating a small array and a DataView per call costs more than the
// copies they hold.
const tokenAdditionalDataBytes = new Uint8Array(VERSION_INFO_BYTES + 16);
tokenAdditionalDataBytes.set(VERSION_INFO, 0);
const tokenAdditionalDataView = viewOf(tokenAdditionalDataBytes);
const challengeNonce = new Uint8Array(12);

function tokenAdditionalData(
  protocolId: bigint,
  expireTimestamp: bigint,
): Uint8Array {
  tokenAdditionalDataView.setBigUint64(VERSION_INFO_BYTES, protocolId, true);
  tokenAdditionalDataView.setBigUint64(
    VERSION_INFO_BYTES + 8,
    expireTimestamp,
    true,
  );
  return tokenAdditionalDataBytes;
}

/**
 * Writes the private connect token in its 1024-byte plaintext form: client
 * id, timeout, addresses, both keys, user data, zero padding (the last 16
 * bytes are where the MAC goes once encrypted).
 *
 * @param token The private token.
 * @returns 1024 bytes.
 * @throws {RangeError} When a field does not fit.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { writePrivateConnectToken } from "./token.ts";
 * const bytes = writePrivateConnectToken({
 *   clientId: 1n,
 *   timeoutSeconds: 5,
 *   serverAddresses: [{ hostname: "127.0.0.1", port: 40000 }],
 *   clientToServerKey: new Uint8Array(32),
 *   serverToClientKey: new Uint8Array(32),
 *   userData: new Uint8Array(256),
 * });
 * assert.equal(bytes.length, 1024);
 * ```
 */
export function writePrivateConnectToken(
  token: PrivateConnectToken,
): Uint8Array {
  const out = new Uint8Array(CONNECT_TOKEN_PRIVATE_BYTES);
  const view = viewOf(out);
  view.setBigUint64(0, checkBigUint64(token.clientId, "client id"), true);
  view.setInt32(8, token.timeoutSeconds, true);
  let offset = writeAddressList(view, 12, token.serverAddresses);
  out.set(
    checkBytes(token.clientToServerKey, KEY_BYTES, "client-to-server key"),
    offset,
  );
  offset += KEY_BYTES;
  out.set(
    checkBytes(token.serverToClientKey, KEY_BYTES, "server-to-client key"),
    offset,
  );
  offset += KEY_BYTES;
  out.set(checkBytes(token.userData, USER_DATA_BYTES, "user data"), offset);
  return out;
}

/**
 * Encrypts a 1024-byte private token in place with XChaCha20-Poly1305; the
 * associated data is version info, protocol id and expire timestamp.
 *
 * @param buffer 1024 bytes from {@linkcode writePrivateConnectToken}.
 * @param protocolId The game's protocol id.
 * @param expireTimestamp The token's expire timestamp.
 * @param nonce 24-byte nonce.
 * @param privateKey The servers' private key.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { generateKey } from "./crypto.ts";
 * import { decryptPrivateConnectToken, encryptPrivateConnectToken } from "./token.ts";
 * const key = generateKey();
 * const nonce = new Uint8Array(24);
 * const buffer = new Uint8Array(1024); // from writePrivateConnectToken
 * encryptPrivateConnectToken(buffer, 1n, 2000000000n, nonce, key);
 * // The expire timestamp is authenticated: only the right one decrypts.
 * assert.equal(decryptPrivateConnectToken(buffer, 1n, 2000000001n, nonce, key), false);
 * assert.equal(decryptPrivateConnectToken(buffer, 1n, 2000000000n, nonce, key), true);
 * ```
 */
export function encryptPrivateConnectToken(
  buffer: Uint8Array,
  protocolId: bigint,
  expireTimestamp: bigint,
  nonce: Uint8Array,
  privateKey: Uint8Array,
): void {
  checkBytes(buffer, CONNECT_TOKEN_PRIVATE_BYTES, "private connect token");
  const additionalData = tokenAdditionalData(protocolId, expireTimestamp);
  xchachaEncrypt(
    buffer,
    0,
    CONNECT_TOKEN_PRIVATE_BYTES - MAC_BYTES,
    additionalData,
    additionalData.length,
    nonce,
    privateKey,
    buffer,
    0,
  );
}

/**
 * Decrypts a 1024-byte private token in place. On failure the buffer is left
 * as it was.
 *
 * @param buffer The encrypted private token.
 * @param protocolId The protocol id it was made for.
 * @param expireTimestamp Its expire timestamp.
 * @param nonce Its 24-byte nonce.
 * @param privateKey The servers' private key.
 * @returns `true` when it authenticated and was decrypted.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { generateKey } from "./crypto.ts";
 * import { decryptPrivateConnectToken } from "./token.ts";
 * const forged = new Uint8Array(1024); // not encrypted under this key
 * assert.equal(decryptPrivateConnectToken(forged, 1n, 2n, new Uint8Array(24), generateKey()), false);
 * ```
 */
export function decryptPrivateConnectToken(
  buffer: Uint8Array,
  protocolId: bigint,
  expireTimestamp: bigint,
  nonce: Uint8Array,
  privateKey: Uint8Array,
): boolean {
  checkBytes(buffer, CONNECT_TOKEN_PRIVATE_BYTES, "private connect token");
  const additionalData = tokenAdditionalData(protocolId, expireTimestamp);
  const ok = xchachaDecrypt(
    buffer,
    0,
    CONNECT_TOKEN_PRIVATE_BYTES,
    additionalData,
    additionalData.length,
    nonce,
    privateKey,
    buffer,
    0,
  );
  if (ok) buffer.fill(0, CONNECT_TOKEN_PRIVATE_BYTES - MAC_BYTES);
  return ok;
}

/**
 * Reads a decrypted private connect token. Returns `undefined` when it is not
 * valid: 0 or more than 32 addresses, or an address type other than 1 or 2.
 *
 * @param buffer The decrypted 1024 (or at least 1008) bytes.
 * @returns The token, or `undefined`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readPrivateConnectToken } from "./token.ts";
 * assert.equal(readPrivateConnectToken(new Uint8Array(1024)), undefined); // no addresses
 * ```
 */
export function readPrivateConnectToken(
  buffer: Uint8Array,
): PrivateConnectToken | undefined {
  if (buffer.length < CONNECT_TOKEN_PRIVATE_BYTES - MAC_BYTES) return undefined;
  const view = viewOf(buffer);
  const clientId = view.getBigUint64(0, true);
  const timeoutSeconds = view.getInt32(8, true);
  const list = readAddressList(view, 12);
  if (!list) return undefined;
  let offset = list.offset;
  if (offset + 2 * KEY_BYTES + USER_DATA_BYTES > buffer.length) {
    return undefined;
  }
  const clientToServerKey = buffer.slice(offset, offset + KEY_BYTES);
  offset += KEY_BYTES;
  const serverToClientKey = buffer.slice(offset, offset + KEY_BYTES);
  offset += KEY_BYTES;
  const userData = buffer.slice(offset, offset + USER_DATA_BYTES);
  return {
    clientId,
    timeoutSeconds,
    serverAddresses: list.addresses,
    clientToServerKey,
    serverToClientKey,
    userData,
  };
}

/**
 * Writes the 2048-byte public connect token.
 *
 * @param token The token.
 * @returns 2048 bytes.
 * @throws {RangeError} When a field has the wrong size.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { writeConnectToken } from "./token.ts";
 * const bytes = writeConnectToken({
 *   protocolId: 1n,
 *   createTimestamp: 1700000000n,
 *   expireTimestamp: 1700000030n,
 *   nonce: new Uint8Array(24),
 *   encryptedPrivateToken: new Uint8Array(1024),
 *   timeoutSeconds: 5,
 *   serverAddresses: [{ hostname: "127.0.0.1", port: 40000 }],
 *   clientToServerKey: new Uint8Array(32),
 *   serverToClientKey: new Uint8Array(32),
 * });
 * assert.equal(bytes.length, 2048);
 * ```
 */
export function writeConnectToken(token: ConnectToken): Uint8Array {
  const out = new Uint8Array(CONNECT_TOKEN_BYTES);
  const view = viewOf(out);
  out.set(VERSION_INFO, 0);
  let offset = VERSION_INFO_BYTES;
  view.setBigUint64(
    offset,
    checkBigUint64(token.protocolId, "protocol id"),
    true,
  );
  view.setBigUint64(
    offset + 8,
    checkBigUint64(token.createTimestamp, "create timestamp"),
    true,
  );
  view.setBigUint64(
    offset + 16,
    checkBigUint64(token.expireTimestamp, "expire timestamp"),
    true,
  );
  offset += 24;
  out.set(checkBytes(token.nonce, CONNECT_TOKEN_NONCE_BYTES, "nonce"), offset);
  offset += CONNECT_TOKEN_NONCE_BYTES;
  out.set(
    checkBytes(
      token.encryptedPrivateToken,
      CONNECT_TOKEN_PRIVATE_BYTES,
      "private connect token",
    ),
    offset,
  );
  offset += CONNECT_TOKEN_PRIVATE_BYTES;
  view.setInt32(offset, token.timeoutSeconds, true);
  offset = writeAddressList(view, offset + 4, token.serverAddresses);
  out.set(
    checkBytes(token.clientToServerKey, KEY_BYTES, "client-to-server key"),
    offset,
  );
  offset += KEY_BYTES;
  out.set(
    checkBytes(token.serverToClientKey, KEY_BYTES, "server-to-client key"),
    offset,
  );
  return out;
}

/**
 * Reads a 2048-byte public connect token. Returns `undefined` when it is not
 * valid: wrong length or version info, create after expire, 0 or more than
 * 32 server addresses, or an address type other than 1 or 2.
 *
 * @param bytes The token as received from the backend.
 * @returns The token, or `undefined`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readConnectToken } from "./token.ts";
 * assert.equal(readConnectToken(new Uint8Array(2048)), undefined); // no version info
 * ```
 */
export function readConnectToken(bytes: Uint8Array): ConnectToken | undefined {
  if (!(bytes instanceof Uint8Array) || bytes.length !== CONNECT_TOKEN_BYTES) {
    return undefined;
  }
  for (let i = 0; i < VERSION_INFO_BYTES; i++) {
    if (bytes[i] !== VERSION_INFO[i]) return undefined;
  }
  const view = viewOf(bytes);
  let offset = VERSION_INFO_BYTES;
  const protocolId = view.getBigUint64(offset, true);
  const createTimestamp = view.getBigUint64(offset + 8, true);
  const expireTimestamp = view.getBigUint64(offset + 16, true);
  if (createTimestamp > expireTimestamp) return undefined;
  offset += 24;
  const nonce = bytes.slice(offset, offset + CONNECT_TOKEN_NONCE_BYTES);
  offset += CONNECT_TOKEN_NONCE_BYTES;
  const encryptedPrivateToken = bytes.slice(
    offset,
    offset + CONNECT_TOKEN_PRIVATE_BYTES,
  );
  offset += CONNECT_TOKEN_PRIVATE_BYTES;
  const timeoutSeconds = view.getInt32(offset, true);
  const list = readAddressList(view, offset + 4);
  if (!list) return undefined;
  offset = list.offset;
  return {
    protocolId,
    createTimestamp,
    expireTimestamp,
    nonce,
    encryptedPrivateToken,
    timeoutSeconds,
    serverAddresses: list.addresses,
    clientToServerKey: bytes.slice(offset, offset + KEY_BYTES),
    serverToClientKey: bytes.slice(offset + KEY_BYTES, offset + 2 * KEY_BYTES),
  };
}

/**
 * Generates a connect token: what the web backend hands an authenticated
 * client. The private part is encrypted with `privateKey`, which only the
 * backend and the game servers know.
 *
 * @param options Servers, client id, protocol id, private key and lifetimes.
 * @returns The 2048-byte connect token.
 * @throws {TypeError} On an unparsable address or a value of the wrong type.
 * @throws {RangeError} On a key, nonce or user data of the wrong size, 0 or more than 32 addresses, an address without a port, or a timeout of 0.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { generateKey } from "./crypto.ts";
 * import { generateConnectToken, readConnectToken } from "./token.ts";
 * const token = generateConnectToken({
 *   serverAddresses: ["127.0.0.1:40000", "[::1]:40000"],
 *   clientId: 1n,
 *   protocolId: 0x1122334455667788n,
 *   privateKey: generateKey(),
 *   expireSeconds: 30,
 *   timeoutSeconds: 5,
 * });
 * assert.equal(token.length, 2048);
 * const read = readConnectToken(token); // the public part, as the client sees it
 * assert.ok(read);
 * assert.equal(read.expireTimestamp - read.createTimestamp, 30n);
 * assert.equal(read.timeoutSeconds, 5);
 * ```
 */
export function generateConnectToken(
  options: GenerateConnectTokenOptions,
): Uint8Array {
  if (typeof options !== "object" || options === null) {
    throw new TypeError(
      "Cannot generate connect token: options is not an object",
    );
  }
  const publicAddresses = toAddresses(
    options.serverAddresses,
    "server addresses",
  );
  const internalAddresses = options.internalServerAddresses === undefined
    ? publicAddresses
    : toAddresses(options.internalServerAddresses, "internal server addresses");
  if (internalAddresses.length !== publicAddresses.length) {
    throw new RangeError(
      `Cannot generate connect token: ${internalAddresses.length} internal server addresses for ${publicAddresses.length} public ones`,
    );
  }
  for (const address of [...publicAddresses, ...internalAddresses]) {
    addressBytes(address);
  }
  const clientId = checkBigUint64(options.clientId, "client id");
  const protocolId = checkBigUint64(options.protocolId, "protocol id");
  const privateKey = checkKey(options.privateKey, "private key");
  const expireSeconds = options.expireSeconds ??
    DEFAULT_CONNECT_TOKEN_EXPIRY_SECONDS;
  const timeoutSeconds = options.timeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS;
  if (!Number.isInteger(expireSeconds)) {
    throw new RangeError(
      `Cannot generate connect token: expire seconds ${expireSeconds} is not an integer`,
    );
  }
  if (
    !Number.isInteger(timeoutSeconds) || timeoutSeconds < -0x80000000 ||
    timeoutSeconds > 0x7fffffff
  ) {
    throw new RangeError(
      `Cannot generate connect token: timeout seconds ${timeoutSeconds} is not a 32-bit integer`,
    );
  }
  if (timeoutSeconds === 0) {
    throw new RangeError(
      "Cannot generate connect token: timeout seconds 0 would time the connection out at once; use a negative value (-1) to disable the timeout",
    );
  }
  const userData = new Uint8Array(USER_DATA_BYTES);
  if (options.userData !== undefined) {
    if (!(options.userData instanceof Uint8Array)) {
      throw new TypeError("Cannot use user data: expected a Uint8Array");
    }
    if (options.userData.length > USER_DATA_BYTES) {
      throw new RangeError(
        `Cannot use user data: ${options.userData.length} bytes exceeds the ${USER_DATA_BYTES} byte limit`,
      );
    }
    userData.set(options.userData);
  }
  const now = options.now ?? Date.now() / 1000;
  if (!Number.isFinite(now) || now < 0) {
    throw new RangeError(
      `Cannot generate connect token: now ${now} is not a time`,
    );
  }
  const createTimestamp = BigInt(Math.floor(now));
  const expireTimestamp = expireSeconds >= 0
    ? createTimestamp + BigInt(expireSeconds)
    : NEVER_EXPIRES;
  const nonce = options.nonce === undefined
    ? randomBytes(new Uint8Array(CONNECT_TOKEN_NONCE_BYTES))
    : checkBytes(options.nonce, CONNECT_TOKEN_NONCE_BYTES, "nonce");
  const clientToServerKey = options.clientToServerKey === undefined
    ? generateKey()
    : checkKey(options.clientToServerKey, "client-to-server key");
  const serverToClientKey = options.serverToClientKey === undefined
    ? generateKey()
    : checkKey(options.serverToClientKey, "server-to-client key");
  const encryptedPrivateToken = writePrivateConnectToken({
    clientId,
    timeoutSeconds,
    serverAddresses: internalAddresses,
    clientToServerKey,
    serverToClientKey,
    userData,
  });
  encryptPrivateConnectToken(
    encryptedPrivateToken,
    protocolId,
    expireTimestamp,
    nonce,
    privateKey,
  );
  return writeConnectToken({
    protocolId,
    createTimestamp,
    expireTimestamp,
    nonce,
    encryptedPrivateToken,
    timeoutSeconds,
    serverAddresses: publicAddresses,
    clientToServerKey,
    serverToClientKey,
  });
}

/**
 * Writes a challenge token in its 300-byte plaintext form: client id, user
 * data, zero padding (the last 16 bytes are where the MAC goes).
 *
 * @param token The challenge token.
 * @returns 300 bytes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { writeChallengeToken } from "./token.ts";
 * const bytes = writeChallengeToken({ clientId: 1n, userData: new Uint8Array(256) });
 * assert.equal(bytes.length, 300);
 * ```
 */
export function writeChallengeToken(token: ChallengeToken): Uint8Array {
  const out = new Uint8Array(CHALLENGE_TOKEN_BYTES);
  viewOf(out).setBigUint64(
    0,
    checkBigUint64(token.clientId, "client id"),
    true,
  );
  out.set(checkBytes(token.userData, USER_DATA_BYTES, "user data"), 8);
  return out;
}

/**
 * Encrypts a 300-byte challenge token in place with ChaCha20-Poly1305, the
 * nonce built from `sequence`, no associated data.
 *
 * @param buffer 300 bytes from {@linkcode writeChallengeToken}.
 * @param sequence The server's challenge sequence.
 * @param key The server's challenge key.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { generateKey } from "./crypto.ts";
 * import { decryptChallengeToken, encryptChallengeToken } from "./token.ts";
 * const key = generateKey();
 * const buffer = new Uint8Array(300); // from writeChallengeToken
 * encryptChallengeToken(buffer, 7, key);
 * // The nonce comes from the sequence: only the same one decrypts.
 * assert.equal(decryptChallengeToken(buffer, 8, key), false);
 * assert.equal(decryptChallengeToken(buffer, 7, key), true);
 * ```
 */
export function encryptChallengeToken(
  buffer: Uint8Array,
  sequence: Sequence,
  key: Uint8Array,
): void {
  checkBytes(buffer, CHALLENGE_TOKEN_BYTES, "challenge token");
  const nonce = writeSequenceNonce(challengeNonce, sequence);
  chachaEncrypt(
    buffer,
    0,
    CHALLENGE_TOKEN_BYTES - MAC_BYTES,
    buffer,
    0,
    nonce,
    key,
    buffer,
    0,
  );
}

/**
 * Decrypts a 300-byte challenge token in place. On failure the buffer is left
 * as it was.
 *
 * @param buffer The encrypted challenge token.
 * @param sequence The challenge sequence it was encrypted with.
 * @param key The server's challenge key.
 * @returns `true` when it authenticated and was decrypted.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { generateKey } from "./crypto.ts";
 * import { decryptChallengeToken } from "./token.ts";
 * assert.equal(decryptChallengeToken(new Uint8Array(300), 0, generateKey()), false);
 * ```
 */
export function decryptChallengeToken(
  buffer: Uint8Array,
  sequence: Sequence,
  key: Uint8Array,
): boolean {
  checkBytes(buffer, CHALLENGE_TOKEN_BYTES, "challenge token");
  const nonce = writeSequenceNonce(challengeNonce, sequence);
  const ok = chachaDecrypt(
    buffer,
    0,
    CHALLENGE_TOKEN_BYTES,
    buffer,
    0,
    nonce,
    key,
    buffer,
    0,
  );
  if (ok) buffer.fill(0, CHALLENGE_TOKEN_BYTES - MAC_BYTES);
  return ok;
}

/**
 * Reads a decrypted challenge token.
 *
 * @param buffer At least 264 decrypted bytes.
 * @returns The token, or `undefined` when too short.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readChallengeToken } from "./token.ts";
 * assert.equal(readChallengeToken(new Uint8Array(300))?.clientId, 0n);
 * assert.equal(readChallengeToken(new Uint8Array(100)), undefined); // too short
 * ```
 */
export function readChallengeToken(
  buffer: Uint8Array,
): ChallengeToken | undefined {
  if (buffer.length < 8 + USER_DATA_BYTES) return undefined;
  return {
    clientId: viewOf(buffer).getBigUint64(0, true),
    userData: buffer.slice(8, 8 + USER_DATA_BYTES),
  };
}
