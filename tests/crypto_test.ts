// The AEAD wrappers over libsodium's WASM heap: known answers from the RFCs,
// agreement with libsodium-wrappers' own functions, failure on any wrong
// input, in-place operation, offsets, and argument checks.

import sodium from "libsodium-wrappers";
import {
  CHACHA_NONCE_BYTES,
  chachaDecrypt,
  chachaEncrypt,
  checkKey,
  generateKey,
  KEY_BYTES,
  keyFromHex,
  MAC_BYTES,
  randomBytes,
  XCHACHA_NONCE_BYTES,
  xchachaDecrypt,
  xchachaEncrypt,
} from "../crypto.ts";
import {
  assert,
  assertEquals,
  assertFalse,
  assertNotEquals,
  assertStrictEquals,
  assertThrows,
} from "./_assert.ts";
import { hex, pattern } from "./_vectors.ts";

await sodium.ready;

type Aead = typeof chachaEncrypt;
const constructions: {
  name: string;
  encrypt: Aead;
  decrypt: typeof chachaDecrypt;
  nonceBytes: number;
}[] = [
  {
    name: "chacha",
    encrypt: chachaEncrypt,
    decrypt: chachaDecrypt,
    nonceBytes: CHACHA_NONCE_BYTES,
  },
  {
    name: "xchacha",
    encrypt: xchachaEncrypt,
    decrypt: xchachaDecrypt,
    nonceBytes: XCHACHA_NONCE_BYTES,
  },
];

const SUNSCREEN = new TextEncoder().encode(
  "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.",
);
const RFC_KEY = hex(
  "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f",
);
const RFC_AAD = hex("50515253c0c1c2c3c4c5c6c7");

Deno.test("chachaEncrypt() matches the RFC 8439 section 2.8.2 AEAD test vector", () => {
  const nonce = hex("070000004041424344454647");
  const out = new Uint8Array(SUNSCREEN.length + MAC_BYTES);
  chachaEncrypt(
    SUNSCREEN,
    0,
    SUNSCREEN.length,
    RFC_AAD,
    RFC_AAD.length,
    nonce,
    RFC_KEY,
    out,
    0,
  );
  assertEquals(
    out,
    hex(
      "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d6" +
        "3dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b36" +
        "92ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc" +
        "3ff4def08e4b7a9de576d26586cec64b6116" +
        "1ae10b594f09e26a7e902ecbd0600691",
    ),
  );
  const plain = new Uint8Array(SUNSCREEN.length);
  assert(
    chachaDecrypt(
      out,
      0,
      out.length,
      RFC_AAD,
      RFC_AAD.length,
      nonce,
      RFC_KEY,
      plain,
      0,
    ),
  );
  assertEquals(plain, SUNSCREEN);
});

Deno.test("xchachaEncrypt() matches the XChaCha20-Poly1305 test vector of draft-irtf-cfrg-xchacha A.3.1", () => {
  const nonce = hex("404142434445464748494a4b4c4d4e4f5051525354555657");
  const out = new Uint8Array(SUNSCREEN.length + MAC_BYTES);
  xchachaEncrypt(
    SUNSCREEN,
    0,
    SUNSCREEN.length,
    RFC_AAD,
    RFC_AAD.length,
    nonce,
    RFC_KEY,
    out,
    0,
  );
  assertEquals(
    out,
    hex(
      "bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb" +
        "731c7f1b0b4aa6440bf3a82f4eda7e39ae64c6708c54c216cb96b72e1213b452" +
        "2f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff9" +
        "21f9664c97637da9768812f615c68b13b52e" +
        "c0875924c1c7987947deafd8780acf49",
    ),
  );
});

