/**
 * Shared pieces of the load harness (`tools/load.ts`): the payload layout,
 * process CPU time, a bounded RTT histogram, JSON-lines I/O between the
 * processes, and the sockets of each transport.
 *
 * @module
 */

import { listenUdp } from "../socket.ts";
import type { DatagramSocket } from "../socket.ts";
import { listenUdpFfi } from "../socket_ffi.ts";
import { useNativeSodium } from "../sodium_native.ts";

// NETCODE_CRYPTO=native runs every process of the harness (they inherit the
// environment) on native libsodium instead of the WebAssembly build.
if (Deno.env.get("NETCODE_CRYPTO") === "native") useNativeSodium();

/** The transports the harness runs over. */
export type Transport = "deno" | "ffi";

export const PROTOCOL_ID = 0x4c4f41444c4f4144n; // "LOADLOAD"
export const PAYLOAD_BYTES = 100;
export const SEND_HZ = 60;
/** Payload layout: client id (u32), sequence (u32), send time (f64 ms). */
export const PAYLOAD_ID = 0;
export const PAYLOAD_SEQUENCE = 4;
export const PAYLOAD_TIME = 8;

export function parseTransport(value: string | undefined): Transport {
  if (value === "deno" || value === "ffi") return value;
  throw new TypeError(`--transport must be deno or ffi, got ${value}`);
}

/**
 * A UDP socket bound on 127.0.0.1 for the transport. The Deno adapter gets
 * queues large enough for a tick of 1024 clients (its defaults hold 1024
 * received and 4096 queued sends); the FFI socket gets a 4 MiB kernel
 * receive buffer (its default).
 */
export function openSocket(transport: Transport, port = 0): DatagramSocket {
  return transport === "ffi"
    ? listenUdpFfi({ hostname: "127.0.0.1", port })
    : listenUdp({
      hostname: "127.0.0.1",
      port,
      maxQueue: 16384,
      maxSendQueue: 16384,
    });
}

/** Stats of a socket, whatever its transport (the `stats` property). */
export function socketStats(socket: DatagramSocket): Record<string, number> {
  const stats = (socket as { stats?: Record<string, number> }).stats;
  return stats === undefined ? {} : { ...stats };
}

const CLOCK_TICKS_PER_SECOND = 100; // getconf CLK_TCK on Linux

/**
 * CPU seconds this process has used, user plus system, all threads
 * (`/proc/self/stat` fields 14 and 15; Linux). NaN elsewhere.
 */
export function processCpuSeconds(): number {
  try {
    const stat = Deno.readTextFileSync("/proc/self/stat");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // fields[0] is field 3 (state): utime is field 14, stime field 15.
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
  } catch {
    return NaN;
  }
}

/**
 * CPU seconds the whole machine spent busy (all cores: user, nice, system,
 * irq, softirq, steal), from the `cpu` line of `/proc/stat` (Linux).
 */
export function machineBusySeconds(): number {
  try {
    const line = Deno.readTextFileSync("/proc/stat").split("\n")[0];
    const [user, nice, system, , , irq, softirq, steal] = line.split(/\s+/)
      .slice(1).map(Number);
    return (user + nice + system + irq + softirq + (steal ?? 0)) /
      CLOCK_TICKS_PER_SECOND;
  } catch {
    return NaN;
  }
}

/** UDP counters of the whole machine from `/proc/net/snmp` (Linux). */
export function udpCounters(): Record<string, number> {
  try {
    const lines = Deno.readTextFileSync("/proc/net/snmp").split("\n")
      .filter((line) => line.startsWith("Udp:"));
    const names = lines[0].split(/\s+/).slice(1);
    const values = lines[1].split(/\s+/).slice(1).map(Number);
    return Object.fromEntries(names.map((name, i) => [name, values[i]]));
  } catch {
    return {};
  }
}

/**
 * A histogram of milliseconds in 0.05 ms bins up to 2 s (bounded memory
 * whatever the run's length); percentiles are read off bin tops.
 */
export interface Histogram {
  readonly bins: Uint32Array;
  count: number;
  max: number;
}

const BIN_MS = 0.05;
const BINS = 40000;

export function createHistogram(): Histogram {
  return { bins: new Uint32Array(BINS + 1), count: 0, max: 0 };
}

