/**
 * Message channels over real loopback UDP with simulated loss: one server on
 * 127.0.0.1 (an ephemeral port) and `--clients` clients, every socket
 * wrapped so that `--loss` percent of the datagrams it sends are dropped and
 * the rest leave after `--latency-ms` (from a timer). Each client says hello on the
 * reliable-ordered channel; the server answers with a 50 KB level blob on it,
 * and sends 60 Hz state to every client on the unreliable channel. The loop
 * runs in real time at 60 Hz for `--seconds`.
 *
 * At the end it prints, per client: the hello the server got, whether the
 * level arrived intact and when, the state messages received, and the RTT
 * and packet loss as the client and the server estimate them. The RTT also
 * holds the waits of the 60 Hz loop: a datagram is read at the first tick
 * after it arrives, on each side.
 *
 * ```sh
 * deno task demo:messages [--clients 3] [--loss 10] [--latency-ms 20] [--seconds 10] [--seed 1]
 * ```
 *
 * Exit code 0 when every client connected, got its level intact and some
 * state, and the server got every hello; 1 otherwise; 2 on a bad command
 * line.
 *
 * @module
 */

import { parseArgs } from "node:util";
import {
  type Address,
  ClientState,
  createClient,
  createServer,
  type DatagramSocket,
  formatAddress,
  generateConnectToken,
  generateKey,
  listenUdp,
  type MessageConfig,
} from "../mod.ts";
import { createRandom } from "../simulator.ts";

const USAGE =
  "Usage: deno task demo:messages [--clients N] [--loss PERCENT] [--latency-ms MS] [--seconds S] [--seed N]";

function usage(message: string): never {
  console.error(`demo:messages: ${message}\n${USAGE}`);
  Deno.exit(2);
}

let args;
try {
  args = parseArgs({
    args: Deno.args,
    options: {
      clients: { type: "string", default: "3" },
      loss: { type: "string", default: "10" },
      "latency-ms": { type: "string", default: "20" },
      seconds: { type: "string", default: "10" },
      seed: { type: "string", default: "1" },
    },
    strict: true,
    allowPositionals: false,
  }).values;
} catch (error) {
  usage((error as Error).message);
}
function number(name: string, value: string, min: number, max: number) {
  const parsed = Number(value);
  if (!Number.isFinite(parsed) || parsed < min || parsed > max) {
    usage(`--${name} ${value} is not a number in ${min}..${max}`);
  }
  return parsed;
}
const numClients = number("clients", args.clients, 1, 64);
const lossPercent = number("loss", args.loss, 0, 90);
const latencyMs = number("latency-ms", args["latency-ms"], 0, 1000);
const seconds = number("seconds", args.seconds, 1, 600);
const random = createRandom(number("seed", args.seed, 0, 2 ** 31));

/**
 * A real UDP socket whose sends are dropped `lossPercent` of the time and
 * otherwise sent `latencyMs` later, from a timer.
 */
function lossy(inner: DatagramSocket): DatagramSocket & { dropped: number } {
  const timers = new Set<ReturnType<typeof setTimeout>>();
  let closed = false;
  const socket = {
    dropped: 0,
    get address() {
      return inner.address;
    },
    send(data: Uint8Array, to: Address) {
      if (random() * 100 < lossPercent) {
        socket.dropped++;
        return;
      }
      const copy = data.slice();
      const timer = setTimeout(() => {
        timers.delete(timer);
        if (!closed) inner.send(copy, to);
      }, latencyMs);
      timers.add(timer);
    },
    poll() {
      return inner.poll();
    },
    close() {
      // Datagrams still held are not sent.
      closed = true;
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      inner.close();
    },
    get closed() {
      return inner.closed;
    },
  };
  return socket;
}

const PROTOCOL_ID = 0x1122334455667788n;
const PRIVATE_KEY = generateKey();
const CHAT = 0;
const STATE = 1;
const messages: MessageConfig = {
  channels: [{ kind: "reliable-ordered" }, { kind: "unreliable-unordered" }],
};

