/**
 * The web backend: authenticates players and hands out connect tokens.
 *
 * `POST /token` with `Authorization: Bearer <credential>` answers
 * `200 application/json`:
 *
 * ```json
 * {
 *   "connectToken": "<base64 of the 2048-byte connect token>",
 *   "clientId": "<the client id, decimal>",
 *   "user": "alice",
 *   "expiresAt": 1800000030,
 *   "servers": ["127.0.0.1:40000"]
 * }
 * ```
 *
 * Browser players ask `POST /token?transport=webtransport`: their token names
 * the servers' WebTransport addresses instead, and the answer also carries
 * what the browser needs to open the sessions (hashes in hex, current first,
 * then the next one during a certificate rotation):
 *
 * ```json
 * {
 *   "webTransport": [
 *     { "url": "https://127.0.0.1:40001/netcode", "certificateHashes": ["9f86..."] }
 *   ]
 * }
 * ```
 *
 * The backend can also serve a few static files (`assets`: the browser page
 * and its bundle) on `GET`; they are not rate limited.
 *
 * Errors are JSON `{ "error": "..." }`: 401 for a missing or unknown
 * credential (with `WWW-Authenticate: Bearer`), 400 for an unknown transport
 * or one this backend has no servers for, 405 for another method, 404 for
 * another path, and 429 with `Retry-After` (seconds) when one IP asks too
 * often. The client id is the first 8 bytes of SHA-256 of the user name,
 * so each player keeps one id (and a server refuses a second connection with
 * it). The private key comes from `--private-key` or `NETCODE_PRIVATE_KEY`
 * and is never logged.
 *
 * The credentials are a development table ({@linkcode DEV_USERS}); a real
 * backend checks a session or an OAuth token here instead.
 *
 * ```sh
 * NETCODE_PRIVATE_KEY=$(deno task netcode keygen) deno task netcode backend --server 127.0.0.1:40000
 * curl -X POST -H "Authorization: Bearer dev-alice" http://127.0.0.1:8080/token
 * ```
 *
 * @module
 */

import { type Address, formatAddress, parseAddress } from "../address.ts";
import { DEFAULT_WEBTRANSPORT_PATH } from "../socket_webtransport.ts";
import {
  DEFAULT_CONNECT_TOKEN_EXPIRY_SECONDS,
  DEFAULT_TIMEOUT_SECONDS,
  generateConnectToken,
} from "../token.ts";
import {
  type Command,
  EXIT_OK,
  parseAddressFlag,
  parseFlags,
  parseHexFlag,
  parseIntegerFlag,
  parseTimeoutFlag,
  parseUint64Flag,
  usageError,
} from "./_args.ts";
import {
  DEFAULT_PROTOCOL_ID,
  DEFAULT_SERVER_ADDRESS,
  PRIVATE_KEY_ENV,
  resolvePrivateKey,
} from "./_common.ts";

/** The development credentials: bearer credential to user name. */
export const DEV_USERS: Readonly<Record<string, string>> = Object.freeze({
  "dev-alice": "alice",
  "dev-bob": "bob",
  "dev-carol": "carol",
  "dev-dave": "dave",
});

/** Where the backend listens unless told otherwise. */
export const DEFAULT_BACKEND_ADDRESS = "127.0.0.1:8080";

/** A game server's WebTransport endpoint, for browser players. */
export interface BackendWebTransportServer {
  /** The endpoint's address, as the game server lists it. */
  readonly address: string | Address;
  /**
   * The SHA-256 hashes of its certificates, current first: an array, or a
   * function read on every token request (so a rotation is picked up).
   * Empty for a CA-signed certificate.
   */
  readonly certificateHashes:
    | readonly Uint8Array[]
    | (() => readonly Uint8Array[]);
  /** The session path. @default {"/netcode"} */
  readonly path?: string;
}

/** A static file the backend serves on `GET`. */
export interface BackendAsset {
  /** The `Content-Type` header. */
  readonly contentType: string;
  /** The body. */
  readonly body: string | Uint8Array<ArrayBuffer>;
}