export function record(histogram: Histogram, ms: number): void {
  const bin = Math.min(BINS, Math.max(0, Math.floor(ms / BIN_MS)));
  histogram.bins[bin]++;
  histogram.count++;
  if (ms > histogram.max) histogram.max = ms;
}

/** Adds `from` into `into`. */
export function mergeHistogram(into: Histogram, from: Histogram): void {
  for (let i = 0; i <= BINS; i++) into.bins[i] += from.bins[i];
  into.count += from.count;
  into.max = Math.max(into.max, from.max);
}

/** The value below which `fraction` of the samples fall (bin top), ms. */
export function percentile(histogram: Histogram, fraction: number): number {
  if (histogram.count === 0) return NaN;
  const target = Math.ceil(histogram.count * fraction);
  let seen = 0;
  for (let i = 0; i <= BINS; i++) {
    seen += histogram.bins[i];
    if (seen >= target) {
      return i === BINS
        ? histogram.max
        : Math.min((i + 1) * BIN_MS, histogram.max);
    }
  }
  return histogram.max;
}

/** A histogram as sparse `[bin, count]` pairs, for JSON. */
export function histogramToJson(
  histogram: Histogram,
): { bins: [number, number][]; count: number; max: number } {
  const bins: [number, number][] = [];
  histogram.bins.forEach((count, bin) => {
    if (count > 0) bins.push([bin, count]);
  });
  return { bins, count: histogram.count, max: histogram.max };
}

export function histogramFromJson(
  json: { bins: [number, number][]; count: number; max: number },
): Histogram {
  const histogram = createHistogram();
  for (const [bin, count] of json.bins) histogram.bins[bin] = count;
  histogram.count = json.count;
  histogram.max = json.max;
  return histogram;
}

const encoder = new TextEncoder();

/** Writes one JSON line to stdout (the parent reads them). */
export function emit(message: Record<string, unknown>): void {
  Deno.stdout.writeSync(encoder.encode(JSON.stringify(message) + "\n"));
}

/** Lines of a byte stream, as they arrive. */
export async function* lines(
  stream: ReadableStream<Uint8Array>,
): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let pending = "";
  for await (const chunk of stream) {
    pending += decoder.decode(chunk, { stream: true });
    let newline: number;
    while ((newline = pending.indexOf("\n")) >= 0) {
      yield pending.slice(0, newline);
      pending = pending.slice(newline + 1);
    }
  }
  if (pending !== "") yield pending;
}

/**
 * Calls `onCommand` for each line of stdin ("go", "quit"); returns at end of
 * input. Runs beside the process's tick loop.
 */
export async function readCommands(
  onCommand: (command: string) => void,
): Promise<void> {
  for await (const line of lines(Deno.stdin.readable)) {
    onCommand(line.trim());
  }
  onCommand("quit");
}

export const sleep = (ms: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

/**
 * How late Deno's timers fire: `setTimeout(f, 1)` about 2 ms later, even
 * `setTimeout(f, 0)` about 2 ms later (measured on the load machine).
 */
const TIMER_LATENESS_MS = 1.2;
// Made on first use: an open MessageChannel keeps a process's event loop
// alive, and load.ts, which imports this module, must be able to end.
let hop: MessageChannel | undefined;
let hopDone: (() => void) | undefined;

/** A trip through the event loop (about 20 µs): stdin commands get in. */
function yieldToEventLoop(): Promise<void> {
  if (hop === undefined) {
    hop = new MessageChannel();
    hop.port1.onmessage = () => hopDone?.();
  }
  const channel = hop;
  return new Promise((resolve) => {
    hopDone = resolve;
    channel.port2.postMessage(0);
  });
}

/**
 * Waits until `deadline` (a `performance.now()` time), waking at most about
 * a millisecond early or late. A loop that calls it on a fixed schedule
 * keeps its rate: a plain `setTimeout` per step would add about 1-2 ms of
 * lateness to every step, so a loop of four 4.2 ms steps a frame would run
 * at 45 Hz instead of 60.
 */
export function sleepUntil(deadline: number): Promise<void> {
  const remaining = deadline - performance.now();
  return remaining > TIMER_LATENESS_MS + 0.3
    ? sleep(remaining - TIMER_LATENESS_MS)
    : yieldToEventLoop();
}

export function hexToBytes(hex: string): Uint8Array {
  const bytes = new Uint8Array(hex.length / 2);
  for (let i = 0; i < bytes.length; i++) {
    bytes[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  }
  return bytes;
}

export function bytesToHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
