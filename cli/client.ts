/**
 * A netcode echo client: gets a connect token (from the web backend, from a
 * file, or made here with the private key), connects, sends numbered
 * payloads one per update, checks every echo byte for byte and reports
 * connect time, round-trip times and loss. It exits 0 only when every
 * payload came back intact.
 *
 * ```sh
 * deno task netcode client --help
 * deno task netcode client --server 127.0.0.1:40000 --packets 100
 * deno task netcode client --token-url http://127.0.0.1:8080/token --credential dev-alice
 * deno task netcode client --webtransport --server 127.0.0.1:40001 --cert-hash <hex>
 * ```
 *
 * With `--webtransport` it connects the way a browser does, over
 * WebTransport datagrams, to the servers' WebTransport addresses; a token
 * from `--token-url` is then asked for with `?transport=webtransport`, and
 * the certificate hashes come from the backend's answer unless `--cert-hash`
 * gives them.
 *
 * This is the `netcode client` command (`cli/main.ts`); `examples/client.ts` runs it
 * with the same flags.
 *
 * @module
 */

import { formatAddress } from "../address.ts";
import { ClientState, clientStateName, createClient } from "../client.ts";
import { CONNECT_TOKEN_BYTES, MAX_PAYLOAD_BYTES } from "../packet.ts";
import type { DatagramSocket } from "../socket.ts";
import { connectWebTransport } from "../socket_webtransport.ts";
import { generateConnectToken, readConnectToken } from "../token.ts";
import {
  type Command,
  EXIT_FAILURE,
  EXIT_OK,
  parseFlags,
  parseHexFlag,
  parseIntegerFlag,
  parseSecondsFlag,
  usageError,
} from "./_args.ts";
import {
  formatMs,
  percentile,
  runTicks,
  sleep,
  TOKEN_FLAGS,
  TOKEN_FLAGS_HELP,
  tokenOptionsFromFlags,
} from "./_common.ts";

/** Smallest payload: it starts with its 4-byte sequence number. */
export const MIN_ECHO_PAYLOAD_BYTES = 4;

/** Options of {@linkcode runEchoClient}. */
export interface EchoClientOptions {
  /** The 2048-byte connect token. */
  token: Uint8Array;
  /** Payloads to send, one per update once connected. @default {100} */
  packets?: number;
  /** Bytes per payload, 4..1200. @default {100} */
  size?: number;
  /** Updates per second. @default {60} */
  tickRate?: number;
  /** Give up after this many seconds in all. @default {10} */
  timeoutSeconds?: number;
  /** Where state changes are logged. @default {console.log} */
  log?: (line: string) => void;
  /** Stops the run early (it then fails unless every echo is back). */
  signal?: AbortSignal;
  /**
   * The transport, for example `connectWebTransport()`; the run closes it.
   * @default {UDP sockets on ephemeral ports}
   */
  socket?: DatagramSocket & { readonly closed?: Promise<void> };
}

/** The outcome of {@linkcode runEchoClient}. */
export interface EchoClientReport {
  /** Whether every payload came back intact. */
  ok: boolean;
  /** Why not, when not `ok`. */
  failure: string | undefined;
  /** Whether the client connected. */
  connected: boolean;
  /** The server it connected to (or last tried). */
  server: string | undefined;
  /** The slot the server gave it. */
  clientIndex: number;
  /** Milliseconds from `connect()` to connected, or `NaN`. */
  connectMs: number;
  /** Payloads sent. */
  sent: number;
  /** Payloads that came back intact. */
  echoed: number;
  /** Payloads sent that never came back intact. */
  lost: number;
  /** Echoes whose bytes did not match what was sent. */
  corrupt: number;
  /** Echoes received more than once. */
  duplicates: number;
  /** Median round-trip time in milliseconds (tick-quantised), or `NaN`. */
  rttP50Ms: number;
  /** 99th percentile round-trip time in milliseconds, or `NaN`. */
  rttP99Ms: number;
  /** Every round-trip time in milliseconds, ascending. */
  rttMs: readonly number[];
  /** The client's state when the run ended, before disconnecting. */
  finalState: ClientState;
  /** Its name: `"connected"`, `"connection request timed out"`, ... */
  finalStateName: string;
}

