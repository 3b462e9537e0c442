// Randomized: 100,000 random and mutated datagrams through readPacket, as a
// server and as a client. Seeded, so every run reads the same datagrams;
// set NETCODE_FUZZ_SEED to explore other seeds and NETCODE_FUZZ_COUNT for
// more or fewer.
//
// Nothing may throw, and nothing may be accepted unless it is byte for byte
// one of the valid originals the mutations started from.

import {
  CHALLENGE_TOKEN_BYTES,
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
  MAX_PAYLOAD_BYTES,
  PACKET_DROP_REASON_NAMES,
  packetTypeMask,
  type ReadPacket,
  readPacket,
  type ReadPacketOptions,
  type Sequence,
  writeConnectionRequestPacket,
  writePacket,
} from "../packet.ts";
import { generateConnectToken, readConnectToken } from "../token.ts";
import { assert, assertGreater, assertStrictEquals, fail } from "./_assert.ts";
import { mulberry32, pattern, toHex } from "./_vectors.ts";

function envNumber(name: string, fallback: number): number {
  try {
    const value = Deno.env.get(name);
    return value === undefined || value === "" ? fallback : Number(value);
  } catch {
    return fallback;
  }
}

const SEED = envNumber("NETCODE_FUZZ_SEED", 0x6e6574);
const COUNT = envNumber("NETCODE_FUZZ_COUNT", 100_000);
const MAX_DATAGRAM = 1400;

const PROTOCOL_ID = 0x1122334455667788n;
const NOW = 1_700_000_000;
const PRIVATE_KEY = pattern(32, 13);
const CLIENT_TO_SERVER_KEY = pattern(32, 11);
const SERVER_TO_CLIENT_KEY = pattern(32, 12);

type Role = "server" | "client";

/** A valid datagram, and the roles that must accept it. */
interface Original {
  bytes: Uint8Array;
  type: number;
  validFor: Role | undefined;
}

function buildOriginals(random: () => number): Original[] {
  const originals: Original[] = [];
  const out = new Uint8Array(MAX_PACKET_BYTES);

  // Connection requests, from real connect tokens.
  for (let i = 0; i < 4; i++) {
    const token = readConnectToken(generateConnectToken({
      serverAddresses: i % 2
        ? ["[::1]:40000", "10.0.0.1:1"]
        : ["127.0.0.1:40000"],
      clientId: BigInt(i + 1),
      protocolId: PROTOCOL_ID,
      privateKey: PRIVATE_KEY,
      now: NOW,
      expireSeconds: 30 + i,
      nonce: pattern(24, 40 + i),
      clientToServerKey: CLIENT_TO_SERVER_KEY,
      serverToClientKey: SERVER_TO_CLIENT_KEY,
    }))!;
    const request = new Uint8Array(CONNECTION_REQUEST_PACKET_BYTES);
    writeConnectionRequestPacket(request, {
      type: CONNECTION_REQUEST_PACKET,
      protocolId: token.protocolId,
      expireTimestamp: token.expireTimestamp,
      nonce: token.nonce,
      encryptedPrivateToken: token.encryptedPrivateToken,
    });
    originals.push({
      bytes: request,
      type: CONNECTION_REQUEST_PACKET,
      validFor: "server",
    });
  }

  const challengeToken = pattern(CHALLENGE_TOKEN_BYTES, 7);
  const packetsOf = (types: number[]): EncryptedPacket[] =>
    types.flatMap((type): EncryptedPacket[] => {
      switch (type) {
        case CONNECTION_DENIED_PACKET:
        case CONNECTION_DISCONNECT_PACKET:
          return [{ type }];
        case CONNECTION_CHALLENGE_PACKET:
        case CONNECTION_RESPONSE_PACKET:
          return [{
            type,
            challengeTokenSequence: 12345n,
            challengeTokenData: challengeToken,
          }];
        case CONNECTION_KEEP_ALIVE_PACKET:
          return [{ type, clientIndex: 3, maxClients: 64 }];
        default:
          return [
            1,
            2,
            100,
            1 + (random() % MAX_PAYLOAD_BYTES),
            MAX_PAYLOAD_BYTES,
          ].map((
            bytes,
          ) => ({
            type: CONNECTION_PAYLOAD_PACKET,
            payload: pattern(bytes, bytes),
          }));
      }
    });
  const sequences: Sequence[] = [
    0,
    1,
    255,
    256,
    70000,
    2 ** 40 + 3,
    2n ** 63n + 5n,
  ];
  let next = 0;
  const add = (
    types: number[],
    key: Uint8Array,
    validFor: Role | undefined,
  ) => {
    for (const packet of packetsOf(types)) {
      const sequence = sequences[next++ % sequences.length];
      const bytes = out.slice(
        0,
        writePacket(out, packet, sequence, key, PROTOCOL_ID),
      );
      originals.push({ bytes, type: packet.type, validFor });
    }
  };
  // What a server reads, under the client-to-server key, and the reverse.
  add([3, 4, 5, 6, 3, 4, 6], CLIENT_TO_SERVER_KEY, "server");
  add([1, 2, 4, 5, 6, 1, 2], SERVER_TO_CLIENT_KEY, "client");
  // Valid-looking packets neither side may accept: the wrong key or type.
  add([4, 5, 6], pattern(32, 99), undefined);
  add([1, 2], CLIENT_TO_SERVER_KEY, undefined); // a server never accepts 1 or 2
  add([3], SERVER_TO_CLIENT_KEY, undefined); // a client never accepts 3
  return originals;
}

