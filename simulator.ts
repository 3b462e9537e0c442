/**
 * A seeded, in-memory datagram network with latency, jitter, packet loss and
 * duplication, whose sockets implement {@linkcode DatagramSocket}: servers and
 * clients run over it exactly as over UDP, deterministically and without
 * waiting.
 *
 * The simulator never reads a clock. Time is what the last
 * {@linkcode NetworkSimulator.update} call said (0 before the first); a
 * datagram sent then is stamped with that time and handed to its receiver by
 * the first `update(now)` with `now >= sent + latency ± jitter`. The same seed
 * and the same sequence of calls give the same deliveries in the same order.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createNetworkSimulator } from "./simulator.ts";
 *
 * const network = createNetworkSimulator({ latencyMs: 50 });
 * using server = network.createSocket("10.0.0.1:40000");
 * using client = network.createSocket("10.0.0.2:0"); // port 0: any free port
 *
 * client.send(new Uint8Array([1, 2, 3]), server.address);
 * network.update(0.04);
 * assert.equal(server.poll(), undefined); // still in flight
 * network.update(0.05);
 * const datagram = server.poll();
 * assert.deepEqual(datagram?.data, new Uint8Array([1, 2, 3]));
 * assert.deepEqual(datagram?.from, { hostname: "10.0.0.2", port: 49152 });
 * ```
 *
 * @module
 */

import { type Address, addressKey, parseAddress } from "./address.ts";
import type { Datagram, DatagramSocket } from "./socket.ts";

const DEFAULT_MAX_DATAGRAM_BYTES = 1300;
const DEFAULT_MAX_QUEUE = 1024;
const FIRST_EPHEMERAL_PORT = 49152;
const EPHEMERAL_PORTS = 65536 - FIRST_EPHEMERAL_PORT;
/** Slack when comparing times, so `0.2 + 0.1` counts as reached at `0.3`. */
const TIME_EPSILON = 1e-9;

/**
 * Creates a small, fast, seeded pseudo-random generator (mulberry32): 32 bits
 * of state, period 2^32. Not for cryptography; for reproducible tests and
 * simulations.
 *
 * @param seed Any finite number; it is reduced to an unsigned 32-bit integer
 * (`seed >>> 0`), so seeds equal modulo 2^32 give the same sequence.
 * @returns A function returning the next number in [0, 1) on each call; the
 * same seed always yields the same sequence.
 * @throws {RangeError} When `seed` is not a finite number.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createRandom } from "./simulator.ts";
 *
 * const random = createRandom(42);
 * const roll = Math.floor(random() * 6) + 1; // 1..6
 * assert.ok(roll >= 1 && roll <= 6);
 * assert.equal(Math.floor(createRandom(42)() * 6) + 1, roll); // same seed, same roll
 * ```
 */
