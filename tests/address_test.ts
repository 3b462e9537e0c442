// Addresses: parsing, canonical formatting (RFC 5952, as Deno's sockets
// print them), equality, map keys, and the binary form inside tokens.

import {
  ADDRESS_IPV4,
  ADDRESS_IPV4_BYTES,
  ADDRESS_IPV6,
  ADDRESS_IPV6_BYTES,
  addressBytes,
  addressEqual,
  addressKey,
  formatAddress,
  isIpv6,
  parseAddress,
  readAddress,
  writeAddress,
} from "../address.ts";
import {
  assert,
  assertEquals,
  assertFalse,
  assertNotEquals,
  assertStrictEquals,
  assertStringIncludes,
  assertThrows,
} from "./_assert.ts";
import { hex } from "./_vectors.ts";

Deno.test("parseAddress() reads IPv4 with a port", () => {
  assertEquals(parseAddress("127.0.0.1:40000"), {
    hostname: "127.0.0.1",
    port: 40000,
  });
  assertEquals(parseAddress("0.0.0.0:0"), { hostname: "0.0.0.0", port: 0 });
  assertEquals(parseAddress("255.255.255.255:65535"), {
    hostname: "255.255.255.255",
    port: 65535,
  });
  assertEquals(parseAddress("  10.0.0.1:5  "), {
    hostname: "10.0.0.1",
    port: 5,
  }, "trimmed");
});

Deno.test("parseAddress() reads bare addresses with port 0", () => {
  assertEquals(parseAddress("10.1.2.3"), { hostname: "10.1.2.3", port: 0 });
  assertEquals(parseAddress("::1"), { hostname: "::1", port: 0 });
  assertEquals(parseAddress("2001:DB8::1"), {
    hostname: "2001:db8::1",
    port: 0,
  });
  assertEquals(parseAddress("[::1]"), { hostname: "::1", port: 0 });
  assertEquals(parseAddress("[fe80::1]"), { hostname: "fe80::1", port: 0 });
});

Deno.test("parseAddress() reads bracketed IPv6 with a port", () => {
  assertEquals(parseAddress("[::1]:40000"), { hostname: "::1", port: 40000 });
  assertEquals(parseAddress("[::]:1"), { hostname: "::", port: 1 });
  assertEquals(
    parseAddress("[2001:db8::ff00:42:8329]:65535"),
    { hostname: "2001:db8::ff00:42:8329", port: 65535 },
  );
});

Deno.test("parseAddress() canonicalises IPv6 the way RFC 5952 (and Deno) print it", () => {
  const cases: [string, string][] = [
    ["0:0:0:0:0:0:0:1", "::1"],
    ["0000:0000:0000:0000:0000:0000:0000:0001", "::1"],
    ["0:0:0:0:0:0:0:0", "::"],
    ["2001:0DB8:0000:0000:0000:0000:0000:0001", "2001:db8::1"],
    ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"], // the first of equal runs
    ["2001:0:0:1:0:0:0:1", "2001:0:0:1::1"], // the longest run
    ["2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"], // one zero group stays
    ["1:0:0:0:0:0:0:0", "1::"],
    ["0:0:0:0:0:0:0:abcd", "::abcd"],
    ["FE80::0:0:1", "fe80::1"],
    ["1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"],
    ["1::2:3:4:5:6:7", "1:0:2:3:4:5:6:7"],
  ];
  for (const [input, canonical] of cases) {
    assertStrictEquals(parseAddress(`[${input}]:9`).hostname, canonical, input);
    assertStrictEquals(
      parseAddress(input).hostname,
      canonical,
      `${input} bare`,
    );
  }
});

Deno.test("parseAddress() keeps IPv4-mapped IPv6 as ::ffff:a.b.c.d", () => {
  for (
    const input of [
      "[::ffff:192.168.1.1]:80",
      "[::FFFF:c0a8:101]:80",
      "[0:0:0:0:0:ffff:c0a8:0101]:80",
      "[0:0:0:0:0:ffff:192.168.1.1]:80",
    ]
  ) {
    assertEquals(parseAddress(input), {
      hostname: "::ffff:192.168.1.1",
      port: 80,
    }, input);
  }
  // Mapped is written as IPv6, but it is the same peer as the IPv4 address
  // (a dual-stack socket reports IPv4 senders this way): equal, same key.
  assert(
    addressEqual(
      parseAddress("[::ffff:10.0.0.1]:5"),
      parseAddress("10.0.0.1:5"),
    ),
  );
  assertEquals(
    addressKey(parseAddress("[::ffff:10.0.0.1]:5")),
    addressKey(parseAddress("10.0.0.1:5")),
  );
  assert(isIpv6(parseAddress("[::ffff:10.0.0.1]:5")));
  // Other embedded-IPv4 forms are plain hex groups.
  assertStrictEquals(
    parseAddress("[64:ff9b::1.2.3.4]:1").hostname,
    "64:ff9b::102:304",
  );
});

