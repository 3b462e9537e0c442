// Shared by the socket adapters (socket.ts, socket_ffi.ts): reading the
// options of a listen call into a checked hostname and port, with a label
// for error messages. Internal: not exported from the package.

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
