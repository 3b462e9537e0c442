/**
 * Command line parsing for the examples and the `netcode` program: the one
 * module that imports an argument parser (`parseArgs` from `node:util`,
 * because JSR is not reachable from this project's build machines). Moving
 * to `@std/cli` means changing {@linkcode parseFlags} only.
 *
 * Also here: parsers for flag values (integers, 64-bit ids, keys, addresses)
 * that throw usage errors naming the flag, and {@linkcode runCommand}, which
 * maps usage errors to exit code 2 and other failures to exit code 1.
 *
 * @module
 */

import { parseArgs, type ParseArgsOptionsConfig } from "node:util";
import { type Address, parseAddress } from "../address.ts";

/** Exit code of a successful run. */
export const EXIT_OK = 0;
/** Exit code of a run that failed (could not connect, lost echoes, ...). */
export const EXIT_FAILURE = 1;
/** Exit code of a bad command line: unknown flag, bad value. */
export const EXIT_USAGE = 2;

const USAGE_ERROR = "UsageError";

/** The `-h, --help` flag every command has. */
export const HELP_FLAG = { help: { type: "boolean", short: "h" } } as const;

/** Flag definitions, as `parseArgs` from `node:util` takes them. */
export type FlagSpecs = ParseArgsOptionsConfig;

/** A subcommand of the `netcode` program, also run on its own by an example. */
export interface Command {
  /** Its name: `"server"`. */
  readonly name: string;
  /** One line for the list of commands. */
  readonly summary: string;
  /** The full help text, for `--help`. */
  usage(program: string): string;
  /**
   * Runs the command.
   *
   * @param args The arguments after the command's name.
   * @param program How to name the program in messages: `"netcode server"`.
   * @returns The exit code.
   * @throws {Error} A usage error (see {@linkcode usageError}) on a bad command line.
   */
  run(args: readonly string[], program: string): Promise<number>;
}

/**
 * An error about the command line, which {@linkcode runCommand} reports with
 * a hint to run `--help` and exit code 2.
 *
 * @param message What is wrong, e.g. `--packets: "x" is not an integer`.
 * @returns The error, to throw.
 */
export function usageError(message: string): Error {
  const error = new Error(message);
  error.name = USAGE_ERROR;
  return error;
}

/**
 * Whether `error` came from {@linkcode usageError}.
 *
 * @param error Anything thrown.
 * @returns `true` for a usage error.
 */
export function isUsageError(error: unknown): boolean {
  return error instanceof Error && error.name === USAGE_ERROR;
}

/**
 * Parses flags strictly: unknown flags, missing values and positional
 * arguments are usage errors.
 *
 * @param args The command line arguments.
 * @param specs The flags, as `parseArgs` from `node:util` takes them.
 * @returns The values by flag name.
 * @throws {Error} A usage error naming the offending argument.
 */
export function parseFlags<T extends FlagSpecs>(
  args: readonly string[],
  specs: T,
) {
  try {
    return parseArgs({
      args: joinNegativeValues(args, specs),
      options: specs,
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (error) {
    const code = (error as { code?: string }).code;
    const message = error instanceof Error ? error.message : String(error);
    if (code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") {
      const flag = /'([^']+)'/.exec(message)?.[1] ?? message;
      throw usageError(`unknown flag ${flag}`);
    }
    if (code === "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL") {
      const argument = /'([^']*)'/.exec(message)?.[1] ?? message;
      throw usageError(`unexpected argument "${argument}"`);
    }
    // parseArgs explains itself over several lines (a hint how to pass a
    // value starting with a dash): keep all of them.
    throw usageError(message.split("\n").map((line) => line.trim()).join(" "));
  }
}

/**
 * Joins `--flag -1` into `--flag=-1` for string flags, so negative numbers
 * (`--expire -1`) are values, not flags; parseArgs would call them ambiguous.
 */
function joinNegativeValues(
  args: readonly string[],
  specs: FlagSpecs,
): string[] {
  const joined: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    const next = args[i + 1];
    if (
      arg.startsWith("--") && !arg.includes("=") &&
      specs[arg.slice(2)]?.type === "string" &&
      next !== undefined && /^-(\d|\.\d)/.test(next)
    ) {
      joined.push(`${arg}=${next}`);
      i++;
    } else {
      joined.push(arg);
    }
  }
  return joined;
}

/**
 * Runs a command and turns what it throws into a message on stderr and an
 * exit code: 2 for a usage error (with a hint to run `--help`), 1 otherwise.
 *
 * @param command The command.
 * @param args Its arguments.
 * @param program Its name in messages: `"netcode server"`.
 * @returns The exit code.
 */
export async function runCommand(
  command: Command,
  args: readonly string[],
  program: string,
): Promise<number> {
  try {
    return await command.run(args, program);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    if (isUsageError(error)) {
      console.error(`${program}: ${message}`);
      console.error(`Run '${program} --help' for usage.`);
      return EXIT_USAGE;
    }
    console.error(`${program}: ${message}`);
    return EXIT_FAILURE;
  }
}

/**
 * Parses an integer flag value.
 *
 * @param flag The flag, for messages: `"--packets"`.
 * @param text Its value.
 * @param min Smallest value allowed.
 * @param max Largest value allowed.
 * @returns The integer.
 * @throws {Error} A usage error when it is not an integer in `min..max`.
 */
