/**
 * Internal: datagrams the Linux kernel dropped at a UDP socket before any
 * program could read them (its receive buffer was full), from the `drops`
 * column of `/proc/net/udp` and `/proc/net/udp6`. A server that falls
 * behind a flood loses datagrams here, honest ones included, and nothing in
 * user space sees them; `netcode server` exports the count in `/metrics`.
 *
 * @module
 */

import { type Address, isIpv6, writeAddress } from "./address.ts";

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

/**
 * The address as /proc/net writes it: its octets in network order, read as
 * 32-bit words in host (little-endian) order, in hex. The octets come from
 * the connect-token encoding of `writeAddress`.
 */
function procAddress(address: Address): string {
  const bytes = new Uint8Array(19);
  const view = new DataView(bytes.buffer);
  writeAddress(view, 0, address);
  const octets: number[] = [];
  if (isIpv6(address)) {
    // Eight groups, each u16 little-endian after the type byte.
    for (let i = 0; i < 8; i++) {
      const group = view.getUint16(1 + 2 * i, true);
      octets.push(group >> 8, group & 255);
    }
  } else {
    octets.push(...bytes.subarray(1, 5));
  }
  let text = "";
  for (let i = 0; i < octets.length; i += 4) {
    const word = octets[i] | (octets[i + 1] << 8) | (octets[i + 2] << 16) |
      (octets[i + 3] << 24);
    text += (word >>> 0).toString(16).toUpperCase().padStart(8, "0");
  }
  return text;
}
