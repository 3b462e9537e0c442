// Connect tokens and challenge tokens: layout, validation on read and on
// generation, public versus internal addresses, and the private parts'
// encryption.

import { parseAddress } from "../address.ts";
import {
  CHALLENGE_TOKEN_BYTES,
  CONNECT_TOKEN_BYTES,
  CONNECT_TOKEN_PRIVATE_BYTES,
  USER_DATA_BYTES,
  VERSION_INFO,
} from "../packet.ts";
import {
  type ConnectToken,
  decryptChallengeToken,
  decryptPrivateConnectToken,
  DEFAULT_CONNECT_TOKEN_EXPIRY_SECONDS,
  DEFAULT_TIMEOUT_SECONDS,
  encryptChallengeToken,
  encryptPrivateConnectToken,
  generateConnectToken,
  type GenerateConnectTokenOptions,
  MAX_SERVERS_PER_CONNECT,
  NEVER_EXPIRES,
  readChallengeToken,
  readConnectToken,
  readPrivateConnectToken,
  writeChallengeToken,
  writeConnectToken,
  writePrivateConnectToken,
} from "../token.ts";
import {
  assert,
  assertEquals,
  assertExists,
  assertFalse,
  assertNotEquals,
  assertStrictEquals,
  assertThrows,
} from "./_assert.ts";
import { hex, pattern } from "./_vectors.ts";

const PROTOCOL_ID = 0x1122334455667788n;
const PRIVATE_KEY = pattern(32, 1);
const NOW = 1_700_000_000;

/** Offsets in the public token. */
const TIMEOUT_OFFSET = 13 + 8 + 8 + 8 + 24 + CONNECT_TOKEN_PRIVATE_BYTES; // 1085
const ADDRESS_COUNT_OFFSET = TIMEOUT_OFFSET + 4;
const FIRST_ADDRESS_OFFSET = ADDRESS_COUNT_OFFSET + 4;

function options(
  extra: Partial<GenerateConnectTokenOptions> = {},
): GenerateConnectTokenOptions {
  return {
    serverAddresses: ["127.0.0.1:40000"],
    clientId: 42n,
    protocolId: PROTOCOL_ID,
    privateKey: PRIVATE_KEY,
    now: NOW,
    nonce: pattern(24, 2),
    clientToServerKey: pattern(32, 3),
    serverToClientKey: pattern(32, 4),
    ...extra,
  };
}

function generate(
  extra: Partial<GenerateConnectTokenOptions> = {},
): Uint8Array {
  return generateConnectToken(options(extra));
}

function read(bytes: Uint8Array): ConnectToken {
  const token = readConnectToken(bytes);
  assertExists(token, "readConnectToken rejected the token");
  return token;
}

/** Decrypts and reads a public token's private part. */
function privatePart(token: ConnectToken, privateKey = PRIVATE_KEY) {
  const buffer = token.encryptedPrivateToken.slice();
  assert(
    decryptPrivateConnectToken(
      buffer,
      token.protocolId,
      token.expireTimestamp,
      token.nonce,
      privateKey,
    ),
    "the private token does not decrypt",
  );
  const privateToken = readPrivateConnectToken(buffer);
  assertExists(privateToken, "readPrivateConnectToken rejected it");
  return privateToken;
}

function setU32(bytes: Uint8Array, offset: number, value: number): Uint8Array {
  new DataView(bytes.buffer, bytes.byteOffset).setUint32(offset, value, true);
  return bytes;
}

Deno.test("the public token's layout: version, ids, timestamps, nonce, private part, timeout, addresses, keys", () => {
  const bytes = generate({ timeoutSeconds: 7, expireSeconds: 45 });
  assertStrictEquals(bytes.length, CONNECT_TOKEN_BYTES);
  assertEquals(bytes.slice(0, 13), VERSION_INFO);
  const view = new DataView(bytes.buffer);
  assertStrictEquals(view.getBigUint64(13, true), PROTOCOL_ID);
  assertStrictEquals(view.getBigUint64(21, true), BigInt(NOW));
  assertStrictEquals(view.getBigUint64(29, true), BigInt(NOW + 45));
  assertEquals(bytes.slice(37, 61), pattern(24, 2));
  assertStrictEquals(view.getInt32(TIMEOUT_OFFSET, true), 7);
  assertStrictEquals(view.getUint32(ADDRESS_COUNT_OFFSET, true), 1);
  assertEquals(
    bytes.slice(FIRST_ADDRESS_OFFSET, FIRST_ADDRESS_OFFSET + 7),
    hex("017f000001409c"),
  );
  assertEquals(
    bytes.slice(FIRST_ADDRESS_OFFSET + 7, FIRST_ADDRESS_OFFSET + 39),
    pattern(32, 3),
  );
  assertEquals(
    bytes.slice(FIRST_ADDRESS_OFFSET + 39, FIRST_ADDRESS_OFFSET + 71),
    pattern(32, 4),
  );
  assert(
    bytes.slice(FIRST_ADDRESS_OFFSET + 71).every((byte) => byte === 0),
    "zero padding",
  );
});

