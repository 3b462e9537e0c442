// A server on Node.js (and on Bun) and a client on Deno, and the reverse,
// connect and echo over loopback UDP. The other end is
// dist/node/tests/_runtime_peer.js (built by `deno task build:node`), run by
// `node` and `bun` as child processes.
//
// Without the build or a runtime the tests are ignored, loudly; with
// NETCODE_REQUIRE_RUNTIMES=1 (set by .ci/run, which builds first) a missing
// build or Node.js fails instead, and so does a missing Bun.
//
// Both ends run on real monotonic time here: the other end is another
// process with its own clock. Every wait is bounded (15 s per test).

import { assert, assertStrictEquals, fail } from "./_assert.ts";
import { PRIVATE_KEY, PROTOCOL_ID, token } from "./_harness.ts";
import { yieldToSockets } from "./_loopback.ts";
import { formatAddress, parseAddress } from "../address.ts";
import { ClientState, createClient, isDisconnected } from "../client.ts";
import { createServer } from "../server.ts";
import { listenUdp } from "../socket.ts";

const PEER = new URL("../dist/node/tests/_runtime_peer.js", import.meta.url);
const DEADLINE_MS = 15_000;
const ECHOES = 10;

function required(): boolean {
  try {
    return Deno.env.get("NETCODE_REQUIRE_RUNTIMES") === "1";
  } catch {
    return false;
  }
}

/** The runtime's version, or `undefined` when it is not installed. */
function version(command: string): string | undefined {
  try {
    const output = new Deno.Command(command, {
      args: ["--version"],
      stdout: "piped",
      stderr: "null",
    }).outputSync();
    return output.success
      ? new TextDecoder().decode(output.stdout).trim()
      : undefined;
  } catch {
    return undefined;
  }
}

function built(): boolean {
  try {
    return Deno.statSync(PEER).isFile;
  } catch {
    return false;
  }
}

const hasBuild = built();
const RUNTIMES = [
  { name: "Node.js", command: "node", version: version("node") },
  { name: "Bun", command: "bun", version: version("bun") },
];
function ipv6Available(): boolean {
  try {
    listenUdp("[::1]:0").close();
    return true;
  } catch {
    return false;
  }
}
const FAMILIES = [
  { name: "IPv4", address: "127.0.0.1:0" },
  ...(ipv6Available() ? [{ name: "IPv6", address: "[::1]:0" }] : []),
];

/** A running peer: its output lines as they come, and its exit. */
interface Peer {
  readonly lines: string[];
  readonly status: Promise<Deno.CommandStatus>;
  exited: boolean;
  kill(): void;
}

function spawnPeer(command: string, args: string[]): Peer {
  const child = new Deno.Command(command, {
    args: [PEER.pathname, ...args],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const lines: string[] = [];
  const collect = async (stream: ReadableStream<Uint8Array>) => {
    let rest = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      const parts = (rest + chunk).split("\n");
      rest = parts.pop()!;
      lines.push(...parts);
    }
    if (rest !== "") lines.push(rest);
  };
  const output = Promise.all([collect(child.stdout), collect(child.stderr)]);
  const peer: Peer = {
    lines,
    exited: false,
    status: child.status.then(async (status) => {
      await output;
      peer.exited = true;
      return status;
    }),
    kill() {
      try {
        child.kill();
      } catch {
        // Already exited.
      }
    },
  };
  return peer;
}

/** Waits for the peer to exit 0; fails with its output otherwise. */
async function expectSuccess(peer: Peer, what: string): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const status = await Promise.race([
    peer.status,
    new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), DEADLINE_MS);
    }),
  ]);
  clearTimeout(timer);
  if (status === undefined) {
    peer.kill();
    await peer.status;
    fail(`${what} did not exit:\n${peer.lines.join("\n")}`);
  }
  assertStrictEquals(
    status.code,
    0,
    `${what} exited ${status.code}:\n${peer.lines.join("\n")}`,
  );
}