/** Fills `out` with PRNG bytes. */
function fill(random: () => number, out: Uint8Array): Uint8Array {
  for (let i = 0; i < out.length; i += 4) {
    const value = random();
    out[i] = value;
    if (i + 1 < out.length) out[i + 1] = value >>> 8;
    if (i + 2 < out.length) out[i + 2] = value >>> 16;
    if (i + 3 < out.length) out[i + 3] = value >>> 24;
  }
  return out;
}

/** One to three mutations of an original (occasionally none). */
function mutate(
  random: () => number,
  originals: Original[],
  source: Uint8Array,
): Uint8Array {
  let bytes = source.slice();
  const count = random() % 50 === 0 ? 0 : 1 + (random() % 3);
  for (let m = 0; m < count; m++) {
    switch (random() % 8) {
      case 0: { // bit flips
        if (bytes.length === 0) break;
        const flips = 1 + (random() % 4);
        for (let f = 0; f < flips; f++) {
          const bit = random() % (bytes.length * 8);
          bytes[bit >> 3] ^= 1 << (bit & 7);
        }
        break;
      }
      case 1: // truncation
        bytes = bytes.slice(0, random() % (bytes.length + 1));
        break;
      case 2: { // extension
        const extra = fill(random, new Uint8Array(1 + (random() % 200)));
        const longer = new Uint8Array(
          Math.min(MAX_DATAGRAM, bytes.length + extra.length),
        );
        longer.set(bytes.subarray(0, longer.length));
        longer.set(
          extra.subarray(0, longer.length - bytes.length),
          bytes.length,
        );
        bytes = longer;
        break;
      }
      case 3: // prefix rewrite: any byte, or just its type or sequence nibble
        if (bytes.length === 0) break;
        switch (random() % 3) {
          case 0:
            bytes[0] = random() & 0xff;
            break;
          case 1:
            bytes[0] = (bytes[0] & 0xf0) | (random() & 0xf);
            break;
          default:
            bytes[0] = (bytes[0] & 0x0f) | ((random() & 0xf) << 4);
        }
        break;
      case 4: // byte overwrite
        if (bytes.length === 0) break;
        bytes[random() % bytes.length] = random() & 0xff;
        break;
      case 5: // sequence rewrite
        for (let i = 1; i < Math.min(bytes.length, 1 + (bytes[0] >> 4)); i++) {
          bytes[i] = random() & 0xff;
        }
        break;
      case 6: { // splice: the head of this one, the tail of another
        const other = originals[random() % originals.length].bytes;
        const cut = random() % (Math.min(bytes.length, other.length) + 1);
        const spliced = new Uint8Array(other.length);
        spliced.set(bytes.subarray(0, cut));
        spliced.set(other.subarray(cut), cut);
        bytes = spliced;
        break;
      }
      default: { // MAC or tail damage
        if (bytes.length === 0) break;
        const from = Math.max(0, bytes.length - 16);
        bytes[from + (random() % (bytes.length - from))] ^= 1 +
          (random() % 255);
      }
    }
  }
  return bytes;
}

