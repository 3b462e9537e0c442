// Reading the kernel's per-socket drop count from /proc/net/udp(6).

import { assert, assertEquals, assertGreater } from "./_assert.ts";
import { parseAddress } from "../address.ts";
import { parseKernelDrops, readKernelDrops } from "../_kernel_drops.ts";
import { ffiTransportUnavailable, listenUdpFfi } from "../socket_ffi.ts";

const UDP =
  `   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  110: 0100007F:9C40 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 1234 2 0000000000000000 17
  111: 00000000:9C40 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 1235 2 0000000000000000 3
`;
const UDP6 =
  `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  5: 00000000000000000000000001000000:9C40 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 99 2 0000000000000000 42
  6: B80D0120000000000000000001000000:9C41 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 98 2 0000000000000000 5
`;

Deno.test("parseKernelDrops() finds the socket by address and port", () => {
  assertEquals(parseKernelDrops(UDP, parseAddress("127.0.0.1:40000")), 17);
  assertEquals(parseKernelDrops(UDP, parseAddress("0.0.0.0:40000")), 3);
  assertEquals(
    parseKernelDrops(UDP, parseAddress("127.0.0.1:40001")),
    undefined,
  );
  assertEquals(parseKernelDrops(UDP6, parseAddress("[::1]:40000")), 42);
  assertEquals(parseKernelDrops(UDP6, parseAddress("[2001:db8::1]:40001")), 5);
  assertEquals(parseKernelDrops("", parseAddress("[::1]:40000")), undefined);
});

Deno.test({
  name: "readKernelDrops() counts what the kernel dropped at a full socket",
  ignore: ffiTransportUnavailable() !== undefined ||
    Deno.build.os !== "linux",
  async fn() {
    // A tiny receive buffer, nobody reading: most of a burst is dropped.
    using receiver = listenUdpFfi({
      hostname: "127.0.0.1",
      port: 0,
      receiveBufferBytes: 2048,
    });
    using sender = listenUdpFfi({ hostname: "127.0.0.1", port: 0 });
    assertEquals(readKernelDrops(receiver.address), 0);
    for (let i = 0; i < 200; i++) {
      sender.send(new Uint8Array(1000), receiver.address);
    }
    sender.flush();
    let drops = 0;
    for (let tries = 0; tries < 100 && drops < 100; tries++) {
      await new Promise((resolve) => setTimeout(resolve, 5));
      drops = readKernelDrops(receiver.address) ?? 0;
    }
    assertGreater(drops, 100);
    assert(receiver.stats.received === 0);
  },
});
