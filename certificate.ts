/**
 * TLS certificates for the WebTransport transport: a development certificate
 * made in code, or a PEM certificate and key read from files, checked
 * against the rules browsers apply to `serverCertificateHashes`.
 *
 * A browser connects to a server with a self-signed certificate only when the
 * page names the certificate's SHA-256 hash (`serverCertificateHashes`) and
 * the certificate is ECDSA (Chromium accepts P-256) and valid for at most 14
 * days. {@linkcode generateCertificate} makes exactly that;
 * {@linkcode readCertificate} refuses a certificate a browser would reject,
 * unless it is CA-signed (then browsers check it the usual way and no hash is
 * needed).
 *
 * X.509 encoding uses the `@peculiar/asn1-*` libraries; keys and signatures
 * come from WebCrypto.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { generateCertificate } from "./certificate.ts";
 *
 * const certificate = await generateCertificate();
 * assert.equal(certificate.hash.length, 32); // SHA-256, for serverCertificateHashes
 * assert.ok(certificate.certificate.startsWith("-----BEGIN CERTIFICATE-----"));
 * ```
 *
 * @module
 */

import { AsnConvert, OctetString } from "npm:@peculiar/asn1-schema@^2.6.0";
import {
  AlgorithmIdentifier,
  AttributeTypeAndValue,
  AttributeValue,
  Certificate,
  Extension,
  Extensions,
  GeneralName,
  id_ce_subjectAltName,
  Name,
  RelativeDistinguishedName,
  SubjectAlternativeName,
  SubjectPublicKeyInfo,
  TBSCertificate,
  Validity,
  Version,
} from "npm:@peculiar/asn1-x509@^2.6.0";
import {
  ECDSASigValue,
  ECParameters,
  id_ecdsaWithSHA256,
  id_ecPublicKey,
  id_secp256r1,
} from "npm:@peculiar/asn1-ecc@^2.6.0";

/** The longest validity browsers accept for a certificate given by hash. */
export const MAX_CERTIFICATE_HASH_VALIDITY_SECONDS = 14 * 24 * 60 * 60;

/** Validity of {@linkcode generateCertificate}'s certificates by default. */
export const DEFAULT_CERTIFICATE_VALIDITY_SECONDS = 13 * 24 * 60 * 60;

const ID_RSA_ENCRYPTION = "1.2.840.113549.1.1.1";
const ID_COMMON_NAME = "2.5.4.3";
// Backdated, so a client whose clock runs a little behind accepts it.
const BACKDATE_SECONDS = 60;

/** A certificate and its private key, ready for a WebTransport server. */
export interface WebTransportCertificate {
  /** The certificate (chain), PEM. */
  readonly certificate: string;
  /** The private key, PEM (PKCS #8). */
  readonly privateKey: string;
  /**
   * SHA-256 of the (first) certificate's DER bytes: the value a browser page
   * passes in `serverCertificateHashes`.
   */
  readonly hash: Uint8Array;
  /** When the certificate becomes valid, unix seconds. */
  readonly notBefore: number;
  /** When the certificate expires, unix seconds. */
  readonly notAfter: number;
  /** Whether it was declared CA-signed (then its hash is not needed). */
  readonly caSigned: boolean;
}

/** Options of {@linkcode generateCertificate}. */
export interface GenerateCertificateOptions {
  /**
   * Names the certificate is for, as DNS names or IP literals. Browsers do
   * not check them for a certificate given by hash, but other clients may.
   *
   * @default {["localhost", "127.0.0.1", "::1"]}
   */
  readonly names?: readonly string[];
  /**
   * How long the certificate is valid, in seconds, at most 14 days.
   *
   * @default {1123200 (13 days)}
   */
  readonly validitySeconds?: number;
  /**
   * The current unix time in seconds; the certificate is valid from a minute
   * before it.
   *
   * @default {Date.now() / 1000}
   */
  readonly now?: number;
}

/** Options of {@linkcode readCertificate}. */
export interface ReadCertificateOptions {
  /**
   * The certificate is signed by a certificate authority the browsers
   * trust, so the hash rules (ECDSA, 14 days) do not apply.
   *
   * @default {false}
   */
  readonly caSigned?: boolean;
}

function toBase64Lines(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/.{64}/g, "$&\n").replace(/\n$/, "");
}

function toPem(label: string, bytes: Uint8Array): string {
  return `-----BEGIN ${label}-----\n${
    toBase64Lines(bytes)
  }\n-----END ${label}-----\n`;
}

