/**
 * Token benchmarks: what a backend pays per connect token, and what a server
 * pays per connection request and challenge.
 *
 * - `generateConnectToken`: random keys and nonce, the private token written
 *   and XChaCha20-encrypted (1008 bytes), the 2048-byte public token written.
 *   Fixed nonce and keys in the second item, to show the cost of the
 *   randomness apart.
 * - `readConnectToken`: what a client does with the 2048 bytes.
 * - private token decrypt + read: what the server does per connection
 *   request after the packet checks: copy the 1024 encrypted bytes into a
 *   work buffer (the decryption is in place; the `set` is in the time),
 *   decrypt, then read the fields (keys and user data are copied out).
 * - challenge token write + encrypt (the server, per accepted request) and
 *   decrypt + read (the server, per connection response).
 *
 * Run with `deno bench -A bench/token_bench.ts`.
 *
 * @module
 */

import { generateKey } from "../crypto.ts";
import {
  decryptChallengeToken,
  decryptPrivateConnectToken,
  encryptChallengeToken,
  generateConnectToken,
  readChallengeToken,
  readConnectToken,
  readPrivateConnectToken,
  writeChallengeToken,
} from "../token.ts";

const PROTOCOL_ID = 0x1122334455667788n;
const privateKey = generateKey();
const userData = new Uint8Array(256).map((_, i) => i);
const serverAddresses = ["127.0.0.1:40000", "[::1]:40000"];
const fixedNonce = new Uint8Array(24).fill(5);
const fixedClientKey = generateKey();
const fixedServerKey = generateKey();

const tokenBytes = generateConnectToken({
  serverAddresses,
  clientId: 42n,
  protocolId: PROTOCOL_ID,
  privateKey,
  userData,
});
const token = readConnectToken(tokenBytes);
if (token === undefined) throw new Error("bench setup: token does not read");
const work = new Uint8Array(token.encryptedPrivateToken.length);

// Setup checks: each benchmarked path works on these inputs.
work.set(token.encryptedPrivateToken);
if (
  !decryptPrivateConnectToken(
    work,
    PROTOCOL_ID,
    token.expireTimestamp,
    token.nonce,
    privateKey,
  ) || readPrivateConnectToken(work)?.clientId !== 42n
) {
  throw new Error("bench setup: private token does not decrypt");
}

Deno.bench({
  name: "generateConnectToken (random nonce and keys)",
  group: "connect token",
  baseline: true,
  fn() {
    generateConnectToken({
      serverAddresses,
      clientId: 42n,
      protocolId: PROTOCOL_ID,
      privateKey,
      userData,
    });
  },
});

Deno.bench({
  name: "generateConnectToken (fixed nonce and keys)",
  group: "connect token",
  fn() {
    generateConnectToken({
      serverAddresses,
      clientId: 42n,
      protocolId: PROTOCOL_ID,
      privateKey,
      userData,
      nonce: fixedNonce,
      clientToServerKey: fixedClientKey,
      serverToClientKey: fixedServerKey,
    });
  },
});

Deno.bench({
  name: "readConnectToken",
  group: "connect token",
  fn() {
    if (readConnectToken(tokenBytes) === undefined) {
      throw new Error("readConnectToken failed");
    }
  },
});

Deno.bench({
  name: "private token copy + decrypt",
  group: "private token",
  baseline: true,
  fn() {
    work.set(token.encryptedPrivateToken);
    if (
      !decryptPrivateConnectToken(
        work,
        PROTOCOL_ID,
        token.expireTimestamp,
        token.nonce,
        privateKey,
      )
    ) throw new Error("decrypt failed");
  },
});

Deno.bench({
  name: "private token copy + decrypt + read",
  group: "private token",
  fn() {
    work.set(token.encryptedPrivateToken);
    if (
      !decryptPrivateConnectToken(
        work,
        PROTOCOL_ID,
        token.expireTimestamp,
        token.nonce,
        privateKey,
      )
    ) throw new Error("decrypt failed");
    if (readPrivateConnectToken(work) === undefined) {
      throw new Error("read failed");
    }
  },
});

Deno.bench({
  name: "private token decrypt failure (forged MAC)",
  group: "private token",
  fn() {
    work.set(token.encryptedPrivateToken);
    work[1000] ^= 1;
    if (
      decryptPrivateConnectToken(
        work,
        PROTOCOL_ID,
        token.expireTimestamp,
        token.nonce,
        privateKey,
      )
    ) throw new Error("forged token decrypted");
  },
});

const challengeKey = generateKey();
const challenge = { clientId: 42n, userData };
const encryptedChallenge = writeChallengeToken(challenge);
encryptChallengeToken(encryptedChallenge, 7, challengeKey);
const challengeWork = new Uint8Array(encryptedChallenge.length);

Deno.bench({
  name: "challenge token write + encrypt",
  group: "challenge token",
  baseline: true,
  fn() {
    encryptChallengeToken(writeChallengeToken(challenge), 7, challengeKey);
  },
});

Deno.bench({
  name: "challenge token copy + decrypt + read",
  group: "challenge token",
  fn() {
    challengeWork.set(encryptedChallenge);
    if (!decryptChallengeToken(challengeWork, 7, challengeKey)) {
      throw new Error("challenge decrypt failed");
    }
    if (readChallengeToken(challengeWork)?.clientId !== 42n) {
      throw new Error("challenge read failed");
    }
  },
});
