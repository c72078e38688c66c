import { Browser, loginWithIdp } from '../support/browser';
import { CapturedLogs } from '../support/captured-logs';
import { forwarded, logIn, startTestEnvironment, type TestEnvironment } from '../support/environment';
import { metricValue, type RunningGateway } from '../support/gateway';
import { eventually } from '../support/wait';

const PHONE_USER_AGENT =
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1';

interface ListedView {
  readonly handle: string;
  readonly createdAt: string;
  readonly lastSeenAt: string;
  readonly device: string | null;
  readonly current: boolean;
}

/**
 * A user's own sessions (GET and DELETE /auth/sessions) against a real IdP
 * and Redis, with SESSION_CACHE=on and a second replica on the same Redis:
 * a user signed in on two devices sees both, and ends one from the other.
 */
describe("a user's own sessions", () => {
  let env: TestEnvironment;
  let replica: RunningGateway;
  const logs = new CapturedLogs();

  beforeAll(async () => {
    env = await startTestEnvironment({ env: { SESSION_CACHE: 'on', RATE_LIMIT_AUTH_PER_MINUTE: '100000' }, gateway: { logger: logs.logger } });
    replica = await env.startReplica();
  });
  afterAll(async () => {
    await env?.close();
  });

  const url = (path: string, gateway: RunningGateway = env.gateway) => `${gateway.url}${path}`;

  /** Logs `username` in from a browser with its own cookie jar and User-Agent: another device. */
  async function logInOn(username: string, userAgent: string): Promise<Browser> {
    const browser = new Browser({ userAgent });
    const result = await loginWithIdp(browser, url('/auth/login?returnTo=%2F'), { username });
    if (!browser.cookie('bff-session', env.gateway.url)) throw new Error(`login ended at ${result.finalUrl} with ${result.response.status}`);
    return browser;
  }

  /** Two devices of one user: a laptop (the test browser's Chrome on Linux), then a phone. */
  async function twoDevices(username: string): Promise<{ laptop: Browser; phone: Browser }> {
    const laptop = await logIn(env.gateway, username);
    const phone = await logInOn(username, PHONE_USER_AGENT);
    return { laptop, phone };
  }

  async function listOf(browser: Browser, gateway: RunningGateway = env.gateway): Promise<{ status: number; raw: string; sessions: ListedView[] }> {
    const response = await browser.request(url('/auth/sessions', gateway));
    const raw = await response.text();
    return { status: response.status, raw, sessions: response.status === 200 ? (JSON.parse(raw) as { sessions: ListedView[] }).sessions : [] };
  }

  async function handleOfCurrent(browser: Browser): Promise<string> {
    const own = (await listOf(browser)).sessions.find((session) => session.current);
    if (!own) throw new Error('no current session listed');
    return own.handle;
  }

  function endSession(browser: Browser, handle: string, headers: Record<string, string> = { 'X-CSRF': '1' }): Promise<Response> {
    return browser.request(url(`/auth/sessions/${handle}`), { method: 'DELETE', headers });
  }

  async function verifyStatus(browser: Browser, gateway: RunningGateway = env.gateway): Promise<number> {
    return (await browser.request(url('/verify', gateway), { headers: forwarded('/api/orders') })).status;
  }

  function sessionIdOf(browser: Browser): string {
    const cookie = decodeURIComponent(browser.cookie('bff-session', env.gateway.url) ?? '');
    return cookie.slice(2, cookie.lastIndexOf('.'));
  }

  it('lists both sessions of a user signed in on two devices, newest first, each marking itself as the current one', async () => {
    const { laptop, phone } = await twoDevices('ursula');

    const fromLaptop = await listOf(laptop);
    const fromPhone = await listOf(phone);

    expect(fromLaptop.status).toBe(200);
    expect(fromLaptop.sessions.map(({ device, current }) => ({ device, current }))).toEqual([
      { device: 'Safari 17 on iOS', current: false },
      { device: 'Chrome 130 on Linux', current: true },
    ]);
    expect(fromPhone.sessions.map(({ current }) => current)).toEqual([true, false]);
    expect(fromPhone.sessions.map(({ handle }) => handle)).toEqual(fromLaptop.sessions.map(({ handle }) => handle));
    for (const session of fromLaptop.sessions) {
      expect(Date.parse(session.createdAt)).toBeLessThanOrEqual(Date.parse(session.lastSeenAt));
      expect(Date.parse(session.lastSeenAt)).toBeLessThanOrEqual(Date.now() + 1000);
    }
  });

  it('never shows a session id, a token or a cookie in the list, and a handle opens nothing as a cookie', async () => {
    const { laptop, phone } = await twoDevices('victor');
    const accessToken = ((await laptop.request(url('/verify'), { headers: forwarded('/api/orders') })).headers.get('authorization') ?? '').replace('Bearer ', '');
    expect(accessToken.length).toBeGreaterThan(10);

    const { raw, sessions } = await listOf(laptop);

    for (const secret of [sessionIdOf(laptop), sessionIdOf(phone), laptop.cookie('bff-session', env.gateway.url)!, accessToken]) expect(raw).not.toContain(secret);
    expect(raw).not.toMatch(/token/i);
    for (const session of sessions) expect(Object.keys(session).sort()).toEqual(['createdAt', 'current', 'device', 'handle', 'lastSeenAt']);
    const stranger = new Browser();
    stranger.setCookie(`bff-session=${sessions[0]!.handle}; Path=/`, env.gateway.url);
    expect(await verifyStatus(stranger)).toBe(401);
    expect((await listOf(stranger)).status).toBe(401);
  });

  it("ends the other device's session: its /verify answers 401 at once on this replica and, once told, on the other; counted and published", async () => {
    const { laptop, phone } = await twoDevices('wanda');
    // The phone's session is cached on the replica, as a steady /verify leaves it.
    expect(await verifyStatus(phone, replica)).toBe(200);
    const phoneHandle = await handleOfCurrent(phone);
    const before = metricValue(await env.gateway.metricsText(), 'bff_sessions_destroyed_total', { reason: 'revoked_by_user' });
    const revocations = (await env.idp.stats()).clientAuthentications['revocation client_secret_basic'] ?? 0;
    const announcementsBefore = metricValue(await replica.metricsText(), 'bff_session_cache_invalidation_lag_seconds_count');
    const mark = logs.mark();

    const ended = await endSession(laptop, phoneHandle);

    expect(ended.status).toBe(204);
    expect(await verifyStatus(phone)).toBe(401);
    await eventually(
      async () => metricValue(await replica.metricsText(), 'bff_session_cache_invalidation_lag_seconds_count'),
      (count) => count > announcementsBefore,
      { what: 'the replica to hear that the session ended' },
    );
    expect(await verifyStatus(phone, replica)).toBe(401);
    expect(await verifyStatus(laptop, replica)).toBe(200);
    expect((await listOf(laptop)).sessions.map(({ current }) => current)).toEqual([true]);
    expect(metricValue(await env.gateway.metricsText(), 'bff_sessions_destroyed_total', { reason: 'revoked_by_user' })).toBe(before + 1);
    expect(logs.events('session_destroyed', mark)).toEqual([expect.objectContaining({ reason: 'revoked_by_user', subject: 'wanda' })]);
    expect((await env.idp.stats()).clientAuthentications['revocation client_secret_basic']).toBe(revocations + 1);
  });

  it('signs out every other device at once, and keeps the current one', async () => {
    const laptop = await logIn(env.gateway, 'xena');
    const phone = await logInOn('xena', PHONE_USER_AGENT);
    const tablet = await logIn(env.gateway, 'xena');

    const response = await laptop.request(url('/auth/sessions'), { method: 'DELETE', headers: { 'X-CSRF': '1' } });

    expect([response.status, await response.json()]).toEqual([200, { ended: 2 }]);
    expect([await verifyStatus(phone), await verifyStatus(tablet), await verifyStatus(laptop)]).toEqual([401, 401, 200]);
    expect((await listOf(laptop)).sessions).toHaveLength(1);
  });

  it('refuses to end a session without the CSRF header or from another origin, and the session lives on', async () => {
    const { laptop, phone } = await twoDevices('yusuf');
    const phoneHandle = await handleOfCurrent(phone);

    const withoutHeader = await endSession(laptop, phoneHandle, {});
    const crossSite = await endSession(laptop, phoneHandle, { 'X-CSRF': '1', Origin: 'https://evil.example' });
    const allOthers = await laptop.request(url('/auth/sessions'), { method: 'DELETE' });

    expect([withoutHeader.status, crossSite.status, allOthers.status]).toEqual([403, 403, 403]);
    expect(((await withoutHeader.json()) as { title: string }).title).toBe('csrf');
    expect(await verifyStatus(phone)).toBe(200);
  });

  it("answers 404 for another user's session handle, and that session lives on", async () => {
    const mallory = await logIn(env.gateway, 'mallory');
    const zelda = await logIn(env.gateway, 'zelda');
    const zeldaHandle = await handleOfCurrent(zelda);

    const response = await endSession(mallory, zeldaHandle);

    expect([response.status, ((await response.json()) as { title: string }).title]).toEqual([404, 'session_not_found']);
    expect(await verifyStatus(zelda)).toBe(200);
    expect((await listOf(mallory)).sessions.map(({ handle }) => handle)).not.toContain(zeldaHandle);
  });

  it('answers 400 for a malformed handle and 404 for a well-formed unknown one, never 5xx', async () => {
    const browser = await logIn(env.gateway, 'abby');
    for (const malformed of ['x', 'a'.repeat(200), '%E2%98%83%E2%98%83%E2%98%83%E2%98%83%E2%98%83%E2%98%83%E2%98%83%E2%98%83', "'%20OR%201=1--"]) {
      expect([malformed, (await endSession(browser, malformed)).status]).toEqual([malformed, 400]);
    }
    expect((await endSession(browser, '%zz')).status).toBe(400);
    expect((await endSession(browser, 'A'.repeat(22))).status).toBe(404);
  });

  it('refuses to end the current session this way (409 current_session: that is a logout), and it stays signed in', async () => {
    const browser = await logIn(env.gateway, 'boris');
    const response = await endSession(browser, await handleOfCurrent(browser));
    expect([response.status, ((await response.json()) as { title: string }).title]).toEqual([409, 'current_session']);
    expect(await verifyStatus(browser)).toBe(200);
  });

  it('answers 401 without a session', async () => {
    const anonymous = new Browser();
    expect((await listOf(anonymous)).status).toBe(401);
    expect((await endSession(anonymous, 'A'.repeat(22))).status).toBe(401);
    expect((await anonymous.request(url('/auth/sessions'), { method: 'DELETE', headers: { 'X-CSRF': '1' } })).status).toBe(401);
  });

  it("lists and ends only this frontend's sessions: another frontend's session of the same user is neither shown nor ended", async () => {
    const browser = await logIn(env.gateway, 'carla');
    const { sessions } = env.gateway.gateway.dependencies;
    const own = await sessions.get(sessionIdOf(browser));
    const elsewhere = 'another-frontend-session-0123456789abcdefgh'.slice(0, 43);
    await sessions.save(elsewhere, { auth: { ...own!.auth, frontend: 'admin-console' } });

    const listed = await listOf(browser);
    const everyOther = await browser.request(url('/auth/sessions'), { method: 'DELETE', headers: { 'X-CSRF': '1' } });

    expect(listed.sessions).toHaveLength(1);
    expect(await everyOther.json()).toEqual({ ended: 0 });
    expect(await sessions.get(elsewhere)).toBeDefined();
    await sessions.destroy(elsewhere);
  });
});