Deno.test("IPv6 in a token is eight little-endian u16 groups, then the port", () => {
  const bytes = generate({
    serverAddresses: ["[::1]:40000", "[2001:db8::ff00:42:8329]:1"],
  });
  const first = bytes.slice(FIRST_ADDRESS_OFFSET, FIRST_ADDRESS_OFFSET + 19);
  // ::1 ends 01 00, then port 40000 = 0x9c40 little-endian.
  assertEquals(first, hex("02" + "00".repeat(14) + "0100" + "409c"));
  const second = bytes.slice(
    FIRST_ADDRESS_OFFSET + 19,
    FIRST_ADDRESS_OFFSET + 38,
  );
  assertEquals(
    second,
    hex("02" + "0120b80d000000000000" + "00ff42002983" + "0100"),
  );
  // And the private token holds the same bytes after its 16-byte header.
  const token = read(bytes);
  const plain = token.encryptedPrivateToken.slice();
  assert(
    decryptPrivateConnectToken(
      plain,
      PROTOCOL_ID,
      token.expireTimestamp,
      token.nonce,
      PRIVATE_KEY,
    ),
  );
  assertEquals(plain.slice(16, 16 + 19), first);
  assertEquals(token.serverAddresses, [
    parseAddress("[::1]:40000"),
    parseAddress("[2001:db8::ff00:42:8329]:1"),
  ]);
});

Deno.test("readConnectToken() round-trips every field", () => {
  const addresses = ["127.0.0.1:40000", "[::1]:40001", "10.0.0.1:1"];
  const token = read(
    generate({
      serverAddresses: addresses,
      timeoutSeconds: 9,
      expireSeconds: 60,
    }),
  );
  assertStrictEquals(token.protocolId, PROTOCOL_ID);
  assertStrictEquals(token.createTimestamp, BigInt(NOW));
  assertStrictEquals(token.expireTimestamp, BigInt(NOW + 60));
  assertStrictEquals(token.timeoutSeconds, 9);
  assertEquals(token.nonce, pattern(24, 2));
  assertEquals(token.clientToServerKey, pattern(32, 3));
  assertEquals(token.serverToClientKey, pattern(32, 4));
  assertEquals(token.serverAddresses, addresses.map(parseAddress));
  assertStrictEquals(
    token.encryptedPrivateToken.length,
    CONNECT_TOKEN_PRIVATE_BYTES,
  );
  const privateToken = privatePart(token);
  assertStrictEquals(privateToken.clientId, 42n);
  assertStrictEquals(privateToken.timeoutSeconds, 9);
  assertEquals(privateToken.serverAddresses, addresses.map(parseAddress));
  assertEquals(privateToken.clientToServerKey, pattern(32, 3));
  assertEquals(privateToken.serverToClientKey, pattern(32, 4));
  assertEquals(privateToken.userData, new Uint8Array(USER_DATA_BYTES));
  // writeConnectToken() writes back the same bytes.
  assertEquals(
    writeConnectToken(token),
    generate({
      serverAddresses: addresses,
      timeoutSeconds: 9,
      expireSeconds: 60,
    }),
  );
});

Deno.test("readConnectToken() rejects the wrong length", () => {
  const bytes = generate();
  assertStrictEquals(
    readConnectToken(bytes.slice(0, CONNECT_TOKEN_BYTES - 1)),
    undefined,
  );
  const long = new Uint8Array(CONNECT_TOKEN_BYTES + 1);
  long.set(bytes);
  assertStrictEquals(readConnectToken(long), undefined);
  assertStrictEquals(readConnectToken(new Uint8Array(0)), undefined);
  assertStrictEquals(
    readConnectToken("token" as unknown as Uint8Array),
    undefined,
  );
});