function fillPayload(payload: Uint8Array, sequence: number): void {
  new DataView(payload.buffer, payload.byteOffset).setUint32(
    0,
    sequence,
    true,
  );
  for (let k = MIN_ECHO_PAYLOAD_BYTES; k < payload.length; k++) {
    payload[k] = (sequence * 31 + k) & 0xff;
  }
}

/** Time for the disconnect packets to reach the system before closing. */
const FLUSH_MS = 50;

/**
 * Connects with `token` and echoes `packets` payloads through the server.
 *
 * @param options The token, how much to send and for how long.
 * @returns What happened; `ok` only when every echo came back intact.
 * @throws {RangeError} On a size or packet count out of range.
 */
export async function runEchoClient(
  options: EchoClientOptions,
): Promise<EchoClientReport> {
  const packets = options.packets ?? 100;
  const size = options.size ?? 100;
  const tickRate = options.tickRate ?? 60;
  const timeoutSeconds = options.timeoutSeconds ?? 10;
  const log = options.log ?? ((line: string) => console.log(line));
  if (!Number.isInteger(packets) || packets < 0) {
    throw new RangeError(`Cannot run: packets ${packets} is not 0 or more`);
  }
  if (
    !Number.isInteger(size) || size < MIN_ECHO_PAYLOAD_BYTES ||
    size > MAX_PAYLOAD_BYTES
  ) {
    throw new RangeError(
      `Cannot run: size ${size} is outside ${MIN_ECHO_PAYLOAD_BYTES}..${MAX_PAYLOAD_BYTES}`,
    );
  }

  const sentAt = new Float64Array(packets);
  const received = new Uint8Array(packets);
  const rtts: number[] = [];
  const expected = new Uint8Array(size);
  let sent = 0;
  let echoed = 0;
  let corrupt = 0;
  let duplicates = 0;
  let connectMs = NaN;
  let failure: string | undefined;
  let wasConnected = false;
  const connectStart = performance.now();

  const client = createClient({
    socket: options.socket,
    onStateChange(previous, next) {
      // Connecting and losing the connection can happen in one update:
      // note it here rather than by polling the state.
      if (next === ClientState.CONNECTED && !wasConnected) {
        wasConnected = true;
        connectMs = performance.now() - connectStart;
      }
      log(
        `state: ${clientStateName(previous)} -> ${clientStateName(next)}${
          next === ClientState.SENDING_CONNECTION_REQUEST &&
            client.serverAddress
            ? ` (${formatAddress(client.serverAddress)})`
            : ""
        }`,
      );
    },
  });
  client.connect(options.token);
  let server = client.serverAddress && formatAddress(client.serverAddress);
  let finalState: ClientState = client.state;

  function check(payload: Uint8Array): void {
    if (payload.length !== size) {
      corrupt++;
      return;
    }
    const sequence = new DataView(payload.buffer, payload.byteOffset)
      .getUint32(0, true);
    if (sequence >= sent) {
      corrupt++;
      return;
    }
    fillPayload(expected, sequence);
    for (let k = 0; k < size; k++) {
      if (payload[k] !== expected[k]) {
        corrupt++;
        return;
      }
    }
    if (received[sequence]) {
      duplicates++;
      return;
    }
    received[sequence] = 1;
    echoed++;
    rtts.push(performance.now() - sentAt[sequence]);
  }

  try {
    await runTicks(tickRate, (now) => {
      client.update(now);
      if (client.serverAddress) server = formatAddress(client.serverAddress);
      for (
        let payload = client.receive();
        payload !== undefined;
        payload = client.receive()
      ) {
        check(payload);
      }
      finalState = client.state;
      if (client.state === ClientState.CONNECTED) {
        if (echoed === packets) return false;
        if (sent < packets) {
          if (size > client.maxPayloadBytes) {
            failure =
              `size ${size} exceeds the ${client.maxPayloadBytes} byte payload limit of this transport`;
            return false;
          }
          const payload = new Uint8Array(size);
          fillPayload(payload, sent);
          sentAt[sent] = performance.now();
          sent++;
          client.send(payload);
        }
      } else if (client.state <= ClientState.DISCONNECTED) {
        failure = wasConnected
          ? `connection lost: ${client.stateName}`
          : `could not connect: ${client.stateName}`;
        return false;
      }
      if (now >= timeoutSeconds) {
        failure = wasConnected
          ? `timed out after ${timeoutSeconds} s with ${
            sent - echoed
          } echoes missing`
          : `timed out after ${timeoutSeconds} s while ${client.stateName}`;
        return false;
      }
      return true;
    }, options.signal);
    if (options.signal?.aborted && failure === undefined && echoed < packets) {
      failure = "stopped";
    }
  } finally {
    if (client.state > ClientState.DISCONNECTED) {
      client.disconnect();
      await sleep(FLUSH_MS);
    }
    client.close();
    await options.socket?.closed;
  }

  rtts.sort((a, b) => a - b);
  const lost = sent - echoed;
  if (failure === undefined && lost > 0) {
    failure = `${lost} of ${sent} echoes missing`;
  }
  if (failure === undefined && corrupt > 0) {
    failure = `${corrupt} corrupt echoes`;
  }
  return {
    ok: failure === undefined,
    failure,
    connected: wasConnected,
    server,
    clientIndex: client.clientIndex,
    connectMs,
    sent,
    echoed,
    lost,
    corrupt,
    duplicates,
    rttP50Ms: percentile(rtts, 50),
    rttP99Ms: percentile(rtts, 99),
    rttMs: rtts,
    finalState,
    finalStateName: clientStateName(finalState),
  };
}

