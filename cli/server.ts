/**
 * A dedicated netcode echo server: it sends every payload back to the client
 * that sent it, logs connects and disconnects, prints a stats line every few
 * seconds, optionally serves its counters to Prometheus, and on SIGINT or
 * SIGTERM disconnects its clients properly (10 disconnect packets each)
 * before it exits.
 *
 * ```sh
 * deno task netcode server --help
 * deno task netcode server --address 127.0.0.1:40000 --metrics-port 9100
 * ```
 *
 * This is the `netcode server` command (`cli/main.ts`); `examples/server.ts` runs it
 * with the same flags.
 *
 * @module
 */

import {
  type Address,
  addressEqual,
  formatAddress,
  parseAddress,
} from "../address.ts";
import { generateCertificate, readCertificate } from "../certificate.ts";
import {
  listenWebTransport,
  type WebTransportServerSocket,
} from "../socket_webtransport.ts";
import {
  createServer,
  DEFAULT_MAX_CLIENTS,
  type DisconnectReason,
  MAX_CLIENTS_LIMIT,
  type Server,
} from "../server.ts";
import {
  createMultiSocket,
  type DatagramSocket,
  listenUdp,
  type UdpSocket,
} from "../socket.ts";
import {
  defaultBindAddress,
  listenServerSockets,
  resolvePublicAddresses,
} from "../_bind.ts";
import { readKernelDrops } from "../_kernel_drops.ts";
import {
  ffiTransportUnavailable,
  type FfiUdpSocket,
  listenUdpFfi,
} from "../socket_ffi.ts";
import {
  type Command,
  EXIT_OK,
  parseAddressFlag,
  parseFlags,
  parseIntegerFlag,
  parseSecondsFlag,
  parseUint64Flag,
  usageError,
} from "./_args.ts";
import {
  DEFAULT_PROTOCOL_ID,
  DEFAULT_SERVER_ADDRESS,
  formatBytes,
  PRIVATE_KEY_ENV,
  resolvePrivateKey,
  runTicks,
  sleep,
} from "./_common.ts";

/** Options of {@linkcode startEchoServer}. */
export interface EchoServerOptions {
  /**
   * The addresses to accept in tokens (and, unless `bindAddresses` says
   * otherwise, to bind: see `ServerOptions.bindAddress`); two (IPv4 and
   * IPv6) for dual stack. Port 0 picks a free port.
   * @default {["127.0.0.1:40000"]}
   */
  addresses?: readonly (string | Address)[];
  /**
   * Where the UDP sockets bind, when clients reach the server at other
   * addresses (NAT, containers); one per socket.
   * @default {each address's wildcard on its port; loopback addresses themselves}
   */
  bindAddresses?: readonly (string | Address)[];
  /**
   * The UDP transport: `"ffi"` (`listenUdpFfi`: recvmmsg/sendmmsg and 4 MiB
   * kernel receive buffers; Linux with `--allow-ffi`), `"deno"`
   * (`Deno.listenDatagram`, whose kernel buffers keep their default size), or
   * `"auto"`: FFI when it loads, otherwise Deno's socket with a note.
   * @default {"auto"}
   */
  transport?: "auto" | "ffi" | "deno";
  /** The game's protocol id. @default {0x1122334455667788n} */
  protocolId?: bigint;
  /** The 32-byte private key shared with the backend. */
  privateKey: Uint8Array;
  /** Client slots. @default {256} */
  maxClients?: number;
  /** Updates per second. @default {60} */
  tickRate?: number;
  /**
   * Serve Prometheus metrics at `http://127.0.0.1:<port>/metrics`; 0 picks a
   * free port.
   * @default {undefined (no metrics)}
   */
  metricsPort?: number;
  /**
   * Serve Prometheus metrics on this address instead, for a scraper on
   * another host: `"0.0.0.0:9100"`. Not with `metricsPort`.
   * @default {undefined (no metrics)}
   */
  metricsAddress?: string | Address;
  /** Seconds between stats lines; 0 for none. @default {5} */
  statsIntervalSeconds?: number;
  /** Stop by itself after this many seconds. @default {undefined (never)} */
  durationSeconds?: number;
  /** Where log lines go. @default {console.log} */
  log?: (line: string) => void;
  /**
   * A WebTransport socket for browser players, served beside UDP; the echo
   * server owns it.
   * @default {undefined}
   */
  webTransport?: WebTransportServerSocket;
}