/** Options of {@linkcode createBackendHandler}. */
export interface BackendOptions {
  /** The game servers written in UDP players' tokens, in the order tried. */
  serverAddresses: readonly (string | Address)[];
  /**
   * The WebTransport endpoints written in browser players' tokens
   * (`POST /token?transport=webtransport`), in the order tried.
   * @default {none: browser players are refused with 400}
   */
  webTransportServers?: readonly BackendWebTransportServer[];
  /** Static files by path (`"/"`, `"/browser.js"`), served on GET. @default {none} */
  assets?: Readonly<Record<string, BackendAsset>>;
  /** The game's protocol id. @default {0x1122334455667788n} */
  protocolId?: bigint;
  /** The 32-byte private key shared with the game servers. */
  privateKey: Uint8Array;
  /** Bearer credential to user name. @default {DEV_USERS} */
  users?: Readonly<Record<string, string>>;
  /** Token lifetime in seconds. @default {30} */
  expireSeconds?: number;
  /** Connection timeout written in tokens, in seconds. @default {5} */
  timeoutSeconds?: number;
  /**
   * Requests one IP may make per minute (any path, any answer), with bursts
   * of as many. 0 disables the limit.
   * @default {10}
   */
  rateLimitPerMinute?: number;
  /** The clock, in milliseconds, for the rate limiter and tokens. @default {Date.now} */
  now?: () => number;
  /** Where to log a line per token issued or refused. @default {no logging} */
  log?: (line: string) => void;
}

/** What the handler needs to know about the connection. */
export interface BackendRequestInfo {
  /** The peer, whose IP the rate limit counts against. */
  readonly remoteAddr: Deno.Addr;
}

/** A request handler, as `Deno.serve` takes it. */
export type BackendHandler = (
  request: Request,
  info: BackendRequestInfo,
) => Promise<Response>;

/**
 * The client id of a user: the first 8 bytes of SHA-256 of the name,
 * big-endian.
 *
 * @param user The user name.
 * @returns The 64-bit client id.
 */
export async function clientIdForUser(user: string): Promise<bigint> {
  const digest = await crypto.subtle.digest(
    "SHA-256",
    new TextEncoder().encode(user),
  );
  return new DataView(digest).getBigUint64(0);
}

function json(
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): Response {
  return new Response(JSON.stringify(body) + "\n", {
    status,
    headers: {
      "content-type": "application/json",
      "cache-control": "no-store",
      ...headers,
    },
  });
}

/**
 * The largest request body the backend reads. `POST /token` needs none; a
 * larger one is answered with 413 without reading it all.
 */
export const MAX_REQUEST_BODY_BYTES = 4096;

/** Whether the body is over the limit, reading at most the limit of it. */
async function bodyTooLarge(request: Request): Promise<boolean> {
  if (request.body === null) return false;
  const length = Number(request.headers.get("content-length") ?? NaN);
  if (length > MAX_REQUEST_BODY_BYTES) {
    await request.body.cancel().catch(() => {});
    return true;
  }
  const reader = request.body.getReader();
  let bytes = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return false;
      bytes += value.byteLength;
      if (bytes > MAX_REQUEST_BODY_BYTES) return true;
    }
  } catch {
    return false; // the client went away; the answer goes nowhere
  } finally {
    await reader.cancel().catch(() => {});
  }
}

interface Bucket {
  tokens: number;
  updated: number;
}

/**
 * Makes the backend's request handler, testable without a network and with
 * an injectable clock.
 *
 * @param options Servers, keys, users, token lifetimes, rate limit, clock.
 * @returns The handler: pass it to `Deno.serve`.
 * @throws {TypeError} On an unparsable server address.
 * @throws {RangeError} On a private key that is not 32 bytes.
 */