/** What the web backend answers `POST /token`. */
export interface TokenAnswer {
  /** The 2048-byte connect token. */
  token: Uint8Array;
  /**
   * The certificate hashes of each WebTransport server (for a
   * `?transport=webtransport` request), current first; empty otherwise.
   */
  certificateHashes: Uint8Array[];
}

/**
 * Asks the web backend for a connect token (`POST` with a bearer
 * credential; the answer is JSON with a base64 `connectToken` and, for
 * browser players, the WebTransport servers' certificate hashes).
 *
 * @param url The backend's token URL: `http://127.0.0.1:8080/token`.
 * @param credential The bearer credential.
 * @param signal Aborts the request.
 * @returns The token and any certificate hashes.
 * @throws {Error} When the request fails or the answer is not a token.
 */
export async function fetchTokenAnswer(
  url: string,
  credential: string,
  signal?: AbortSignal,
): Promise<TokenAnswer> {
  const response = await fetch(url, {
    method: "POST",
    headers: { authorization: `Bearer ${credential}` },
    signal,
  });
  const text = await response.text();
  if (!response.ok) {
    let detail = text.trim();
    try {
      detail = JSON.parse(text).error ?? detail;
    } catch {
      // not JSON: keep the text
    }
    const retry = response.headers.get("retry-after");
    throw new Error(
      `token request to ${url} failed: ${response.status} ${response.statusText}${
        detail ? `: ${detail}` : ""
      }${retry ? ` (retry after ${retry} s)` : ""}`,
    );
  }
  let token: Uint8Array;
  let certificateHashes: Uint8Array[];
  try {
    const answer = JSON.parse(text);
    token = Uint8Array.fromBase64(answer.connectToken);
    certificateHashes = (answer.webTransport ?? []).flatMap((
      server: { certificateHashes: string[] },
    ) => server.certificateHashes.map((hex) => Uint8Array.fromHex(hex)));
  } catch {
    throw new Error(
      `token request to ${url}: expected JSON with a base64 "connectToken"`,
    );
  }
  if (token.length !== CONNECT_TOKEN_BYTES) {
    throw new Error(
      `token request to ${url}: the token has ${token.length} bytes, not ${CONNECT_TOKEN_BYTES}`,
    );
  }
  return { token, certificateHashes };
}

