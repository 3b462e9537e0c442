// The mixed flood of tools/flood.ts, short: a netcode server on the FFI
// transport, an attacker process sending 20,000 hostile datagrams a second
// (one-byte 00, garbage, genuine-token requests, fake payloads, from 32
// addresses) and an honest client echoing 300 payloads through it. No echo
// may be lost, the kernel may drop nothing at the server's port, and the
// server's memory stays flat. About 15 s.

import { assert, assertEquals, assertStringIncludes } from "./_assert.ts";
import { ffiTransportUnavailable } from "../socket_ffi.ts";

Deno.test({
  name:
    "under a mixed flood on the FFI transport no honest echo is lost, the kernel drops nothing and memory stays flat",
  ignore: ffiTransportUnavailable() !== undefined ||
    Deno.build.os !== "linux",
  async fn() {
    const tool = new URL("../tools/flood.ts", import.meta.url).pathname;
    const run = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        tool,
        "--transport",
        "ffi",
        "--rate",
        "20000",
        "--packets",
        "300",
      ],
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).output();
    const stdout = new TextDecoder().decode(run.stdout);
    const stderr = new TextDecoder().decode(run.stderr);
    console.log(stdout.trim());
    assertEquals(run.code, 0, stdout + stderr);
    assertStringIncludes(stdout, "honest client: echoed 300/300, lost 0");
    const granted = Number(stdout.match(/kernel buffers: receive (\d+)/)?.[1]);
    if (granted >= 4 * 1024 * 1024) {
      assertStringIncludes(stdout, "kernel drops at the server's port: 0");
    } else {
      // net.core.rmem_max caps the buffer below what the server asked for.
      console.log(
        `!!! kernel drops not asserted: the kernel granted a ${granted}-byte receive buffer (raise net.core.rmem_max to 4194304)`,
      );
    }
    const sent = Number(stdout.match(/attack: sent (\d+) datagrams/)?.[1]);
    assert(sent > 100_000, `the flood ran at rate: ${sent} datagrams`);
    const rss = stdout.match(/VmRSS[^:]*: ([\d. ]+)/)![1].trim().split(" ")
      .map(Number).slice(1); // after the first second's warm-up
    assert(
      Math.max(...rss) - Math.min(...rss) < 16,
      `server memory grew: ${rss.join(" ")} MB`,
    );
  },
});