Deno.test(`readPacket() survives ${COUNT} random and mutated datagrams as server and client (seed ${SEED})`, () => {
  const random = mulberry32(SEED);
  const originals = buildOriginals(random);
  const validFor: Record<Role, Map<string, number>> = {
    server: new Map(),
    client: new Map(),
  };
  for (const original of originals) {
    if (original.validFor) {
      validFor[original.validFor].set(toHex(original.bytes), original.type);
    }
  }
  const serverOptions: ReadPacketOptions = {
    protocolId: PROTOCOL_ID,
    allowedPackets: packetTypeMask(0, 3, 4, 5, 6),
    privateKey: PRIVATE_KEY,
    readKey: CLIENT_TO_SERVER_KEY,
    currentTimestamp: NOW,
  };
  const serverReplayOptions: ReadPacketOptions = {
    ...serverOptions,
    replayProtection: createReplayProtection(),
  };
  const clientOptions: ReadPacketOptions = {
    protocolId: PROTOCOL_ID,
    allowedPackets: packetTypeMask(1, 2, 4, 5, 6),
    readKey: SERVER_TO_CLIENT_KEY,
  };

  const failures: string[] = [];
  const drops = new Array<number>(PACKET_DROP_REASON_NAMES.length).fill(0);
  const accepted: Record<Role, number> = { server: 0, client: 0 };
  let mutatedCount = 0;
  const started = performance.now();

  const check = (
    role: Role,
    datagram: Uint8Array,
    options: ReadPacketOptions,
    i: number,
  ) => {
    let result: ReadPacket | number;
    try {
      result = readPacket(datagram, options);
    } catch (error) {
      failures.push(
        `#${i} ${role}: threw ${String(error)} on ${
          toHex(datagram.subarray(0, 40))
        }…`,
      );
      return;
    }
    if (typeof result === "number") {
      drops[result]++;
      return;
    }
    const type = validFor[role].get(toHex(datagram));
    if (type === undefined) {
      failures.push(
        `#${i} ${role}: accepted a modified datagram ${
          toHex(datagram.subarray(0, 40))
        }…`,
      );
    } else if (type !== result.type) {
      failures.push(`#${i} ${role}: read type ${result.type}, sent as ${type}`);
    } else {
      accepted[role]++;
    }
  };

  for (let i = 0; i < COUNT; i++) {
    const kind = random() % 100;
    let datagram: Uint8Array;
    if (kind < 20) {
      datagram = fill(random, new Uint8Array(random() % (MAX_DATAGRAM + 1)));
    } else if (kind < 30) {
      // Random body behind a plausible prefix.
      datagram = fill(
        random,
        new Uint8Array(18 + (random() % (MAX_PACKET_BYTES - 17))),
      );
      datagram[0] = ((random() % 10) << 4) | (random() % 8);
    } else {
      datagram = mutate(
        random,
        originals,
        originals[random() % originals.length].bytes,
      );
      mutatedCount++;
    }
    // Half the server reads go through replay protection that persists
    // across the run, half through none, so the replay check does not hide
    // the decryption path.
    check("server", datagram, i % 2 ? serverOptions : serverReplayOptions, i);
    check("client", datagram, clientOptions, i);
    if (failures.length >= 10) break;
  }
  const seconds = (performance.now() - started) / 1000;

  if (failures.length > 0) fail(`seed ${SEED}:\n${failures.join("\n")}`);
  console.log(
    `fuzz: ${COUNT} datagrams (${mutatedCount} mutated) x 2 roles in ${
      seconds.toFixed(2)
    } s; ` +
      `accepted unmodified originals: server ${accepted.server}, client ${accepted.client}; drops: ${
        PACKET_DROP_REASON_NAMES.map((name, reason) =>
          `${name} ${drops[reason]}`
        ).join(", ")
      }`,
  );
  // The run must have exercised the accepting path and most drop reasons.
  if (COUNT >= 10_000) {
    assertGreater(accepted.server, 0);
    assertGreater(accepted.client, 0);
    for (const [reason, name] of PACKET_DROP_REASON_NAMES.entries()) {
      // Both roles always have their keys, and a wrong size for the type
      // takes a packet that authenticates, which no mutation makes.
      if (name === "noKey" || name === "badSize") continue;
      assertGreater(drops[reason], 0, `no datagram was dropped as ${name}`);
    }
  }
  assert(seconds < 120, `took ${seconds} s`);
  assertStrictEquals(failures.length, 0);
});
