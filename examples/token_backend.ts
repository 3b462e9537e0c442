/**
 * A web backend in a few lines: it hands each logged-in player a connect
 * token for the game servers. The token is what lets a player in: only the
 * backend and the servers know the private key. It listens on
 * 127.0.0.1:8080, or the address given.
 *
 * ```sh
 * deno run --allow-net=127.0.0.1 examples/token_backend.ts [ADDRESS]
 * curl -X POST -H "Authorization: Bearer alice" http://127.0.0.1:8080/token
 * ```
 *
 * The answer is JSON: `{ "connectToken": "<base64 of 2048 bytes>" }`. The
 * full development backend (rate limits, browser players, flags) is
 * `netcode backend`.
 *
 * @module
 */

import { generateConnectToken, keyFromHex } from "../mod.ts";

const PROTOCOL_ID = 0x1122334455667788n;
// Shared with the game servers only (the C reference's test key here).
const PRIVATE_KEY = keyFromHex(
  "606abe6ec91910ea9a6562f66f2b30e44371d62cd19927266b3c60f4b715aba1",
);
const SERVERS = ["127.0.0.1:40000"];
const PLAYERS = new Map([["alice", 1n], ["bob", 2n]]); // credential -> client id

const [hostname, port] = (Deno.args[0] ?? "127.0.0.1:8080").split(":");
const onListen = (at: Deno.NetAddr) =>
  console.log(`backend: POST http://${at.hostname}:${at.port}/token`);
Deno.serve({ hostname, port: Number(port), onListen }, (request) => {
  if (request.method !== "POST" || new URL(request.url).pathname !== "/token") {
    return new Response("POST /token\n", { status: 404 });
  }
  // A real backend checks the player's session or OAuth token here.
  const credential = request.headers.get("authorization")?.replace(
    /^Bearer /,
    "",
  );
  const clientId = PLAYERS.get(credential ?? "");
  if (clientId === undefined) return new Response("who?\n", { status: 401 });
  const token = generateConnectToken({
    serverAddresses: SERVERS,
    clientId,
    protocolId: PROTOCOL_ID,
    privateKey: PRIVATE_KEY,
    expireSeconds: 30, // the player has 30 s to connect
  });
  return Response.json({ connectToken: token.toBase64() });
});