Deno.test("readConnectToken() rejects bad version info", () => {
  for (let i = 0; i < 13; i++) {
    const bytes = generate();
    bytes[i] ^= 0x20;
    assertStrictEquals(readConnectToken(bytes), undefined, `byte ${i}`);
  }
  const older = generate();
  older.set(new TextEncoder().encode("NETCODE 1.01\0"));
  assertStrictEquals(readConnectToken(older), undefined, "NETCODE 1.01");
});

Deno.test("readConnectToken() rejects create > expire, accepts create == expire", () => {
  const bytes = generate({ expireSeconds: 0 });
  const token = read(bytes);
  assertStrictEquals(token.createTimestamp, token.expireTimestamp);
  new DataView(bytes.buffer).setBigUint64(21, BigInt(NOW + 1), true);
  assertStrictEquals(readConnectToken(bytes), undefined);
});

Deno.test("readConnectToken() rejects 0 and 33 addresses, accepts 1 and 32", () => {
  assertStrictEquals(
    readConnectToken(setU32(generate(), ADDRESS_COUNT_OFFSET, 0)),
    undefined,
    "0",
  );
  const many = Array.from(
    { length: 33 },
    (_, i) => `10.0.0.${i + 1}:${1000 + i}`,
  );
  const base = read(generate());
  // The writer refuses 33 addresses: write 32, then claim 33 in the count.
  assertThrows(
    () =>
      writeConnectToken({ ...base, serverAddresses: many.map(parseAddress) }),
    RangeError,
    "33 server addresses",
  );
  const token32 = writeConnectToken({
    ...base,
    serverAddresses: many.slice(0, 32).map(parseAddress),
  });
  assertStrictEquals(
    readConnectToken(setU32(token32.slice(), ADDRESS_COUNT_OFFSET, 33)),
    undefined,
    "33",
  );
  assertEquals(
    read(token32).serverAddresses,
    many.slice(0, 32).map(parseAddress),
    "32",
  );
  assertStrictEquals(read(generate()).serverAddresses.length, 1, "1");
  assertStrictEquals(
    readConnectToken(setU32(generate(), ADDRESS_COUNT_OFFSET, 0xffffffff)),
    undefined,
  );
});

Deno.test("readConnectToken() rejects address types 0 and 3", () => {
  for (const type of [0, 3, 255]) {
    const bytes = generate();
    bytes[FIRST_ADDRESS_OFFSET] = type;
    assertStrictEquals(readConnectToken(bytes), undefined, `type ${type}`);
  }
  // In the second of two addresses too.
  const bytes = generate({ serverAddresses: ["1.2.3.4:5", "[::1]:6"] });
  bytes[FIRST_ADDRESS_OFFSET + 7] = 3;
  assertStrictEquals(readConnectToken(bytes), undefined, "second address");
});

Deno.test("readPrivateConnectToken() rejects 0 and 33 addresses and address types 0 and 3", () => {
  const token = {
    clientId: 1n,
    timeoutSeconds: 5,
    serverAddresses: [parseAddress("127.0.0.1:40000")],
    clientToServerKey: pattern(32, 1),
    serverToClientKey: pattern(32, 2),
    userData: pattern(USER_DATA_BYTES, 3),
  };
  const plain = writePrivateConnectToken(token);
  assertEquals(readPrivateConnectToken(plain), token);
  assertStrictEquals(
    readPrivateConnectToken(setU32(plain.slice(), 12, 0)),
    undefined,
    "0 addresses",
  );
  const many = Array.from(
    { length: 33 },
    (_, i) => parseAddress(`10.0.0.${i + 1}:1`),
  );
  const plain32 = writePrivateConnectToken({
    ...token,
    serverAddresses: many.slice(0, 32),
  });
  assertEquals(
    readPrivateConnectToken(plain32)?.serverAddresses,
    many.slice(0, 32),
  );
  assertStrictEquals(
    readPrivateConnectToken(setU32(plain32, 12, 33)),
    undefined,
    "33 addresses",
  );
  for (const type of [0, 3]) {
    const bad = plain.slice();
    bad[16] = type;
    assertStrictEquals(readPrivateConnectToken(bad), undefined, `type ${type}`);
  }
  assertStrictEquals(
    readPrivateConnectToken(plain.slice(0, 1007)),
    undefined,
    "too short",
  );
});

