/**
 * What the browser demo and the browser tests share: building the browser
 * bundle, and launching headless Chromium through `playwright-core`.
 *
 * @module
 */

/** Where Debian's `chromium` package puts the browser. */
export const CHROMIUM_PATH = "/usr/bin/chromium";

/** The `playwright-core` release the demo and the tests drive Chromium with. */
export const PLAYWRIGHT_CORE = "npm:playwright-core@1.65.1";

/** The flags Chromium runs with here: no sandbox, nothing phoning home. */
export const CHROMIUM_ARGS: readonly string[] = [
  "--no-sandbox",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];

/**
 * Whether Chromium is installed at {@linkcode CHROMIUM_PATH}.
 *
 * @returns True when the file is there.
 */
export function hasChromium(): boolean {
  try {
    return Deno.statSync(CHROMIUM_PATH).isFile;
  } catch {
    return false;
  }
}

/**
 * Bundles `browser.ts` for browsers with `deno bundle --platform browser`.
 *
 * @returns The bundle's JavaScript source.
 * @throws {Error} With the bundler's output when it fails.
 */
export async function bundleBrowserEntry(): Promise<string> {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/browser.js`;
    const built = await new Deno.Command(Deno.execPath(), {
      args: [
        "bundle",
        // The package's own config, so its import map applies from any
        // working directory.
        "--config",
        new URL("../deno.json", import.meta.url).pathname,
        "--platform",
        "browser",
        "-o",
        path,
        new URL("../browser.ts", import.meta.url).pathname,
      ],
      stdout: "null",
      stderr: "piped",
    }).output();
    if (!built.success) {
      throw new Error(
        `Cannot bundle browser.ts: ${new TextDecoder().decode(built.stderr)}`,
      );
    }
    return await Deno.readTextFile(path);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** A running headless Chromium. */
export interface Chromium {
  /** Opens a page at `url`; its console lines go to `log` if given. */
  open(url: string, log?: (line: string) => void): Promise<ChromiumPage>;
  /** Closes the browser. */
  close(): Promise<void>;
}

/** The few page operations the demo and the tests use. */
export interface ChromiumPage {
  /** Runs a function in the page and returns its (JSON) result. */
  evaluate<T>(fn: (arg: unknown) => T | Promise<T>, arg?: unknown): Promise<T>;
  /** Waits until a function in the page returns true, up to `timeoutMs`. */
  waitFor(fn: () => unknown, timeoutMs: number): Promise<void>;
  /** Holds a key (`"ArrowRight"`) down for `ms` milliseconds. */
  holdKey(key: string, ms: number): Promise<void>;
  /** Saves a PNG screenshot of the page. */
  screenshot(path: string): Promise<void>;
}

/**
 * Launches headless Chromium from {@linkcode CHROMIUM_PATH}.
 *
 * @returns The browser.
 */
export async function launchChromium(): Promise<Chromium> {
  // A literal specifier, so the types come with it: keep it PLAYWRIGHT_CORE.
  const { chromium } = await import("npm:playwright-core@1.65.1");
  const browser = await chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: [...CHROMIUM_ARGS],
  });
  return {
    async open(url, log) {
      const page = await browser.newPage({
        viewport: { width: 1000, height: 640 },
      });
      if (log) {
        page.on("console", (message) => log(message.text()));
        page.on("pageerror", (error) => log(`page error: ${error.message}`));
      }
      await page.goto(url);
      return {
        evaluate: (fn, arg) => page.evaluate(fn, arg),
        async waitFor(fn, timeoutMs) {
          await page.waitForFunction(fn, undefined, { timeout: timeoutMs });
        },
        async holdKey(key, ms) {
          await page.keyboard.down(key);
          await new Promise((resolve) => setTimeout(resolve, ms));
          await page.keyboard.up(key);
        },
        async screenshot(path) {
          await page.screenshot({ path });
        },
      };
    },
    close: () => browser.close(),
  };
}
