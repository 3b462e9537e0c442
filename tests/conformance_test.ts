// Conformance with the C reference, driven by a vectors file: every entry of
// every section is encoded from its inputs and compared byte for byte, then
// decoded and compared field by field.
//
// The file is $NETCODE_VECTORS when set (a path relative to the working
// directory), else tests/vectors/netcode-1.02.json next to this file. Any
// file following the same schema works:
//
//   NETCODE_VECTORS=/tmp/other.json deno test -A tests/conformance_test.ts
//
// NETCODE_CRYPTO=native runs them through native libsodium (sodium_native.ts)
// instead of the WebAssembly build.

import { useNativeSodium } from "../sodium_native.ts";
import { defineConformanceTests } from "./_conformance.ts";
import { loadVectors, vectorsLocation } from "./_vectors.ts";

const location = vectorsLocation();
const vectors = await loadVectors(location);

defineConformanceTests(vectors, location, (name, fn) => Deno.test(name, fn));

if (Deno.env.get("NETCODE_CRYPTO") === "native") useNativeSodium();
