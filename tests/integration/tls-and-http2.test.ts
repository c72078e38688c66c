import { connect, type ClientHttp2Session } from 'node:http2';
import { request as httpsRequest } from 'node:https';
import { connect as tlsConnect } from 'node:tls';
import { Browser, loginWithIdp } from '../support/browser';
import { forwarded, logIn, startTestEnvironment, type TestEnvironment } from '../support/environment';
import { startGateway, TEST_SESSION_SECRET, type RunningGateway } from '../support/gateway';
import { bffTestClient, startTestIdp, TEST_CLIENT_ID, TEST_CLIENT_SECRET, type TestIdp } from '../support/idp';
import { reservePort } from '../support/ports';
import { makeTestCertificates, type TestCertificates } from '../support/tls';

interface Answer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

function http2Get(session: ClientHttp2Session, path: string, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':method': 'GET', ':path': path, ...headers });
    let body = '';
    let responseHeaders: Record<string, string | string[] | undefined> = {};
    stream.setEncoding('utf8');
    stream.on('response', (received) => (responseHeaders = received));
    stream.on('data', (chunk: string) => (body += chunk));
    stream.on('end', () => resolve({ status: Number(responseHeaders[':status']), headers: responseHeaders, body }));
    stream.on('error', reject);
    stream.end();
  });
}

function http1Get(url: string, ca: string, headers: Record<string, string>): Promise<Answer & { readonly alpn: string | false | null }> {
  return new Promise((resolve, reject) => {
    const options: import('node:https').RequestOptions = { ca, headers, agent: false, ALPNProtocols: ['http/1.1'] } as import('node:https').RequestOptions;
    const request = httpsRequest(url, options, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body, alpn: (response.socket as import('node:tls').TLSSocket).alpnProtocol }));
    });
    request.on('error', reject);
    request.end();
  });
}

describe('TLS with HTTP/2 and HTTP/1.1 by ALPN (TLS_CERT_FILE, TLS_KEY_FILE)', () => {
  let env: TestEnvironment;
  let certificates: TestCertificates;
  let tlsReplica: RunningGateway;

  beforeAll(async () => {
    certificates = makeTestCertificates();
    env = await startTestEnvironment();
    tlsReplica = await env.startReplica({ env: { ...env.env, TLS_CERT_FILE: certificates.certFile, TLS_KEY_FILE: certificates.keyFile } });
  });
  afterAll(async () => {
    await env?.close();
    certificates?.remove();
  });

  it('offers h2 and http/1.1 by ALPN, preferring h2', async () => {
    const { port } = tlsReplica;
    const negotiated = (protocols: string[]) =>
      new Promise<string | false>((resolve, reject) => {
        const socket = tlsConnect({ host: '127.0.0.1', port, ca: certificates.ca, ALPNProtocols: protocols }, () => {
          resolve(socket.alpnProtocol ?? false);
          socket.end();
        });
        socket.on('error', reject);
      });
    expect(await negotiated(['h2', 'http/1.1'])).toBe('h2');
    expect(await negotiated(['http/1.1'])).toBe('http/1.1');
  });

  it('answers many /verify calls over one HTTP/2 connection with the bearer token and identity headers', async () => {
    const browser = await logIn(env.gateway, 'alice');
    const cookie = `bff-session=${browser.cookie('bff-session', env.gateway.url)}`;
    const session = connect(tlsReplica.url, { ca: certificates.ca });
    try {
      const answers = await Promise.all(
        Array.from({ length: 20 }, () => http2Get(session, '/verify', { ...lowerCased(forwarded('/api/orders')), cookie, 'user-agent': browser.userAgent })),
      );
      for (const answer of answers) {
        expect(answer.status).toBe(200);
        expect(answer.headers.authorization).toMatch(/^Bearer .+/);
        expect(answer.headers['x-auth-request-user']).toBe('alice');
      }
      const anonymous = await http2Get(session, '/verify', lowerCased(forwarded('/api/orders')));
      expect(anonymous.status).toBe(401);
    } finally {
      session.close();
    }
  });

  it('serves the browser-facing routes over HTTP/2 as well', async () => {
    const browser = await logIn(env.gateway, 'bob');
    const cookie = `bff-session=${browser.cookie('bff-session', env.gateway.url)}`;
    const session = connect(tlsReplica.url, { ca: certificates.ca });
    try {
      const user = await http2Get(session, '/auth/user', { cookie, 'user-agent': browser.userAgent });
      expect(user.status).toBe(200);
      expect(JSON.parse(user.body)).toMatchObject({ sub: 'bob' });
      expect(user.headers['x-request-id']).toBeDefined();
      const health = await http2Get(session, '/health');
      expect(health.status).toBe(200);
      const missing = await http2Get(session, '/no-such-endpoint');
      expect(missing.status).toBe(404);
    } finally {
      session.close();
    }
  });

  it('answers /verify over HTTP/1.1 on the same TLS port', async () => {
    const answer = await http1Get(`${tlsReplica.url}/verify`, certificates.ca, forwarded('/api/orders'));
    expect(answer.alpn).toBe('http/1.1');
    expect(answer.status).toBe(401);
  });
});

describe('an https PUBLIC_URL behind a proxy that does not send X-Forwarded-Proto', () => {
  let idp: TestIdp;
  let gateway: RunningGateway;
  // The browser sees https://127.0.0.1:<port>; the TLS-terminating proxy (the test) forwards plain http and says nothing.
  let publicUrl: string;

  beforeAll(async () => {
    const port = await reservePort();
    publicUrl = `https://127.0.0.1:${port.port}`;
    idp = await startTestIdp({ clients: [bffTestClient({ redirect_uris: [`${publicUrl}/auth/callback`], post_logout_redirect_uris: [`${publicUrl}/`] })] });
    gateway = await startGateway({
      port,
      env: { PUBLIC_URL: publicUrl, OIDC_ISSUER: idp.issuer, OIDC_CLIENT_ID: TEST_CLIENT_ID, OIDC_CLIENT_SECRET: TEST_CLIENT_SECRET, SESSION_SECRET: TEST_SESSION_SECRET },
    });
  });
  afterAll(async () => {
    await gateway?.close();
    await idp?.stop();
  });

  it('still logs the user in: the Secure __Host- cookie follows PUBLIC_URL, not the hop', async () => {
    const browser = new Browser();
    const toCallback = await loginWithIdp(browser, `${gateway.url}/auth/login`, { username: 'carol' });
    // The IdP sends the browser to https://…/auth/callback, which the plain-http test client does not follow itself.
    expect(toCallback.finalUrl).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/auth\/callback\?/);
    const callback = await browser.request(toCallback.finalUrl.replace(publicUrl, gateway.url));
    expect(callback.status).toBe(302);
    const setCookie = callback.headers.getSetCookie().find((line) => line.startsWith('__Host-bff-session='));
    expect(setCookie).toMatch(/;\s*Secure/i);
    expect(setCookie).toMatch(/;\s*HttpOnly/i);
    const user = await browser.request(`${gateway.url}/auth/user`);
    expect(user.status).toBe(200);
  });
});

function lowerCased(headers: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).map(([name, value]) => [name.toLowerCase(), value]));
}