export function createRandom(seed: number): () => number {
  if (typeof seed !== "number" || !Number.isFinite(seed)) {
    throw new RangeError(
      `Cannot create random generator: seed must be a finite number, got ${
        String(seed)
      }`,
    );
  }
  let state = seed >>> 0;
  return function random(): number {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Options for {@linkcode createNetworkSimulator}. */
export interface NetworkSimulatorOptions {
  /**
   * Seed of the generator deciding loss, jitter and duplication
   * (see {@linkcode createRandom}).
   *
   * @default {1}
   */
  readonly seed?: number;
  /**
   * One-way delay of every datagram, in milliseconds.
   *
   * @default {0}
   */
  readonly latencyMs?: number;
  /**
   * Each datagram's delay is drawn uniformly from `latencyMs ± jitterMs`
   * (never below 0), so datagrams can arrive out of order.
   *
   * @default {0}
   */
  readonly jitterMs?: number;
  /**
   * Chance, 0 to 100, that a sent datagram is lost.
   *
   * @default {0}
   */
  readonly packetLossPercent?: number;
  /**
   * Chance, 0 to 100, that a datagram that is not lost also arrives a second
   * time, with its own delay.
   *
   * @default {0}
   */
  readonly duplicatePercent?: number;
  /**
   * The largest datagram a socket may send; larger ones throw a `RangeError`
   * as with `listenUdp`.
   *
   * @default {1300}
   */
  readonly maxDatagramBytes?: number;
  /**
   * How many delivered datagrams wait in a socket for `poll()` at most; more
   * are dropped and counted in {@linkcode NetworkSimulatorStats.dropped}.
   *
   * @default {1024}
   */
  readonly maxQueue?: number;
}

/**
 * Counters of a {@linkcode NetworkSimulator}; they only grow, except
 * `inFlight`. At any time `sent + duplicated = lost + delivered +
 * undeliverable + dropped + inFlight`.
 */
export interface NetworkSimulatorStats {
  /** Datagrams passed to a socket's `send()`. */
  readonly sent: number;
  /** Datagrams put into a receiving socket's queue. */
  readonly delivered: number;
  /** Datagrams lost to `packetLossPercent`. */
  readonly lost: number;
  /** Extra copies made by `duplicatePercent`. */
  readonly duplicated: number;
  /** Datagrams that arrived where no socket was bound. */
  readonly undeliverable: number;
  /** Datagrams that arrived at a socket whose queue was full. */
  readonly dropped: number;
  /** Datagrams (and copies) still travelling. */
  readonly inFlight: number;
}

/** A socket on a {@linkcode NetworkSimulator}. */
export interface SimulatedSocket extends DatagramSocket {
  /** Closes the socket, as {@linkcode DatagramSocket.close} does. */
  [Symbol.dispose](): void;
}

/** A simulated network, from {@linkcode createNetworkSimulator}. */
export interface NetworkSimulator {
  /** The time of the last {@linkcode NetworkSimulator.update}, in seconds (0 before). */
  readonly now: number;
  /** Live counters. */
  readonly stats: NetworkSimulatorStats;
  /**
   * Binds a socket on the simulated network. Port 0 picks the next free port
   * from 49152 up. Closing the socket unbinds the address; datagrams already
   * travelling to it are then undeliverable.
   *
   * @param address An IPv4 or IPv6 address other than the unspecified
   * `0.0.0.0` / `::`, as an {@linkcode Address} or a string.
   * @returns The bound socket; its `address` has the port resolved.
   * @throws {Error} When the address is already bound, or no port is free.
   * @throws {TypeError} When the address is not an IP address, or is the
   * unspecified address.
   */
  createSocket(address: Address | string): SimulatedSocket;
  /**
   * Advances time to `now` and moves every datagram due by then, in order of
   * arrival time (ties in order of sending), into its receiver's queue.
   *
   * @param now Monotonic time in seconds, never less than the previous call's.
   * @throws {RangeError} When `now` is not finite or goes backwards.
   */
  update(now: number): void;
}

interface InFlight {
  readonly at: number;
  readonly order: number;
  readonly data: Uint8Array;
  readonly from: Address;
  readonly to: string;
}

interface Binding {
  deliver(datagram: Datagram): boolean;
}

function earlier(a: InFlight, b: InFlight): boolean {
  return a.at < b.at || (a.at === b.at && a.order < b.order);
}

function heapPush(heap: InFlight[], item: InFlight): void {
  let i = heap.length;
  heap.push(item);
  while (i > 0) {
    const parent = (i - 1) >> 1;
    if (!earlier(item, heap[parent])) break;
    heap[i] = heap[parent];
    i = parent;
  }
  heap[i] = item;
}

function heapPop(heap: InFlight[]): InFlight {
  const top = heap[0];
  const last = heap.pop()!;
  const n = heap.length;
  if (n > 0) {
    let i = 0;
    while (true) {
      const left = 2 * i + 1;
      if (left >= n) break;
      const right = left + 1;
      const child = right < n && earlier(heap[right], heap[left])
        ? right
        : left;
      if (!earlier(heap[child], last)) break;
      heap[i] = heap[child];
      i = child;
    }
    heap[i] = last;
  }
  return top;
}

function checkNumber(
  name: string,
  value: number,
  min: number,
  max: number,
): number {
  if (typeof value !== "number" || !(value >= min && value <= max)) {
    throw new RangeError(
      `Cannot create network simulator: ${name} must be from ${min} to ${max}, got ${
        String(value)
      }`,
    );
  }
  return value;
}

function checkInteger(name: string, value: number, max: number): number {
  if (!Number.isInteger(value) || value < 1 || value > max) {
    throw new RangeError(
      `Cannot create network simulator: ${name} must be an integer from 1 to ${max}, got ${
        String(value)
      }`,
    );
  }
  return value;
}

/**
 * Creates a seeded in-memory network. Its sockets copy data on `send()`, so
 * the caller may reuse its buffer; every delivered datagram has its own
 * bytes. Nothing happens between {@linkcode NetworkSimulator.update} calls.
 *
 * Per datagram the generator is drawn four times (loss, delay, duplicate,
 * duplicate's delay) whatever the options, so with a given seed changing the
 * latency does not change which datagrams are lost.
 *
 * @param options Seed and network conditions; all optional.
 * @returns The simulator.
 * @throws {RangeError} When an option is out of range.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createNetworkSimulator } from "./simulator.ts";
 *
 * const network = createNetworkSimulator({
 *   seed: 7,
 *   latencyMs: 100,
 *   jitterMs: 20,
 *   packetLossPercent: 5,
 *   duplicatePercent: 1,
 * });
 * using a = network.createSocket("[::1]:40000");
 * using b = network.createSocket("[::1]:0");
 * for (let i = 0; i < 100; i++) b.send(new Uint8Array([i]), a.address);
 * network.update(1);
 * let received = 0;
 * while (a.poll()) received++;
 * const { delivered, lost, duplicated, inFlight } = network.stats;
 * assert.equal(received, delivered);
 * assert.equal(inFlight, 0); // 100 ± 20 ms: all arrived within the second
 * assert.equal(delivered, 100 - lost + duplicated);
 * ```
 */
export function createNetworkSimulator(
  options: NetworkSimulatorOptions = {},
): NetworkSimulator {
  if (options === null || typeof options !== "object") {
    throw new TypeError("Cannot create network simulator: expected options");
  }
  const seed = options.seed ?? 1;
  if (typeof seed !== "number" || !Number.isFinite(seed)) {
    throw new RangeError(
      `Cannot create network simulator: seed must be a finite number, got ${
        String(seed)
      }`,
    );
  }
  const latency = checkNumber("latencyMs", options.latencyMs ?? 0, 0, 1e9) /
    1000;
  const jitter = checkNumber("jitterMs", options.jitterMs ?? 0, 0, 1e9) / 1000;
  const loss = checkNumber(
    "packetLossPercent",
    options.packetLossPercent ?? 0,
    0,
    100,
  ) / 100;
  const duplicate = checkNumber(
    "duplicatePercent",
    options.duplicatePercent ?? 0,
    0,
    100,
  ) / 100;
  const maxDatagramBytes = checkInteger(
    "maxDatagramBytes",
    options.maxDatagramBytes ?? DEFAULT_MAX_DATAGRAM_BYTES,
    65507,
  );
  const maxQueue = checkInteger(
    "maxQueue",
    options.maxQueue ?? DEFAULT_MAX_QUEUE,
    1 << 20,
  );

  const random = createRandom(seed);
  const stats = {
    sent: 0,
    delivered: 0,
    lost: 0,
    duplicated: 0,
    undeliverable: 0,
    dropped: 0,
    inFlight: 0,
  };
  const bindings = new Map<string, Binding>();
  const canonicalKeys = new Map<string, string>();
  const heap: InFlight[] = [];
  let now = 0;
  let order = 0;
  let nextPort = FIRST_EPHEMERAL_PORT;

  /** The key of the bound address `to` names, or "" when it names none. */
  function destinationKey(to: Address): string {
    const key = addressKey(to);
    if (bindings.has(key)) return key;
    let canonical = canonicalKeys.get(key);
    if (canonical === undefined) {
      try {
        const text = to.hostname.includes(":")
          ? `[${to.hostname}]:${to.port}`
          : `${to.hostname}:${to.port}`;
        canonical = addressKey(parseAddress(text));
      } catch {
        canonical = "";
      }
      if (canonicalKeys.size < 4096) canonicalKeys.set(key, canonical);
    }
    return canonical;
  }

  function schedule(data: Uint8Array, from: Address, to: string, roll: number) {
    const delay = Math.max(0, latency + jitter * (2 * roll - 1));
    heapPush(heap, { at: now + delay, order: order++, data, from, to });
    stats.inFlight++;
  }

  function bindAddress(input: Address | string): Address {
    let parsed: Address;
    try {
      if (typeof input === "string") {
        parsed = parseAddress(input);
      } else {
        if (input === null || typeof input !== "object") {
          throw new TypeError("not an address");
        }
        const host = String(input.hostname);
        parsed = {
          hostname: parseAddress(host.includes(":") ? `[${host}]` : host)
            .hostname,
          port: input.port,
        };
      }
    } catch (error) {
      throw new TypeError(
        `Cannot bind ${
          typeof input === "string" ? `"${input}"` : "address"
        } on the simulator: expected an IPv4 or IPv6 address`,
        { cause: error },
      );
    }
    const { hostname, port } = parsed;
    const label = hostname.includes(":")
      ? `[${hostname}]:${port}`
      : `${hostname}:${port}`;
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      throw new RangeError(
        `Cannot bind ${label} on the simulator: port must be an integer from 0 to 65535`,
      );
    }
    if (hostname === "0.0.0.0" || hostname === "::") {
      throw new TypeError(
        `Cannot bind ${label} on the simulator: bind a specific address, not the unspecified one`,
      );
    }
    if (port !== 0) {
      if (bindings.has(addressKey(parsed))) {
        throw new Error(
          `Cannot bind ${label} on the simulator: address in use`,
        );
      }
      return Object.freeze({ hostname, port });
    }
    for (let i = 0; i < EPHEMERAL_PORTS; i++) {
      const candidate = { hostname, port: nextPort };
      nextPort = nextPort === 65535 ? FIRST_EPHEMERAL_PORT : nextPort + 1;
      if (!bindings.has(addressKey(candidate))) {
        return Object.freeze(candidate);
      }
    }
    throw new Error(`Cannot bind ${label} on the simulator: no free port`);
  }

  function createSocket(input: Address | string): SimulatedSocket {
    const address = bindAddress(input);
    const key = addressKey(address);
    let queue: Datagram[] = [];
    let head = 0;
    let isClosed = false;
    const binding: Binding = {
      deliver(datagram: Datagram): boolean {
        if (queue.length - head >= maxQueue) return false;
        queue.push(datagram);
        return true;
      },
    };
    bindings.set(key, binding);

    function close(): void {
      if (isClosed) return;
      isClosed = true;
      if (bindings.get(key) === binding) bindings.delete(key);
      queue = [];
      head = 0;
    }

    return {
      address,
      send(data: Uint8Array, to: Address): void {
        if (isClosed) {
          throw new TypeError(
            `Cannot send datagram: the socket on ${key} is closed`,
          );
        }
        if (!(data instanceof Uint8Array)) {
          throw new TypeError("Cannot send datagram: data is not a Uint8Array");
        }
        if (data.length > maxDatagramBytes) {
          throw new RangeError(
            `Cannot send datagram: ${data.length} bytes exceeds the ${maxDatagramBytes} byte limit`,
          );
        }
        if (
          to === null || typeof to !== "object" ||
          typeof to.hostname !== "string"
        ) {
          throw new TypeError(
            "Cannot send datagram: the destination is not an address",
          );
        }
        if (!Number.isInteger(to.port) || to.port < 1 || to.port > 65535) {
          throw new RangeError(
            `Cannot send datagram: port ${to.port} is not from 1 to 65535`,
          );
        }
        stats.sent++;
        const lossRoll = random();
        const delayRoll = random();
        const duplicateRoll = random();
        const duplicateDelayRoll = random();
        if (lossRoll < loss) {
          stats.lost++;
          return;
        }
        const destination = destinationKey(to);
        schedule(data.slice(), address, destination, delayRoll);
        if (duplicateRoll < duplicate) {
          stats.duplicated++;
          schedule(data.slice(), address, destination, duplicateDelayRoll);
        }
      },
      poll(): Datagram | undefined {
        if (head === queue.length) return undefined;
        const datagram = queue[head];
        head++;
        if (head === queue.length) {
          queue.length = 0;
          head = 0;
        } else if (head >= 1024 && head * 2 >= queue.length) {
          queue = queue.slice(head);
          head = 0;
        }
        return datagram;
      },
      close,
      [Symbol.dispose]: close,
    };
  }

  return {
    get now(): number {
      return now;
    },
    stats,
    createSocket,
    update(time: number): void {
      if (typeof time !== "number" || !Number.isFinite(time)) {
        throw new RangeError(
          `Cannot update network simulator: time must be a finite number, got ${
            String(time)
          }`,
        );
      }
      if (time < now) {
        throw new RangeError(
          `Cannot update network simulator: time went backwards from ${now} to ${time}`,
        );
      }
      now = time;
      const due = now + TIME_EPSILON;
      while (heap.length > 0 && heap[0].at <= due) {
        const item = heapPop(heap);
        stats.inFlight--;
        const binding = item.to === "" ? undefined : bindings.get(item.to);
        if (binding === undefined) {
          stats.undeliverable++;
        } else if (binding.deliver({ data: item.data, from: item.from })) {
          stats.delivered++;
        } else {
          stats.dropped++;
        }
      }
    },
  };
}
