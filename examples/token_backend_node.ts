/**
 * `examples/token_backend.ts` on Node.js: a web backend that hands each
 * logged-in player a connect token for the game servers, with `node:http`
 * and no framework. The token is what lets a player in: only the backend
 * and the servers know the private key. It listens on 127.0.0.1:8080, or
 * the address given.
 *
 * From this repository (Node.js 20 runs JavaScript, so build it first):
 *
 * ```sh
 * deno task build:node
 * node dist/node/examples/token_backend_node.js [ADDRESS]   # or: bun ...
 * curl -X POST -H "Authorization: Bearer alice" http://127.0.0.1:8080/token
 * ```
 *
 * In your own project, after `npx jsr add @netcode/netcode`, import from
 * `"@netcode/netcode"` instead of `"../mod.ts"`.
 *
 * The answer is JSON: `{ "connectToken": "<base64 of 2048 bytes>" }`.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import {
  createServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from "node:http";
import process from "node:process";
import { pathToFileURL } from "node:url";
import { generateConnectToken, keyFromHex } from "../mod.ts";

const PROTOCOL_ID = 0x1122334455667788n;
// Shared with the game servers only (the C reference's test key here).
const PRIVATE_KEY = keyFromHex(
  "606abe6ec91910ea9a6562f66f2b30e44371d62cd19927266b3c60f4b715aba1",
);
const SERVERS = ["127.0.0.1:40000"];
const PLAYERS = new Map([["alice", 1n], ["bob", 2n]]); // credential -> client id

/**
 * Answers one HTTP request: a connect token for `POST /token` from a known
 * player, 401 for a stranger, 404 for anything else.
 *
 * @param request The request.
 * @param response Its response.
 */
export function handleTokenRequest(
  request: IncomingMessage,
  response: ServerResponse,
): void {
  const path = new URL(request.url ?? "/", "http://backend").pathname;
  if (request.method !== "POST" || path !== "/token") {
    response.writeHead(404, { "content-type": "text/plain" });
    response.end("POST /token\n");
    return;
  }
  // A real backend checks the player's session or OAuth token here.
  const credential = request.headers.authorization?.replace(/^Bearer /, "");
  const clientId = PLAYERS.get(credential ?? "");
  if (clientId === undefined) {
    response.writeHead(401, { "content-type": "text/plain" });
    response.end("who?\n");
    return;
  }
  const token = generateConnectToken({
    serverAddresses: SERVERS,
    clientId,
    protocolId: PROTOCOL_ID,
    privateKey: PRIVATE_KEY,
    expireSeconds: 30, // the player has 30 s to connect
  });
  response.writeHead(200, { "content-type": "application/json" });
  response.end(
    JSON.stringify({ connectToken: Buffer.from(token).toString("base64") }),
  );
}

/**
 * Starts the backend on `address` (`"host:port"`, port 0 for any free one).
 *
 * @param address Where to listen.
 * @returns The HTTP server and the URL it serves `POST /token` at.
 */
export function startTokenBackend(
  address = "127.0.0.1:8080",
): Promise<{ server: Server; url: string }> {
  const [hostname, port] = address.split(":");
  const server = createServer(handleTokenRequest);
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(Number(port), hostname, () => {
      const bound = server.address();
      const at = typeof bound === "object" && bound !== null
        ? `${bound.address}:${bound.port}`
        : address;
      resolve({ server, url: `http://${at}/token` });
    });
  });
}

const main = process.argv[1];
if (main !== undefined && import.meta.url === pathToFileURL(main).href) {
  const { url } = await startTokenBackend(process.argv[2]);
  console.log(`backend: POST ${url}`);
}