Deno.test("parseAddress() throws a TypeError naming the input for anything else", () => {
  const bad = [
    "",
    " ",
    "1.2.3",
    "1.2.3.4.5",
    "256.0.0.1:1",
    "1.2.3.-4:1",
    "1.2.3.4:",
    "1.2.3.4:abc",
    "1.2.3.4:-1",
    "1.2.3.4:65536",
    "1.2.3.4:123456",
    "1.2.3.4:5:6",
    "localhost:40000",
    "example.com:1",
    ":40000",
    "[::1",
    "[::1]x",
    "[::1]:",
    "[::1]:99999",
    "[::1]40000",
    "[:::1]:5",
    "[1::2::3]:5",
    "[12345::]:5",
    "[1:2:3:4:5:6:7:8:9]:5",
    "[1:2:3:4:5:6:7]:5",
    "[::1%eth0]:5",
    "[1.2.3.4]:5",
    "[g::1]:5",
    "::1:40000:",
  ];
  for (const input of bad) {
    const error = assertThrows(
      () => parseAddress(input),
      TypeError,
      undefined,
      JSON.stringify(input),
    );
    assertStringIncludes(error.message, `Cannot parse address "${input}"`);
  }
  assertThrows(
    () => parseAddress(undefined as unknown as string),
    TypeError,
    "expected a string",
  );
  assertThrows(
    () => parseAddress(40000 as unknown as string),
    TypeError,
    "expected a string",
  );
  // The reason is part of the message.
  assertThrows(
    () => parseAddress("1.2.3.4:70000"),
    TypeError,
    'bad port "70000"',
  );
  assertThrows(() => parseAddress("[::1"), TypeError, 'missing "]"');
  assertThrows(() => parseAddress("[zz::1]:1"), TypeError, "bad IPv6 address");
});

Deno.test("formatAddress() brackets IPv6 and round-trips through parseAddress()", () => {
  assertStrictEquals(
    formatAddress({ hostname: "127.0.0.1", port: 40000 }),
    "127.0.0.1:40000",
  );
  assertStrictEquals(
    formatAddress({ hostname: "::1", port: 40000 }),
    "[::1]:40000",
  );
  for (
    const text of [
      "127.0.0.1:40000",
      "[::1]:40000",
      "[2001:db8::ff00:42:8329]:65535",
      "[::ffff:1.2.3.4]:1",
      "0.0.0.0:0",
    ]
  ) {
    assertStrictEquals(formatAddress(parseAddress(text)), text);
    assertEquals(
      parseAddress(formatAddress(parseAddress(text))),
      parseAddress(text),
    );
  }
});

Deno.test("addressEqual() and addressKey() agree for equivalent spellings", () => {
  const groups: string[][] = [
    [
      "[::1]:40000",
      "[0:0:0:0:0:0:0:1]:40000",
      "[0::1]:40000",
      " [::0001]:40000",
    ],
    ["[2001:db8::1]:5", "[2001:DB8:0:0:0:0:0:1]:5"],
    ["10.0.0.1:7", "10.0.0.1:7 "],
  ];
  for (const group of groups) {
    const first = parseAddress(group[0]);
    for (const other of group.slice(1)) {
      assert(
        addressEqual(first, parseAddress(other)),
        `${group[0]} == ${other}`,
      );
      assertStrictEquals(
        addressKey(parseAddress(other)),
        addressKey(first),
        other,
      );
    }
  }
  const distinct = [
    "[::1]:40000",
    "[::1]:40001",
    "[::2]:40000",
    "127.0.0.1:40000",
    "127.0.0.2:40000",
  ]
    .map(parseAddress);
  const keys = new Set(distinct.map(addressKey));
  assertStrictEquals(
    keys.size,
    distinct.length,
    "distinct addresses have distinct keys",
  );
  for (let i = 0; i < distinct.length; i++) {
    for (let j = 0; j < distinct.length; j++) {
      assertStrictEquals(addressEqual(distinct[i], distinct[j]), i === j);
    }
  }
  // An IPv4 key can not collide with an IPv6 key.
  assertNotEquals(
    addressKey({ hostname: "1.2.3.4", port: 5 }),
    addressKey({ hostname: "::1.2.3.4", port: 5 }),
  );
});

