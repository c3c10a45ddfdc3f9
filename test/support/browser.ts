/**
 * A real Chromium (Debian's package, see infra/get-chromium.sh) driven by playwright-core, for the end-to-end
 * tests that use the Temporal UI the way an operator and an approver do.
 *
 * playwright-core never downloads a browser here: it gets the binary through `executablePath`. Each session has a
 * fresh user-data-dir that is removed on close, so no profile, cookie or cache leaks between runs.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

/**
 * Flags every session gets. Without the networking ones, Chromium dials Google's services at start (component
 * updates, sync, QUIC probes); on a closed CI network those connections are refused many at a time and slow or
 * break the start. --no-sandbox because tests run as root in containers, where Chromium's sandbox cannot start.
 */
export const CHROMIUM_FLAGS: readonly string[] = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Where the browser is expected when ORCH_CHROMIUM does not say otherwise (Debian's `chromium` package). */
export const DEFAULT_CHROMIUM = '/usr/bin/chromium';

export class BrowserUnavailableError extends Error {
  readonly code = 'chromium_missing';
  constructor(message: string) {
    super(message);
    this.name = 'BrowserUnavailableError';
  }
}

/** The Chromium binary to drive: ORCH_CHROMIUM, else Debian's. Throws with the command that installs it. */
export function chromiumPath(env: NodeJS.ProcessEnv = process.env): string {
  const candidate = env.ORCH_CHROMIUM || DEFAULT_CHROMIUM;
  try {
    fs.accessSync(candidate, fs.constants.X_OK);
  } catch {
    throw new BrowserUnavailableError(
      `no Chromium at ${candidate}: run \`bash infra/get-chromium.sh\` (installs Debian's chromium), or set ORCH_CHROMIUM to a Chromium binary`,
    );
  }
  return candidate;
}

export interface BrowserSession {
  page: Page;
  context: BrowserContext;
  /** Folder the screenshots go to; it outlives the session, so a failed run can be looked at. */
  shotsDir: string;
  /** Saves a full-page PNG named `NN-name.png` (numbered in the order taken) and returns its path. */
  screenshot(name: string): Promise<string>;
  /** Console errors and uncaught page errors seen so far: the first thing to read when a step fails. */
  pageErrors(): string[];
  close(): Promise<void>;
}

export interface LaunchOptions {
  /** Folder for screenshots; created if missing. Default: a new folder under the OS temp dir. */
  shotsDir?: string;
  /** Default 1400x1000: wide enough that the Temporal UI shows its full layout, not the mobile one. */
  viewport?: { width: number; height: number };
  /** Per-action timeout (clicks, fills, waits for elements). Default 15 s. */
  actionTimeoutMs?: number;
}

/**
 * Starts Chromium headless with {@link CHROMIUM_FLAGS} and a fresh profile, and opens one page.
 *
 * @example
 * const b = await launchBrowser({ shotsDir });
 * try {
 *   await b.page.goto(url);
 *   await b.screenshot('home');
 * } finally {
 *   await b.close();
 * }
 */
export async function launchBrowser(opts: LaunchOptions = {}): Promise<BrowserSession> {
  const executablePath = chromiumPath();
  const shotsDir = opts.shotsDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'orch-e2e-shots-'));
  fs.mkdirSync(shotsDir, { recursive: true });
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'orch-chromium-profile-'));
  let context: BrowserContext;
  try {
    // A persistent context is the way to hand Chromium our own --user-data-dir (Playwright refuses it in args).
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath,
      headless: true,
      // Playwright adds a few defaults of its own; ours must win, so they are passed as arguments too.
      args: [...CHROMIUM_FLAGS],
      viewport: opts.viewport ?? { width: 1400, height: 1000 },
      timeout: 30_000,
    });
  } catch (err) {
    fs.rmSync(userDataDir, { recursive: true, force: true });
    throw err;
  }
  context.setDefaultTimeout(opts.actionTimeoutMs ?? 15_000);
  const page = context.pages()[0] ?? (await context.newPage());
  const errors: string[] = [];
  page.on('console', (msg) => {
    if (msg.type() === 'error') errors.push(`console: ${msg.text()}`);
  });
  page.on('pageerror', (err) => errors.push(`page: ${err.message}`));

  let taken = 0;
  return {
    page,
    context,
    shotsDir,
    async screenshot(name: string) {
      taken += 1;
      const file = path.join(shotsDir, `${String(taken).padStart(2, '0')}-${name.replace(/[^A-Za-z0-9_-]+/g, '-')}.png`);
      await page.screenshot({ path: file, fullPage: true });
      return file;
    },
    pageErrors: () => [...errors],
    async close() {
      try {
        await context.close();
      } finally {
        fs.rmSync(userDataDir, { recursive: true, force: true });
      }
    },
  };
}

/**
 * Runs one step of a browser test. If it throws, saves a screenshot and the page's HTML beside it, and rethrows
 * with their paths, the page's URL and its errors appended, so the failure report says where to look.
 */
export async function step<T>(b: BrowserSession, name: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    const notes: string[] = [];
    try {
      const shot = await b.screenshot(`FAILED-${name}`);
      const html = shot.replace(/\.png$/, '.html');
      fs.writeFileSync(html, await b.page.content());
      notes.push(`screenshot ${shot}`, `html ${html}`);
    } catch (shotErr) {
      notes.push(`no screenshot: ${(shotErr as Error).message}`);
    }
    notes.push(`url ${b.page.url()}`);
    const errors = b.pageErrors();
    if (errors.length) notes.push(`page errors:\n  ${errors.slice(-10).join('\n  ')}`);
    // A new error, not an edited message: the test reporter prints the stack, which was fixed when the original
    // was made; the original stays attached as the cause.
    const reason = err instanceof Error ? err.message.split('\n')[0] : String(err);
    throw new Error(`step "${name}" failed: ${reason}\n${notes.join('\n')}`, { cause: err });
  }
}
