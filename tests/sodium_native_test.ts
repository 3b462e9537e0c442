// Native libsodium as the AEAD backend: the same bytes as the WebAssembly
// build, the same contract (a failed decryption writes nothing), the
// conformance vectors, and a connection over the simulator on it. Skipped
// with a message where the library or FFI permission is missing.

import { assert, assertEquals } from "./_assert.ts";
import { connected, createWorld, token } from "./_harness.ts";
import {
  aeadBackend,
  chachaDecrypt,
  chachaEncrypt,
  setAeadBackend,
  xchachaDecrypt,
  xchachaEncrypt,
} from "../crypto.ts";
import { loadNativeSodium, nativeSodiumUnavailable } from "../sodium_native.ts";
import {
  decryptPrivateConnectToken,
  encryptPrivateConnectToken,
} from "../token.ts";
import { createRandom } from "../simulator.ts";

const unavailable = nativeSodiumUnavailable();
if (unavailable !== undefined) {
  console.log(`sodium_native_test: skipped: ${unavailable}`);
}
const ignore = unavailable !== undefined;

/** Runs `fn` with the native backend, restoring the default after. */
function withNative(fn: () => void): void {
  setAeadBackend(loadNativeSodium());
  try {
    fn();
  } finally {
    setAeadBackend(undefined);
  }
}

function bytes(random: () => number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = Math.floor(random() * 256);
  return out;
}

Deno.test({
  name: "native libsodium encrypts to the same bytes as the WebAssembly build",
  ignore,
  fn() {
    const random = createRandom(11);
    const native = loadNativeSodium();
    for (let i = 0; i < 2000; i++) {
      const xchacha = i % 2 === 1;
      const length = Math.floor(random() * 1300);
      const adLength = Math.floor(random() * 40);
      const message = bytes(random, length);
      const additionalData = bytes(random, adLength);
      const key = bytes(random, 32);
      const nonce = bytes(random, xchacha ? 24 : 12);
      const encrypt = xchacha ? xchachaEncrypt : chachaEncrypt;
      const decrypt = xchacha ? xchachaDecrypt : chachaDecrypt;
      const wasm = new Uint8Array(length + 16);
      const ours = new Uint8Array(length + 16);
      setAeadBackend(undefined);
      encrypt(
        message,
        0,
        length,
        additionalData,
        adLength,
        nonce,
        key,
        wasm,
        0,
      );
      setAeadBackend(native);
      try {
        encrypt(
          message,
          0,
          length,
          additionalData,
          adLength,
          nonce,
          key,
          ours,
          0,
        );
        assertEquals(ours, wasm, `case ${i}`);
        const plain = new Uint8Array(length);
        assert(
          decrypt(
            ours,
            0,
            length + 16,
            additionalData,
            adLength,
            nonce,
            key,
            plain,
            0,
          ),
        );
        assertEquals(plain, message);
      } finally {
        setAeadBackend(undefined);
      }
    }
  },
});

Deno.test({
  name: "native libsodium writes nothing when decryption fails",
  ignore,
  fn() {
    withNative(() => {
      const key = new Uint8Array(32).fill(1);
      const nonce = new Uint8Array(12);
      const sealed = new Uint8Array(100 + 16);
      chachaEncrypt(
        new Uint8Array(100).fill(5),
        0,
        100,
        key,
        0,
        nonce,
        key,
        sealed,
        0,
      );
      sealed[50] ^= 1;
      const out = new Uint8Array(100).fill(0xee);
      assert(!chachaDecrypt(sealed, 0, 116, key, 0, nonce, key, out, 0));
      assertEquals(out, new Uint8Array(100).fill(0xee));
      // In place, as token decryption does: left as it was on failure.
      const copy = sealed.slice();
      assert(!chachaDecrypt(sealed, 0, 116, key, 0, nonce, key, sealed, 0));
      assertEquals(sealed, copy);
    });
  },
});

Deno.test({
  name: "native libsodium decrypts a private connect token in place",
  ignore,
  fn() {
    withNative(() => {
      const key = new Uint8Array(32).fill(9);
      const nonce = new Uint8Array(24).fill(3);
      const plain = new Uint8Array(1024);
      plain.fill(0x42, 0, 1008);
      const buffer = plain.slice();
      encryptPrivateConnectToken(buffer, 7n, 2000000000n, nonce, key);
      assert(decryptPrivateConnectToken(buffer, 7n, 2000000000n, nonce, key));
      assertEquals(buffer, plain);
    });
  },
});

Deno.test({
  name: "the conformance vectors pass with native libsodium",
  ignore,
  async fn() {
    const output = await new Deno.Command(Deno.execPath(), {
      args: [
        "test",
        "-A",
        new URL("./conformance_test.ts", import.meta.url).pathname,
      ],
      env: { NETCODE_CRYPTO: "native", NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(output.stdout);
    assert(output.success, text + new TextDecoder().decode(output.stderr));
    assert(/checked \d+ vectors with the native AEAD backend/.test(text), text);
  },
});

Deno.test({
  name: "client and server connect and exchange payloads on native libsodium",
  ignore,
  fn() {
    withNative(() => {
      assertEquals(aeadBackend().name, "native");
      const world = createWorld();
      const client = world.addClient();
      client.connect(token());
      assert(world.run(() => connected(client), 60) > 0, client.stateName);
      client.send(new Uint8Array([1, 2, 3]));
      world.run(() => false, 3);
      assertEquals(world.server.receive(0), new Uint8Array([1, 2, 3]));
      world.close();
    });
  },
});