Deno.test("isIpv6() and addressBytes() tell the families apart", () => {
  assertFalse(isIpv6(parseAddress("1.2.3.4:5")));
  assert(isIpv6(parseAddress("[::1]:5")));
  assertStrictEquals(
    addressBytes(parseAddress("1.2.3.4:5")),
    ADDRESS_IPV4_BYTES,
  );
  assertStrictEquals(addressBytes(parseAddress("[::1]:5")), ADDRESS_IPV6_BYTES);
  assertStrictEquals(ADDRESS_IPV4_BYTES, 7);
  assertStrictEquals(ADDRESS_IPV6_BYTES, 19);
});

function written(address: string): Uint8Array {
  const bytes = new Uint8Array(32).fill(0xee);
  const end = writeAddress(
    new DataView(bytes.buffer),
    0,
    parseAddress(address),
  );
  return bytes.slice(0, end);
}

Deno.test("writeAddress() writes IPv4 as type 1, four octets, port little-endian", () => {
  assertEquals(written("127.0.0.1:40000"), hex("017f000001409c"));
  assertEquals(written("10.20.30.40:1"), hex("010a141e280100"));
  assertStrictEquals(written("1.2.3.4:5")[0], ADDRESS_IPV4);
});

Deno.test("writeAddress() writes IPv6 as eight little-endian u16 groups, then the port", () => {
  // ::1 ends 01 00: each group is a little-endian number, not network order.
  assertEquals(
    written("[::1]:40000"),
    hex("02" + "0000".repeat(7) + "0100" + "409c"),
  );
  assertEquals(
    written("[2001:db8::ff00:42:8329]:65535"),
    hex(
      "02" + "0120" + "b80d" + "0000" + "0000" + "0000" + "00ff" + "4200" +
        "2983" + "ffff",
    ),
  );
  assertEquals(
    written("[::ffff:192.168.1.1]:80"),
    hex("02" + "0000".repeat(5) + "ffff" + "a8c0" + "0101" + "5000"),
  );
  assertStrictEquals(written("[::1]:1")[0], ADDRESS_IPV6);
});

Deno.test("writeAddress() throws a TypeError for a hostname that is not an IP literal", () => {
  const view = new DataView(new ArrayBuffer(32));
  assertThrows(
    () => writeAddress(view, 0, { hostname: "localhost", port: 1 }),
    TypeError,
    "localhost",
  );
  assertThrows(
    () => writeAddress(view, 0, { hostname: "1::2::3", port: 1 }),
    TypeError,
    "1::2::3",
  );
});

Deno.test("readAddress() reads back what writeAddress() wrote, at an offset", () => {
  for (
    const text of [
      "127.0.0.1:40000",
      "0.0.0.0:0",
      "[::1]:40000",
      "[::]:0",
      "[2001:db8::ff00:42:8329]:65535",
      "[::ffff:1.2.3.4]:9",
      "[1:2:3:4:5:6:7:8]:1",
    ]
  ) {
    const bytes = new Uint8Array(40);
    const view = new DataView(bytes.buffer);
    const end = writeAddress(view, 3, parseAddress(text));
    const read = readAddress(view, 3);
    assertEquals(read, { address: parseAddress(text), offset: end }, text);
  }
});

Deno.test("readAddress() rejects address types 0 and 3..255, and truncated bytes", () => {
  for (const type of [0, 3, 4, 255]) {
    const bytes = new Uint8Array(19);
    bytes[0] = type;
    assertStrictEquals(
      readAddress(new DataView(bytes.buffer), 0),
      undefined,
      `type ${type}`,
    );
  }
  const ipv4 = written("1.2.3.4:5");
  const ipv6 = written("[::1]:5");
  for (let length = 0; length < ipv4.length; length++) {
    assertStrictEquals(
      readAddress(new DataView(ipv4.slice(0, length).buffer), 0),
      undefined,
    );
  }
  for (let length = 0; length < ipv6.length; length++) {
    assertStrictEquals(
      readAddress(new DataView(ipv6.slice(0, length).buffer), 0),
      undefined,
    );
  }
});

Deno.test("addressEqual() treats an IPv4-mapped IPv6 address as the IPv4 address", () => {
  const mapped = parseAddress("[::ffff:127.0.0.1]:40000");
  assertEquals(mapped.hostname, "::ffff:127.0.0.1");
  assert(addressEqual(mapped, parseAddress("127.0.0.1:40000")));
  assert(addressEqual(parseAddress("127.0.0.1:40000"), mapped));
  assert(!addressEqual(mapped, parseAddress("127.0.0.1:40001")));
  assert(!addressEqual(mapped, parseAddress("127.0.0.2:40000")));
  assert(
    !addressEqual(parseAddress("[::1]:40000"), parseAddress("127.0.0.1:40000")),
  );
});