function hexOf(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

for (const runtime of RUNTIMES) {
  const missing = !hasBuild
    ? "dist/node/ is not built (run deno task build:node)"
    : runtime.version === undefined
    ? `${runtime.command} is not installed`
    : undefined;
  if (missing !== undefined) {
    if (required()) {
      Deno.test(`runtime interop with ${runtime.name}`, () => {
        fail(`NETCODE_REQUIRE_RUNTIMES=1 but ${missing}`);
      });
      continue;
    }
    console.log(
      `!!! runtime_interop_test: ${missing}: the ${runtime.name} interop tests are IGNORED !!!`,
    );
  }
  for (const family of FAMILIES) {
    Deno.test({
      name:
        `a server on ${runtime.name} and a client on Deno connect and echo over ${family.name} UDP`,
      ignore: missing !== undefined,
      fn: async () => {
        const peer = spawnPeer(runtime.command, [
          "server",
          family.address,
          hexOf(PRIVATE_KEY),
        ]);
        try {
          const start = performance.now();
          let listening: string | undefined;
          while (
            listening === undefined && !peer.exited &&
            performance.now() - start < DEADLINE_MS
          ) {
            listening = peer.lines.find((line) => line.startsWith("listening "))
              ?.slice("listening ".length);
            await yieldToSockets();
          }
          assert(listening, `no address from the peer:\n${peer.lines}`);
          await using client = createClient();
          client.connect(token({
            serverAddresses: [listening],
            now: Math.floor(Date.now() / 1000),
          }));
          const payload = new Uint8Array(100).fill(7);
          let echoes = 0;
          while (
            echoes < ECHOES && performance.now() - start < DEADLINE_MS &&
            !isDisconnected(client.state)
          ) {
            client.update((performance.now() - start) / 1000);
            for (let p = client.receive(); p; p = client.receive()) {
              assert(p.every((b) => b === 7), "the echo changed");
              echoes++;
            }
            if (client.state === ClientState.CONNECTED) client.send(payload);
            await yieldToSockets();
          }
          assertStrictEquals(
            echoes >= ECHOES,
            true,
            `${echoes} echoes, client ${client.stateName}:\n${
              peer.lines.join("\n")
            }`,
          );
          client.disconnect(); // the peer exits once its client is gone
          await expectSuccess(peer, `the ${runtime.name} server`);
          assert(peer.lines.some((line) => /^done \d+$/.test(line)));
        } finally {
          peer.kill();
          await peer.status;
        }
      },
    });

    Deno.test({
      name:
        `a server on Deno and a client on ${runtime.name} connect and echo over ${family.name} UDP`,
      ignore: missing !== undefined,
      fn: async () => {
        let connects = 0;
        let echoes = 0;
        await using server = createServer({
          address: family.address,
          protocolId: PROTOCOL_ID,
          privateKey: PRIVATE_KEY,
          onConnect: () => connects++,
        });
        const address = formatAddress(server.address);
        const peer = spawnPeer(runtime.command, [
          "client",
          hexOf(token({
            serverAddresses: [address],
            now: Math.floor(Date.now() / 1000),
          })),
        ]);
        try {
          const start = performance.now();
          while (!peer.exited && performance.now() - start < DEADLINE_MS) {
            server.update((performance.now() - start) / 1000);
            for (const i of server.connectedClients()) {
              for (let p = server.receive(i); p; p = server.receive(i)) {
                server.send(i, p);
                echoes++;
              }
            }
            await yieldToSockets();
          }
          await expectSuccess(peer, `the ${runtime.name} client`);
          const echoed = peer.lines.map((line) => /^echoed (\d+)$/.exec(line))
            .find((match) => match !== null);
          assert(
            echoed && Number(echoed[1]) >= ECHOES,
            peer.lines.join("\n"),
          );
          assertStrictEquals(connects, 1);
          assert(echoes >= ECHOES, `the server echoed ${echoes}`);
          assertStrictEquals(
            parseAddress(address).hostname,
            family.name === "IPv4" ? "127.0.0.1" : "::1",
          );
        } finally {
          peer.kill();
          await peer.status;
        }
      },
    });
  }
}
