import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { startCaddyStack, type CaddyStack } from '../support/caddy';
import { launchChromium, type RunningChromium } from '../support/chromium';
import { headerValues, type EchoedRequest } from '../support/echo-upstream';
import { metricValue } from '../support/gateway';
import { isLoginCookieName } from '../../src/session/login-cookies';

// Keep the screenshot with E2E_ARTIFACTS_DIR=/some/dir; by default it goes to a temporary directory removed afterwards.
const ARTIFACTS_DIR = process.env.E2E_ARTIFACTS_DIR;
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const JWT = /eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+/;

/** Everything a script on the page can read without asking the server. */
async function pageVisibleState(page: Page): Promise<string> {
  const storage = await page.evaluate(() => {
    const dump = (store: Storage): Record<string, string> => {
      const entries: Record<string, string> = {};
      for (let i = 0; i < store.length; i += 1) {
        const key = store.key(i) ?? '';
        entries[key] = store.getItem(key) ?? '';
      }
      return entries;
    };
    return { cookie: document.cookie, localStorage: dump(window.localStorage), sessionStorage: dump(window.sessionStorage), url: location.href };
  });
  return `${await page.content()}\n${JSON.stringify(storage)}`;
}

function statusText(page: Page, text: string) {
  return page.locator('#status', { hasText: text });
}

