/**
 * What the examples and the `netcode` program share: the development
 * protocol id and key, private key lookup, the token flags, a tick loop and
 * small formatting helpers.
 *
 * @module
 */

import type { GenerateConnectTokenOptions } from "../token.ts";
import { USER_DATA_BYTES } from "../packet.ts";
import { randomBytes } from "../crypto.ts";
import {
  type FlagSpecs,
  parseAddressFlag,
  parseHexFlag,
  parseKeyFlag,
  parseUint64Flag,
  usageError,
} from "./_args.ts";

/** The protocol id the examples use unless told otherwise (the reference's). */
export const DEFAULT_PROTOCOL_ID = 0x1122334455667788n;

/** Where the examples' server listens and where their tokens point. */
export const DEFAULT_SERVER_ADDRESS = "127.0.0.1:40000";

/** The environment variable holding the private key as 64 hex characters. */
export const PRIVATE_KEY_ENV = "NETCODE_PRIVATE_KEY";

/**
 * The development private key: the well-known key of the C reference's
 * example programs, so they interoperate with ours out of the box. It is
 * public; never use it in production.
 */
export const DEV_PRIVATE_KEY_HEX =
  "606abe6ec91910ea9a6562f66f2b30e44371d62cd19927266b3c60f4b715aba1";

/**
 * The private key to use: `--private-key`, else the `NETCODE_PRIVATE_KEY`
 * environment variable, else the development key with a warning. The key is
 * never printed.
 *
 * @param flag The `--private-key` value, if given.
 * @param warn Where to write the warning about the development key.
 * @returns The 32-byte key.
 * @throws {Error} A usage error when the flag or variable is not 64 hex characters.
 */
export function resolvePrivateKey(
  flag: string | undefined,
  warn: (message: string) => void,
): Uint8Array {
  if (flag !== undefined) return parseKeyFlag("--private-key", flag);
  let env: string | undefined;
  try {
    env = Deno.env.get(PRIVATE_KEY_ENV);
  } catch {
    env = undefined; // no --allow-env: same as unset
  }
  if (env !== undefined && env !== "") {
    return parseKeyFlag(PRIVATE_KEY_ENV, env);
  }
  warn(
    `warning: no --private-key or ${PRIVATE_KEY_ENV}: using the public development key; never use it in production`,
  );
  return Uint8Array.fromHex(DEV_PRIVATE_KEY_HEX);
}

/** The flags that describe a connect token, shared by `token` and `client`. */
export const TOKEN_FLAGS = {
  server: { type: "string", multiple: true },
  "protocol-id": { type: "string" },
  "private-key": { type: "string" },
  "client-id": { type: "string" },
  "user-data": { type: "string" },
} as const satisfies FlagSpecs;

/** Help lines for {@linkcode TOKEN_FLAGS}. */
export const TOKEN_FLAGS_HELP =
  `  --server ADDRESS      server in the token, in the order tried (repeatable)
                        [default: ${DEFAULT_SERVER_ADDRESS}]
  --protocol-id ID      protocol id, hex (0x...) or decimal
                        [default: 0x${DEFAULT_PROTOCOL_ID.toString(16)}]
  --private-key HEX     the servers' private key, 64 hex characters
                        [default: $${PRIVATE_KEY_ENV}, else the development key]
  --client-id ID        client id, hex (0x...) or decimal [default: random]
  --user-data HEX       up to ${USER_DATA_BYTES} bytes for the server [default: zeros]`;

/** Values of {@linkcode TOKEN_FLAGS} after parsing. */
export interface TokenFlagValues {
  /** `--server`, repeated. */
  server?: string[];
  /** `--protocol-id`. */
  "protocol-id"?: string;
  /** `--private-key`. */
  "private-key"?: string;
  /** `--client-id`. */
  "client-id"?: string;
  /** `--user-data`. */
  "user-data"?: string;
}

/**
 * Turns token flags into options for `generateConnectToken`.
 *
 * @param values The parsed flags.
 * @param warn Where to write the development key warning.
 * @returns The options (without expiry and timeout).
 * @throws {Error} A usage error naming the bad flag.
 */
export function tokenOptionsFromFlags(
  values: TokenFlagValues,
  warn: (message: string) => void,
): GenerateConnectTokenOptions {
  const servers = values.server ?? [DEFAULT_SERVER_ADDRESS];
  if (servers.length > 32) {
    throw usageError("--server: at most 32 servers fit in a connect token");
  }
  return {
    serverAddresses: servers.map((text) => parseAddressFlag("--server", text)),
    protocolId: values["protocol-id"] === undefined
      ? DEFAULT_PROTOCOL_ID
      : parseUint64Flag("--protocol-id", values["protocol-id"]),
    clientId: values["client-id"] === undefined
      ? randomClientId()
      : parseUint64Flag("--client-id", values["client-id"]),
    userData: values["user-data"] === undefined
      ? undefined
      : parseHexFlag("--user-data", values["user-data"], USER_DATA_BYTES),
    privateKey: resolvePrivateKey(values["private-key"], warn),
  };
}

/**
 * A random 64-bit client id.
 *
 * @returns The id.
 */
export function randomClientId(): bigint {
  const bytes = randomBytes(new Uint8Array(8));
  return new DataView(bytes.buffer).getBigUint64(0);
}

/**
 * Monotonic seconds, for `update(now)`.
 *
 * @returns Seconds since an arbitrary origin.
 */
export function monotonicSeconds(): number {
  return performance.now() / 1000;
}

/**
 * Waits `ms` milliseconds, or less when `signal` aborts.
 *
 * @param ms How long.
 * @param signal Ends the wait early.
 * @returns When done.
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, Math.max(0, ms));
    signal?.addEventListener("abort", done, { once: true });
  });
}

/**
 * Calls `tick(now)` `tickRate` times a second, with `now` in monotonic
 * seconds since the loop started, until it returns `false` or `signal`
 * aborts. A late tick does not cause a burst: the schedule restarts from it.
 *
 * @param tickRate Ticks per second.
 * @param tick The work; return `false` to stop.
 * @param signal Stops the loop.
 * @returns When the loop stopped.
 */
export async function runTicks(
  tickRate: number,
  tick: (now: number) => boolean | void,
  signal?: AbortSignal,
): Promise<void> {
  const interval = 1000 / tickRate;
  const start = performance.now();
  let next = start;
  while (!signal?.aborted) {
    if (tick((performance.now() - start) / 1000) === false) return;
    next += interval;
    const wait = next - performance.now();
    if (wait < -interval) next = performance.now();
    await sleep(wait, signal);
  }
}

/**
 * The `p`th percentile of sorted values, by nearest rank.
 *
 * @param sorted Values in ascending order.
 * @param p 0..100.
 * @returns The percentile, or `NaN` for no values.
 */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

/**
 * Formats milliseconds for people: `"12.3 ms"`, or `"-"` for `NaN`.
 *
 * @param ms Milliseconds.
 * @returns The text.
 */
export function formatMs(ms: number): string {
  return Number.isNaN(ms) ? "-" : `${ms.toFixed(1)} ms`;
}

/**
 * Formats a byte count for people: `"1.2 MB"`.
 *
 * @param bytes Bytes.
 * @returns The text.
 */
export function formatBytes(bytes: number): string {
  if (bytes < 1000) return `${bytes} B`;
  if (bytes < 1e6) return `${(bytes / 1e3).toFixed(1)} kB`;
  if (bytes < 1e9) return `${(bytes / 1e6).toFixed(1)} MB`;
  return `${(bytes / 1e9).toFixed(1)} GB`;
}
