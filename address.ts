/**
 * Network addresses as netcode uses them: parsing `"1.2.3.4:40000"`,
 * `"[::1]:40000"` and bare addresses, canonical formatting, equality, a string
 * key for maps, and the binary form written inside connect tokens.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { addressKey, formatAddress, parseAddress } from "./address.ts";
 *
 * const address = parseAddress("[0:0:0:0:0:0:0:1]:40000");
 * assert.deepEqual(address, { hostname: "::1", port: 40000 });
 * assert.equal(formatAddress(address), "[::1]:40000");
 * assert.equal(addressKey(address), addressKey(parseAddress("[::1]:40000")));
 * ```
 *
 * @module
 */

/** An IP address and UDP port. `hostname` is an IPv4 or IPv6 literal. */
export interface Address {
  /** The IP address, `"127.0.0.1"` or `"::1"`, without brackets. */
  readonly hostname: string;
  /** The UDP port, 0..65535 (0 asks the system for a free port when binding). */
  readonly port: number;
}

/** Address type byte for IPv4 inside a connect token. */
export const ADDRESS_IPV4 = 1;
/** Address type byte for IPv6 inside a connect token. */
export const ADDRESS_IPV6 = 2;
/** Bytes an IPv4 address takes inside a token: type, 4 octets, port. */
export const ADDRESS_IPV4_BYTES = 7;
/** Bytes an IPv6 address takes inside a token: type, 8 groups, port. */
export const ADDRESS_IPV6_BYTES = 19;

function parseIpv4(text: string): number[] | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  const octets: number[] = [];
  for (const part of parts) {
    if (!/^[0-9]{1,3}$/.test(part)) return undefined;
    const value = Number(part);
    if (value > 255) return undefined;
    octets.push(value);
  }
  return octets;
}

function parseIpv6(text: string): number[] | undefined {
  if (text.length === 0 || text.length > 45) return undefined;
  let head = text;
  let tail = "";
  const doubleColon = text.indexOf("::");
  if (doubleColon >= 0) {
    if (text.indexOf("::", doubleColon + 1) >= 0) return undefined;
    head = text.slice(0, doubleColon);
    tail = text.slice(doubleColon + 2);
  }
  const parseGroups = (part: string): number[] | undefined => {
    if (part === "") return [];
    const groups: number[] = [];
    const pieces = part.split(":");
    for (let i = 0; i < pieces.length; i++) {
      const piece = pieces[i];
      if (i === pieces.length - 1 && piece.includes(".")) {
        const v4 = parseIpv4(piece);
        if (!v4) return undefined;
        groups.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]);
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(piece)) return undefined;
        groups.push(parseInt(piece, 16));
      }
    }
    return groups;
  };
  const headGroups = parseGroups(head);
  const tailGroups = parseGroups(tail);
  if (!headGroups || !tailGroups) return undefined;
  if (doubleColon < 0) {
    return headGroups.length === 8 ? headGroups : undefined;
  }
  const missing = 8 - headGroups.length - tailGroups.length;
  if (missing < 1) return undefined;
  return [...headGroups, ...new Array(missing).fill(0), ...tailGroups];
}

/**
 * Formats eight 16-bit groups the way RFC 5952 (and Rust's, so Deno's,
 * `Ipv6Addr` display) does: lowercase, leading zeros dropped, the longest run
 * of two or more zero groups as `::`, and IPv4-mapped addresses as
 * `::ffff:a.b.c.d`.
 */
function formatIpv6Groups(groups: readonly number[]): string {
  if (
    groups[0] === 0 && groups[1] === 0 && groups[2] === 0 && groups[3] === 0 &&
    groups[4] === 0 && groups[5] === 0xffff
  ) {
    return `::ffff:${groups[6] >> 8}.${groups[6] & 255}.${groups[7] >> 8}.${
      groups[7] & 255
    }`;
  }
  let bestStart = -1;
  let bestLength = 0;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = (from: number, to: number) =>
    groups.slice(from, to).map((g) => g.toString(16)).join(":");
  if (bestLength < 2) return hex(0, 8);
  return `${hex(0, bestStart)}::${hex(bestStart + bestLength, 8)}`;
}

function parsePort(text: string, input: string): number {
  if (!/^[0-9]{1,5}$/.test(text) || Number(text) > 65535) {
    throw new TypeError(`Cannot parse address "${input}": bad port "${text}"`);
  }
  return Number(text);
}

