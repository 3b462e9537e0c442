/**
 * The assertions the tests use, named and shaped like `@std/assert`
 * (`assert`, `assertEquals`, `assertThrows`, ...) but built on
 * `node:assert/strict`, because JSR is not reachable from this project's
 * build machines. This is the only file that imports an assertion library:
 * switching to `@std/assert` means replacing the bodies below with
 * `export { assert, assertEquals, ... } from "@std/assert";`.
 *
 * @module
 */

import nodeAssert from "node:assert/strict";

/** An error class, for {@linkcode assertThrows}. */
// deno-lint-ignore no-explicit-any
export type ErrorClass<E extends Error = Error> = new (...args: any[]) => E;

/** Fails with `msg` unless `expr` is truthy. */
export function assert(
  expr: unknown,
  msg = "Expected a truthy value",
): asserts expr {
  nodeAssert.ok(expr, msg);
}

/** Fails with `msg` unless `expr` is falsy. */
export function assertFalse(
  expr: unknown,
  msg = "Expected a falsy value",
): void {
  nodeAssert.ok(!expr, msg);
}

/** Deep, strict equality (typed arrays compared element by element). */
export function assertEquals<T>(actual: T, expected: T, msg?: string): void {
  nodeAssert.deepStrictEqual(actual, expected, msg);
}

/** Deep, strict inequality. */
export function assertNotEquals<T>(actual: T, expected: T, msg?: string): void {
  nodeAssert.notDeepStrictEqual(actual, expected, msg);
}

/** `Object.is` equality. */
export function assertStrictEquals<T>(
  actual: unknown,
  expected: T,
  msg?: string,
): asserts actual is T {
  nodeAssert.strictEqual(actual, expected, msg);
}

/** Fails unless `actual` is an instance of `type`. */
export function assertInstanceOf<T>(
  actual: unknown,
  // deno-lint-ignore no-explicit-any
  type: new (...args: any[]) => T,
  msg?: string,
): asserts actual is T {
  nodeAssert.ok(
    actual instanceof type,
    msg ?? `Expected an instance of ${type.name}, got ${String(actual)}`,
  );
}

/** Fails unless `actual > expected`. */
export function assertGreater<T>(actual: T, expected: T, msg?: string): void {
  nodeAssert.ok(
    actual > expected,
    msg ?? `Expected ${String(actual)} > ${String(expected)}`,
  );
}

/** Fails unless `actual >= expected`. */
export function assertGreaterOrEqual<T>(
  actual: T,
  expected: T,
  msg?: string,
): void {
  nodeAssert.ok(
    actual >= expected,
    msg ?? `Expected ${String(actual)} >= ${String(expected)}`,
  );
}

/** Fails unless `actual < expected`. */
export function assertLess<T>(actual: T, expected: T, msg?: string): void {
  nodeAssert.ok(
    actual < expected,
    msg ?? `Expected ${String(actual)} < ${String(expected)}`,
  );
}

/** Fails unless `actual <= expected`. */
export function assertLessOrEqual<T>(
  actual: T,
  expected: T,
  msg?: string,
): void {
  nodeAssert.ok(
    actual <= expected,
    msg ?? `Expected ${String(actual)} <= ${String(expected)}`,
  );
}

/** Fails when `actual` is `null` or `undefined`. */
export function assertExists<T>(
  actual: T,
  msg?: string,
): asserts actual is NonNullable<T> {
  nodeAssert.ok(
    actual !== null && actual !== undefined,
    msg ?? `Expected a value, got ${String(actual)}`,
  );
}

/** Fails unless `actual` matches `expected`. */
export function assertMatch(
  actual: string,
  expected: RegExp,
  msg?: string,
): void {
  nodeAssert.match(actual, expected, msg);
}

/** Fails unless `actual` includes `expected`. */
export function assertStringIncludes(
  actual: string,
  expected: string,
  msg?: string,
): void {
  nodeAssert.ok(
    actual.includes(expected),
    msg ?? `Expected "${actual}" to include "${expected}"`,
  );
}

/** Fails with `msg` unless `actual` and `expected` are within `tolerance`. */
export function assertAlmostEquals(
  actual: number,
  expected: number,
  tolerance = 1e-7,
  msg?: string,
): void {
  nodeAssert.ok(
    Math.abs(actual - expected) <= tolerance,
    msg ?? `Expected ${actual} to be within ${tolerance} of ${expected}`,
  );
}

/** Fails unconditionally. */
export function fail(msg?: string): never {
  nodeAssert.fail(msg ?? "Failed");
}

/** The properties an error must have: the `node:assert` validation form. */
export interface ErrorShape {
  /** The error's exact `name`. */
  name?: string;
  /** The exact message, or a pattern it must match. */
  message?: string | RegExp;
}

/**
 * Fails unless `fn` throws an instance of `errorClass` whose message includes
 * `msgIncludes`. Returns the error, as `@std/assert` does.
 *
 * The second argument may instead be an {@linkcode ErrorShape}, `{ name,
 * message }`, matched exactly as `node:assert`'s `throws` does. That form is
 * not in `@std/assert`: calls using it change to the class form when
 * switching.
 */
export function assertThrows<E extends Error = Error>(
  fn: () => unknown,
  errorClass?: ErrorClass<E> | ErrorShape,
  msgIncludes?: string,
  msg?: string,
): E {
  let thrown: unknown;
  let threw = false;
  try {
    fn();
  } catch (error) {
    threw = true;
    thrown = error;
  }
  const context = msg ? `: ${msg}` : "";
  if (!threw) fail(`Expected the function to throw${context}`);
  const described = thrown instanceof Error
    ? `${thrown.name}: ${thrown.message}`
    : String(thrown);
  if (typeof errorClass === "function") {
    if (!(thrown instanceof errorClass)) {
      fail(`Expected ${errorClass.name}, got ${described}${context}`);
    }
  } else if (errorClass !== undefined) {
    if (!(thrown instanceof Error)) {
      fail(`Expected an Error, got ${described}${context}`);
    }
    if (errorClass.name !== undefined && thrown.name !== errorClass.name) {
      fail(`Expected a ${errorClass.name}, got ${described}${context}`);
    }
    const message = errorClass.message;
    if (
      message !== undefined &&
      (typeof message === "string"
        ? thrown.message !== message
        : !message.test(thrown.message))
    ) {
      fail(
        `Expected the message ${
          String(message)
        }, got "${thrown.message}"${context}`,
      );
    }
  }
  if (
    msgIncludes !== undefined &&
    !(thrown instanceof Error && thrown.message.includes(msgIncludes))
  ) {
    fail(
      `Expected the error message to include "${msgIncludes}", got "${
        thrown instanceof Error ? thrown.message : String(thrown)
      }"${context}`,
    );
  }
  return thrown as E;
}

/**
 * Fails unless the promise `fn` returns rejects, with an instance of
 * `errorClass` whose message includes `msgIncludes` when given. Returns the
 * error, as `@std/assert` does.
 */
export async function assertRejects<E extends Error = Error>(
  fn: () => PromiseLike<unknown>,
  errorClass?: ErrorClass<E>,
  msgIncludes?: string,
  msg?: string,
): Promise<E> {
  let thrown: unknown;
  let threw = false;
  try {
    await fn();
  } catch (error) {
    threw = true;
    thrown = error;
  }
  const context = msg ? `: ${msg}` : "";
  if (!threw) fail(`Expected the promise to reject${context}`);
  return assertThrows(
    () => {
      throw thrown;
    },
    errorClass,
    msgIncludes,
    msg,
  );
}