export function createBackendHandler(options: BackendOptions): BackendHandler {
  const servers = options.serverAddresses.map((address) =>
    typeof address === "string" ? parseAddress(address) : address
  );
  const serverNames = servers.map(formatAddress);
  const webTransportServers = (options.webTransportServers ?? []).map(
    (server) => {
      const address = typeof server.address === "string"
        ? parseAddress(server.address)
        : server.address;
      const hashes = server.certificateHashes;
      return {
        address,
        url: `https://${formatAddress(address)}${
          server.path ?? DEFAULT_WEBTRANSPORT_PATH
        }`,
        hashes: typeof hashes === "function" ? hashes : () => hashes,
      };
    },
  );
  const webTransportAddresses = webTransportServers.map((s) => s.address);
  const assets = new Map(Object.entries(options.assets ?? {}));
  const protocolId = options.protocolId ?? DEFAULT_PROTOCOL_ID;
  const privateKey = options.privateKey.slice();
  const users = new Map(Object.entries(options.users ?? DEV_USERS));
  const expireSeconds = options.expireSeconds ??
    DEFAULT_CONNECT_TOKEN_EXPIRY_SECONDS;
  const timeoutSeconds = options.timeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS;
  const limit = options.rateLimitPerMinute ?? 10;
  const now = options.now ?? Date.now;
  const log = options.log ?? (() => {});
  const clientIds = new Map<string, Promise<bigint>>();

  // Check the configuration once, now, rather than on every request.
  for (const addresses of [servers, webTransportAddresses]) {
    if (addresses === webTransportAddresses && addresses.length === 0) break;
    generateConnectToken({
      serverAddresses: addresses,
      clientId: 0n,
      protocolId,
      privateKey,
      expireSeconds,
      timeoutSeconds,
    });
  }

  // A token bucket per IP: `limit` requests, refilled over a minute.
  const buckets = new Map<string, Bucket>();
  const refillPerMs = limit / 60_000;

  /** Milliseconds until the IP may ask again, or 0 when it may now. */
  function rateLimit(ip: string): number {
    if (limit <= 0) return 0;
    const time = now();
    if (buckets.size > 10_000) {
      // Forget the full buckets: they are the same as new ones.
      for (const [key, bucket] of buckets) {
        if (bucket.tokens + (time - bucket.updated) * refillPerMs >= limit) {
          buckets.delete(key);
        }
      }
    }
    const bucket = buckets.get(ip) ?? { tokens: limit, updated: time };
    bucket.tokens = Math.min(
      limit,
      bucket.tokens + Math.max(0, time - bucket.updated) * refillPerMs,
    );
    bucket.updated = time;
    buckets.set(ip, bucket);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return 0;
    }
    return (1 - bucket.tokens) / refillPerMs;
  }

  return async (request, info) => {
    const url = new URL(request.url);
    const asset = assets.get(url.pathname);
    if (
      asset !== undefined &&
      (request.method === "GET" || request.method === "HEAD")
    ) {
      return new Response(request.method === "HEAD" ? null : asset.body, {
        headers: { "content-type": asset.contentType },
      });
    }
    const ip = "hostname" in info.remoteAddr
      ? info.remoteAddr.hostname
      : "local";
    const wait = rateLimit(ip);
    if (wait > 0) {
      const retryAfter = Math.max(1, Math.ceil(wait / 1000));
      log(`429 for ${ip}: rate limited, retry after ${retryAfter} s`);
      return json(429, { error: "too many requests" }, {
        "retry-after": String(retryAfter),
      });
    }
    if (await bodyTooLarge(request)) {
      log(`413 for ${ip}: request body over ${MAX_REQUEST_BODY_BYTES} bytes`);
      return json(413, {
        error: `request body over ${MAX_REQUEST_BODY_BYTES} bytes`,
      });
    }
    if (url.pathname !== "/token") return json(404, { error: "not found" });
    if (request.method !== "POST") {
      return json(405, { error: "use POST" }, { allow: "POST" });
    }
    const transport = url.searchParams.get("transport") ?? "udp";
    if (transport !== "udp" && transport !== "webtransport") {
      return json(400, {
        error: `unknown transport "${transport}": use udp or webtransport`,
      });
    }
    const browser = transport === "webtransport";
    if (browser && webTransportServers.length === 0) {
      return json(400, {
        error: "this backend has no servers for transport webtransport",
      });
    }
    const match = /^Bearer +(\S+)\s*$/i.exec(
      request.headers.get("authorization") ?? "",
    );
    const user = match ? users.get(match[1]) : undefined;
    if (user === undefined) {
      log(`401 for ${ip}: ${match ? "unknown credential" : "no credential"}`);
      return json(
        401,
        {
          error: match
            ? "unknown credential"
            : "expected Authorization: Bearer <credential>",
        },
        { "www-authenticate": 'Bearer realm="netcode"' },
      );
    }
    let clientId = clientIds.get(user);
    if (clientId === undefined) {
      clientId = clientIdForUser(user);
      clientIds.set(user, clientId);
    }
    const unixSeconds = Math.floor(now() / 1000);
    const token = generateConnectToken({
      serverAddresses: browser ? webTransportAddresses : servers,
      clientId: await clientId,
      protocolId,
      privateKey,
      expireSeconds,
      timeoutSeconds,
      now: unixSeconds,
    });
    log(
      `200 for ${ip}: ${transport} token for ${user} (client id ${await clientId})`,
    );
    return json(200, {
      connectToken: token.toBase64(),
      clientId: String(await clientId),
      user,
      expiresAt: expireSeconds < 0 ? null : unixSeconds + expireSeconds,
      servers: browser ? webTransportAddresses.map(formatAddress) : serverNames,
      ...(browser && {
        webTransport: webTransportServers.map((server) => ({
          url: server.url,
          certificateHashes: server.hashes().map((hash) => hash.toHex()),
        })),
      }),
    });
  };
}