/**
 * Parses `"a.b.c.d:port"`, `"[v6]:port"`, a bare IPv4 or IPv6 address (port
 * 0), or `"[v6]"`. IPv6 is normalised to its canonical form, so equal
 * addresses have equal hostnames.
 *
 * @param text The address to parse.
 * @returns The parsed address.
 * @throws {TypeError} When `text` is not an IP address with an optional port.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseAddress } from "./address.ts";
 * assert.deepEqual(parseAddress("127.0.0.1:40000"), { hostname: "127.0.0.1", port: 40000 });
 * assert.equal(parseAddress("[2001:DB8::1]:5").hostname, "2001:db8::1");
 * assert.throws(() => parseAddress("localhost:40000"), TypeError); // not an IP address
 * ```
 */
export function parseAddress(text: string): Address {
  if (typeof text !== "string") {
    throw new TypeError(
      `Cannot parse address: expected a string, got ${typeof text}`,
    );
  }
  const input = text.trim();
  if (input.startsWith("[")) {
    const close = input.indexOf("]");
    if (close < 0) {
      throw new TypeError(`Cannot parse address "${text}": missing "]"`);
    }
    const groups = parseIpv6(input.slice(1, close));
    if (!groups) {
      throw new TypeError(`Cannot parse address "${text}": bad IPv6 address`);
    }
    const rest = input.slice(close + 1);
    let port = 0;
    if (rest !== "") {
      if (!rest.startsWith(":")) {
        throw new TypeError(
          `Cannot parse address "${text}": unexpected "${rest}"`,
        );
      }
      port = parsePort(rest.slice(1), text);
    }
    return { hostname: formatIpv6Groups(groups), port };
  }
  const colons = input.split(":").length - 1;
  if (colons === 0 || colons === 1) {
    const [host, portText] = input.split(":");
    const octets = parseIpv4(host);
    if (!octets) {
      throw new TypeError(
        `Cannot parse address "${text}": expected a.b.c.d:port or [ipv6]:port`,
      );
    }
    const port = portText === undefined ? 0 : parsePort(portText, text);
    return { hostname: octets.join("."), port };
  }
  const groups = parseIpv6(input);
  if (!groups) {
    throw new TypeError(
      `Cannot parse address "${text}": expected a.b.c.d:port or [ipv6]:port`,
    );
  }
  return { hostname: formatIpv6Groups(groups), port: 0 };
}

/**
 * Whether the address is IPv6 (its hostname contains a colon).
 *
 * @param address The address.
 * @returns `true` for IPv6, `false` for IPv4.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isIpv6 } from "./address.ts";
 * assert.equal(isIpv6({ hostname: "::1", port: 1 }), true);
 * assert.equal(isIpv6({ hostname: "127.0.0.1", port: 1 }), false);
 * ```
 */
export function isIpv6(address: Address): boolean {
  return address.hostname.includes(":");
}

/**
 * Formats an address as `"a.b.c.d:port"` or `"[v6]:port"`.
 *
 * @param address The address.
 * @returns Its text form, which {@linkcode parseAddress} reads back.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatAddress } from "./address.ts";
 * assert.equal(formatAddress({ hostname: "::1", port: 40000 }), "[::1]:40000");
 * assert.equal(formatAddress({ hostname: "127.0.0.1", port: 40000 }), "127.0.0.1:40000");
 * ```
 */
export function formatAddress(address: Address): string {
  if (
    typeof address !== "object" || address === null ||
    typeof address.hostname !== "string" || typeof address.port !== "number"
  ) {
    throw new TypeError(
      `Cannot format address: expected { hostname, port }, got ${
        address === null ? "null" : typeof address
      }`,
    );
  }
  return isIpv6(address)
    ? `[${address.hostname}]:${address.port}`
    : `${address.hostname}:${address.port}`;
}

/**
 * A string that is equal for equal addresses (as {@linkcode addressEqual}
 * sees them), for use as a `Map` key. It is the formatted address, with an
 * IPv4-mapped IPv6 address written as IPv4; hostnames from
 * {@linkcode parseAddress} and from Deno's sockets are already canonical.
 *
 * @param address The address.
 * @returns The key.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { addressKey } from "./address.ts";
 * const sessions = new Map<string, number>();
 * sessions.set(addressKey({ hostname: "127.0.0.1", port: 40000 }), 1);
 * // A dual-stack socket reports that peer as ::ffff:127.0.0.1: same key.
 * assert.equal(sessions.get(addressKey({ hostname: "::ffff:127.0.0.1", port: 40000 })), 1);
 * ```
 */
export function addressKey(address: Address): string {
  const hostname = unmapIpv4(address.hostname);
  return hostname === address.hostname
    ? formatAddress(address)
    : `${hostname}:${address.port}`;
}

/**
 * Whether two addresses are the same IP and port. An IPv4-mapped IPv6
 * address (`::ffff:127.0.0.1`, as a dual-stack socket reports IPv4 peers)
 * equals the plain IPv4 address.
 *
 * @param a One address.
 * @param b The other.
 * @returns `true` when equal.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { addressEqual, parseAddress } from "./address.ts";
 * assert.equal(addressEqual(parseAddress("[::1]:5"), parseAddress("[0::1]:5")), true);
 * assert.equal(addressEqual(parseAddress("[::ffff:127.0.0.1]:5"), parseAddress("127.0.0.1:5")), true);
 * ```
 */