/**
 * Asks the web backend for a connect token, as {@linkcode fetchTokenAnswer}.
 *
 * @param url The backend's token URL: `http://127.0.0.1:8080/token`.
 * @param credential The bearer credential.
 * @param signal Aborts the request.
 * @returns The 2048-byte token.
 * @throws {Error} When the request fails or the answer is not a token.
 */
export async function fetchConnectToken(
  url: string,
  credential: string,
  signal?: AbortSignal,
): Promise<Uint8Array> {
  return (await fetchTokenAnswer(url, credential, signal)).token;
}

/**
 * Reads a connect token file: the raw 2048 bytes (`netcode token --out`), or
 * base64 or hex text.
 *
 * @param path The file.
 * @returns The 2048-byte token.
 * @throws {Error} When the file is not a token in one of those forms.
 */
export async function readTokenFile(path: string): Promise<Uint8Array> {
  const bytes = await Deno.readFile(path);
  if (bytes.length === CONNECT_TOKEN_BYTES) return bytes;
  const text = new TextDecoder().decode(bytes).trim();
  let token: Uint8Array | undefined;
  try {
    token = /^[0-9a-fA-F]+$/.test(text)
      ? Uint8Array.fromHex(text)
      : Uint8Array.fromBase64(text.replace(/\s+/g, ""));
  } catch {
    token = undefined;
  }
  if (token?.length !== CONNECT_TOKEN_BYTES) {
    throw new Error(
      `${path}: not a connect token (expected ${CONNECT_TOKEN_BYTES} bytes, raw, base64 or hex)`,
    );
  }
  return token;
}

const CLIENT_FLAGS = {
  "token-url": { type: "string" },
  credential: { type: "string" },
  "token-file": { type: "string" },
  ...TOKEN_FLAGS,
  packets: { type: "string" },
  size: { type: "string" },
  "tick-rate": { type: "string" },
  timeout: { type: "string" },
  webtransport: { type: "boolean" },
  "cert-hash": { type: "string", multiple: true },
  help: { type: "boolean", short: "h" },
} as const;

function clientUsage(program: string): string {
  return `Usage: ${program} [flags]

Connects to a netcode echo server, sends numbered payloads one per update,
checks every echo byte for byte and prints connect time, round-trip times
and loss. Exits 0 only when every payload came back intact, 1 otherwise.

Where the connect token comes from (one of):
  --token-url URL       POST to the web backend with --credential as bearer
  --credential SECRET   the bearer credential for --token-url
  --token-file FILE     a token file (raw 2048 bytes, base64 or hex)
  otherwise a token is made here with the private key:
${TOKEN_FLAGS_HELP}

How to connect:
  --webtransport        over WebTransport, as a browser does; the token names
                        the servers' WebTransport addresses
  --cert-hash HEX       SHA-256 of a self-signed server certificate, as
                        "netcode server" prints it (repeatable)
                        [default: from the --token-url answer]

What to send:
  --packets N           payloads to send, one per update [default: 100]
  --size BYTES          bytes per payload, ${MIN_ECHO_PAYLOAD_BYTES}..${MAX_PAYLOAD_BYTES} [default: 100]
  --tick-rate HZ        updates per second, 1..1000 [default: 60]
  --timeout S           give up after S seconds in all [default: 10]
  -h, --help            show this help`;
}

