// The short sample programs in examples/, run as a reader would, with the
// permissions their docs state: the echo server and client, the token
// backend. Every process is bounded by a deadline and stopped by the test.

import { assert, assertEquals, assertStringIncludes } from "./_assert.ts";
import { readConnectToken } from "../token.ts";

/** The `deno run` flags a sample's module doc gives for it. */
async function documentedFlags(sample: string): Promise<string[]> {
  const source = await Deno.readTextFile(
    new URL(`../examples/${sample}`, import.meta.url),
  );
  const line = new RegExp(`deno run ((?:--\\S+ )+)examples/${sample}`).exec(
    source,
  );
  assert(line, `${sample} documents how to run it`);
  return line[1].trim().split(" ");
}

async function start(sample: string, args: string[]) {
  const process = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--config",
      new URL("../deno.json", import.meta.url).pathname,
      ...await documentedFlags(sample),
      new URL(`../examples/${sample}`, import.meta.url).pathname,
      ...args,
    ],
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let stdout = "";
  const reader = process.stdout.pipeThrough(new TextDecoderStream())
    .getReader();
  const stderr = new Response(process.stderr).text();
  const deadline = setTimeout(() => {
    try {
      process.kill("SIGKILL");
    } catch { /* it had ended */ }
  }, 20_000);
  return {
    process,
    /** Reads stdout until `pattern` matches; the match. */
    async waitFor(pattern: RegExp): Promise<RegExpExecArray> {
      for (;;) {
        const match = pattern.exec(stdout);
        if (match) return match;
        const { done, value } = await reader.read();
        if (done) {
          throw new Error(
            `${sample} ended before ${pattern}: ${stdout}${await stderr}`,
          );
        }
        stdout += value;
      }
    },
    /** Waits for the exit; the code and everything printed. */
    async finish() {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        stdout += value;
      }
      const { code } = await process.status;
      clearTimeout(deadline);
      return { code, stdout, stderr: await stderr };
    },
  };
}

function freeUdpPort(): number {
  const socket = Deno.listenDatagram({
    transport: "udp",
    hostname: "127.0.0.1",
    port: 0,
  });
  const { port } = socket.addr as Deno.NetAddr;
  socket.close();
  return port;
}

Deno.test("examples/echo_client.ts gets 60 echoes from examples/echo_server.ts and disconnects cleanly", async () => {
  const address = `127.0.0.1:${freeUdpPort()}`;
  const server = await start("echo_server.ts", [address]);
  try {
    await server.waitFor(/server listening on (\S+)/);
    const client = await start("echo_client.ts", [address]);
    const ran = await client.finish();
    assertEquals(ran.code, 0, ran.stdout + ran.stderr);
    assertStringIncludes(ran.stdout, "60 echoes, final state connected");
    await server.waitFor(/left: clientDisconnected/);
  } finally {
    server.process.kill("SIGINT");
  }
  const stopped = await server.finish();
  assertStringIncludes(stopped.stdout, "server stopped");
});

Deno.test("examples/echo_client.ts exits 1 when no server answers", async () => {
  const client = await start("echo_client.ts", [`127.0.0.1:${freeUdpPort()}`]);
  const ran = await client.finish();
  assertEquals(ran.code, 1, ran.stdout + ran.stderr);
  assertStringIncludes(
    ran.stdout,
    "0 echoes, final state connection request timed out",
  );
});

Deno.test("examples/token_backend.ts hands a player a connect token and refuses a stranger", async () => {
  const backend = await start("token_backend.ts", ["127.0.0.1:0"]);
  try {
    const [, url] = await backend.waitFor(/backend: POST (http:\S+)/);
    const answer = await fetch(url, {
      method: "POST",
      headers: { authorization: "Bearer alice" },
    });
    assertEquals(answer.status, 200);
    const { connectToken } = await answer.json();
    const token = readConnectToken(Uint8Array.fromBase64(connectToken));
    assert(token, "a connect token readConnectToken accepts");
    assertEquals(token.expireTimestamp - token.createTimestamp, 30n);
    const stranger = await fetch(url, { method: "POST" });
    assertEquals(stranger.status, 401);
    await stranger.body?.cancel();
  } finally {
    backend.process.kill("SIGINT");
  }
  await backend.finish();
});

Deno.test("examples/messages.ts delivers the chat line and the 50 KB level, and reports RTT and loss", async () => {
  const output = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--config",
      new URL("../deno.json", import.meta.url).pathname,
      new URL("../examples/messages.ts", import.meta.url).pathname,
    ],
    env: { NO_COLOR: "1" },
    stdin: "null",
    signal: AbortSignal.timeout(20_000),
  }).output();
  const stdout = new TextDecoder().decode(output.stdout);
  assertEquals(output.code, 0, new TextDecoder().decode(output.stderr));
  assertStringIncludes(stdout, 'server got: "hello from the client"');
  assertStringIncludes(stdout, "client got the level: 51200 bytes, intact");
  const report =
    /15 s: rtt (\d+) ms .* loss ([\d.]+)% .* state messages received (\d+)/
      .exec(stdout);
  assert(report, stdout);
  // 100 ms of simulated round trip (plus up to two ticks of waiting), 10%
  // loss, 60 Hz state for about 15 s.
  assert(Number(report[1]) >= 100 && Number(report[1]) <= 140, report[0]);
  assert(Number(report[2]) <= 20, report[0]);
  assert(Number(report[3]) > 600, report[0]);
});

Deno.test("deno task demo:messages delivers hello, level and state over real loopback UDP with 10% loss", async () => {
  const output = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--config",
      new URL("../deno.json", import.meta.url).pathname,
      "--unstable-net",
      "--allow-net=127.0.0.1",
      new URL("../tools/messages_demo.ts", import.meta.url).pathname,
      "--seconds",
      "3",
      "--clients",
      "2",
    ],
    env: { NO_COLOR: "1" },
    stdin: "null",
    signal: AbortSignal.timeout(30_000),
  }).output();
  const stdout = new TextDecoder().decode(output.stdout);
  assertEquals(
    output.code,
    0,
    stdout + new TextDecoder().decode(output.stderr),
  );
  for (const id of [1, 2]) {
    assertStringIncludes(
      stdout,
      `client ${id}: connected; server got "hello from client ${id}"; level intact`,
    );
  }
  assertStringIncludes(stdout, "10% loss and 20 ms each way");
});