const serverSocket = lossy(listenUdp({ hostname: "127.0.0.1", port: 0 }));
const server = createServer({
  socket: serverSocket,
  protocolId: PROTOCOL_ID,
  privateKey: PRIVATE_KEY,
  maxClients: numClients,
  messages,
});
const serverAddress = formatAddress(server.address);
console.log(
  `server on ${serverAddress} (real UDP), ${numClients} clients, ${lossPercent}% loss and ${latencyMs} ms each way on every socket, ${seconds} s`,
);

const level = new Uint8Array(50 * 1024).map((_, i) => (i * 7) % 251);
interface Player {
  client: ReturnType<typeof createClient>;
  socket: ReturnType<typeof lossy>;
  said: boolean;
  levelAt: number | undefined;
  levelIntact: boolean;
  states: number;
}
const players: Player[] = [];
for (let i = 0; i < numClients; i++) {
  const socket = lossy(listenUdp({ hostname: "127.0.0.1", port: 0 }));
  const client = createClient({ socket, messages });
  client.connect(generateConnectToken({
    serverAddresses: [serverAddress],
    clientId: BigInt(i + 1),
    protocolId: PROTOCOL_ID,
    privateKey: PRIVATE_KEY,
  }));
  players.push({
    client,
    socket,
    said: false,
    levelAt: undefined,
    levelIntact: false,
    states: 0,
  });
}
const hellos = new Map<bigint, string>();
const decoder = new TextDecoder();
const start = performance.now();
let tick = 0;

await new Promise<void>((resolve) => {
  const timer = setInterval(() => {
    const now = (performance.now() - start) / 1000;
    tick++;
    for (const player of players) player.client.update(now);
    server.update(now);
    for (const [i, player] of players.entries()) {
      const client = player.client;
      if (client.state === ClientState.CONNECTED && !player.said) {
        client.sendMessage(
          CHAT,
          new TextEncoder().encode(`hello from client ${i + 1}`),
        );
        player.said = true;
      }
      for (
        let m = client.receiveMessage(CHAT);
        m;
        m = client.receiveMessage(CHAT)
      ) {
        player.levelAt = now;
        player.levelIntact = m.length === level.length &&
          m.every((byte, k) => byte === level[k]);
      }
      while (client.receiveMessage(STATE)) player.states++;
    }
    for (const index of server.connectedClients()) {
      for (
        let m = server.receiveMessage(index, CHAT);
        m;
        m = server.receiveMessage(index, CHAT)
      ) {
        hellos.set(server.clientId(index)!, decoder.decode(m));
        server.sendMessage(index, CHAT, level);
      }
      const state = new Uint8Array(16);
      new DataView(state.buffer).setUint32(0, tick);
      server.sendMessage(index, STATE, state);
    }
    if (now >= seconds) {
      clearInterval(timer);
      resolve();
    }
  }, 1000 / 60);
});

let ok = hellos.size === numClients;
for (const [i, player] of players.entries()) {
  const { client } = player;
  const id = BigInt(i + 1);
  const connected = client.state === ClientState.CONNECTED;
  const atClient = client.connectionQuality;
  const atServer = connected
    ? server.connectionQuality(client.clientIndex)
    : undefined;
  ok &&= connected && player.levelIntact && player.states > 0;
  console.log(
    `client ${id}: ${client.stateName}; server got "${
      hellos.get(id) ?? "-"
    }"; level ${
      player.levelAt === undefined
        ? "missing"
        : `${player.levelIntact ? "intact" : "CORRUPT"} at ${
          player.levelAt.toFixed(2)
        } s`
    }; ${player.states} state messages; rtt ${
      atClient?.rtt.toFixed(1) ?? "-"
    } ms (server sees ${atServer?.rtt.toFixed(1) ?? "-"}), loss ${
      atClient?.packetLoss.toFixed(1) ?? "-"
    }% (server sees ${
      atServer?.packetLoss.toFixed(1) ?? "-"
    }%); its socket dropped ${player.socket.dropped} datagrams`,
  );
}
console.log(
  `server socket dropped ${serverSocket.dropped} datagrams; ${tick} ticks in ${seconds} s`,
);
for (const player of players) await player.client.close();
await server.close();
Deno.exit(ok ? 0 : 1);