Deno.test("the AEAD wrappers agree with libsodium-wrappers for lengths 0..4080 and associated data 0..64", () => {
  for (const { name, encrypt, nonceBytes } of constructions) {
    for (
      const length of [
        0,
        1,
        15,
        16,
        17,
        63,
        64,
        65,
        100,
        1199,
        1200,
        1216,
        4080,
      ]
    ) {
      for (const adBytes of [0, 1, 22, 29, 64]) {
        const key = pattern(32, length);
        const nonce = pattern(nonceBytes, adBytes);
        const message = pattern(length, 3);
        const ad = pattern(adBytes, 4);
        const out = new Uint8Array(length + MAC_BYTES);
        encrypt(message, 0, length, ad, adBytes, nonce, key, out, 0);
        const expected = name === "chacha"
          ? sodium.crypto_aead_chacha20poly1305_ietf_encrypt(
            message,
            adBytes ? ad : null,
            null,
            nonce,
            key,
          )
          : sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(
            message,
            adBytes ? ad : null,
            null,
            nonce,
            key,
          );
        assertEquals(
          out,
          expected,
          `${name}, ${length} bytes, ${adBytes} bytes of associated data`,
        );
      }
    }
  }
});

Deno.test("encrypt then decrypt round-trips, with offsets into larger buffers", () => {
  for (const { name, encrypt, decrypt, nonceBytes } of constructions) {
    const key = generateKey();
    const nonce = randomBytes(new Uint8Array(nonceBytes));
    const ad = pattern(22, 1);
    for (const length of [0, 1, 100, 1200, 4000]) {
      const source = new Uint8Array(length + 200);
      source.set(pattern(length, 9), 37);
      const sealed = new Uint8Array(length + MAC_BYTES + 300).fill(0xaa);
      encrypt(source, 37, length, ad, ad.length, nonce, key, sealed, 123);
      assert(
        sealed.subarray(0, 123).every((byte) => byte === 0xaa),
        `${name}: nothing before the offset`,
      );
      assert(
        sealed.subarray(123 + length + MAC_BYTES).every((byte) =>
          byte === 0xaa
        ),
        `${name}: nothing after the end`,
      );
      const opened = new Uint8Array(length + 50).fill(0xbb);
      assert(
        decrypt(
          sealed,
          123,
          length + MAC_BYTES,
          ad,
          ad.length,
          nonce,
          key,
          opened,
          50 - 0,
        ),
      );
      assertEquals(
        opened.subarray(50, 50 + length),
        pattern(length, 9),
        `${name}, ${length} bytes`,
      );
      assert(
        opened.subarray(0, 50).every((byte) => byte === 0xbb),
        `${name}: nothing before the offset`,
      );
    }
  }
});

Deno.test("decrypt fails with the wrong key, associated data, nonce or a flipped bit, and writes nothing", () => {
  for (const { name, encrypt, decrypt, nonceBytes } of constructions) {
    const key = pattern(32, 1);
    const nonce = pattern(nonceBytes, 2);
    const ad = pattern(22, 3);
    const message = pattern(100, 4);
    const sealed = new Uint8Array(100 + MAC_BYTES);
    encrypt(message, 0, 100, ad, ad.length, nonce, key, sealed, 0);
    const attempt = (
      what: string,
      data: Uint8Array,
      additionalData: Uint8Array,
      additionalDataLength: number,
      tryNonce: Uint8Array,
      tryKey: Uint8Array,
    ) => {
      const out = new Uint8Array(100).fill(0x5a);
      assertFalse(
        decrypt(
          data,
          0,
          data.length,
          additionalData,
          additionalDataLength,
          tryNonce,
          tryKey,
          out,
          0,
        ),
        `${name}: ${what}`,
      );
      assert(
        out.every((byte) => byte === 0x5a),
        `${name}: ${what} wrote to the destination`,
      );
    };
    const otherKey = key.slice();
    otherKey[31] ^= 1;
    attempt("wrong key", sealed, ad, ad.length, nonce, otherKey);
    const otherAd = ad.slice();
    otherAd[0] ^= 0x80;
    attempt(
      "wrong associated data",
      sealed,
      otherAd,
      otherAd.length,
      nonce,
      key,
    );
    attempt("shorter associated data", sealed, ad, ad.length - 1, nonce, key);
    attempt("no associated data", sealed, ad, 0, nonce, key);
    const otherNonce = nonce.slice();
    otherNonce[nonceBytes - 1] ^= 1;
    attempt("wrong nonce", sealed, ad, ad.length, otherNonce, key);
    for (const bit of [0, 7, 400, 799, 800, 927]) {
      const flipped = sealed.slice();
      flipped[bit >> 3] ^= 1 << (bit & 7);
      attempt(`bit ${bit} flipped`, flipped, ad, ad.length, nonce, key);
    }
    attempt("truncated", sealed.slice(0, -1), ad, ad.length, nonce, key);
    // And the right inputs still work.
    const out = new Uint8Array(100);
    assert(
      decrypt(sealed, 0, sealed.length, ad, ad.length, nonce, key, out, 0),
      name,
    );
    assertEquals(out, message);
  }
});

