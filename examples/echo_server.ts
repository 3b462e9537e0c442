/**
 * A dedicated server in a few lines, as the C reference's `server.c`: it
 * listens on 127.0.0.1:40000 (or the address given), updates at 60 Hz and
 * sends every payload back to the client that sent it, until Ctrl-C.
 *
 * ```sh
 * deno run --allow-net=127.0.0.1 examples/echo_server.ts [ADDRESS]
 * deno run --allow-net=127.0.0.1,0.0.0.0 examples/echo_client.ts [ADDRESS]
 * ```
 *
 * It uses the reference's test key and protocol id, so the reference's
 * `client` connects to it too. A real server reads its private key from a
 * secret store: it is what lets the backend's tokens in.
 *
 * @module
 */

import { createServer, formatAddress, keyFromHex } from "../mod.ts";

// The C reference's test protocol id and private key (never use in production).
const PROTOCOL_ID = 0x1122334455667788n;
const PRIVATE_KEY = keyFromHex(
  "606abe6ec91910ea9a6562f66f2b30e44371d62cd19927266b3c60f4b715aba1",
);

const server = createServer({
  address: Deno.args[0] ?? "127.0.0.1:40000",
  protocolId: PROTOCOL_ID,
  privateKey: PRIVATE_KEY,
  onConnect: (index) =>
    console.log(`client ${server.clientId(index)} connected in slot ${index}`),
  onDisconnect: (index, reason) =>
    console.log(`client in slot ${index} left: ${reason}`),
});
console.log(`server listening on ${formatAddress(server.address)}`);

const start = performance.now();
const timer = setInterval(() => {
  server.update((performance.now() - start) / 1000);
  for (const index of server.connectedClients()) {
    for (let p = server.receive(index); p; p = server.receive(index)) {
      server.send(index, p);
    }
  }
}, 1000 / 60);

Deno.addSignalListener("SIGINT", async () => {
  clearInterval(timer);
  // Sends each client its 10 disconnect packets; settles once they are out.
  await server.close();
  console.log("server stopped");
});