/** What an echo server counted. */
export interface EchoServerCounters {
  /** Clients that connected. */
  connects: number;
  /** Clients that left, by reason. */
  disconnects: Record<DisconnectReason, number>;
  /** Payloads sent back. */
  payloadsEchoed: number;
  /** Bytes of payload sent back. */
  bytesEchoed: number;
}

/** A running echo server, from {@linkcode startEchoServer}. */
export interface EchoServer {
  /** The addresses it is reached at, ports resolved. */
  readonly addresses: readonly Address[];
  /** The metrics URL, when serving metrics. */
  readonly metricsUrl: string | undefined;
  /** The netcode server inside, for its stats. */
  readonly server: Server;
  /** What it counted. */
  readonly counters: Readonly<EchoServerCounters>;
  /** Settles once the server has stopped and released its sockets. */
  readonly finished: Promise<void>;
  /**
   * Stops: disconnects every client (10 disconnect packets each), closes the
   * sockets and the metrics server.
   *
   * @param why For the log: `"SIGINT"`.
   * @returns {@linkcode EchoServer.finished}.
   */
  stop(why?: string): Promise<void>;
  /** The counters in Prometheus text format. */
  metrics(): string;
}

function resolveMetricsAddress(
  options: EchoServerOptions,
): Address | undefined {
  if (options.metricsAddress !== undefined) {
    if (options.metricsPort !== undefined) {
      throw new TypeError(
        "Cannot serve metrics: give metricsAddress or metricsPort, not both",
      );
    }
    return typeof options.metricsAddress === "string"
      ? parseAddress(options.metricsAddress)
      : options.metricsAddress;
  }
  return options.metricsPort === undefined
    ? undefined
    : { hostname: "127.0.0.1", port: options.metricsPort };
}

const REASON_TEXT: Record<DisconnectReason, string> = {
  timedOut: "timed out",
  clientDisconnected: "client disconnected",
  serverDisconnected: "server disconnected",
};

/** Time for queued sends to reach the system before the sockets close. */
const FLUSH_MS = 50;

/**
 * Binds the sockets and starts an echo server. It runs until
 * {@linkcode EchoServer.stop} or its duration ends.
 *
 * @param options Addresses, keys, slots, rates and where to log.
 * @returns The running server.
 * @throws {Error} When a socket or the metrics port cannot be bound.
 */