Deno.test("encrypt and decrypt work in place", () => {
  for (const { name, encrypt, decrypt, nonceBytes } of constructions) {
    const key = pattern(32, 5);
    const nonce = pattern(nonceBytes, 6);
    const buffer = new Uint8Array(3 + 200 + MAC_BYTES);
    buffer.set(pattern(200, 7), 3);
    encrypt(buffer, 3, 200, new Uint8Array(0), 0, nonce, key, buffer, 3);
    assertNotEquals(
      buffer.subarray(3, 203),
      pattern(200, 7),
      `${name}: encrypted`,
    );
    const copy = buffer.slice();
    assert(
      decrypt(
        buffer,
        3,
        200 + MAC_BYTES,
        new Uint8Array(0),
        0,
        nonce,
        key,
        buffer,
        3,
      ),
      name,
    );
    assertEquals(
      buffer.subarray(3, 203),
      pattern(200, 7),
      `${name}: decrypted in place`,
    );
    assertEquals(
      buffer.subarray(203),
      copy.subarray(203),
      `${name}: the MAC is left as it was`,
    );
    // In place with an overlapping shift: the destination starts before the source.
    const shifted = new Uint8Array(10 + 50 + MAC_BYTES);
    encrypt(
      pattern(50, 8),
      0,
      50,
      new Uint8Array(0),
      0,
      nonce,
      key,
      shifted,
      10,
    );
    assert(
      decrypt(
        shifted,
        10,
        50 + MAC_BYTES,
        new Uint8Array(0),
        0,
        nonce,
        key,
        shifted,
        0,
      ),
    );
    assertEquals(
      shifted.subarray(0, 50),
      pattern(50, 8),
      `${name}: overlapping`,
    );
  }
});

Deno.test("a wrong key or nonce size throws RangeError", () => {
  for (const { name, encrypt, decrypt, nonceBytes } of constructions) {
    const out = new Uint8Array(64);
    const nonce = new Uint8Array(nonceBytes);
    for (const keyBytes of [0, 16, 31, 33, 64]) {
      const key = new Uint8Array(keyBytes);
      assertThrows(
        () => encrypt(out, 0, 10, out, 0, nonce, key, out, 0),
        RangeError,
        `${keyBytes} bytes`,
        name,
      );
      assertThrows(
        () => decrypt(out, 0, 26, out, 0, nonce, key, out, 0),
        RangeError,
        `${keyBytes} bytes`,
        name,
      );
    }
    const wrongNonce = new Uint8Array(nonceBytes === 12 ? 24 : 12);
    assertThrows(
      () => encrypt(out, 0, 10, out, 0, wrongNonce, new Uint8Array(32), out, 0),
      RangeError,
      "nonce",
    );
    assertThrows(
      () => decrypt(out, 0, 26, out, 0, wrongNonce, new Uint8Array(32), out, 0),
      RangeError,
      "nonce",
    );
  }
});