describe('logging in and out in a real browser, through Caddy, the gateway and the IdP', () => {
  let stack: CaddyStack;
  let chromium: RunningChromium;
  let context: BrowserContext;
  let artifactsDir: string;

  beforeAll(async () => {
    chromium = await launchChromium();
    stack = await startCaddyStack();
    context = await chromium.newContext();
    artifactsDir = ARTIFACTS_DIR ?? mkdtempSync(join(tmpdir(), 'bff-e2e-'));
  });
  afterAll(async () => {
    await context?.close().catch(() => undefined);
    await chromium?.close();
    await stack?.close();
    if (!ARTIFACTS_DIR && artifactsDir) rmSync(artifactsDir, { recursive: true, force: true });
  });

  it('logs alice in, calls the API with her session, keeps every token out of the page, and logs her out', async () => {
    const page = await context.newPage();
    const cookieName = stack.environment.gateway.config.session.cookieName;

    await page.goto(`${stack.origin}/`);
    await statusText(page, 'You are not logged in.').waitFor();

    // The demo page's link, the IdP's login form (devInteractions) and its consent page.
    await page.click('#login');
    await page.waitForURL((url) => url.origin === new URL(stack.environment.idp.issuer).origin && url.pathname.startsWith('/interaction/'));
    await page.fill('input[name=login]', 'alice');
    await page.fill('input[name=password]', 'any-password');
    await page.click('button[type=submit]');
    await page.locator('input[name=prompt][value=consent]').waitFor({ state: 'attached' });
    await page.click('button[type=submit]');

    await page.waitForURL(`${stack.origin}/`);
    await statusText(page, 'Logged in as Alice.').waitFor();
    const profile = JSON.parse((await page.textContent('#user')) ?? '') as Record<string, unknown>;
    expect(profile).toMatchObject({ sub: 'alice', name: 'Alice', email: 'alice@example.test' });
    expect(await page.isVisible('#logout')).toBe(true);
    expect(await page.isVisible('#login')).toBe(false);
    const screenshot = join(artifactsDir, 'logged-in.png');
    await page.screenshot({ path: screenshot, fullPage: true });
    const png = readFileSync(screenshot);
    expect(png.subarray(0, 8).equals(PNG_SIGNATURE)).toBe(true);
    expect(png.byteLength).toBeGreaterThan(5_000);

    // A same-origin fetch carries the session cookie; Caddy's forward_auth adds the identity.
    const api = await page.evaluate(async () => {
      const response = await fetch('/api/orders?mine=1', { headers: { accept: 'application/json' } });
      return { status: response.status, body: (await response.json()) as unknown };
    });
    expect(api.status).toBe(200);
    const seen = api.body as EchoedRequest;
    expect(seen).toMatchObject({ method: 'GET', path: '/api/orders?mine=1' });
    expect(headerValues(seen, 'X-Auth-Request-User')).toEqual(['alice']);
    expect(headerValues(seen, 'Sec-Fetch-Site')).toEqual(['same-origin']);
    const bearer = headerValues(seen, 'Authorization')[0] ?? '';
    expect(bearer).toMatch(/^Bearer \S{20,}$/);
    const accessToken = bearer.slice('Bearer '.length);

    // The session cookie is HttpOnly: the page can neither read it nor any token.
    const [sessionCookie] = (await context.cookies(stack.origin)).filter((cookie) => cookie.name === cookieName);
    expect(sessionCookie).toMatchObject({ httpOnly: true, sameSite: 'Lax', path: '/' });
    expect(await page.evaluate(() => document.cookie)).not.toContain(cookieName);
    const visible = await pageVisibleState(page);
    expect(visible).not.toContain(sessionCookie?.value ?? '(no session cookie)');
    expect(visible).not.toContain(accessToken);
    expect(visible).not.toMatch(JWT);
    expect(visible).not.toMatch(/access_token|refresh_token|id_token/);

    // Log out: the gateway answers the IdP's end-session URL, the IdP asks to confirm, then back to "/".
    const leftThePage = page.waitForEvent('framenavigated', { predicate: (frame) => frame === page.mainFrame() });
    await page.click('#logout');
    await leftThePage;
    await page.waitForLoadState();
    if (page.url().startsWith(stack.environment.idp.issuer)) {
      const confirm = page.getByRole('button', { name: 'Yes, sign me out' });
      await confirm.waitFor();
      await Promise.all([page.waitForURL(`${stack.origin}/`), confirm.click()]);
    }
    await statusText(page, 'You are not logged in.').waitFor();
    expect(await page.isVisible('#login')).toBe(true);
    const user = await page.evaluate(async () => (await fetch('/auth/user')).status);
    expect(user).toBe(401);
    const apiAfterLogout = await page.evaluate(async () => (await fetch('/api/orders', { headers: { accept: 'application/json' } })).status);
    expect(apiAfterLogout).toBe(401);
    expect((await context.cookies(stack.origin)).filter((cookie) => cookie.name === cookieName)).toEqual([]);

    // The IdP's session ended too: logging in again asks for the password again.
    await page.click('#login');
    await page.locator('input[name=login]').waitFor();
  }, 120_000);

  it('logs in from six tabs opened at once in a browser signed in at the IdP, each tab landing where it started', async () => {
    const tabsContext = await chromium.newContext();
    try {
      // One sign-in at the IdP first, as a user who restores a window of tabs later would have.
      const first = await tabsContext.newPage();
      await first.goto(`${stack.origin}/auth/login?returnTo=%2F`);
      await first.fill('input[name=login]', 'bob');
      await first.fill('input[name=password]', 'any-password');
      await first.click('button[type=submit]');
      await first.locator('input[name=prompt][value=consent]').waitFor({ state: 'attached' });
      await first.click('button[type=submit]');
      await first.waitForURL(`${stack.origin}/`);
      const metricsBefore = await stack.environment.gateway.metricsText();

      const tabs = await Promise.all(Array.from({ length: 6 }, () => tabsContext.newPage()));
      await Promise.all(tabs.map((tab, index) => tab.goto(`${stack.origin}/auth/login?returnTo=${encodeURIComponent(`/?tab=${index}`)}`)));

      for (const [index, tab] of tabs.entries()) {
        await tab.waitForURL(`${stack.origin}/?tab=${index}`);
        await statusText(tab, 'Logged in as Bob.').waitFor();
      }
      const metricsAfter = await stack.environment.gateway.metricsText();
      const failures = (text: string) => metricValue(text, 'bff_security_events_total', { event_type: 'login_failure' });
      const successes = (text: string) => metricValue(text, 'bff_security_events_total', { event_type: 'login_success' });
      expect(failures(metricsAfter) - failures(metricsBefore)).toBe(0);
      expect(successes(metricsAfter) - successes(metricsBefore)).toBe(6);
      expect((await tabsContext.cookies(stack.origin)).filter((cookie) => isLoginCookieName(cookie.name))).toEqual([]);
    } finally {
      await tabsContext.close();
    }
  }, 120_000);
});
