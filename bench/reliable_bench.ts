/**
 * reliable.ts benchmarks, each group against a baseline in the same run.
 *
 * - `reliable header`: the baseline is netcode's `writePayloadPacket` of a
 *   100-byte payload (prefix, sequence, ChaCha20-Poly1305), the packet a
 *   reliable header rides in. Measured: `writePacketHeader` and
 *   `readPacketHeader` (which returns a new object), `sendPacket` of 100
 *   bytes (header, copy, the transmit callback), `receivePacket` of 100
 *   bytes (parse, window checks, the process callback, entering it), and a
 *   full exchange: A sends 100 bytes, B receives, B sends, A receives and
 *   applies the ack.
 * - `reliable 16 KB`: the baseline copies 16384 bytes into a buffer
 *   (`Uint8Array.set`), the floor of any fragmenter. Measured: `sendPacket`
 *   of 16384 bytes (16 fragments to a callback that drops them), the
 *   receiver reassembling those 16 fragments and taking the packet, and, for
 *   scale, encrypting 16 netcode payload packets of 1024 bytes, which is what
 *   carrying the fragments over netcode costs.
 *
 * - `channel message`: the baseline is 10 netcode `writePayloadPacket`s of
 *   100 bytes, one bare payload per message. Measured, over a lossless
 *   in-memory link between two message connections (channel.ts), per
 *   iteration: 10 messages of 100 bytes queued with `sendMessage`, packed
 *   and sent (`sendMessagePackets`: one reliable packet), received and
 *   delivered (`receiveMessagePacket`, 10 `receiveMessage`), and the peer's
 *   ack packet sent back and applied, on a reliable-ordered channel and on
 *   an unreliable one. Divide by 10 for the cost per message. Netcode's own
 *   encryption of the packet is not included (it is the baseline's).
 *
 * Receives go through rings of datagrams with rising sequences, so every one
 * is new to the receiver: 65536 regular packets (the ring wraps with the
 * sequence, so it never goes stale), 256 fragmented packets (the receiver is
 * reset, included in the time, when the ring starts over).
 *
 * Run with `deno bench -A bench/reliable_bench.ts`.
 *
 * @module
 */

import {
  createMessageConnection,
  type MessageConnection,
  receiveMessage,
  receiveMessagePacket,
  sendMessage,
  sendMessagePackets,
  updateMessageConnection,
} from "../channel.ts";
import { generateKey } from "../crypto.ts";
import { MAX_PACKET_BYTES, writePayloadPacket } from "../packet.ts";
import {
  clearAcks,
  createReliableEndpoint,
  readPacketHeader,
  receivePacket,
  type ReliableEndpoint,
  reset,
  sendPacket,
  writePacketHeader,
} from "../reliable.ts";

const PROTOCOL_ID = 0x1122334455667788n;
const key = generateKey();
const netcodeOut = new Uint8Array(MAX_PACKET_BYTES);
const payload100 = new Uint8Array(100).map((_, i) => i * 7);
const payload1024 = new Uint8Array(1024).map((_, i) => i * 3);
const payload16k = new Uint8Array(16384).map((_, i) => i * 5);
let sink = 0;

function endpoint(
  transmit: (sequence: number, datagram: Uint8Array) => void = () => {},
): ReliableEndpoint {
  return createReliableEndpoint({}, 0, {
    transmit,
    process: (_sequence, payload) => {
      sink += payload.length;
      return true;
    },
  });
}

/** Datagrams of `count` packets of `payload`, from a sender that hears back. */
function ring(count: number, payload: Uint8Array): Uint8Array[][] {
  const packets: Uint8Array[][] = [];
  let current: Uint8Array[] = [];
  const sender = endpoint((_s, d) => current.push(d.slice()));
  let reply: Uint8Array = new Uint8Array();
  const peer = endpoint((_s, d) => (reply = d.slice()));
  for (let i = 0; i < count; i++) {
    current = [];
    sendPacket(sender, payload);
    packets.push(current);
    // The peer answers, so the sender's headers carry full ack bits.
    for (const datagram of current) receivePacket(peer, datagram);
    sendPacket(peer, payload100.subarray(0, 8));
    receivePacket(sender, reply);
    clearAcks(sender);
  }
  return packets;
}

// ---------------------------------------------------------------------------
// reliable header

const headerBuffer = new Uint8Array(9);
const header = new Uint8Array([0x22, 0x34, 0x12, 0x01, 0xfe, 0x01, 0x02]);

Deno.bench({
  name: "writePayloadPacket 100 (netcode, encrypts)",
  group: "reliable header",
  baseline: true,
  fn() {
    writePayloadPacket(netcodeOut, 1000, key, PROTOCOL_ID, payload100);
  },
});

let headerSequence = 0;
Deno.bench({
  name: "writePacketHeader",
  group: "reliable header",
  fn() {
    headerSequence = (headerSequence + 1) & 0xffff;
    sink += writePacketHeader(
      headerBuffer,
      0,
      headerSequence,
      (headerSequence - 3) & 0xffff,
      0xfffffffe,
    );
  },
});

Deno.bench({
  name: "readPacketHeader",
  group: "reliable header",
  fn() {
    sink += readPacketHeader(header)!.headerBytes;
  },
});

