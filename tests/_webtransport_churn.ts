// Run by socket_webtransport_test.ts in a subprocess with --expose-gc:
// rounds of 200 WebTransport sessions opened and abandoned (half closed by
// the client, half left to the server's idle timeout), printing as JSON the
// heap after each round, once every session is gone and after a GC.

import { formatAddress } from "../address.ts";
import { generateCertificate } from "../certificate.ts";
import { listenWebTransport } from "../socket_webtransport.ts";

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error("run with --v8-flags=--expose-gc");
const certificate = await generateCertificate();
using socket = listenWebTransport({
  address: "127.0.0.1:0",
  certificate,
  maxSessionsPerIp: 1024,
  idleTimeoutSeconds: 1,
});
const url = `https://${formatAddress(socket.address)}/netcode`;
const serverCertificateHashes = [{
  algorithm: "sha-256",
  value: certificate.hash as Uint8Array<ArrayBuffer>,
}];

async function round(): Promise<void> {
  for (let batch = 0; batch < 20; batch++) {
    const sessions = Array.from({ length: 10 }, () => {
      const session = new WebTransport(url, { serverCertificateHashes });
      session.closed.catch(() => {});
      return session;
    });
    await Promise.all(sessions.map((session) => session.ready));
    // Half are closed; the other half are dropped, never closed.
    for (const session of sessions.slice(0, 5)) session.close();
  }
  const deadline = performance.now() + 20_000;
  while (socket.numSessions > 0) {
    if (performance.now() > deadline) throw new Error("sessions left over");
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const heap: number[] = [];
for (let i = 0; i < 3; i++) {
  await round();
  // Let the idled-out sessions finish closing on both sides, then collect.
  await new Promise((resolve) => setTimeout(resolve, 1500));
  gc();
  gc();
  heap.push(Deno.memoryUsage().heapUsed);
}
console.log(JSON.stringify({
  heap,
  numSessions: socket.numSessions,
  stats: socket.stats,
  queued: socket.poll() !== undefined,
}));