Deno.test("generateConnectToken() validates its inputs", () => {
  assertThrows(
    () => generate({ privateKey: new Uint8Array(31) }),
    RangeError,
    "31 bytes",
  );
  assertThrows(
    () => generate({ privateKey: new Uint8Array(33) }),
    RangeError,
    "33 bytes",
  );
  assertThrows(
    () => generate({ privateKey: "key" as unknown as Uint8Array }),
    TypeError,
    "private key",
  );
  assertThrows(
    () => generate({ clientToServerKey: new Uint8Array(16) }),
    RangeError,
    "client-to-server key",
  );
  assertThrows(
    () => generate({ serverToClientKey: new Uint8Array(64) }),
    RangeError,
    "server-to-client key",
  );
  assertThrows(
    () => generate({ nonce: new Uint8Array(12) }),
    RangeError,
    "nonce",
  );
  assertThrows(
    () => generate({ serverAddresses: ["localhost:40000"] }),
    TypeError,
    "localhost:40000",
  );
  assertThrows(
    () => generate({ serverAddresses: ["1.2.3.4:70000"] }),
    TypeError,
    "70000",
  );
  assertThrows(
    () => generate({ serverAddresses: ["[::1"] }),
    TypeError,
    "[::1",
  );
  assertThrows(
    () => generate({ serverAddresses: [] }),
    RangeError,
    "0 server addresses",
  );
  const many = Array.from(
    { length: MAX_SERVERS_PER_CONNECT + 1 },
    (_, i) => `10.0.0.${i + 1}:1`,
  );
  assertThrows(
    () => generate({ serverAddresses: many }),
    RangeError,
    "33 server addresses",
  );
  assertStrictEquals(
    read(generate({ serverAddresses: many.slice(0, 32) })).serverAddresses
      .length,
    32,
  );
  assertThrows(
    () => generate({ userData: new Uint8Array(USER_DATA_BYTES + 1) }),
    RangeError,
    "257 bytes",
  );
  assertThrows(
    () => generate({ userData: [1, 2] as unknown as Uint8Array }),
    TypeError,
    "user data",
  );
  assertThrows(
    () => generate({ clientId: 1 as unknown as bigint }),
    TypeError,
    "client id",
  );
  assertThrows(() => generate({ clientId: -1n }), RangeError, "client id");
  assertThrows(
    () => generate({ protocolId: 1n << 64n }),
    RangeError,
    "protocol id",
  );
  assertThrows(
    () => generate({ expireSeconds: 1.5 }),
    RangeError,
    "expire seconds",
  );
  assertThrows(
    () => generate({ timeoutSeconds: 2 ** 31 }),
    RangeError,
    "timeout seconds",
  );
  assertThrows(() => generate({ now: Number.NaN }), RangeError, "now");
  assertThrows(
    () => generate({ internalServerAddresses: ["10.0.0.1:1", "10.0.0.2:1"] }),
    RangeError,
    "2 internal server addresses for 1 public",
  );
  assertThrows(
    () => generateConnectToken(null as unknown as GenerateConnectTokenOptions),
    TypeError,
  );
});

Deno.test("generateConnectToken() takes up to 256 bytes of user data, zero-padded", () => {
  const full = pattern(USER_DATA_BYTES, 5);
  assertEquals(privatePart(read(generate({ userData: full }))).userData, full);
  const short =
    privatePart(read(generate({ userData: new Uint8Array([1, 2, 3]) })))
      .userData;
  const expected = new Uint8Array(USER_DATA_BYTES);
  expected.set([1, 2, 3]);
  assertEquals(short, expected);
});

Deno.test("generateConnectToken() with negative expireSeconds never expires (2^64-1)", () => {
  for (const expireSeconds of [-1, -30]) {
    const token = read(generate({ expireSeconds }));
    assertStrictEquals(token.expireTimestamp, NEVER_EXPIRES);
    assertStrictEquals(token.expireTimestamp, 0xffffffffffffffffn);
    assertStrictEquals(token.createTimestamp, BigInt(NOW));
    privatePart(token); // the expire timestamp is in the associated data
  }
});

