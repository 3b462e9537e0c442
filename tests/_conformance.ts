// The conformance checks against the C reference's vectors, for any test
// runner: conformance_test.ts registers them with Deno.test, and
// _runtime_suite.ts runs them on Node.js and Bun against dist/node/. Every
// entry of every section is encoded from its inputs and compared byte for
// byte, then decoded and compared field by field; a last test checks that
// every vector was checked.

import { type Address, parseAddress } from "../address.ts";
import {
  ALL_PACKET_TYPES,
  CONNECTION_CHALLENGE_PACKET,
  CONNECTION_DENIED_PACKET,
  CONNECTION_DISCONNECT_PACKET,
  CONNECTION_KEEP_ALIVE_PACKET,
  CONNECTION_PAYLOAD_PACKET,
  CONNECTION_REQUEST_PACKET,
  CONNECTION_REQUEST_PACKET_BYTES,
  CONNECTION_RESPONSE_PACKET,
  createReplayProtection,
  type EncryptedPacket,
  MAX_PACKET_BYTES,
  packetTypeMask,
  readPacket,
  sequenceBytesRequired,
  VERSION_INFO,
  writeConnectionRequestPacket,
  writePacket,
  writePayloadPacket,
} from "../packet.ts";
import {
  decryptChallengeToken,
  decryptPrivateConnectToken,
  encryptChallengeToken,
  encryptPrivateConnectToken,
  generateConnectToken,
  readChallengeToken,
  readConnectToken,
  readPrivateConnectToken,
  writeChallengeToken,
  writePrivateConnectToken,
} from "../token.ts";
import { assert, assertEquals, assertStrictEquals, fail } from "./_assert.ts";
import { aeadBackend } from "../crypto.ts";
import {
  assertBytes,
  type ChallengeTokenVector,
  checkKeys,
  type ConnectTokenVector,
  hex,
  KNOWN_SECTIONS,
  type PacketVector,
  type SequenceVector,
  u64,
  type Vectors,
} from "./_vectors.ts";

/** Registers a test: `Deno.test`'s `(name, fn)` form. */
export type RegisterTest = (name: string, fn: () => void) => void;

/**
 * Registers one test per vector of `vectors`, and a summary test that fails
 * unless every one of them passed (and names unknown sections).
 */