export function addressEqual(a: Address, b: Address): boolean {
  return a.port === b.port &&
    (a.hostname === b.hostname ||
      unmapIpv4(a.hostname) === unmapIpv4(b.hostname));
}

/** `::ffff:a.b.c.d` (how a dual-stack socket sees IPv4) as `a.b.c.d`. */
function unmapIpv4(hostname: string): string {
  return hostname.startsWith("::ffff:") && hostname.includes(".")
    ? hostname.slice(7)
    : hostname;
}

/**
 * Bytes the address takes inside a connect token (7 for IPv4, 19 for IPv6).
 *
 * @param address The address.
 * @returns 7 or 19.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { addressBytes } from "./address.ts";
 * assert.equal(addressBytes({ hostname: "::1", port: 1 }), 19);
 * assert.equal(addressBytes({ hostname: "127.0.0.1", port: 1 }), 7);
 * ```
 */
export function addressBytes(address: Address): number {
  return isIpv6(address) ? ADDRESS_IPV6_BYTES : ADDRESS_IPV4_BYTES;
}

/**
 * Writes the address in connect-token form at `offset`: type byte 1 then four
 * octets, or type byte 2 then eight u16 groups each little-endian; then the
 * port as u16 little-endian.
 *
 * @param view Where to write.
 * @param offset Byte offset in `view`.
 * @param address The address (its hostname must be an IP literal).
 * @returns The offset after the written bytes.
 * @throws {TypeError} When the hostname is not an IP literal.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { writeAddress } from "./address.ts";
 * const bytes = new Uint8Array(19);
 * const end = writeAddress(new DataView(bytes.buffer), 0, { hostname: "::1", port: 40000 });
 * assert.equal(end, 19);
 * assert.equal(bytes[0], 2); // IPv6
 * // The last group (1), then the port (40000), each little-endian:
 * assert.deepEqual(bytes.subarray(15), new Uint8Array([1, 0, 0x40, 0x9c]));
 * ```
 */
export function writeAddress(
  view: DataView,
  offset: number,
  address: Address,
): number {
  if (isIpv6(address)) {
    const groups = parseIpv6(address.hostname);
    if (!groups) {
      throw new TypeError(
        `Cannot write address: bad IPv6 "${address.hostname}"`,
      );
    }
    view.setUint8(offset++, ADDRESS_IPV6);
    for (const group of groups) {
      view.setUint16(offset, group, true);
      offset += 2;
    }
  } else {
    const octets = parseIpv4(address.hostname);
    if (!octets) {
      throw new TypeError(
        `Cannot write address: bad IPv4 "${address.hostname}"`,
      );
    }
    view.setUint8(offset++, ADDRESS_IPV4);
    for (const octet of octets) view.setUint8(offset++, octet);
  }
  view.setUint16(offset, address.port, true);
  return offset + 2;
}

/**
 * Reads an address in connect-token form. Returns `undefined` for a type byte
 * other than 1 or 2, or when the bytes run out.
 *
 * @param view Where to read.
 * @param offset Byte offset in `view`.
 * @returns The address and the offset after it, or `undefined`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readAddress } from "./address.ts";
 * const bytes = new Uint8Array([1, 127, 0, 0, 1, 0x40, 0x9c]);
 * assert.deepEqual(readAddress(new DataView(bytes.buffer), 0), {
 *   address: { hostname: "127.0.0.1", port: 40000 },
 *   offset: 7,
 * });
 * ```
 */
export function readAddress(
  view: DataView,
  offset: number,
): { address: Address; offset: number } | undefined {
  if (offset + 1 > view.byteLength) return undefined;
  const type = view.getUint8(offset++);
  if (type === ADDRESS_IPV4) {
    if (offset + 6 > view.byteLength) return undefined;
    const hostname = `${view.getUint8(offset)}.${view.getUint8(offset + 1)}.${
      view.getUint8(offset + 2)
    }.${view.getUint8(offset + 3)}`;
    const port = view.getUint16(offset + 4, true);
    return { address: { hostname, port }, offset: offset + 6 };
  }
  if (type === ADDRESS_IPV6) {
    if (offset + 18 > view.byteLength) return undefined;
    const groups: number[] = [];
    for (let i = 0; i < 8; i++) {
      groups.push(view.getUint16(offset + 2 * i, true));
    }
    const port = view.getUint16(offset + 16, true);
    return {
      address: { hostname: formatIpv6Groups(groups), port },
      offset: offset + 18,
    };
  }
  return undefined;
}
