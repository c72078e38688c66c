import { Browser, loginWithIdp } from '../support/browser';
import { startCaddyStack, type CaddyStack } from '../support/caddy';
import { headerValues, type EchoedRequest } from '../support/echo-upstream';

/** What a SPA's fetch() sends: not a navigation, so no login redirect. */
const API_CALL = { accept: 'application/json', 'sec-fetch-mode': 'cors', 'sec-fetch-site': 'same-origin', 'sec-fetch-dest': 'empty' };
const NAVIGATION = { accept: 'text/html,application/xhtml+xml', 'sec-fetch-mode': 'navigate', 'sec-fetch-site': 'none', 'sec-fetch-dest': 'document' };

/** The client's attempts to speak for the gateway, in the spellings upstream stacks fold together. */
const FORGED_IDENTITY = {
  Authorization: 'Bearer forged-token',
  'X-Auth-Request-User': 'admin',
  'X-Auth-Request_User': 'admin',
  X_Auth_Request_User: 'admin',
  'X.Auth.Request.User': 'admin',
  'X-Auth-Request-Email': 'admin@example.test',
};

async function loggedInBrowser(stack: CaddyStack, username: string): Promise<Browser> {
  const browser = new Browser();
  const login = await loginWithIdp(browser, `${stack.origin}/auth/login?returnTo=%2F`, { username });
  if (login.finalUrl !== `${stack.origin}/` || !browser.cookie(stack.environment.gateway.config.session.cookieName, stack.origin)) {
    throw new Error(`login through Caddy ended at ${login.finalUrl} with ${login.response.status}: ${login.body.slice(0, 300)}`);
  }
  return browser;
}

async function echoed(response: Response): Promise<EchoedRequest> {
  expect(response.headers.get('content-type')).toMatch(/^application\/json/);
  return (await response.json()) as EchoedRequest;
}

/** No identity value a client sent may reach the API, under any spelling. */
function expectNoForgedIdentity(seen: EchoedRequest): void {
  const forgeries = Object.entries(FORGED_IDENTITY).filter(([name, forged]) => headerValues(seen, name).includes(forged));
  expect(forgeries).toEqual([]);
}

describe.each([
  ['as deploy/caddy/Caddyfile.example (client identity headers stripped first)', true],
  ['with copy_headers alone (the gateway answers every spelling)', false],
])('Caddy forward_auth in front of the gateway, %s', (_title, stripClientIdentityHeaders) => {
  let stack: CaddyStack;
  let alice: Browser;

  beforeAll(async () => {
    stack = await startCaddyStack({ stripClientIdentityHeaders });
    alice = await loggedInBrowser(stack, 'alice');
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('lets a logged-in API call through with the access token and the user, and replaces forged identity headers', async () => {
    const response = await alice.request(`${stack.origin}/api/orders`, { headers: { ...API_CALL, ...FORGED_IDENTITY } });
    expect(response.status).toBe(200);
    const seen = await echoed(response);
    expect(seen).toMatchObject({ method: 'GET', path: '/api/orders' });
    expect(headerValues(seen, 'Authorization')).toEqual([expect.stringMatching(/^Bearer [A-Za-z0-9._~+/=-]{20,}$/)]);
    expect(headerValues(seen, 'Authorization')).not.toContain('Bearer forged-token');
    expect(headerValues(seen, 'X-Auth-Request-User')).toEqual(['alice']);
    expect(headerValues(seen, 'X-Request-ID')).toEqual([expect.stringMatching(/^[0-9a-f-]{36}$/)]);
    expectNoForgedIdentity(seen);
    // Caddy 2.6 puts the literal placeholder in when a copied header is missing from the gateway's answer.
    expect(JSON.stringify(seen.rawHeaders)).not.toContain('{http.reverse_proxy');
  });

  it('answers an API call without a session with the gateway 401, and the API never sees it', async () => {
    const before = stack.upstream.requests.length;
    const response = await new Browser().request(`${stack.origin}/api/orders`, { headers: { ...API_CALL, ...FORGED_IDENTITY } });
    expect(response.status).toBe(401);
    expect(await response.json()).toEqual({ error: 'unauthenticated', login: `${stack.origin}/auth/login` });
    expect(stack.upstream.requests.length).toBe(before);
  });

  it('redirects a navigation without a session to the login at PUBLIC_URL, keeping the path and query', async () => {
    const before = stack.upstream.requests.length;
    const response = await new Browser().request(`${stack.origin}/api/orders?status=open&page=2`, { headers: NAVIGATION });
    expect(response.status).toBe(302);
    expect(response.headers.get('location')).toBe(`${stack.origin}/auth/login?returnTo=${encodeURIComponent('/api/orders?status=open&page=2')}`);
    expect(stack.upstream.requests.length).toBe(before);
  });

  it('after that redirect, logging in lands the browser on the API page it asked for', async () => {
    const browser = new Browser();
    const result = await loginWithIdp(browser, `${stack.origin}/api/orders?status=open`, { username: 'bob' });
    expect(result.prompts).toEqual(['login', 'consent']);
    expect(result.finalUrl).toBe(`${stack.origin}/api/orders?status=open`);
    expect(result.response.status).toBe(200);
    const seen = JSON.parse(result.body) as EchoedRequest;
    expect(seen.path).toBe('/api/orders?status=open');
    expect(headerValues(seen, 'X-Auth-Request-User')).toEqual(['bob']);
  });

  it('refuses a POST without X-CSRF with 403 before it reaches the API', async () => {
    const before = stack.upstream.requests.length;
    const response = await alice.request(`${stack.origin}/api/orders`, {
      method: 'POST',
      headers: { ...API_CALL, origin: stack.origin, 'content-type': 'application/json' },
      body: JSON.stringify({ item: 'book' }),
    });
    expect(response.status).toBe(403);
    expect(await response.json()).toEqual({ error: 'csrf' });
    expect(stack.upstream.requests.length).toBe(before);
  });

  it('passes a same-origin POST with X-CSRF through with its body', async () => {
    const response = await alice.request(`${stack.origin}/api/orders`, {
      method: 'POST',
      headers: { ...API_CALL, origin: stack.origin, 'x-csrf': '1', 'content-type': 'application/json' },
      body: JSON.stringify({ item: 'book' }),
    });
    expect(response.status).toBe(200);
    const seen = await echoed(response);
    expect(seen).toMatchObject({ method: 'POST', path: '/api/orders', body: '{"item":"book"}' });
    expect(headerValues(seen, 'X-Auth-Request-User')).toEqual(['alice']);
  });

  it('checks an API path with a query string (Caddy asks /verify?query) and passes the query on', async () => {
    const response = await alice.request(`${stack.origin}/api/orders?status=open&sort=-date`, { headers: API_CALL });
    expect(response.status).toBe(200);
    const seen = await echoed(response);
    expect(seen.path).toBe('/api/orders?status=open&sort=-date');
    expect(headerValues(seen, 'X-Auth-Request-User')).toEqual(['alice']);
  });

  it('does not expose /verify through the proxy', async () => {
    const response = await alice.request(`${stack.origin}/verify`, { headers: { 'x-forwarded-method': 'GET', 'x-forwarded-uri': '/api/orders' } });
    expect(response.status).toBe(404);
    expect(response.headers.get('x-auth-request-user')).toBeNull();
  });
});