export function startEchoServer(options: EchoServerOptions): EchoServer {
  const log = options.log ?? ((line: string) => console.log(line));
  const tickRate = options.tickRate ?? 60;
  const statsInterval = options.statsIntervalSeconds ?? 5;
  const configured = (options.addresses ?? [DEFAULT_SERVER_ADDRESS]).map((
    address,
  ) => typeof address === "string" ? parseAddress(address) : address);

  const transport = chooseTransport(options.transport ?? "auto");
  const sockets: ServerUdpSocket[] = [];
  let server: Server;
  let metricsServer: Deno.HttpServer<Deno.NetAddr> | undefined;
  const counters: EchoServerCounters = {
    connects: 0,
    disconnects: { timedOut: 0, clientDisconnected: 0, serverDisconnected: 0 },
    payloadsEchoed: 0,
    bytesEchoed: 0,
  };
  let echoedBySlot = new Float64Array(0);
  const startTime = performance.now();

  try {
    const binds = (options.bindAddresses ?? []).map((address) =>
      typeof address === "string" ? parseAddress(address) : address
    );
    sockets.push(
      ...listenServerSockets<ServerUdpSocket>(
        binds.length > 0 ? binds : configured.map(defaultBindAddress),
        transport.listen,
      ),
    );
    const socket: DatagramSocket = sockets.length === 1
      ? sockets[0]
      : createMultiSocket(sockets);
    server = createServer({
      address: resolvePublicAddresses(configured, sockets),
      protocolId: options.protocolId ?? DEFAULT_PROTOCOL_ID,
      privateKey: options.privateKey,
      maxClients: options.maxClients ?? DEFAULT_MAX_CLIENTS,
      socket,
      webTransport: options.webTransport,
      onConnect(index) {
        echoedBySlot[index] = 0;
        counters.connects++;
        log(
          `connect: client ${clientName(index)} from ${
            formatAddress(server.clientAddress(index)!)
          } in slot ${index} (${server.numConnectedClients}/${server.maxClients} clients)`,
        );
      },
      onDisconnect(index, reason) {
        counters.disconnects[reason]++;
        log(
          `disconnect: client ${clientName(index)} in slot ${index}: ${
            REASON_TEXT[reason]
          }, echoed ${echoedBySlot[index]} payloads (${
            server.numConnectedClients - 1
          }/${server.maxClients} clients)`,
        );
      },
    });
    echoedBySlot = new Float64Array(server.maxClients);
    const metricsAddress = resolveMetricsAddress(options);
    if (metricsAddress !== undefined) {
      metricsServer = Deno.serve(
        {
          hostname: metricsAddress.hostname,
          port: metricsAddress.port,
          onListen: () => {},
        },
        (request) => {
          if (new URL(request.url).pathname !== "/metrics") {
            return new Response("not found: try /metrics\n", { status: 404 });
          }
          if (request.method !== "GET" && request.method !== "HEAD") {
            return new Response("use GET\n", {
              status: 405,
              headers: { allow: "GET, HEAD" },
            });
          }
          return new Response(request.method === "HEAD" ? null : metrics(), {
            headers: {
              "content-type": "text/plain; version=0.0.4; charset=utf-8",
            },
          });
        },
      );
    }
  } catch (error) {
    for (const socket of sockets) socket.close();
    options.webTransport?.close();
    throw error;
  }

  const addresses = server.addresses;
  const boundApart =
    sockets.some((socket, i) =>
      !addressEqual(socket.address, addresses[i] ?? socket.address)
    ) || sockets.length !== configured.length;
  const metricsUrl = metricsServer === undefined
    ? undefined
    : `http://${formatAddress(metricsServer.addr)}/metrics`;

  function clientName(index: number): string {
    return `0x${server.clientId(index)!.toString(16).padStart(16, "0")}`;
  }

  function dropped(): number {
    let sum = 0;
    for (const value of Object.values(server.stats.dropped)) sum += value;
    return sum;
  }

  log(
    `listening on ${
      addresses.map((address) =>
        `${formatAddress(address)} (${
          address === options.webTransport?.address ? "webtransport" : "udp"
        })`
      ).join(" and ")
    }${
      boundApart
        ? `, bound to ${
          sockets.map((socket) => formatAddress(socket.address)).join(" and ")
        }`
        : ""
    }, ${server.maxClients} slots, ${tickRate} Hz${
      metricsUrl ? `, metrics at ${metricsUrl}` : ""
    }`,
  );

  log(transportLine(transport, sockets));

  const controller = new AbortController();
  let stopReason = "stopped";
  let lastStats = 0;
  let lastEchoed = 0;
  let lastBytes = 0;

  function tick(now: number): boolean {
    server.update(now);
    for (const index of server.connectedClients()) {
      for (
        let payload = server.receive(index);
        payload !== undefined;
        payload = server.receive(index)
      ) {
        server.send(index, payload);
        echoedBySlot[index]++;
        counters.payloadsEchoed++;
        counters.bytesEchoed += payload.length;
      }
    }
    if (statsInterval > 0 && now - lastStats >= statsInterval) {
      if (now > 0) {
        log(
          `stats: ${
            now.toFixed(0)
          }s clients=${server.numConnectedClients}/${server.maxClients} echoed=${counters.payloadsEchoed} (+${
            counters.payloadsEchoed - lastEchoed
          }, ${
            formatBytes(counters.bytesEchoed - lastBytes)
          }) received=${server.stats.received.payload} dropped=${dropped()}`,
        );
      }
      lastStats = now;
      lastEchoed = counters.payloadsEchoed;
      lastBytes = counters.bytesEchoed;
    }
    if (
      options.durationSeconds !== undefined && now >= options.durationSeconds
    ) {
      stopReason = `ran for ${options.durationSeconds} s`;
      return false;
    }
    return true;
  }

  async function shutdown(): Promise<void> {
    try {
      if (server.numConnectedClients > 0) {
        log(
          `${stopReason}: disconnecting ${server.numConnectedClients} clients`,
        );
      } else {
        log(`${stopReason}: shutting down`);
      }
      server.disconnectAll();
      // The disconnect packets are queued on the sockets: give them a moment
      // to reach the system before closing.
      await sleep(FLUSH_MS);
    } finally {
      server.close();
      await Promise.all(sockets.map((socket) => socket.closed));
      await options.webTransport?.closed;
      await metricsServer?.shutdown();
    }
    const seconds = (performance.now() - startTime) / 1000;
    const { timedOut, clientDisconnected, serverDisconnected } =
      counters.disconnects;
    log(
      `stopped after ${
        seconds.toFixed(1)
      } s: ${counters.connects} connects, disconnects: ${clientDisconnected} by clients, ${serverDisconnected} by server, ${timedOut} timed out; echoed ${counters.payloadsEchoed} payloads (${
        formatBytes(counters.bytesEchoed)
      })`,
    );
  }

  const finished = runTicks(tickRate, tick, controller.signal).then(
    shutdown,
    async (error) => {
      await shutdown().catch(() => {});
      throw error;
    },
  );

  function metrics(): string {
    const lines: string[] = [];
    const metric = (
      name: string,
      type: "gauge" | "counter",
      help: string,
      samples: [labels: string, value: number][],
    ) => {
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
      for (const [labels, value] of samples) {
        lines.push(`${name}${labels ? `{${labels}}` : ""} ${value}`);
      }
    };
    const byLabel = (label: string, record: Record<string, number>) =>
      Object.entries(record).map(([key, value]): [string, number] => [
        `${label}="${key}"`,
        value,
      ]);
    metric("netcode_server_clients", "gauge", "Connected clients.", [[
      "",
      server.numConnectedClients,
    ]]);
    metric("netcode_server_max_clients", "gauge", "Client slots.", [[
      "",
      server.maxClients,
    ]]);
    metric(
      "netcode_server_uptime_seconds",
      "gauge",
      "Seconds since the server started.",
      [["", (performance.now() - startTime) / 1000]],
    );
    metric(
      "netcode_server_connects_total",
      "counter",
      "Clients that connected.",
      [["", counters.connects]],
    );
    metric(
      "netcode_server_disconnects_total",
      "counter",
      "Clients that left, by reason.",
      byLabel("reason", counters.disconnects),
    );
    metric(
      "netcode_server_packets_received_total",
      "counter",
      "Valid packets received, by type.",
      byLabel("type", server.stats.received),
    );
    metric(
      "netcode_server_packets_sent_total",
      "counter",
      "Packets sent, by type.",
      byLabel("type", server.stats.sent),
    );
    metric(
      "netcode_server_packets_dropped_total",
      "counter",
      "Datagrams dropped, by reason.",
      byLabel("reason", server.stats.dropped),
    );
    metric(
      "netcode_server_payloads_echoed_total",
      "counter",
      "Payloads echoed.",
      [["", counters.payloadsEchoed]],
    );
    metric(
      "netcode_server_payload_bytes_echoed_total",
      "counter",
      "Payload bytes echoed.",
      [["", counters.bytesEchoed]],
    );
    const perSocket = (pick: (socket: ServerUdpSocket) => number) =>
      sockets.map((socket): [string, number] => [
        `socket="${formatAddress(socket.address)}"`,
        pick(socket),
      ]);
    metric(
      "netcode_udp_datagrams_received_total",
      "counter",
      "Datagrams received by the socket.",
      perSocket((socket) => socket.stats.received),
    );
    metric(
      "netcode_udp_datagrams_sent_total",
      "counter",
      "Datagrams the system accepted for sending.",
      perSocket((socket) => socket.stats.sent),
    );
    metric(
      "netcode_udp_queue_dropped_total",
      "counter",
      "Datagrams dropped because the receive queue was full.",
      perSocket((socket) =>
        "dropped" in socket.stats ? socket.stats.dropped : 0
      ),
    );
    const kernelDrops = sockets.flatMap((socket): [string, number][] => {
      const drops = readKernelDrops(socket.address);
      return drops === undefined
        ? []
        : [[`socket="${formatAddress(socket.address)}"`, drops]];
    });
    if (kernelDrops.length > 0) {
      metric(
        "netcode_udp_kernel_drops_total",
        "counter",
        "Datagrams the kernel dropped at the socket before the server read them (its receive buffer was full), from /proc/net/udp.",
        kernelDrops,
      );
    }
    metric(
      "netcode_udp_oversized_total",
      "counter",
      "Datagrams dropped on arrival because they were larger than a netcode packet.",
      perSocket((socket) => socket.stats.oversized),
    );
    metric(
      "netcode_udp_send_dropped_total",
      "counter",
      "Datagrams not sent because the send queue was full.",
      perSocket((socket) => socket.stats.sendDropped),
    );
    metric(
      "netcode_udp_errors_total",
      "counter",
      "Send and receive errors reported by the system.",
      perSocket((socket) =>
        socket.stats.sendErrors + socket.stats.receiveErrors
      ),
    );
    const webTransport = options.webTransport;
    if (webTransport !== undefined) {
      metric(
        "netcode_webtransport_sessions",
        "gauge",
        "WebTransport sessions open.",
        [["", webTransport.numSessions]],
      );
      metric(
        "netcode_webtransport_events_total",
        "counter",
        "WebTransport sessions and datagrams, by what happened to them.",
        byLabel("event", { ...webTransport.stats }),
      );
    }
    return lines.join("\n") + "\n";
  }

  return {
    addresses,
    metricsUrl,
    server,
    counters,
    finished,
    stop(why?: string): Promise<void> {
      if (!controller.signal.aborted && why !== undefined) stopReason = why;
      controller.abort();
      return finished;
    },
    metrics,
  };
}

