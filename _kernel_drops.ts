/**
 * Internal: datagrams the Linux kernel dropped at a UDP socket before any
 * program could read them (its receive buffer was full), from the `drops`
 * column of `/proc/net/udp` and `/proc/net/udp6`. A server that falls
 * behind a flood loses datagrams here, honest ones included, and nothing in
 * user space sees them; `netcode server` exports the count in `/metrics`.
 *
 * @module
 */

import { type Address, isIpv6 } from "./address.ts";

/**
 * The `drops` count of the socket bound to `address`, from the text of
 * `/proc/net/udp` (IPv4) or `/proc/net/udp6` (IPv6).
 *
 * @param table The file's text.
 * @param address The socket's bound address (a wildcard matches only a
 * wildcard socket).
 * @returns The count, or `undefined` when no such socket is listed.
 */
export function parseKernelDrops(
  table: string,
  address: Address,
): number | undefined {
  const want = `${procAddress(address)}:${
    address.port.toString(16).toUpperCase().padStart(4, "0")
  }`;
  for (const line of table.split("\n").slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 13 || fields[1] !== want) continue;
    const drops = Number(fields[12]);
    return Number.isInteger(drops) ? drops : undefined;
  }
  return undefined;
}

/**
 * Reads the kernel's drop count of the socket bound to `address`.
 *
 * @param address The socket's bound address.
 * @returns The count, or `undefined` off Linux, without read permission
 * for `/proc/net`, or when the socket is not listed.
 */
export function readKernelDrops(address: Address): number | undefined {
  try {
    const table = Deno.readTextFileSync(
      isIpv6(address) ? "/proc/net/udp6" : "/proc/net/udp",
    );
    return parseKernelDrops(table, address);
  } catch {
    return undefined;
  }
}

/** The address as /proc/net writes it: 32-bit words in host (little-endian) order. */
function procAddress(address: Address): string {
  const hex = (word: number) =>
    (word >>> 0).toString(16).toUpperCase().padStart(8, "0");
  const littleEndian = (bytes: number[]) =>
    hex(bytes[0] | (bytes[1] << 8) | (bytes[2] << 16) | (bytes[3] << 24));
  if (!isIpv6(address)) {
    return littleEndian(address.hostname.split(".").map(Number));
  }
  const groups = expandIpv6(address.hostname);
  let text = "";
  for (let word = 0; word < 4; word++) {
    const high = groups[word * 2], low = groups[word * 2 + 1];
    text += littleEndian([high >> 8, high & 255, low >> 8, low & 255]);
  }
  return text;
}

/** The eight 16-bit groups of an IPv6 address (with `::` and a.b.c.d tails). */
function expandIpv6(hostname: string): number[] {
  let text = hostname;
  const v4 = text.match(/(\d+)\.(\d+)\.(\d+)\.(\d+)$/);
  if (v4) {
    const [a, b, c, d] = v4.slice(1).map(Number);
    text = text.slice(0, v4.index) +
      `${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.includes("::") ? text.split("::") : [text, ""];
  const parse = (part: string) =>
    part === "" ? [] : part.split(":").map((group) => parseInt(group, 16));
  const before = parse(head), after = parse(tail);
  return [
    ...before,
    ...new Array(8 - before.length - after.length).fill(0),
    ...after,
  ];
}