function fromPem(text: string, label: string, what: string): Uint8Array {
  const match = new RegExp(
    `-----BEGIN ${label}-----([A-Za-z0-9+/=\\s]+)-----END ${label}-----`,
  ).exec(text);
  if (match === null) {
    throw new TypeError(`Cannot read ${what}: no PEM "${label}" block found`);
  }
  const binary = atob(match[1].replace(/\s+/g, ""));
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

function isIpLiteral(name: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(name) || name.includes(":");
}

async function sha256(bytes: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(
    await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>),
  );
}

/**
 * Makes a self-signed ECDSA P-256 certificate that browsers accept through
 * `serverCertificateHashes`: valid for at most 14 days, with the names given
 * as subject alternative names. For development and for servers that rotate
 * their certificate (see `rotateCertificate` on the WebTransport socket).
 *
 * @param options Names, validity and the current time.
 * @returns The certificate, its key and its SHA-256 hash.
 * @throws {RangeError} When the validity is not 1 second to 14 days.
 * @throws {TypeError} When `names` is empty or holds a non-string.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { generateCertificate } from "./certificate.ts";
 *
 * const now = 1_800_000_000; // unix seconds; Date.now() / 1000 by default
 * const certificate = await generateCertificate({ validitySeconds: 86400, now });
 * assert.equal(certificate.notBefore, now - 60); // a minute early, for clocks running behind
 * assert.equal(certificate.notAfter, now + 86400);
 * ```
 */
export async function generateCertificate(
  options: GenerateCertificateOptions = {},
): Promise<WebTransportCertificate> {
  const names = options.names ?? ["localhost", "127.0.0.1", "::1"];
  if (
    !Array.isArray(names) || names.length === 0 ||
    names.some((name) => typeof name !== "string" || name === "")
  ) {
    throw new TypeError(
      "Cannot generate certificate: names must be a non-empty list of strings",
    );
  }
  const validitySeconds = options.validitySeconds ??
    DEFAULT_CERTIFICATE_VALIDITY_SECONDS;
  if (
    !Number.isInteger(validitySeconds) || validitySeconds < 1 ||
    validitySeconds > MAX_CERTIFICATE_HASH_VALIDITY_SECONDS
  ) {
    throw new RangeError(
      `Cannot generate certificate: validity ${validitySeconds} s is not from 1 s to 14 days (${MAX_CERTIFICATE_HASH_VALIDITY_SECONDS} s)`,
    );
  }
  const now = Math.floor(options.now ?? Date.now() / 1000);
  const notBefore = now - BACKDATE_SECONDS;
  const notAfter = now + validitySeconds;
  const algorithm = { name: "ECDSA", namedCurve: "P-256" };
  const keys = await crypto.subtle.generateKey(algorithm, true, [
    "sign",
    "verify",
  ]) as CryptoKeyPair;
  const spki = await crypto.subtle.exportKey("spki", keys.publicKey);
  const signatureAlgorithm = new AlgorithmIdentifier({
    algorithm: id_ecdsaWithSHA256,
  });
  const name = new Name([
    new RelativeDistinguishedName([
      new AttributeTypeAndValue({
        type: ID_COMMON_NAME,
        value: new AttributeValue({ utf8String: names[0] }),
      }),
    ]),
  ]);
  const serial = crypto.getRandomValues(new Uint8Array(16));
  serial[0] = (serial[0] & 0x7f) | 0x01; // positive, no leading zero byte
  const alternativeNames = new SubjectAlternativeName(
    names.map((entry) =>
      new GeneralName(
        isIpLiteral(entry) ? { iPAddress: entry } : {
          dNSName: entry,
        },
      )
    ),
  );
  const tbsCertificate = new TBSCertificate({
    version: Version.v3,
    serialNumber: serial.buffer,
    signature: signatureAlgorithm,
    issuer: name,
    subject: name,
    validity: new Validity({
      notBefore: new Date(notBefore * 1000),
      notAfter: new Date(notAfter * 1000),
    }),
    subjectPublicKeyInfo: AsnConvert.parse(spki, SubjectPublicKeyInfo),
    extensions: new Extensions([
      new Extension({
        extnID: id_ce_subjectAltName,
        critical: false,
        extnValue: new OctetString(AsnConvert.serialize(alternativeNames)),
      }),
    ]),
  });
  const signed = new Uint8Array(
    await crypto.subtle.sign(
      { name: "ECDSA", hash: "SHA-256" },
      keys.privateKey,
      AsnConvert.serialize(tbsCertificate),
    ),
  );
  // WebCrypto signs as r || s; X.509 wants the DER sequence.
  const signatureValue = AsnConvert.serialize(
    new ECDSASigValue({
      r: signed.slice(0, 32).buffer,
      s: signed.slice(32).buffer,
    }),
  );
  const der = new Uint8Array(AsnConvert.serialize(
    new Certificate({ tbsCertificate, signatureAlgorithm, signatureValue }),
  ));
  const pkcs8 = new Uint8Array(
    await crypto.subtle.exportKey("pkcs8", keys.privateKey),
  );
  return Object.freeze({
    certificate: toPem("CERTIFICATE", der),
    privateKey: toPem("PRIVATE KEY", pkcs8),
    hash: await sha256(der),
    notBefore,
    notAfter,
    caSigned: false,
  });
}

