/**
 * Internal: message channels (channel.ts) carried in netcode payloads, for
 * the server and client's `messages` option.
 *
 * With messages on, the first byte of every netcode payload says what
 * follows: {@linkcode RAW_PAYLOAD_TAG} for a raw payload the game sent with
 * `send()` (so raw payloads are at most 1199 bytes), or
 * {@linkcode MESSAGE_PACKET_TAG} for a reliable 1.0 datagram of the message
 * layer. Both ends must turn messages on with the same config; a payload
 * with another first byte is dropped and counted.
 *
 * @module
 */

import {
  createMessageConnection,
  type MessageConfig,
  type MessageConnection,
  receiveMessagePacket,
  type ResolvedMessageConfig,
  resolveMessageConfig,
} from "./channel.ts";
import { MAX_PAYLOAD_BYTES } from "./packet.ts";

/** First payload byte: a raw payload follows. */
export const RAW_PAYLOAD_TAG = 0;
/** First payload byte: a message-layer datagram follows. */
export const MESSAGE_PACKET_TAG = 1;
/** Largest raw payload while messages are on. */
export const MAX_RAW_PAYLOAD_BYTES = MAX_PAYLOAD_BYTES - 1;

/** Bytes of a reliable 1.0 packet header, at most. */
const PACKET_HEADER_BYTES = 9;
/** Bytes of a reliable 1.0 fragment header. */
const FRAGMENT_HEADER_BYTES = 5;

/**
 * Checks a `messages` option and that every datagram the layer sends fits
 * a netcode payload after the tag byte.
 *
 * @param config The option.
 * @param what "create server" or "create client", for errors.
 * @returns The resolved config.
 */
export function resolveNetcodeMessageConfig(
  config: MessageConfig,
  what: string,
): ResolvedMessageConfig {
  let resolved: ResolvedMessageConfig;
  try {
    resolved = resolveMessageConfig(config);
  } catch (error) {
    const message = (error as Error).message.replace(
      /^Cannot create message connection: /,
      `Cannot ${what}: messages: `,
    );
    throw error instanceof RangeError
      ? new RangeError(message)
      : new TypeError(message);
  }
  const room = MAX_RAW_PAYLOAD_BYTES;
  const fragmentAbove = resolved.reliable.fragmentAbove ?? 1024;
  const fragmentSize = resolved.reliable.fragmentSize ?? 1024;
  if (fragmentAbove + PACKET_HEADER_BYTES > room) {
    throw new RangeError(
      `Cannot ${what}: messages: reliable.fragmentAbove ${fragmentAbove} exceeds the ${
        room - PACKET_HEADER_BYTES
      } bytes a netcode payload has room for`,
    );
  }
  if (fragmentSize + PACKET_HEADER_BYTES + FRAGMENT_HEADER_BYTES > room) {
    throw new RangeError(
      `Cannot ${what}: messages: reliable.fragmentSize ${fragmentSize} exceeds the ${
        room - PACKET_HEADER_BYTES - FRAGMENT_HEADER_BYTES
      } bytes a netcode payload has room for`,
    );
  }
  return resolved;
}

/**
 * Creates the message connection of one netcode connection.
 *
 * @param config The resolved `messages` option.
 * @param time The current time, seconds.
 * @param sendPayload Sends one netcode payload (the tag and the datagram).
 * @returns The connection.
 */
export function createNetcodeMessageConnection(
  config: ResolvedMessageConfig,
  time: number,
  sendPayload: (payload: Uint8Array) => void,
): MessageConnection {
  const payload = new Uint8Array(MAX_PAYLOAD_BYTES);
  payload[0] = MESSAGE_PACKET_TAG;
  return createMessageConnection(config, time, (datagram) => {
    payload.set(datagram, 1);
    sendPayload(payload.subarray(0, 1 + datagram.length));
  });
}

/**
 * A raw payload with its tag in front, in `scratch` (1200 bytes).
 *
 * @param payload 1..1199 bytes, checked by the caller.
 * @param scratch A 1200-byte buffer the result is a view of.
 * @returns The tagged payload.
 */
export function tagRawPayload(
  payload: Uint8Array,
  scratch: Uint8Array,
): Uint8Array {
  scratch[0] = RAW_PAYLOAD_TAG;
  scratch.set(payload, 1);
  return scratch.subarray(0, payload.length + 1);
}

/** What {@linkcode routePayload} did with a payload. */
export const ROUTED_MESSAGE_PACKET = 1;
/** The payload's tag is neither; the caller counts it. */
export const INVALID_PAYLOAD_TAG = 0;

/**
 * Hands one received netcode payload to the message layer, or gives back
 * the raw payload it carries.
 *
 * @param payload The decrypted payload (a view valid only now).
 * @param connection The connection's message layer.
 * @returns The raw payload (a view, without its tag) for the caller to
 * queue, {@linkcode ROUTED_MESSAGE_PACKET}, or
 * {@linkcode INVALID_PAYLOAD_TAG}.
 */
export function routePayload(
  payload: Uint8Array,
  connection: MessageConnection,
): Uint8Array | typeof ROUTED_MESSAGE_PACKET | typeof INVALID_PAYLOAD_TAG {
  if (payload.length < 2) return INVALID_PAYLOAD_TAG;
  if (payload[0] === RAW_PAYLOAD_TAG) return payload.subarray(1);
  if (payload[0] !== MESSAGE_PACKET_TAG) return INVALID_PAYLOAD_TAG;
  receiveMessagePacket(connection, payload.subarray(1));
  return ROUTED_MESSAGE_PACKET;
}
