/**
 * A client in a few lines, as the C reference's `client.c`: it makes its own
 * connect token (a real client gets one from the web backend), connects to
 * 127.0.0.1:40000 (or the address given), sends a payload every update and
 * checks that each echo comes back unchanged. It exits 0 after 60 echoes,
 * 1 if it could not connect or lost the connection.
 *
 * ```sh
 * deno run --allow-net=127.0.0.1,0.0.0.0 examples/echo_client.ts [ADDRESS]
 * ```
 *
 * @module
 */

import {
  ClientState,
  clientStateName,
  createClient,
  generateConnectToken,
  isDisconnected,
  keyFromHex,
  MAX_PAYLOAD_BYTES,
} from "../mod.ts";

const PROTOCOL_ID = 0x1122334455667788n;
const PRIVATE_KEY = keyFromHex(
  "606abe6ec91910ea9a6562f66f2b30e44371d62cd19927266b3c60f4b715aba1",
);
const ECHOES = 60;

// The backend's job: a token for this client, naming the server.
const token = generateConnectToken({
  serverAddresses: [Deno.args[0] ?? "127.0.0.1:40000"],
  clientId: BigInt(Math.floor(Math.random() * 2 ** 32)),
  protocolId: PROTOCOL_ID,
  privateKey: PRIVATE_KEY,
});

const client = createClient({
  onStateChange: (from, to) =>
    console.log(`client: ${clientStateName(from)} -> ${clientStateName(to)}`),
});
client.connect(token);

const payload = new Uint8Array(MAX_PAYLOAD_BYTES).map((_, i) => i);
let echoed = 0;
const start = performance.now();
const code = await new Promise<number>((resolve) => {
  const timer = setInterval(() => {
    client.update((performance.now() - start) / 1000);
    if (client.state === ClientState.CONNECTED) client.send(payload);
    for (let p = client.receive(); p; p = client.receive()) {
      if (p.length !== payload.length || p.some((b, i) => b !== payload[i])) {
        console.error("an echo came back changed");
        clearInterval(timer);
        resolve(1);
        return;
      }
      echoed++;
    }
    // Disconnected, or an error state: the connection is over.
    if (echoed >= ECHOES || isDisconnected(client.state)) {
      clearInterval(timer);
      resolve(echoed >= ECHOES ? 0 : 1);
    }
  }, 1000 / 60);
});
console.log(`${echoed} echoes, final state ${client.stateName}`);
// Sends the disconnect packets and waits until the socket has sent them.
await client.close();
Deno.exit(code);
