// mod.ts is the front door: what a game uses, nothing more. The codecs,
// replay protection, AEADs, FFI transport and native sodium stay reachable
// through the package's other entry points (deno.json "exports").

import { assertEquals } from "./_assert.ts";
import * as mod from "../mod.ts";
import denoJson from "../deno.json" with { type: "json" };

Deno.test("mod.ts exports only the front-door values", () => {
  assertEquals(Object.keys(mod).sort(), [
    "CLIENT_DROP_REASONS",
    "CONNECT_TOKEN_BYTES",
    "ClientState",
    "DEFAULT_CONNECT_TOKEN_EXPIRY_SECONDS",
    "DEFAULT_MAX_CLIENTS",
    "DEFAULT_TIMEOUT_SECONDS",
    "KEY_BYTES",
    "MAX_CLIENTS_LIMIT",
    "MAX_PACKET_BYTES",
    "MAX_PAYLOAD_BYTES",
    "MAX_SERVERS_PER_CONNECT",
    "SERVER_DROP_REASONS",
    "USER_DATA_BYTES",
    "clientStateName",
    "createClient",
    "createNetworkSimulator",
    "createServer",
    "formatAddress",
    "generateConnectToken",
    "generateKey",
    "isConnecting",
    "isDisconnected",
    "isError",
    "keyFromHex",
    "listenUdp",
    "parseAddress",
  ]);
});

Deno.test("what left mod.ts is still reachable through an entry point", async () => {
  const exports = denoJson.exports as Record<string, string>;
  const reachable = new Set<string>();
  for (const path of Object.values(exports)) {
    const module = await import(new URL(`../${path}`, import.meta.url).href);
    for (const name of Object.keys(module)) reachable.add(name);
  }
  for (
    const name of [
      "readPacket",
      "writePacket",
      "createReplayProtection",
      "readConnectToken",
      "chachaEncrypt",
      "listenUdpFfi",
      "useNativeSodium",
      "listenWebTransport",
      "connectWebTransport",
      "generateCertificate",
    ]
  ) {
    assertEquals(reachable.has(name), true, name);
  }
});
