/**
 * Internal: where a server's UDP sockets bind, apart from the addresses its
 * clients are given in connect tokens (its public addresses), as the C
 * reference does. Used by `createServer` and by `netcode server`.
 *
 * By default a public address binds the wildcard address of its family on
 * its port (`0.0.0.0:40000` for `203.0.113.7:40000`), so a server behind
 * NAT or in a container, whose public address is not on any of its
 * interfaces, still binds. A loopback address (`127.x.x.x`, `::1`) binds
 * itself: a server meant for this machine only stays unreachable from
 * others.
 *
 * Deno's `"::"` socket is dual-stack on most systems (it also takes IPv4,
 * and `0.0.0.0` on the same port then cannot be bound): when both
 * wildcards of one port are asked for and the IPv4 one is refused as in
 * use after the IPv6 one bound, the IPv6 socket serves both families.
 *
 * @module
 */

import { type Address, formatAddress, isIpv6 } from "./address.ts";
import { type DatagramSocket, listenUdp, type UdpSocket } from "./socket.ts";

const IPV4_WILDCARD = "0.0.0.0";
const IPV6_WILDCARD = "::";

/**
 * Whether the address is a loopback address (`127.0.0.0/8` or `::1`).
 *
 * @param address The address.
 * @returns `true` for loopback.
 */
export function isLoopbackAddress(address: Address): boolean {
  return address.hostname === "::1" || /^127\./.test(address.hostname);
}

/**
 * The address a public address binds by default: itself when loopback (or
 * already a wildcard), otherwise the wildcard of its family on its port.
 *
 * @param address A public address.
 * @returns The address to bind.
 */
export function defaultBindAddress(address: Address): Address {
  if (isLoopbackAddress(address)) return address;
  return {
    hostname: isIpv6(address) ? IPV6_WILDCARD : IPV4_WILDCARD,
    port: address.port,
  };
}

/**
 * Binds one UDP socket per address (IPv6 wildcards first, so the
 * dual-stack case is seen), closing those already bound when one fails.
 *
 * @param bindAddresses Where to bind.
 * @param listen Binds one socket: `listenUdp`, `listenUdpFfi`, or a fake.
 * @returns The sockets, in the order of `bindAddresses`, without an IPv4
 * wildcard that a dual-stack IPv6 wildcard socket on its port took over.
 * @throws {Error} The bind error of the first address that cannot be bound,
 * naming the address and cause.
 */
export function listenServerSockets<S extends DatagramSocket = UdpSocket>(
  bindAddresses: readonly Address[],
  listen: (address: Address) => S = listenUdp as unknown as (
    address: Address,
  ) => S,
): S[] {
  const order = bindAddresses.map((_, i) => i).sort((a, b) =>
    Number(bindAddresses[b].hostname === IPV6_WILDCARD) -
    Number(bindAddresses[a].hostname === IPV6_WILDCARD)
  );
  const sockets: (S | undefined)[] = new Array(bindAddresses.length);
  try {
    for (const i of order) {
      const address = bindAddresses[i];
      try {
        sockets[i] = listen(address);
      } catch (error) {
        if (!takenByDualStack(address, bindAddresses, sockets, error)) {
          throw error;
        }
      }
    }
  } catch (error) {
    for (const socket of sockets) socket?.close();
    throw error;
  }
  return sockets.filter((socket) => socket !== undefined);
}

/** An IPv4 wildcard refused because a `"::"` socket on its port took it. */
function takenByDualStack(
  address: Address,
  bindAddresses: readonly Address[],
  sockets: readonly (DatagramSocket | undefined)[],
  error: unknown,
): boolean {
  return address.hostname === IPV4_WILDCARD && address.port !== 0 &&
    error instanceof Error && error.name === "AddrInUse" &&
    bindAddresses.some((other, j) =>
      other.hostname === IPV6_WILDCARD && other.port === address.port &&
      sockets[j] !== undefined
    );
}

/**
 * The public addresses with each port 0 replaced by the port its socket
 * bound: the socket at the same index when there is one per address,
 * otherwise the first of its family (a dual-stack socket serves IPv4 too).
 *
 * @param publicAddresses The addresses clients are given.
 * @param sockets The bound sockets.
 * @returns The addresses, ports resolved.
 * @throws {RangeError} When no socket can serve an address's family.
 */
export function resolvePublicAddresses(
  publicAddresses: readonly Address[],
  sockets: readonly { readonly address: Address }[],
): Address[] {
  const byIndex = sockets.length === publicAddresses.length;
  return publicAddresses.map((address, i) => {
    const family = isIpv6(address);
    const socket = byIndex
      ? sockets[i]
      : sockets.find((socket) => isIpv6(socket.address) === family) ??
        (family
          ? undefined
          : sockets.find((socket) =>
            socket.address.hostname === IPV6_WILDCARD
          ));
    if (socket === undefined) {
      throw new RangeError(
        `Cannot create server: no bind address of the family of ${
          formatAddress(address)
        } (give an IPv${family ? 6 : 4} bindAddress too)`,
      );
    }
    return address.port === 0
      ? { hostname: address.hostname, port: socket.address.port }
      : address;
  });
}