Deno.test("lengths and offsets outside the buffers throw RangeError instead of reading stale memory", () => {
  const key = new Uint8Array(32);
  for (const { encrypt, decrypt, nonceBytes } of constructions) {
    const nonce = new Uint8Array(nonceBytes);
    const empty = new Uint8Array(0);
    // A source shorter than offset + length.
    assertThrows(
      () =>
        encrypt(
          new Uint8Array(10),
          0,
          20,
          empty,
          0,
          nonce,
          key,
          new Uint8Array(64),
          0,
        ),
      RangeError,
    );
    assertThrows(
      () =>
        encrypt(
          new Uint8Array(10),
          5,
          6,
          empty,
          0,
          nonce,
          key,
          new Uint8Array(64),
          0,
        ),
      RangeError,
    );
    assertThrows(
      () =>
        decrypt(
          new Uint8Array(20),
          0,
          30,
          empty,
          0,
          nonce,
          key,
          new Uint8Array(64),
          0,
        ),
      RangeError,
    );
    assertThrows(
      () =>
        encrypt(
          new Uint8Array(10),
          -1,
          5,
          empty,
          0,
          nonce,
          key,
          new Uint8Array(64),
          0,
        ),
      RangeError,
    );
    // Associated data shorter than its stated length, or over 64 bytes.
    assertThrows(
      () =>
        encrypt(
          new Uint8Array(10),
          0,
          10,
          new Uint8Array(5),
          6,
          nonce,
          key,
          new Uint8Array(64),
          0,
        ),
      RangeError,
    );
    assertThrows(
      () =>
        encrypt(
          new Uint8Array(10),
          0,
          10,
          new Uint8Array(65),
          65,
          nonce,
          key,
          new Uint8Array(64),
          0,
        ),
      RangeError,
    );
    // A destination too small, and messages over the 4080-byte limit.
    assertThrows(
      () =>
        encrypt(
          new Uint8Array(10),
          0,
          10,
          empty,
          0,
          nonce,
          key,
          new Uint8Array(25),
          0,
        ),
      RangeError,
      "26 needed",
    );
    assertThrows(
      () =>
        encrypt(
          new Uint8Array(10),
          0,
          10,
          empty,
          0,
          nonce,
          key,
          new Uint8Array(26),
          1,
        ),
      RangeError,
    );
    assertThrows(
      () =>
        decrypt(
          new Uint8Array(26),
          0,
          26,
          empty,
          0,
          nonce,
          key,
          new Uint8Array(9),
          0,
        ),
      RangeError,
      "10 needed",
    );
    assertThrows(
      () =>
        encrypt(
          new Uint8Array(4081),
          0,
          4081,
          empty,
          0,
          nonce,
          key,
          new Uint8Array(5000),
          0,
        ),
      RangeError,
      "4081",
    );
    assertThrows(
      () =>
        decrypt(
          new Uint8Array(15),
          0,
          15,
          empty,
          0,
          nonce,
          key,
          new Uint8Array(15),
          0,
        ),
      RangeError,
    );
  }
});

Deno.test("randomBytes() fills any length; generateKey() makes distinct 32-byte keys", () => {
  const big = randomBytes(new Uint8Array(200_000));
  assertStrictEquals(big.length, 200_000);
  assert(
    big.subarray(150_000).some((byte) => byte !== 0),
    "filled past the 65536-byte chunk",
  );
  const a = generateKey();
  const b = generateKey();
  assertStrictEquals(a.length, KEY_BYTES);
  assertNotEquals(a, b);
});

Deno.test("checkKey() accepts 32-byte Uint8Arrays only, naming what it checked", () => {
  const key = new Uint8Array(32);
  assertStrictEquals(checkKey(key, "private key"), key);
  assertThrows(
    () => checkKey(new Uint8Array(31), "private key"),
    RangeError,
    "Cannot use private key: 31 bytes",
  );
  assertThrows(
    () => checkKey([1, 2, 3], "client key"),
    TypeError,
    "Cannot use client key",
  );
  assertThrows(() => checkKey(undefined, "private key"), TypeError);
});

/**
 * Runs `source` as a script in a temporary directory outside the
 * repository with --no-config and --no-lock, as another project importing
 * these files by URL would (on the npm packages already in Deno's cache).
 */
async function runWithoutConfig(
  source: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const directory = await Deno.makeTempDir({ prefix: "netcode_no_config_" });
  try {
    const script = `${directory}/main.ts`;
    await Deno.writeTextFile(script, source);
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--no-config", "--no-lock", "--quiet", "-A", script],
      cwd: directory,
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    return {
      code: output.code,
      stdout: new TextDecoder().decode(output.stdout),
      stderr: new TextDecoder().decode(output.stderr),
    };
  } finally {
    await Deno.remove(directory, { recursive: true });
  }
}