function parseTransportFlag(
  text: string | undefined,
): "auto" | "ffi" | "deno" {
  if (text === undefined) return "auto";
  if (text === "auto" || text === "ffi" || text === "deno") return text;
  throw usageError(`--transport: expected auto, ffi or deno, got "${text}"`);
}

/** A UDP socket of either transport. */
type ServerUdpSocket = UdpSocket | FfiUdpSocket;

/** The UDP transport `netcode server` runs on. */
interface Transport {
  readonly name: "ffi" | "deno";
  readonly listen: (address: Address) => ServerUdpSocket;
  /** Why the FFI transport was not used, for `auto`. */
  readonly fallbackReason?: string;
}

/**
 * `ffi` (recvmmsg/sendmmsg through Deno's FFI, Linux, `--allow-ffi`), `deno`
 * (`Deno.listenDatagram`), or `auto`: FFI when it loads, else Deno's socket.
 */
function chooseTransport(choice: "auto" | "ffi" | "deno"): Transport {
  const deno: Transport = {
    name: "deno",
    listen: (address) => listenUdp({ ...address, maxQueue: 4096 }),
  };
  if (choice === "deno") return deno;
  const unavailable = ffiTransportUnavailable();
  if (unavailable === undefined) {
    return { name: "ffi", listen: (address) => listenUdpFfi(address) };
  }
  if (choice === "ffi") {
    throw new Error(`Cannot use --transport ffi: ${unavailable}`);
  }
  return { ...deno, fallbackReason: unavailable };
}