export function defineConformanceTests(
  vectors: Vectors,
  location: string | URL,
  test: RegisterTest,
): void {
  /** Vectors checked so far, by section; the summary test compares the total. */
  const checked: Record<string, number> = {};
  let expectedTotal = 0;

  /** A key used to wrap sequence vectors in a real packet. */
  const SEQUENCE_TEST_KEY = hex(
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
  );
  const SEQUENCE_TEST_PROTOCOL_ID = 0x1122334455667788n;

  function section<T>(name: string): T[] {
    const value = vectors[name];
    if (value === undefined) return [];
    if (!Array.isArray(value)) fail(`section "${name}" is not an array`);
    return value as T[];
  }

  /** Registers one test per vector, counting the ones that pass. */
  function eachVector<T>(
    name: string,
    label: (entry: T, index: number) => string,
    check: (entry: T, what: string) => void,
  ): void {
    const entries = section<T>(name);
    checked[name] = 0;
    expectedTotal += entries.length;
    entries.forEach((entry, index) => {
      const what = `${name}[${index}] ${label(entry, index)}`;
      test(`conformance: ${what}`, () => {
        check(entry, what);
        checked[name]++;
      });
    });
  }

  function bigintSequence(value: bigint | number): bigint {
    return BigInt(value);
  }

  // ---------------------------------------------------------------------------

  test("conformance: version_info is NETCODE 1.02 and a NUL", () => {
    if (vectors.version_info === undefined) return;
    assertBytes(VERSION_INFO, hex(vectors.version_info), "version_info");
  });

  eachVector<SequenceVector>(
    "sequence_numbers",
    (v) => `sequence ${v.sequence}`,
    (v, what) => {
      checkKeys(v, ["sequence", "sequence_bytes", "encoded"], what);
      const sequence = u64(v.sequence);
      const encoded = hex(v.encoded);
      assertStrictEquals(
        sequenceBytesRequired(sequence),
        v.sequence_bytes,
        `${what}: sequenceBytesRequired`,
      );
      // Encode inside a real packet: the prefix's high nibble is the byte count,
      // the bytes after the prefix are the sequence.
      const out = new Uint8Array(MAX_PACKET_BYTES);
      const forms: (bigint | number)[] = [sequence];
      if (sequence <= BigInt(Number.MAX_SAFE_INTEGER)) {
        forms.push(Number(sequence));
      }
      for (const form of forms) {
        const bytes = writePacket(
          out,
          { type: CONNECTION_DISCONNECT_PACKET },
          form,
          SEQUENCE_TEST_KEY,
          SEQUENCE_TEST_PROTOCOL_ID,
        );
        const form_ = `${what} (as ${typeof form})`;
        assertStrictEquals(
          out[0] >> 4,
          v.sequence_bytes,
          `${form_}: prefix sequence bytes`,
        );
        assertStrictEquals(
          out[0] & 0xf,
          CONNECTION_DISCONNECT_PACKET,
          `${form_}: prefix type`,
        );
        assertBytes(
          out.subarray(1, 1 + (out[0] >> 4)),
          encoded,
          `${form_}: encoded`,
        );
        assertStrictEquals(
          bytes,
          1 + encoded.length + 16,
          `${form_}: packet bytes`,
        );
        // And back.
        const read = readPacket(out.subarray(0, bytes), {
          protocolId: SEQUENCE_TEST_PROTOCOL_ID,
          readKey: SEQUENCE_TEST_KEY,
          allowedPackets: ALL_PACKET_TYPES,
          replayProtection: createReplayProtection(),
        });
        if (typeof read === "number") {
          fail(`${form_}: readPacket dropped it (${read})`);
        }
        if (read.type !== CONNECTION_DISCONNECT_PACKET) {
          fail(`${form_}: read type ${read.type}`);
        }
        assertStrictEquals(
          bigintSequence(read.sequence),
          sequence,
          `${form_}: read sequence`,
        );
      }
    },
  );

  eachVector<ConnectTokenVector>(
    "connect_tokens",
    (v) => v.name,
    (v, what) => {
      checkKeys(v, [
        "name",
        "protocol_id",
        "create_timestamp",
        "expire_timestamp",
        "timeout_seconds",
        "client_id",
        "server_addresses",
        "internal_server_addresses",
        "private_key",
        "nonce",
        "client_to_server_key",
        "server_to_client_key",
        "user_data",
        "private_plain",
        "private_encrypted",
        "connect_token",
        "connection_request_packet",
      ], what);
      const protocolId = u64(v.protocol_id);
      const createTimestamp = u64(v.create_timestamp);
      const expireTimestamp = u64(v.expire_timestamp);
      const clientId = u64(v.client_id);
      const privateKey = hex(v.private_key);
      const nonce = hex(v.nonce);
      const clientToServerKey = hex(v.client_to_server_key);
      const serverToClientKey = hex(v.server_to_client_key);
      const userData = hex(v.user_data);
      const publicAddresses: Address[] = v.server_addresses.map(parseAddress);
      const internalAddresses: Address[] =
        (v.internal_server_addresses ?? v.server_addresses)
          .map(parseAddress);
      const privatePlain = hex(v.private_plain);
      const privateEncrypted = hex(v.private_encrypted);
      const connectToken = hex(v.connect_token);
      const requestPacket = hex(v.connection_request_packet);

      // Encode.
      const generated = generateConnectToken({
        serverAddresses: v.server_addresses,
        internalServerAddresses: v.internal_server_addresses,
        expireSeconds: expireTimestamp === 0xffffffffffffffffn
          ? -1
          : Number(expireTimestamp - createTimestamp),
        timeoutSeconds: v.timeout_seconds,
        clientId,
        protocolId,
        privateKey,
        userData,
        now: Number(createTimestamp),
        nonce,
        clientToServerKey,
        serverToClientKey,
      });
      assertBytes(
        generated,
        connectToken,
        `${what}: generateConnectToken -> connect_token`,
      );

      const plain = writePrivateConnectToken({
        clientId,
        timeoutSeconds: v.timeout_seconds,
        serverAddresses: internalAddresses,
        clientToServerKey,
        serverToClientKey,
        userData,
      });
      assertBytes(
        plain,
        privatePlain,
        `${what}: writePrivateConnectToken -> private_plain`,
      );

      const encrypted = privatePlain.slice();
      encryptPrivateConnectToken(
        encrypted,
        protocolId,
        expireTimestamp,
        nonce,
        privateKey,
      );
      assertBytes(
        encrypted,
        privateEncrypted,
        `${what}: encryptPrivateConnectToken -> private_encrypted`,
      );

      const request = new Uint8Array(CONNECTION_REQUEST_PACKET_BYTES);
      assertStrictEquals(
        writeConnectionRequestPacket(request, {
          type: CONNECTION_REQUEST_PACKET,
          protocolId,
          expireTimestamp,
          nonce,
          encryptedPrivateToken: privateEncrypted,
        }),
        CONNECTION_REQUEST_PACKET_BYTES,
      );
      assertBytes(
        request,
        requestPacket,
        `${what}: writeConnectionRequestPacket -> connection_request_packet`,
      );

      // Decode the public token.
      const token = readConnectToken(connectToken);
      if (!token) fail(`${what}: readConnectToken rejected connect_token`);
      assertStrictEquals(token.protocolId, protocolId, `${what}: protocol id`);
      assertStrictEquals(
        token.createTimestamp,
        createTimestamp,
        `${what}: create timestamp`,
      );
      assertStrictEquals(
        token.expireTimestamp,
        expireTimestamp,
        `${what}: expire timestamp`,
      );
      assertStrictEquals(
        token.timeoutSeconds,
        v.timeout_seconds,
        `${what}: timeout`,
      );
      assertBytes(token.nonce, nonce, `${what}: nonce`);
      assertBytes(
        token.encryptedPrivateToken,
        privateEncrypted,
        `${what}: encrypted private token`,
      );
      assertBytes(
        token.clientToServerKey,
        clientToServerKey,
        `${what}: client-to-server key`,
      );
      assertBytes(
        token.serverToClientKey,
        serverToClientKey,
        `${what}: server-to-client key`,
      );
      assertEquals(
        token.serverAddresses,
        publicAddresses,
        `${what}: server addresses`,
      );

      // Decrypt and decode the private token.
      const decrypted = privateEncrypted.slice();
      assert(
        decryptPrivateConnectToken(
          decrypted,
          protocolId,
          expireTimestamp,
          nonce,
          privateKey,
        ),
        `${what}: decryptPrivateConnectToken failed`,
      );
      assertBytes(
        decrypted,
        privatePlain,
        `${what}: decryptPrivateConnectToken -> private_plain`,
      );
      const privateToken = readPrivateConnectToken(decrypted);
      if (!privateToken) {
        fail(`${what}: readPrivateConnectToken rejected private_plain`);
      }
      assertStrictEquals(
        privateToken.clientId,
        clientId,
        `${what}: private client id`,
      );
      assertStrictEquals(
        privateToken.timeoutSeconds,
        v.timeout_seconds,
        `${what}: private timeout`,
      );
      assertEquals(
        privateToken.serverAddresses,
        internalAddresses,
        `${what}: private addresses`,
      );
      assertBytes(
        privateToken.clientToServerKey,
        clientToServerKey,
        `${what}: private c2s key`,
      );
      assertBytes(
        privateToken.serverToClientKey,
        serverToClientKey,
        `${what}: private s2c key`,
      );
      assertBytes(
        privateToken.userData,
        userData,
        `${what}: private user data`,
      );

      // Decode the connection request as a server at the token's create time.
      const packet = readPacket(requestPacket, {
        protocolId,
        allowedPackets: packetTypeMask(CONNECTION_REQUEST_PACKET),
        privateKey,
        currentTimestamp: Number(createTimestamp),
      });
      if (typeof packet === "number") {
        fail(`${what}: readPacket dropped the request (${packet})`);
      }
      if (packet.type !== CONNECTION_REQUEST_PACKET) {
        fail(`${what}: read type ${packet.type}`);
      }
      assertStrictEquals(
        packet.protocolId,
        protocolId,
        `${what}: request protocol id`,
      );
      assertStrictEquals(
        packet.expireTimestamp,
        expireTimestamp,
        `${what}: request expire`,
      );
      assertBytes(packet.nonce, nonce, `${what}: request nonce`);
      assertBytes(
        packet.encryptedPrivateToken,
        privateEncrypted,
        `${what}: request token`,
      );
      if (!packet.privateToken) {
        fail(`${what}: request has no decrypted private token`);
      }
      assertBytes(
        packet.privateToken,
        privatePlain,
        `${what}: request private token`,
      );
    },
  );

  eachVector<ChallengeTokenVector>(
    "challenge_tokens",
    (v) => `client ${v.client_id} sequence ${v.sequence}`,
    (v, what) => {
      checkKeys(v, [
        "client_id",
        "sequence",
        "key",
        "user_data",
        "plain",
        "encrypted",
      ], what);
      const clientId = u64(v.client_id);
      const sequence = u64(v.sequence);
      const key = hex(v.key);
      const userData = hex(v.user_data);
      const plain = hex(v.plain);
      const encrypted = hex(v.encrypted);

      assertBytes(
        writeChallengeToken({ clientId, userData }),
        plain,
        `${what}: writeChallengeToken`,
      );
      const buffer = plain.slice();
      encryptChallengeToken(buffer, sequence, key);
      assertBytes(buffer, encrypted, `${what}: encryptChallengeToken`);

      const decrypted = encrypted.slice();
      assert(
        decryptChallengeToken(decrypted, sequence, key),
        `${what}: decryptChallengeToken failed`,
      );
      assertBytes(decrypted, plain, `${what}: decryptChallengeToken -> plain`);
      const token = readChallengeToken(decrypted);
      if (!token) fail(`${what}: readChallengeToken rejected it`);
      assertStrictEquals(token.clientId, clientId, `${what}: client id`);
      assertBytes(token.userData, userData, `${what}: user data`);
    },
  );

  /** The packet a vector describes, from its type and fields. */
  function packetOf(v: PacketVector, what: string): EncryptedPacket {
    const f = v.fields;
    const need = <T>(value: T | undefined, name: string): T => {
      if (value === undefined) fail(`${what}: fields.${name} missing`);
      return value;
    };
    let allowed: string[];
    let packet: EncryptedPacket;
    switch (v.type) {
      case CONNECTION_DENIED_PACKET:
      case CONNECTION_DISCONNECT_PACKET:
        allowed = [];
        packet = { type: v.type };
        break;
      case CONNECTION_CHALLENGE_PACKET:
      case CONNECTION_RESPONSE_PACKET:
        allowed = ["challenge_token_sequence", "challenge_token_data"];
        packet = {
          type: v.type,
          challengeTokenSequence: u64(
            need(f.challenge_token_sequence, "challenge_token_sequence"),
          ),
          challengeTokenData: hex(
            need(f.challenge_token_data, "challenge_token_data"),
          ),
        };
        break;
      case CONNECTION_KEEP_ALIVE_PACKET:
        allowed = ["client_index", "max_clients"];
        packet = {
          type: v.type,
          clientIndex: need(f.client_index, "client_index"),
          maxClients: need(f.max_clients, "max_clients"),
        };
        break;
      case CONNECTION_PAYLOAD_PACKET:
        allowed = ["payload"];
        packet = { type: v.type, payload: hex(need(f.payload, "payload")) };
        break;
      default:
        fail(`${what}: type ${v.type} is not an encrypted packet type`);
    }
    checkKeys(f, allowed, `${what}: fields`);
    return packet;
  }

  eachVector<PacketVector>(
    "packets",
    (v) => v.name,
    (v, what) => {
      checkKeys(v, [
        "name",
        "type",
        "sequence",
        "protocol_id",
        "fields",
        "key",
        "packet",
      ], what);
      const sequence = u64(v.sequence);
      const protocolId = u64(v.protocol_id);
      const key = hex(v.key);
      const expected = hex(v.packet);
      const packet = packetOf(v, what);

      // Encode.
      const out = new Uint8Array(MAX_PACKET_BYTES);
      const bytes = writePacket(out, packet, sequence, key, protocolId);
      assertBytes(
        out.subarray(0, bytes),
        expected,
        `${what}: writePacket -> packet`,
      );
      if (packet.type === CONNECTION_PAYLOAD_PACKET) {
        const payloadBytes = writePayloadPacket(
          out,
          sequence,
          key,
          protocolId,
          packet.payload,
        );
        assertBytes(
          out.subarray(0, payloadBytes),
          expected,
          `${what}: writePayloadPacket`,
        );
      }

      // Decode, with replay protection as a connection would have it.
      const read = readPacket(expected, {
        protocolId,
        readKey: key,
        allowedPackets: ALL_PACKET_TYPES,
        replayProtection: createReplayProtection(),
      });
      if (typeof read === "number") {
        fail(`${what}: readPacket dropped it (${read})`);
      }
      if (read.type === CONNECTION_REQUEST_PACKET) {
        fail(`${what}: read as a connection request`);
      }
      assertStrictEquals(read.type, v.type, `${what}: type`);
      assertStrictEquals(
        bigintSequence(read.sequence),
        sequence,
        `${what}: sequence`,
      );
      switch (read.type) {
        case CONNECTION_CHALLENGE_PACKET:
        case CONNECTION_RESPONSE_PACKET:
          if (packet.type !== read.type) fail("unreachable");
          assertStrictEquals(
            read.challengeTokenSequence,
            packet.challengeTokenSequence,
            `${what}: challenge token sequence`,
          );
          assertBytes(
            read.challengeTokenData,
            packet.challengeTokenData,
            `${what}: challenge token data`,
          );
          break;
        case CONNECTION_KEEP_ALIVE_PACKET:
          if (packet.type !== read.type) fail("unreachable");
          assertStrictEquals(
            read.clientIndex,
            packet.clientIndex,
            `${what}: client index`,
          );
          assertStrictEquals(
            read.maxClients,
            packet.maxClients,
            `${what}: max clients`,
          );
          break;
        case CONNECTION_PAYLOAD_PACKET:
          if (packet.type !== read.type) fail("unreachable");
          assertBytes(read.payload, packet.payload, `${what}: payload`);
          break;
        default:
          assertEquals(
            Object.keys(read).sort(),
            ["sequence", "type"],
            `${what}: no fields`,
          );
      }
    },
  );

  test("conformance: summary", () => {
    const unknown = Object.keys(vectors).filter((key) =>
      Array.isArray(vectors[key]) && !KNOWN_SECTIONS.includes(key)
    );
    if (unknown.length > 0) {
      fail(`unknown vector sections, not checked: ${unknown.join(", ")}`);
    }
    const total = Object.values(checked).reduce((sum, count) => sum + count, 0);
    console.log(
      `conformance: checked ${total} vectors with the ${aeadBackend().name} AEAD backend from ${
        String(location)
      } (${
        Object.entries(checked).map(([name, count]) => `${name} ${count}`).join(
          ", ",
        )
      })`,
    );
    assert(expectedTotal > 0, "the vectors file has no vectors");
    assertStrictEquals(total, expectedTotal, "vectors checked");
  });
}