Deno.test("the sources load without this repository's deno.json, as from a checkout or git submodule", async () => {
  // Another project imports the files by URL, with its own deno.json or
  // none: a bare specifier that only this repository maps cannot resolve.
  const root = new URL("../", import.meta.url).href;
  const { code, stdout, stderr } = await runWithoutConfig(
    `import { generateKey, KEY_BYTES } from "${root}mod.ts";
import { chachaDecrypt, chachaEncrypt, MAC_BYTES } from "${root}crypto.ts";
import {
  CONNECTION_PAYLOAD_PACKET,
  packetTypeMask,
  readPacket,
  writePayloadPacket,
} from "${root}packet.ts";

const key = generateKey();
const message = new TextEncoder().encode("hello");
const nonce = new Uint8Array(12);
const sealed = new Uint8Array(message.length + MAC_BYTES);
chachaEncrypt(message, 0, message.length, new Uint8Array(0), 0, nonce, key, sealed, 0);
const opened = new Uint8Array(message.length);
const ok = chachaDecrypt(sealed, 0, sealed.length, new Uint8Array(0), 0, nonce, key, opened, 0);
const datagram = new Uint8Array(1300);
const bytes = writePayloadPacket(datagram, 1, key, 7n, message);
const packet = readPacket(datagram.subarray(0, bytes), {
  protocolId: 7n,
  readKey: key,
  allowedPackets: packetTypeMask(CONNECTION_PAYLOAD_PACKET),
});
const payload = typeof packet === "number" || packet.type !== CONNECTION_PAYLOAD_PACKET
  ? \`dropped \${packet}\`
  : new TextDecoder().decode(packet.payload);
console.log(key.length === KEY_BYTES, ok, new TextDecoder().decode(opened), payload);
`,
  );
  assertEquals(code, 0, stderr);
  assertEquals(stdout, "true true hello hello\n", stderr);
});

Deno.test("every entry point loads without this repository's deno.json", async () => {
  const root = new URL("../", import.meta.url);
  const exports = JSON.parse(
    await Deno.readTextFile(new URL("deno.json", root)),
  ).exports as Record<string, string>;
  const urls = Object.values(exports).map((path) => new URL(path, root).href);
  const { code, stdout, stderr } = await runWithoutConfig(
    `const urls = ${JSON.stringify(urls)};
let names = 0;
for (const url of urls) names += Object.keys(await import(url)).length;
console.log(urls.length, names > 0);
`,
  );
  assertEquals(code, 0, stderr);
  assertEquals(stdout, `${urls.length} true\n`, stderr);
});

Deno.test("keyFromHex() reads 64 hex characters and refuses anything else without repeating it", () => {
  const keyText =
    "606abe6ec91910ea9a6562f66f2b30e44371d62cd19927266b3c60f4b715aba1";
  const key = keyFromHex(`  ${keyText.toUpperCase()}\n`);
  assertEquals(key.length, 32);
  assertEquals(
    Array.from(key, (b) => b.toString(16).padStart(2, "0")).join(""),
    keyText,
  );
  for (
    const [text, message] of [
      [
        keyText.slice(1),
        "Cannot read key: expected 64 hex characters (32 bytes), got 63",
      ],
      [
        keyText + "0",
        "Cannot read key: expected 64 hex characters (32 bytes), got 65",
      ],
      [
        `${keyText.slice(0, 10)}zz${keyText.slice(12)}`,
        "Cannot read key: character 10 is not a hex digit",
      ],
      [
        `${keyText.slice(0, 63)}g`,
        "Cannot read key: character 63 is not a hex digit",
      ],
    ]
  ) {
    const error = assertThrows(() => keyFromHex(text), RangeError);
    assertEquals(error.message, message);
  }
  assertThrows(() => keyFromHex(42 as unknown as string), TypeError);
});