/** The start-up line naming the transport and the kernel buffers. */
function transportLine(
  transport: Transport,
  sockets: readonly ServerUdpSocket[],
): string {
  if (transport.name === "ffi") {
    const socket = sockets[0] as FfiUdpSocket;
    return `transport: ffi (recvmmsg/sendmmsg), kernel buffers: receive ${socket.receiveBufferBytes} bytes, send ${socket.sendBufferBytes} bytes as Linux reports them (4 MiB and 1 MiB asked; it reports twice the size set)`;
  }
  return `transport: Deno.listenDatagram, kernel default buffers (it cannot set their size)${
    transport.fallbackReason === undefined
      ? ""
      : `; the FFI transport is unavailable: ${transport.fallbackReason}`
  }`;
}

const SERVER_FLAGS = {
  address: { type: "string", multiple: true },
  bind: { type: "string", multiple: true },
  transport: { type: "string" },
  "protocol-id": { type: "string" },
  "private-key": { type: "string" },
  "max-clients": { type: "string" },
  "tick-rate": { type: "string" },
  "metrics-port": { type: "string" },
  "metrics-address": { type: "string" },
  "stats-interval": { type: "string" },
  duration: { type: "string" },
  webtransport: { type: "string" },
  cert: { type: "string" },
  key: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

function serverUsage(program: string): string {
  return `Usage: ${program} [flags]

A dedicated netcode server that echoes every payload back to its sender.
Stops on SIGINT or SIGTERM after disconnecting its clients.

Flags:
  --address ADDRESS     the server's address as tokens name it (its public
                        address), bound as --bind says;
                        repeat for dual stack (an IPv4 and an IPv6 address);
                        port 0 picks a free port [default: ${DEFAULT_SERVER_ADDRESS}]
  --bind ADDRESS        where the UDP socket binds, when clients reach the
                        server at another address (NAT, containers); repeat
                        per socket [default: each --address's wildcard
                        (0.0.0.0, [::]) on its port; a loopback address
                        binds itself]
  --transport T         ffi (recvmmsg/sendmmsg with 4 MiB kernel buffers: Linux,
                        --allow-ffi), deno (Deno.listenDatagram, kernel default
                        buffers) or auto (ffi when it loads) [default: auto]
  --protocol-id ID      protocol id, hex (0x...) or decimal
                        [default: 0x${DEFAULT_PROTOCOL_ID.toString(16)}]
  --private-key HEX     private key shared with the backend, 64 hex characters
                        [default: $${PRIVATE_KEY_ENV}, else the development key]
  --max-clients N       client slots, 1..${MAX_CLIENTS_LIMIT} [default: ${DEFAULT_MAX_CLIENTS}]
  --tick-rate HZ        updates per second, 1..1000 [default: 60]
  --metrics-port PORT   serve Prometheus metrics on http://127.0.0.1:PORT/metrics
                        (0 picks a free port) [default: off]
  --metrics-address ADDRESS  serve them on ADDRESS instead, for a scraper on
                        another host (0.0.0.0:9100) [default: off]
  --stats-interval S    seconds between stats lines, 0 for none [default: 5]
  --duration S          stop after S seconds [default: run until signalled]
  --webtransport ADDRESS  also serve browser players over WebTransport on this
                        address (a UDP port of its own) [default: off]
  --cert FILE --key FILE  PEM certificate and key for WebTransport
                        [default: a generated development certificate]
  -h, --help            show this help

Prefer $${PRIVATE_KEY_ENV} to --private-key: command lines are visible to
other users of the machine.`;
}

/** The `server` command: the echo server from the command line. */
export const serverCommand: Command = {
  name: "server",
  summary: "run a dedicated echo server",
  usage: serverUsage,
  async run(args, program) {
    const flags = parseFlags(args, SERVER_FLAGS);
    if (flags.help) {
      console.log(serverUsage(program));
      return EXIT_OK;
    }
    if (
      flags["metrics-port"] !== undefined &&
      flags["metrics-address"] !== undefined
    ) {
      throw usageError("give --metrics-port or --metrics-address, not both");
    }
    const options: EchoServerOptions = {
      addresses: (flags.address ?? [DEFAULT_SERVER_ADDRESS]).map((text) =>
        parseAddressFlag("--address", text, true)
      ),
      bindAddresses: (flags.bind ?? []).map((text) =>
        parseAddressFlag("--bind", text, true)
      ),
      transport: parseTransportFlag(flags.transport),
      protocolId: flags["protocol-id"] === undefined
        ? DEFAULT_PROTOCOL_ID
        : parseUint64Flag("--protocol-id", flags["protocol-id"]),
      maxClients: flags["max-clients"] === undefined
        ? DEFAULT_MAX_CLIENTS
        : parseIntegerFlag(
          "--max-clients",
          flags["max-clients"],
          1,
          MAX_CLIENTS_LIMIT,
        ),
      tickRate: flags["tick-rate"] === undefined
        ? 60
        : parseIntegerFlag("--tick-rate", flags["tick-rate"], 1, 1000),
      metricsPort: flags["metrics-port"] === undefined
        ? undefined
        : parseIntegerFlag("--metrics-port", flags["metrics-port"], 0, 65535),
      metricsAddress: flags["metrics-address"] === undefined
        ? undefined
        : parseAddressFlag("--metrics-address", flags["metrics-address"], true),
      statsIntervalSeconds: flags["stats-interval"] === undefined
        ? 5
        : parseSecondsFlag("--stats-interval", flags["stats-interval"], 0, 1e6),
      durationSeconds: flags.duration === undefined
        ? undefined
        : parseSecondsFlag("--duration", flags.duration, 0.001, 1e9),
      privateKey: resolvePrivateKey(
        flags["private-key"],
        (message) => console.error(message),
      ),
    };
    if (
      (flags.cert === undefined) !== (flags.key === undefined) ||
      (flags.cert !== undefined && flags.webtransport === undefined)
    ) {
      throw usageError(
        "--cert and --key go together, with --webtransport",
      );
    }
    if (flags.webtransport !== undefined) {
      const address = parseAddressFlag(
        "--webtransport",
        flags.webtransport,
        true,
      );
      const certificate = flags.cert === undefined
        ? await generateCertificate()
        : await readCertificate(
          await Deno.readTextFile(flags.cert),
          await Deno.readTextFile(flags.key!),
        );
      options.webTransport = listenWebTransport({ address, certificate });
      const hash = certificate.hash.toHex();
      console.log(
        `webtransport: ${options.webTransport.url} certificate sha-256 ${hash}` +
          (flags.cert === undefined ? " (generated for development)" : ""),
      );
    }
    const echo = startEchoServer(options);
    const signals: Deno.Signal[] = Deno.build.os === "windows"
      ? ["SIGINT"]
      : ["SIGINT", "SIGTERM"];
    let signalled = false;
    const handlers = signals.map((signal) => {
      const handler = () => {
        if (signalled) {
          console.error(`${signal} again: exiting at once`);
          Deno.exit(130);
        }
        signalled = true;
        echo.stop(signal);
      };
      Deno.addSignalListener(signal, handler);
      return () => Deno.removeSignalListener(signal, handler);
    });
    try {
      await echo.finished;
    } finally {
      for (const remove of handlers) remove();
    }
    return EXIT_OK;
  },
};
