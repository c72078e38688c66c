import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext } from 'playwright-core';
import { isLoopbackHost } from './browser';
import { withDeathSignal } from './child-process';

/** Debian's Chromium (package `chromium`); Playwright's own browser downloads cannot reach the network here. */
export const CHROMIUM_BINARY = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium';

/**
 * Headless, and quiet on the network: without the background-networking flags
 * Chromium keeps trying Google's hosts, which this machine refuses. Playwright
 * adds a fresh --user-data-dir of its own to every launch and removes it on close.
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

// Chromium starts in a second or two; the rest is margin for a loaded CI machine.
const LAUNCH_TIMEOUT_MS = 30_000;
// Every page action and wait of a test is bounded by this unless it says otherwise.
const ACTION_TIMEOUT_MS = 15_000;

/** A headless Chromium; `close()` ends the browser process and removes its files. */
export interface RunningChromium {
  readonly browser: Browser;
  /** A new incognito-like context that can reach loopback hosts only. */
  newContext(): Promise<BrowserContext>;
  close(): Promise<void>;
}

/**
 * Launches Debian's Chromium through playwright-core. Fails with one line
 * naming the package when it is not installed: the browser test must fail,
 * never be skipped, on a machine without it.
 */
export async function launchChromium(): Promise<RunningChromium> {
  if (!existsSync(CHROMIUM_BINARY)) {
    throw new Error(`Chromium is not installed (${CHROMIUM_BINARY} not found): apt-get install -y chromium (or set CHROMIUM_BIN)`);
  }
  const workDir = mkdtempSync(join(tmpdir(), 'bff-chromium-'));
  try {
    const browser = await chromium.launch({
      executablePath: deathSignalWrapper(workDir),
      args: [...CHROMIUM_FLAGS],
      timeout: LAUNCH_TIMEOUT_MS,
    });
    return {
      browser,
      async newContext() {
        const context = await browser.newContext();
        context.setDefaultTimeout(ACTION_TIMEOUT_MS);
        context.setDefaultNavigationTimeout(ACTION_TIMEOUT_MS);
        // Nothing leaves the machine: the IdP's pages import a web font, for one.
        await context.route('**/*', (route) => (isLoopbackHost(new URL(route.request().url()).hostname) ? route.continue() : route.abort('blockedbyclient')));
        return context;
      },
      async close() {
        await browser.close().catch(() => undefined);
        rmSync(workDir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    rmSync(workDir, { recursive: true, force: true });
    throw error;
  }
}

/**
 * Playwright kills Chromium when this process exits normally; a Jest worker
 * killed by SIGKILL runs no exit hook, so Chromium is started through setpriv,
 * which has the kernel kill it when its parent dies (as the other test servers).
 */
function deathSignalWrapper(workDir: string): string {
  const [command, args] = withDeathSignal(CHROMIUM_BINARY);
  if (command === CHROMIUM_BINARY) return CHROMIUM_BINARY;
  const wrapper = join(workDir, 'chromium');
  writeFileSync(wrapper, `#!/bin/sh\nexec ${[command, ...args].map(shellQuote).join(' ')} "$@"\n`);
  chmodSync(wrapper, 0o755);
  return wrapper;
}

function shellQuote(word: string): string {
  return `'${word.replaceAll("'", "'\\''")}'`;
}