/** A running backend, from {@linkcode startBackend}. */
export interface Backend {
  /** The token URL: `http://127.0.0.1:8080/token`. */
  readonly tokenUrl: string;
  /** Stops listening and waits for requests in flight. */
  shutdown(): Promise<void>;
}

/**
 * Serves {@linkcode createBackendHandler} over HTTP.
 *
 * @param options The handler's options and where to listen (port 0 picks a
 * free one).
 * @returns The running backend.
 */
export function startBackend(
  options: BackendOptions & { address?: string | Address },
): Backend {
  const address = typeof options.address === "string"
    ? parseAddress(options.address)
    : options.address ?? parseAddress(DEFAULT_BACKEND_ADDRESS);
  const handler = createBackendHandler(options);
  let server: Deno.HttpServer<Deno.NetAddr>;
  try {
    server = Deno.serve(
      { hostname: address.hostname, port: address.port, onListen: () => {} },
      handler,
    );
  } catch (error) {
    // Name the address: "Address already in use" alone does not say which.
    if (error instanceof Error) {
      error.message = `Cannot listen on ${
        formatAddress(address)
      }: ${error.message}`;
    }
    throw error;
  }
  const url = new URL("http://localhost/token");
  url.hostname = formatAddress(server.addr).replace(/:\d+$/, "");
  url.port = String(server.addr.port);
  return {
    tokenUrl: url.href,
    shutdown: () => server.shutdown(),
  };
}