Deno.test("generateConnectToken() defaults: 30 s expiry, 5 s timeout, random keys and nonce, the clock", () => {
  const before = Math.floor(Date.now() / 1000);
  const token = read(generateConnectToken({
    serverAddresses: ["127.0.0.1:40000"],
    clientId: 1n,
    protocolId: PROTOCOL_ID,
    privateKey: PRIVATE_KEY,
  }));
  const after = Math.floor(Date.now() / 1000);
  assert(
    token.createTimestamp >= BigInt(before) &&
      token.createTimestamp <= BigInt(after),
  );
  assertStrictEquals(
    token.expireTimestamp - token.createTimestamp,
    BigInt(DEFAULT_CONNECT_TOKEN_EXPIRY_SECONDS),
  );
  assertStrictEquals(token.timeoutSeconds, DEFAULT_TIMEOUT_SECONDS);
  const other = read(generateConnectToken({
    serverAddresses: ["127.0.0.1:40000"],
    clientId: 1n,
    protocolId: PROTOCOL_ID,
    privateKey: PRIVATE_KEY,
  }));
  assertNotEquals(token.nonce, other.nonce);
  assertNotEquals(token.clientToServerKey, other.clientToServerKey);
  assertNotEquals(token.serverToClientKey, other.serverToClientKey);
  assertNotEquals(token.clientToServerKey, token.serverToClientKey);
  // The create timestamp is whole seconds.
  assertStrictEquals(
    read(generate({ now: NOW + 0.999 })).createTimestamp,
    BigInt(NOW),
  );
});

Deno.test("generateConnectToken() writes public addresses in the public token, internal ones in the private token", () => {
  const token = read(generate({
    serverAddresses: ["203.0.113.5:40000", "[2001:db8::5]:40001"],
    internalServerAddresses: ["10.0.0.5:30000", "[fd00::5]:30001"],
  }));
  assertEquals(token.serverAddresses, [
    parseAddress("203.0.113.5:40000"),
    parseAddress("[2001:db8::5]:40001"),
  ]);
  assertEquals(privatePart(token).serverAddresses, [
    parseAddress("10.0.0.5:30000"),
    parseAddress("[fd00::5]:30001"),
  ]);
  // Without internal addresses, both are the public ones.
  const same = read(generate({ serverAddresses: ["203.0.113.5:40000"] }));
  assertEquals(privatePart(same).serverAddresses, same.serverAddresses);
  // Address objects are accepted and canonicalised.
  const objects = read(
    generate({ serverAddresses: [{ hostname: "0:0::1", port: 9 }] }),
  );
  assertEquals(objects.serverAddresses, [{ hostname: "::1", port: 9 }]);
});

Deno.test("a timeout of -1 round-trips through the public and private tokens", () => {
  const bytes = generate({ timeoutSeconds: -1 });
  assertEquals(
    bytes.slice(TIMEOUT_OFFSET, TIMEOUT_OFFSET + 4),
    hex("ffffffff"),
  );
  const token = read(bytes);
  assertStrictEquals(token.timeoutSeconds, -1);
  assertStrictEquals(privatePart(token).timeoutSeconds, -1);
  // A token of timeout 0 (from another implementation) still reads as 0.
  const zero = writeConnectToken({ ...token, timeoutSeconds: 0 });
  assertStrictEquals(read(zero).timeoutSeconds, 0);
});

Deno.test("generateConnectToken() refuses a timeout of 0 and says to use a negative value", () => {
  assertThrows(
    () => generate({ timeoutSeconds: 0 }),
    RangeError,
    "use a negative value (-1) to disable the timeout",
  );
});

Deno.test("generateConnectToken() refuses a server address without a port", () => {
  assertThrows(
    () => generate({ serverAddresses: ["127.0.0.1"] }),
    RangeError,
    "server address 0 (127.0.0.1:0) has no port",
  );
  assertThrows(
    () =>
      generate({
        serverAddresses: ["127.0.0.1:40000", { hostname: "::1", port: 0 }],
      }),
    RangeError,
    "server address 1 ([::1]:0) has no port",
  );
  assertThrows(
    () =>
      generate({
        serverAddresses: ["127.0.0.1:40000"],
        internalServerAddresses: ["10.0.0.1"],
      }),
    RangeError,
    "internal server address 0 (10.0.0.1:0) has no port",
  );
});