/** The `client` command: the echo client from the command line. */
export const clientCommand: Command = {
  name: "client",
  summary: "connect to a server and check that payloads are echoed",
  usage: clientUsage,
  async run(args, program) {
    const flags = parseFlags(args, CLIENT_FLAGS);
    if (flags.help) {
      console.log(clientUsage(program));
      return EXIT_OK;
    }
    const packets = flags.packets === undefined
      ? 100
      : parseIntegerFlag("--packets", flags.packets, 0, 1_000_000);
    const size = flags.size === undefined ? 100 : parseIntegerFlag(
      "--size",
      flags.size,
      MIN_ECHO_PAYLOAD_BYTES,
      MAX_PAYLOAD_BYTES,
    );
    const tickRate = flags["tick-rate"] === undefined
      ? 60
      : parseIntegerFlag("--tick-rate", flags["tick-rate"], 1, 1000);
    const timeoutSeconds = flags.timeout === undefined
      ? 10
      : parseSecondsFlag("--timeout", flags.timeout, 0.001, 1e6);
    const tokenFlags = Object.keys(TOKEN_FLAGS).filter((name) =>
      flags[name as keyof typeof TOKEN_FLAGS] !== undefined
    );
    const sources = ["token-url", "token-file"].filter((name) =>
      flags[name as "token-url" | "token-file"] !== undefined
    );
    if (sources.length > 1) {
      throw usageError("give --token-url or --token-file, not both");
    }
    if (sources.length === 1 && tokenFlags.length > 0) {
      throw usageError(
        `--${tokenFlags[0]} makes no sense with --${
          sources[0]
        }: the token already says it`,
      );
    }
    if (flags.credential !== undefined && flags["token-url"] === undefined) {
      throw usageError("--credential needs --token-url");
    }

    if (flags["cert-hash"] !== undefined && !flags.webtransport) {
      throw usageError("--cert-hash goes with --webtransport");
    }
    let certificateHashes = (flags["cert-hash"] ?? []).map((text) => {
      const hash = parseHexFlag("--cert-hash", text, 32);
      if (hash.length !== 32) {
        throw usageError("--cert-hash: expected 32 bytes (64 hex characters)");
      }
      return hash;
    });

    let token: Uint8Array;
    if (flags["token-url"] !== undefined) {
      if (flags.credential === undefined) {
        throw usageError("--token-url needs --credential");
      }
      let url: URL;
      try {
        url = new URL(flags["token-url"]);
      } catch {
        throw usageError(`--token-url: not a URL: ${flags["token-url"]}`);
      }
      if (flags.webtransport) url.searchParams.set("transport", "webtransport");
      const answer = await fetchTokenAnswer(url.href, flags.credential);
      token = answer.token;
      if (certificateHashes.length === 0) {
        certificateHashes = answer.certificateHashes;
      }
    } else if (flags["token-file"] !== undefined) {
      token = await readTokenFile(flags["token-file"]);
    } else {
      token = generateConnectToken(
        tokenOptionsFromFlags(flags, (message) => console.error(message)),
      );
    }
    const servers = readConnectToken(token)?.serverAddresses.map(
      formatAddress,
    );
    console.log(
      `connecting to ${servers?.join(", ") ?? "(unreadable token)"}${
        flags.webtransport ? " over WebTransport" : ""
      }: ${packets} payloads of ${size} bytes at ${tickRate} Hz`,
    );
    const report = await runEchoClient({
      socket: flags.webtransport
        ? connectWebTransport({ certificateHashes })
        : undefined,
      token,
      packets,
      size,
      tickRate,
      timeoutSeconds,
    });
    for (const line of formatClientReport(report, size, tickRate)) {
      console.log(line);
    }
    if (report.ok) {
      console.log("ok");
      return EXIT_OK;
    }
    console.error(
      `FAILED: ${report.failure} (final client state: ${report.finalStateName})`,
    );
    return EXIT_FAILURE;
  },
};

/**
 * Human lines about a client run.
 *
 * @param report The run's report.
 * @param size Bytes per payload.
 * @param tickRate Updates per second, which quantises the round-trip times.
 * @returns The lines.
 */
export function formatClientReport(
  report: EchoClientReport,
  size: number,
  tickRate: number,
): string[] {
  if (!report.connected) return [`not connected (${report.finalStateName})`];
  const lossPercent = report.sent === 0 ? 0 : (100 * report.lost) / report.sent;
  return [
    `connected to ${report.server} in ${
      formatMs(report.connectMs)
    } (slot ${report.clientIndex})`,
    `echoed ${report.echoed}/${report.sent} payloads of ${size} bytes: lost ${report.lost} (${
      lossPercent.toFixed(1)
    }%), corrupt ${report.corrupt}, duplicates ${report.duplicates}`,
    `round trip p50 ${formatMs(report.rttP50Ms)}, p99 ${
      formatMs(report.rttP99Ms)
    } (measured at ${tickRate} Hz updates)`,
  ];
}