/**
 * Reads a PEM certificate and private key (for example from files) and
 * checks that a browser would accept the certificate by its hash: an ECDSA
 * P-256 key and a validity of at most 14 days. A CA-signed certificate skips
 * those checks (`caSigned: true`). The key is checked for its PEM form only;
 * the WebTransport socket fails to listen when it does not match.
 *
 * @param certificate The certificate (chain) in PEM; the first one counts.
 * @param privateKey The private key in PEM.
 * @param options Whether the certificate is CA-signed.
 * @returns The certificate with its SHA-256 hash and validity.
 * @throws {TypeError} When either text holds no PEM block or the certificate
 * cannot be parsed.
 * @throws {RangeError} When a browser would refuse the certificate by hash:
 * `Cannot use certificate: it has an RSA key; browsers accept only ECDSA
 * P-256 certificates by hash (pass caSigned: true for a CA-signed one)`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { generateCertificate, readCertificate } from "./certificate.ts";
 *
 * const made = await generateCertificate();
 * const read = await readCertificate(made.certificate, made.privateKey);
 * assert.deepEqual(read.hash, made.hash);
 * assert.equal(read.notAfter, made.notAfter);
 * ```
 */
export async function readCertificate(
  certificate: string,
  privateKey: string,
  options: ReadCertificateOptions = {},
): Promise<WebTransportCertificate> {
  if (typeof certificate !== "string" || typeof privateKey !== "string") {
    throw new TypeError(
      "Cannot read certificate: certificate and key must be PEM strings",
    );
  }
  const der = fromPem(certificate, "CERTIFICATE", "certificate");
  fromPem(privateKey, "(?:EC |RSA )?PRIVATE KEY", "private key");
  let parsed: Certificate;
  try {
    parsed = AsnConvert.parse(der, Certificate);
  } catch (error) {
    throw new TypeError("Cannot read certificate: it is not valid X.509", {
      cause: error,
    });
  }
  const tbs = parsed.tbsCertificate;
  const notBefore = Math.floor(Number(tbs.validity.notBefore.getTime()) / 1000);
  const notAfter = Math.floor(Number(tbs.validity.notAfter.getTime()) / 1000);
  const caSigned = options.caSigned === true;
  if (!caSigned) {
    const key = tbs.subjectPublicKeyInfo.algorithm;
    const hint = "(pass caSigned: true for a CA-signed one)";
    if (key.algorithm === ID_RSA_ENCRYPTION) {
      throw new RangeError(
        `Cannot use certificate: it has an RSA key; browsers accept only ECDSA P-256 certificates by hash ${hint}`,
      );
    }
    const curve = key.parameters === null || key.parameters === undefined
      ? undefined
      : AsnConvert.parse(key.parameters, ECParameters).namedCurve;
    if (key.algorithm !== id_ecPublicKey || curve !== id_secp256r1) {
      throw new RangeError(
        `Cannot use certificate: its key is not ECDSA P-256 (algorithm ${key.algorithm}); browsers accept only ECDSA P-256 certificates by hash ${hint}`,
      );
    }
    const days = (notAfter - notBefore) / 86400;
    if (notAfter - notBefore > MAX_CERTIFICATE_HASH_VALIDITY_SECONDS) {
      throw new RangeError(
        `Cannot use certificate: it is valid for ${
          days.toFixed(1)
        } days; browsers accept at most 14 days by hash ${hint}`,
      );
    }
  }
  return Object.freeze({
    certificate,
    privateKey,
    hash: await sha256(der),
    notBefore,
    notAfter,
    caSigned,
  });
}
