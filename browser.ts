/**
 * The browser entry: a netcode client over WebTransport, with nothing that
 * needs Deno. Bundle it with `deno task bundle:browser`.
 *
 * @example
 * ```ts ignore
 * import { connectWebTransport, createClient } from "./browser.ts";
 *
 * const hash = new Uint8Array(32); // from the backend, with the token
 * const client = createClient({
 *   socket: connectWebTransport({ certificateHashes: [hash] }),
 * });
 * ```
 *
 * @module
 */

export { type Client, ClientState, createClient } from "./client.ts";
export {
  connectWebTransport,
  type ConnectWebTransportOptions,
  type WebTransportClientSocket,
} from "./socket_webtransport.ts";