const BACKEND_FLAGS = {
  address: { type: "string" },
  server: { type: "string", multiple: true },
  webtransport: { type: "string", multiple: true },
  "cert-hash": { type: "string", multiple: true },
  "protocol-id": { type: "string" },
  "private-key": { type: "string" },
  expire: { type: "string" },
  timeout: { type: "string" },
  "rate-limit": { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

function backendUsage(program: string): string {
  return `Usage: ${program} [flags]

The web backend: POST /token with "Authorization: Bearer <credential>"
answers JSON with a base64 "connectToken" for the configured servers.
Development credentials: ${Object.keys(DEV_USERS).join(", ")}.

Flags:
  --address ADDRESS     HTTP address to listen on [default: ${DEFAULT_BACKEND_ADDRESS}]
  --server ADDRESS      game server written in tokens (repeatable)
                        [default: ${DEFAULT_SERVER_ADDRESS}]
  --webtransport ADDRESS  a server's WebTransport address, for browser players
                        (POST /token?transport=webtransport; repeatable)
  --cert-hash HEX       SHA-256 of the WebTransport certificate, as
                        "netcode server" prints it (repeatable: current first)
  --protocol-id ID      protocol id, hex (0x...) or decimal
                        [default: 0x${DEFAULT_PROTOCOL_ID.toString(16)}]
  --private-key HEX     private key shared with the servers, 64 hex characters
                        [default: $${PRIVATE_KEY_ENV}, else the development key]
  --expire S            token lifetime in seconds [default: ${DEFAULT_CONNECT_TOKEN_EXPIRY_SECONDS}]
  --timeout S           connection timeout in tokens, seconds, -1 for none
                        [default: ${DEFAULT_TIMEOUT_SECONDS}]
  --rate-limit N        requests per minute per IP, 0 for no limit [default: 10]
  -h, --help            show this help`;
}

/** The `backend` command: the web backend from the command line. */
export const backendCommand: Command = {
  name: "backend",
  summary: "run the development web backend that issues tokens",
  usage: backendUsage,
  async run(args, program) {
    const flags = parseFlags(args, BACKEND_FLAGS);
    if (flags.help) {
      console.log(backendUsage(program));
      return EXIT_OK;
    }
    const certificateHashes = (flags["cert-hash"] ?? []).map((text) => {
      const hash = parseHexFlag("--cert-hash", text, 32);
      if (hash.length !== 32) {
        throw usageError("--cert-hash: expected 32 bytes (64 hex characters)");
      }
      return hash;
    });
    if (certificateHashes.length > 0 && flags.webtransport === undefined) {
      throw usageError("--cert-hash goes with --webtransport");
    }
    const backend = startBackend({
      address: parseAddressFlag(
        "--address",
        flags.address ?? DEFAULT_BACKEND_ADDRESS,
        true,
      ),
      serverAddresses: (flags.server ?? [DEFAULT_SERVER_ADDRESS]).map((text) =>
        parseAddressFlag("--server", text)
      ),
      webTransportServers: (flags.webtransport ?? []).map((text) => ({
        address: parseAddressFlag("--webtransport", text),
        certificateHashes,
      })),
      protocolId: flags["protocol-id"] === undefined
        ? DEFAULT_PROTOCOL_ID
        : parseUint64Flag("--protocol-id", flags["protocol-id"]),
      expireSeconds: flags.expire === undefined
        ? DEFAULT_CONNECT_TOKEN_EXPIRY_SECONDS
        : parseIntegerFlag("--expire", flags.expire, -1, 2 ** 31),
      timeoutSeconds: flags.timeout === undefined
        ? DEFAULT_TIMEOUT_SECONDS
        : parseTimeoutFlag("--timeout", flags.timeout),
      rateLimitPerMinute: flags["rate-limit"] === undefined
        ? 10
        : parseIntegerFlag("--rate-limit", flags["rate-limit"], 0, 1e9),
      privateKey: resolvePrivateKey(
        flags["private-key"],
        (message) => console.error(message),
      ),
      log: (line) => console.log(line),
    });
    console.log(`backend: POST ${backend.tokenUrl}`);
    const stopped = Promise.withResolvers<void>();
    const signals: Deno.Signal[] = Deno.build.os === "windows"
      ? ["SIGINT"]
      : ["SIGINT", "SIGTERM"];
    const stop = () => stopped.resolve();
    for (const signal of signals) Deno.addSignalListener(signal, stop);
    await stopped.promise;
    for (const signal of signals) Deno.removeSignalListener(signal, stop);
    await backend.shutdown();
    console.log("backend: stopped");
    return EXIT_OK;
  },
};