Deno.test("decryptPrivateConnectToken() fails with the wrong key, protocol id, expiry or nonce, leaving the buffer as it was", () => {
  const token = read(generate());
  const cases: [string, bigint, bigint, Uint8Array, Uint8Array][] = [
    [
      "key",
      token.protocolId,
      token.expireTimestamp,
      token.nonce,
      pattern(32, 9),
    ],
    [
      "protocol id",
      token.protocolId + 1n,
      token.expireTimestamp,
      token.nonce,
      PRIVATE_KEY,
    ],
    [
      "expire timestamp",
      token.protocolId,
      token.expireTimestamp + 1n,
      token.nonce,
      PRIVATE_KEY,
    ],
    [
      "nonce",
      token.protocolId,
      token.expireTimestamp,
      pattern(24, 77),
      PRIVATE_KEY,
    ],
  ];
  for (const [what, protocolId, expire, nonce, key] of cases) {
    const buffer = token.encryptedPrivateToken.slice();
    assertFalse(
      decryptPrivateConnectToken(buffer, protocolId, expire, nonce, key),
      what,
    );
    assertEquals(
      buffer,
      token.encryptedPrivateToken,
      `${what}: buffer unchanged`,
    );
  }
  // Any flipped byte of the ciphertext or MAC.
  for (const offset of [0, 500, 1007, 1008, 1023]) {
    const buffer = token.encryptedPrivateToken.slice();
    buffer[offset] ^= 1;
    assertFalse(
      decryptPrivateConnectToken(
        buffer,
        token.protocolId,
        token.expireTimestamp,
        token.nonce,
        PRIVATE_KEY,
      ),
      `byte ${offset}`,
    );
  }
  // Success zeroes the MAC's place.
  const buffer = token.encryptedPrivateToken.slice();
  assert(
    decryptPrivateConnectToken(
      buffer,
      token.protocolId,
      token.expireTimestamp,
      token.nonce,
      PRIVATE_KEY,
    ),
  );
  assert(buffer.slice(1008).every((byte) => byte === 0));
  assertThrows(
    () =>
      decryptPrivateConnectToken(
        new Uint8Array(1023),
        1n,
        1n,
        pattern(24, 1),
        PRIVATE_KEY,
      ),
    RangeError,
    "1023 bytes",
  );
});

Deno.test("encryptPrivateConnectToken() and decryptPrivateConnectToken() round-trip in place", () => {
  const plain = writePrivateConnectToken({
    clientId: 0xffffffffffffffffn,
    timeoutSeconds: 5,
    serverAddresses: [parseAddress("[::1]:1")],
    clientToServerKey: pattern(32, 1),
    serverToClientKey: pattern(32, 2),
    userData: pattern(USER_DATA_BYTES, 3),
  });
  const buffer = plain.slice();
  encryptPrivateConnectToken(
    buffer,
    PROTOCOL_ID,
    99n,
    pattern(24, 4),
    PRIVATE_KEY,
  );
  assertNotEquals(buffer, plain);
  assert(
    decryptPrivateConnectToken(
      buffer,
      PROTOCOL_ID,
      99n,
      pattern(24, 4),
      PRIVATE_KEY,
    ),
  );
  assertEquals(buffer, plain);
  assertStrictEquals(
    readPrivateConnectToken(buffer)?.clientId,
    0xffffffffffffffffn,
  );
});

Deno.test("challenge tokens round-trip and fail with the wrong key or sequence, leaving the buffer as it was", () => {
  const key = pattern(32, 8);
  const plain = writeChallengeToken({
    clientId: 123n,
    userData: pattern(USER_DATA_BYTES, 6),
  });
  assertStrictEquals(plain.length, CHALLENGE_TOKEN_BYTES);
  assert(
    plain.slice(8 + USER_DATA_BYTES).every((byte) => byte === 0),
    "zero padding",
  );
  const encrypted = plain.slice();
  encryptChallengeToken(encrypted, 2n ** 63n, key);
  for (
    const [what, sequence, wrongKey] of [
      ["key", 2n ** 63n, pattern(32, 9)],
      ["sequence", 2n ** 63n + 1n, key],
      ["sequence 0", 0, key],
    ] as const
  ) {
    const buffer = encrypted.slice();
    assertFalse(decryptChallengeToken(buffer, sequence, wrongKey), what);
    assertEquals(buffer, encrypted, `${what}: unchanged`);
  }
  const buffer = encrypted.slice();
  assert(decryptChallengeToken(buffer, 2n ** 63n, key));
  assertEquals(buffer, plain);
  assertEquals(readChallengeToken(buffer), {
    clientId: 123n,
    userData: pattern(USER_DATA_BYTES, 6),
  });
  assertStrictEquals(readChallengeToken(buffer.slice(0, 263)), undefined);
  assertThrows(
    () => writeChallengeToken({ clientId: 1n, userData: new Uint8Array(255) }),
    RangeError,
    "user data",
  );
  assertThrows(
    () => encryptChallengeToken(new Uint8Array(299), 0, key),
    RangeError,
    "299 bytes",
  );
});
