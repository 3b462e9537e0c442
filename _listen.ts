// Shared by the socket adapters (socket.ts, socket_ffi.ts, _udp_node.ts):
// reading the options of a listen call into a checked hostname and port,
// with a label for error messages; the UDP sockets' queue limits and the
// checks of a send. Internal: not exported from the package.

import { type Address, parseAddress } from "./address.ts";

/** The hostname a socket binds when none is given: every IPv4 interface. */
export const DEFAULT_LISTEN_HOSTNAME = "0.0.0.0";
/** The largest UDP payload over IPv4. */
export const MAX_UDP_PAYLOAD_BYTES = 65507;

/** What a listen call binds, checked, and how to name it in errors. */
export interface ListenTarget<Options> {
  /** The options object (parsed from a string when one was given). */
  readonly options: Options;
  /** The canonical IP literal to bind. */
  readonly hostname: string;
  /** The port to bind, 0..65535. */
  readonly port: number;
  /** `"host:port"` as the caller wrote it, for error messages. */
  readonly label: string;
}

/**
 * Reads listen options given as an options object, an {@linkcode Address}
 * or a string, and checks the hostname and port.
 */
export function readListenTarget<
  Options extends { hostname?: string; port?: number },
>(options: Options | Address | string): ListenTarget<Options> {
  if (
    typeof options !== "string" &&
    (options === null || typeof options !== "object")
  ) {
    throw new TypeError(
      "Cannot listen: expected options, an address or an address string",
    );
  }
  const opts =
    (typeof options === "string" ? parseAddress(options) : options) as Options;
  const requestedHostname: unknown = opts.hostname ?? DEFAULT_LISTEN_HOSTNAME;
  const requestedPort: unknown = opts.port ?? 0;
  // Built by hand: the values are not checked yet.
  const labelHost = String(requestedHostname);
  const label = `${labelHost.includes(":") ? `[${labelHost}]` : labelHost}:${
    String(requestedPort)
  }`;
  let hostname: string;
  try {
    if (typeof requestedHostname !== "string") {
      throw new TypeError("not a string");
    }
    hostname = parseAddress(
      requestedHostname.includes(":")
        ? `[${requestedHostname}]`
        : requestedHostname,
    ).hostname;
  } catch (error) {
    throw new TypeError(
      `Cannot listen on ${label}: hostname must be an IPv4 or IPv6 address`,
      { cause: error },
    );
  }
  const port = checkListenCount(label, "port", requestedPort, 0, 65535);
  return { options: opts, hostname, port, label };
}

/** Checks an integer option of a listen call. */
export function checkListenCount(
  label: string,
  name: string,
  value: unknown,
  min: number,
  max: number,
): number {
  if (
    typeof value !== "number" || !Number.isInteger(value) || value < min ||
    value > max
  ) {
    throw new RangeError(
      `Cannot listen on ${label}: ${name} must be an integer from ${min} to ${max}, got ${
        String(value)
      }`,
    );
  }
  return value;
}

/** The queue and datagram limits of a UDP socket, checked. */
export interface UdpLimits {
  /** Received datagrams waiting for `poll()` at most. */
  readonly maxQueue: number;
  /** Datagrams waiting to be handed to the system at most. */
  readonly maxSendQueue: number;
  /** The largest datagram sent or received. */
  readonly maxDatagramBytes: number;
}

const DEFAULT_MAX_QUEUE = 1024;
const DEFAULT_MAX_SEND_QUEUE = 4096;
const DEFAULT_MAX_DATAGRAM_BYTES = 1300;
const MAX_QUEUE_LIMIT = 1 << 20;
const IPV4 = /^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$/;

/**
 * Reads `maxQueue`, `maxSendQueue` and `maxDatagramBytes` of `listenUdp`'s
 * options (1024, 4096 and 1300 by default), checking their ranges.
 */
export function readUdpLimits(
  label: string,
  options: {
    readonly maxQueue?: number;
    readonly maxSendQueue?: number;
    readonly maxDatagramBytes?: number;
  },
): UdpLimits {
  return {
    maxQueue: checkListenCount(
      label,
      "maxQueue",
      options.maxQueue ?? DEFAULT_MAX_QUEUE,
      1,
      MAX_QUEUE_LIMIT,
    ),
    maxSendQueue: checkListenCount(
      label,
      "maxSendQueue",
      options.maxSendQueue ?? DEFAULT_MAX_SEND_QUEUE,
      1,
      MAX_QUEUE_LIMIT,
    ),
    maxDatagramBytes: checkListenCount(
      label,
      "maxDatagramBytes",
      options.maxDatagramBytes ?? DEFAULT_MAX_DATAGRAM_BYTES,
      1,
      MAX_UDP_PAYLOAD_BYTES,
    ),
  };
}

/** Throws unless `to` is an address with a port from 1 to 65535. */
export function validateDestination(to: Address): void {
  if (
    to === null || typeof to !== "object" || typeof to.hostname !== "string"
  ) {
    throw new TypeError(
      "Cannot send datagram: the destination is not an address",
    );
  }
  const port = to.port;
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new RangeError(
      `Cannot send datagram: port ${port} is not from 1 to 65535`,
    );
  }
}

/** Throws unless `data` is a Uint8Array of at most `maxDatagramBytes`. */
export function validateData(data: Uint8Array, maxDatagramBytes: number): void {
  if (!(data instanceof Uint8Array)) {
    throw new TypeError("Cannot send datagram: data is not a Uint8Array");
  }
  if (data.length > maxDatagramBytes) {
    throw new RangeError(
      `Cannot send datagram: ${data.length} bytes exceeds the ${maxDatagramBytes} byte limit`,
    );
  }
}

/**
 * The checks of a UDP socket's `send`: the data, the destination, and that
 * its hostname is an IP literal (no name lookups on the hot path).
 */
export function checkUdpSend(
  data: Uint8Array,
  to: Address,
  maxDatagramBytes: number,
): void {
  validateData(data, maxDatagramBytes);
  validateDestination(to);
  if (!to.hostname.includes(":") && !IPV4.test(to.hostname)) {
    throw new TypeError(
      `Cannot send datagram: "${to.hostname}" is not an IP address`,
    );
  }
}