export function parseIntegerFlag(
  flag: string,
  text: string,
  min: number,
  max: number,
): number {
  if (!/^[+-]?\d+$/.test(text.trim())) {
    throw usageError(`${flag}: "${text}" is not an integer`);
  }
  const value = Number(text);
  if (value < min || value > max) {
    throw usageError(`${flag}: ${text} is outside ${min}..${max}`);
  }
  return value;
}

/**
 * Parses a connect token's timeout in seconds: a 32-bit integer, negative
 * for no timeout. 0 is refused, as the C reference server would expire the
 * pending connection at once.
 *
 * @param flag The flag, for messages.
 * @param text Its value.
 * @returns The timeout.
 * @throws {Error} A usage error when it is not a 32-bit integer, or is 0.
 */
export function parseTimeoutFlag(flag: string, text: string): number {
  const value = parseIntegerFlag(flag, text, -(2 ** 31), 2 ** 31 - 1);
  if (value === 0) {
    throw usageError(
      `${flag}: 0 would time the connection out at once; use -1 for no timeout`,
    );
  }
  return value;
}

/**
 * Parses a number of seconds (decimals allowed).
 *
 * @param flag The flag, for messages.
 * @param text Its value.
 * @param min Smallest value allowed.
 * @param max Largest value allowed.
 * @returns The number.
 * @throws {Error} A usage error when it is not a number in `min..max`.
 */
export function parseSecondsFlag(
  flag: string,
  text: string,
  min: number,
  max: number,
): number {
  const value = text.trim() === "" ? NaN : Number(text);
  if (!Number.isFinite(value)) {
    throw usageError(`${flag}: "${text}" is not a number of seconds`);
  }
  if (value < min || value > max) {
    throw usageError(`${flag}: ${text} is outside ${min}..${max}`);
  }
  return value;
}

/**
 * Parses a 64-bit unsigned integer, in hex (`0x1122334455667788`) or
 * decimal.
 *
 * @param flag The flag, for messages.
 * @param text Its value.
 * @returns The value.
 * @throws {Error} A usage error when it is not an integer in 0..2^64-1.
 */
export function parseUint64Flag(flag: string, text: string): bigint {
  const trimmed = text.trim();
  if (!/^(0[xX][0-9a-fA-F]+|\d+)$/.test(trimmed)) {
    throw usageError(
      `${flag}: "${text}" is not a decimal or 0x-prefixed hex integer`,
    );
  }
  const value = BigInt(trimmed);
  if (value > 0xffffffffffffffffn) {
    throw usageError(`${flag}: ${text} does not fit in 64 bits`);
  }
  return value;
}

/**
 * Parses hex bytes (an optional `0x` prefix is ignored).
 *
 * @param flag The flag, for messages.
 * @param text Its value.
 * @param maxBytes Most bytes allowed.
 * @returns The bytes.
 * @throws {Error} A usage error on anything but an even number of hex digits, or too many.
 */
export function parseHexFlag(
  flag: string,
  text: string,
  maxBytes: number,
): Uint8Array {
  const hex = text.trim().replace(/^0[xX]/, "");
  if (!/^([0-9a-fA-F]{2})*$/.test(hex)) {
    throw usageError(`${flag}: expected hex bytes (pairs of 0-9a-f)`);
  }
  if (hex.length / 2 > maxBytes) {
    throw usageError(
      `${flag}: ${hex.length / 2} bytes is more than the ${maxBytes} allowed`,
    );
  }
  return Uint8Array.fromHex(hex);
}

/**
 * Parses a 32-byte key written as 64 hex characters. The message never
 * repeats the value, which may be a secret.
 *
 * @param flag The flag or variable, for messages.
 * @param text Its value.
 * @returns The 32 bytes.
 * @throws {Error} A usage error unless it is exactly 64 hex characters.
 */
export function parseKeyFlag(flag: string, text: string): Uint8Array {
  const hex = text.trim();
  if (!/^[0-9a-fA-F]{64}$/.test(hex)) {
    throw usageError(
      `${flag}: expected 64 hex characters (32 bytes), got ${hex.length} characters${
        /^[0-9a-fA-F]*$/.test(hex) ? "" : " that are not all hex"
      }`,
    );
  }
  return Uint8Array.fromHex(hex);
}

/**
 * Parses an address: `"127.0.0.1:40000"` or `"[::1]:40000"`.
 *
 * @param flag The flag, for messages.
 * @param text Its value.
 * @param allowPortZero Whether port 0 (any free port) is allowed; it must
 * still be written (`127.0.0.1:0`), as an address without a port is refused.
 * @returns The address.
 * @throws {Error} A usage error on an unparsable address or a missing port.
 */
export function parseAddressFlag(
  flag: string,
  text: string,
  allowPortZero = false,
): Address {
  let address: Address;
  try {
    address = parseAddress(text);
  } catch (error) {
    throw usageError(
      `${flag}: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
  // parseAddress takes a bare IP as port 0: only a written ":0" asks for a
  // free port.
  const portWritten = /^\[.*\]:\d+$|^[^:]*:\d+$/.test(text.trim());
  if (address.port === 0 && (!allowPortZero || !portWritten)) {
    throw usageError(
      `${flag}: "${text}" needs a port, as in 127.0.0.1:40000 or [::1]:40000`,
    );
  }
  return address;
}