const sender100 = endpoint();
Deno.bench({
  name: "sendPacket 100",
  group: "reliable header",
  fn() {
    sendPacket(sender100, payload100);
  },
});

const regular = ring(65536, payload100).map((datagrams) => datagrams[0]);
const receiver100 = endpoint();
let regularNext = 0;
Deno.bench({
  name: "receivePacket 100",
  group: "reliable header",
  fn() {
    receivePacket(receiver100, regular[regularNext]);
    regularNext = (regularNext + 1) & 0xffff;
  },
});

{
  let toB: Uint8Array = new Uint8Array();
  let toA: Uint8Array = new Uint8Array();
  const a = endpoint((_s, d) => (toB = d));
  const b = endpoint((_s, d) => (toA = d));
  Deno.bench({
    name: "exchange 100 both ways (2 sends, 2 receives, an ack)",
    group: "reliable header",
    fn() {
      sendPacket(a, payload100);
      receivePacket(b, toB);
      sendPacket(b, payload100);
      receivePacket(a, toA);
      clearAcks(a);
      clearAcks(b);
    },
  });
}

// ---------------------------------------------------------------------------
// reliable 16 KB

const copyBuffer = new Uint8Array(16384 + 32);
Deno.bench({
  name: "copy 16 KB (Uint8Array.set)",
  group: "reliable 16 KB",
  baseline: true,
  fn() {
    copyBuffer.set(payload16k, 1);
  },
});

const fragmenter = endpoint();
Deno.bench({
  name: "sendPacket 16 KB (16 fragments)",
  group: "reliable 16 KB",
  fn() {
    sendPacket(fragmenter, payload16k);
  },
});

const fragmented = ring(256, payload16k);
const reassembler = endpoint();
let fragmentedNext = 0;
Deno.bench({
  name: "reassemble 16 KB (receive 16 fragments)",
  group: "reliable 16 KB",
  fn() {
    if (fragmentedNext === 0) reset(reassembler);
    for (const datagram of fragmented[fragmentedNext]) {
      receivePacket(reassembler, datagram);
    }
    fragmentedNext = (fragmentedNext + 1) & 255;
  },
});

Deno.bench({
  name: "writePayloadPacket 1024 x 16 (netcode, for scale)",
  group: "reliable 16 KB",
  fn() {
    for (let i = 0; i < 16; i++) {
      writePayloadPacket(netcodeOut, 1000 + i, key, PROTOCOL_ID, payload1024);
    }
  },
});

// ---------------------------------------------------------------------------
// channel message

Deno.bench({
  name: "writePayloadPacket 100 x 10 (netcode, one payload per message)",
  group: "channel message",
  baseline: true,
  fn() {
    for (let i = 0; i < 10; i++) {
      writePayloadPacket(netcodeOut, 1000 + i, key, PROTOCOL_ID, payload100);
    }
  },
});

/** Two message connections over a lossless link; `round` moves 10 messages. */
function messageLink(channel: 0 | 1) {
  let toB: Uint8Array[] = [];
  let toA: Uint8Array[] = [];
  const config = {
    channels: [{ kind: "reliable-ordered" }, { kind: "unreliable-unordered" }],
  } as const;
  const a: MessageConnection = createMessageConnection(
    config,
    0,
    (d) => toB.push(d.slice()),
  );
  const b: MessageConnection = createMessageConnection(
    config,
    0,
    (d) => toA.push(d.slice()),
  );
  let time = 0;
  return {
    b,
    delivered: 0,
    round() {
      time += 1 / 60;
      updateMessageConnection(a, time);
      updateMessageConnection(b, time);
      for (let i = 0; i < 10; i++) sendMessage(a, channel, payload100);
      sendMessagePackets(a);
      for (const datagram of toB) receiveMessagePacket(b, datagram);
      toB = [];
      while (receiveMessage(b, channel)) this.delivered++;
      sendMessagePackets(b); // the ack
      for (const datagram of toA) receiveMessagePacket(a, datagram);
      toA = [];
    },
  };
}
const reliableLink = messageLink(0);
const unreliableLink = messageLink(1);

Deno.bench({
  name: "reliable-ordered: 10 messages of 100 bytes sent, delivered, acked",
  group: "channel message",
  fn() {
    reliableLink.round();
  },
});

Deno.bench({
  name: "unreliable-unordered: 10 messages of 100 bytes sent, delivered",
  group: "channel message",
  fn() {
    unreliableLink.round();
  },
});

globalThis.addEventListener("unload", () => {
  for (const link of [reliableLink, unreliableLink]) {
    const c = link.b.counters;
    if (c.packetsMalformed + c.packetsOutOfWindow > 0) {
      console.error("reliable bench: a message link dropped packets", c);
    }
  }
  // The rings must have been taken as new packets, or the figures lie.
  for (
    const [name, receiver] of [["100", receiver100], [
      "16 KB",
      reassembler,
    ]] as const
  ) {
    const c = receiver.counters;
    if (
      c.packetsStale + c.packetsDuplicate + c.packetsInvalid +
          c.fragmentsInvalid > 0
    ) {
      console.error(`reliable bench: the ${name} receiver dropped packets`, c);
    }
  }
  if (sink === 0.5) console.log(sink); // keep the work observable
});
