import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Validator } from '@seriousme/openapi-schema-validator';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import type { Router } from 'express';
import { assemble } from '../../src/app';
import { Browser, loginWithIdp, logoutAtIdp } from '../support/browser';
import { forwarded, logIn, startTestEnvironment, type TestEnvironment } from '../support/environment';
import { startGateway, type RunningGateway } from '../support/gateway';
import { bffTestClient } from '../support/idp';
import { reservePort } from '../support/ports';
import { startRedis, type RedisServer } from '../support/redis';
import { waitUntil } from '../support/wait';

type Json = { [key: string]: unknown };
type Method = 'get' | 'post' | 'delete';

/** What a test keeps of a response once it has been checked against the document. */
interface Answer {
  readonly status: number;
  readonly headers: Headers;
  readonly body: string;
}

const escapePointer = (part: string) => part.replace(/~/g, '~0').replace(/\//g, '~1');

/**
 * Checks real answers against the document the gateway serves: the status is
 * documented for the operation, every required header is present, every
 * documented header that is present matches its schema, the content type is
 * one the response lists (no body when it lists none), and a JSON body
 * validates against its JSON Schema 2020-12 (ajv).
 */
class DocumentedAnswers {
  private readonly ajv = new Ajv2020({ allErrors: true, strict: false });
  private readonly validators = new Map<string, ValidateFunction>();

  constructor(private readonly document: Json) {
    addFormats(this.ajv);
    this.ajv.addSchema(document, 'openapi.json');
  }

  /** Every way `answer` departs from the document's `responsePointer` (a JSON pointer into the document). */
  problemsOf(responsePointer: string, answer: Answer): string[] {
    const problems: string[] = [];
    const [pointer, response] = this.resolve(responsePointer);
    if (response === undefined) return [`${responsePointer}: not in the document`];
    for (const [name, declared] of Object.entries((response.headers ?? {}) as Json)) {
      const [headerPointer, header] = this.resolve(`${pointer}/headers/${escapePointer(name)}`, declared as Json);
      const value = answer.headers.get(name);
      if (value === null) {
        if (header?.required === true) problems.push(`header ${name} is required but absent`);
        continue;
      }
      const errors = this.validate(`${headerPointer}/schema`, value);
      if (errors) problems.push(`header ${name}: ${JSON.stringify(value)} ${errors}`);
    }
    const content = response.content as Json | undefined;
    const contentType = answer.headers.get('content-type');
    if (content === undefined) {
      if (answer.body !== '' || contentType !== null) problems.push(`no content is documented, got ${contentType}: ${answer.body.slice(0, 100)}`);
      return problems;
    }
    const mediaType = contentType?.split(';')[0]?.trim().toLowerCase() ?? '(none)';
    const media = content[mediaType] as Json | undefined;
    if (media === undefined) return [...problems, `content type ${mediaType} is not among ${Object.keys(content).join(', ')}`];
    if (media.schema === undefined) return problems;
    const isJson = mediaType === 'application/json' || mediaType.endsWith('+json');
    let body: unknown = answer.body;
    if (isJson) {
      try {
        body = JSON.parse(answer.body);
      } catch {
        return [...problems, `a ${mediaType} body that is not JSON: ${answer.body.slice(0, 100)}`];
      }
    }
    const errors = this.validate(`${pointer}/content/${escapePointer(mediaType)}/schema`, body);
    if (errors) problems.push(`body ${errors}: ${answer.body.slice(0, 300)}`);
    return problems;
  }

  /** The answer's problems against the operation `method path` and its status. */
  problemsOfOperation(method: Method, path: string, answer: Answer): string[] {
    const operation = `/paths/${escapePointer(path)}/${method}`;
    if (this.at(operation) === undefined) return [`${method.toUpperCase()} ${path} is not in the document`];
    const documented = Object.keys((this.at(`${operation}/responses`) ?? {}) as Json);
    if (!documented.includes(String(answer.status))) {
      return [`${method.toUpperCase()} ${path} answered ${answer.status}, documented: ${documented.join(', ')}; body ${answer.body.slice(0, 200)}`];
    }
    return this.problemsOf(`${operation}/responses/${answer.status}`, answer).map((problem) => `${method.toUpperCase()} ${path} ${answer.status}: ${problem}`);
  }

  private at(pointer: string): unknown {
    return pointer
      .split('/')
      .slice(1)
      .reduce<unknown>((node, part) => (node as Json | undefined)?.[part.replace(/~1/g, '/').replace(/~0/g, '~')], this.document);
  }

  /** Follows a `$ref` (one level: the document's references point at components, which hold no further ones). */
  private resolve(pointer: string, value = this.at(pointer) as Json | undefined): [string, Json | undefined] {
    const reference = value?.$ref;
    if (typeof reference !== 'string') return [pointer, value];
    const target = reference.slice(1);
    return [target, this.at(target) as Json | undefined];
  }

  private validate(schemaPointer: string, value: unknown): string | undefined {
    let validator = this.validators.get(schemaPointer);
    if (!validator) {
      validator = this.ajv.compile({ $ref: `openapi.json#${schemaPointer}` });
      this.validators.set(schemaPointer, validator);
    }
    return validator(value) ? undefined : this.ajv.errorsText(validator.errors);
  }
}

async function answerOf(response: Response): Promise<Answer> {
  return { status: response.status, headers: response.headers, body: await response.text() };
}

/** Records the logout tokens the IdP delivers by back-channel, and accepts them. */
interface LogoutTokenRecorder {
  readonly url: string;
  readonly tokens: string[];
  close(): Promise<void>;
}

async function startLogoutTokenRecorder(): Promise<LogoutTokenRecorder> {
  const port = await reservePort();
  const tokens: string[] = [];
  const server: Server = createServer((req, res) => {
    let raw = '';
    req.setEncoding('utf8').on('data', (chunk: string) => (raw += chunk));
    req.on('end', () => {
      const token = new URLSearchParams(raw).get('logout_token');
      if (token) tokens.push(token);
      res.writeHead(200).end();
    });
  });
  await port.handOver(server);
  return {
    url: `http://127.0.0.1:${port.port}`,
    tokens,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** `METHOD /path` of every route layer, and the paths of the sub-applications and middleware mounted with `use`. */
function servedByExpress(router: Router): { routes: string[]; mounts: string[] } {
  const routes: string[] = [];
  const mounts = new Set<string>();
  for (const layer of router.stack as unknown as Array<{ route?: { path: string; methods: Record<string, boolean> }; rawPath?: unknown }>) {
    if (layer.route) {
      for (const method of Object.keys(layer.route.methods)) if (method !== '_all') routes.push(`${method.toUpperCase()} ${layer.route.path}`);
    } else if (typeof layer.rawPath === 'string' && layer.rawPath !== '/') {
      mounts.add(layer.rawPath);
    }
  }
  return { routes, mounts: [...mounts] };
}

/** Express's `:name` parameters as OpenAPI's `{name}`. */
const asOpenApiPath = (expressPath: string) => expressPath.replace(/:([A-Za-z0-9_]+)/g, '{$1}');

const ROUTES = {
  routes: [
    { name: 'public', host: 'app.example.test', pathPrefix: '/public', auth: 'public' },
    { name: 'orders', host: 'app.example.test', pathPrefix: '/api', auth: 'session' },
    { name: 'reports', host: 'app.example.test', pathPrefix: '/reports', auth: 'session', bearer: true, bearerAudience: 'reports-api' },
    { name: 'admin', host: 'app.example.test', pathPrefix: '/admin', auth: 'session', allow: { groups: ['no-one-is-in-this-group'] } },
  ],
};

/** A TEST-NET-3 address as the client, so per-address limits of one test do not count another's requests. */
const clientAddress = (last: number) => ({ 'X-Forwarded-For': `203.0.113.${last}` });

describe('the OpenAPI document against the real answers of a gateway with Redis and the test IdP', () => {
  let env: TestEnvironment;
  let gateway: RunningGateway;
  let recorder: LogoutTokenRecorder;
  let document: Json;
  let answers: DocumentedAnswers;

  async function documented(method: Method, path: string, response: Response): Promise<Answer> {
    const answer = await answerOf(response);
    expect(answers.problemsOfOperation(method, path, answer)).toEqual([]);
    return answer;
  }

  const url = (path: string) => `${gateway.url}${path}`;

  beforeAll(async () => {
    recorder = await startLogoutTokenRecorder();
    const port = await reservePort();
    const publicUrl = `http://127.0.0.1:${port.port}`;
    const routesFile = join(mkdtempSync(join(tmpdir(), 'bff-openapi-')), 'routes.json');
    writeFileSync(routesFile, JSON.stringify(ROUTES));
    env = await startTestEnvironment({
      env: { PUBLIC_URL: publicUrl, ROUTES_FILE: routesFile, PUBLIC_METRICS_EVENTS: 'page_view,js_error' },
      gateway: { port },
      idp: {
        clients: [
          bffTestClient({
            redirect_uris: [`${publicUrl}/auth/callback`],
            post_logout_redirect_uris: [`${publicUrl}/`],
            backchannel_logout_uri: `${recorder.url}/backchannel`,
          }),
        ],
      },
    });
    gateway = env.gateway;
    document = (await (await fetch(url('/openapi.json'))).json()) as Json;
    answers = new DocumentedAnswers(document);
  });

  afterAll(async () => {
    await env?.close();
    await recorder?.close();
  });

  describe('the document', () => {
    it('is served at /openapi.json as documented, with the running version and PUBLIC_URL as its server', async () => {
      const answer = await documented('get', '/openapi.json', await fetch(url('/openapi.json')));
      expect(answer.status).toBe(200);
      const served = JSON.parse(answer.body) as { info: { version: string }; servers: Array<{ url: string }> };
      expect(served.info.version).toBe(gateway.config.telemetry.serviceVersion);
      expect(served.servers.map((server) => server.url)).toEqual([gateway.config.server.publicOrigin]);
    });

    it('is a valid OpenAPI 3.1 document by the official schema', async () => {
      const validator = new Validator();
      const result = await validator.validate(document);
      expect(result.errors).toBeUndefined();
      expect(validator.version).toBe('3.1');
    });

    it('describes every route Express serves, /verify in front of it, and nothing else', () => {
      const assembled = assemble(gateway.gateway.dependencies);
      const [shared, ...frontends] = [assembled.routes, ...assembled.frontendRoutes()].map(servedByExpress);
      const routes = [shared, ...frontends].flatMap((served) => served?.routes ?? []);
      const mounts = [shared, ...frontends].flatMap((served) => served?.mounts ?? []);
      const served = [...routes.map((route) => asOpenApiPath(route)), 'GET /verify'];
      const described = Object.entries(document.paths as Record<string, Json>).flatMap(([path, item]) =>
        Object.keys(item).map((method) => `${method.toUpperCase()} ${path}`),
      );
      expect([...served].sort()).toEqual([...described].sort());
      // Mounted with `use`: /auth only holds middleware (rate limit, sessions) in front of each frontend's routes above.
      // The embedded development IdP (/idp, when OIDC_ISSUER is unset) is the IdP's own surface, described by its discovery document.
      expect(mounts.filter((mount) => mount !== '/auth' && mount !== '/idp')).toEqual([]);
    });

    it('answers /verify ahead of Express, so that it is not the 404 of an unknown path', async () => {
      const answer = await documented('get', '/verify', await new Browser().request(url('/verify'), { headers: forwarded('/api/orders') }));
      expect(answer.status).toBe(401);
    });
  });

  describe('operations endpoints', () => {
    it('GET /health answers as documented, with a request id', async () => {
      const answer = await documented('get', '/health', await fetch(url('/health')));
      expect(answer.status).toBe(200);
      expect(answer.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    });

    it('GET /ready answers 200 as documented while Redis and the IdP are up', async () => {
      expect((await documented('get', '/ready', await fetch(url('/ready')))).status).toBe(200);
    });

    it('GET /events/health answers as documented', async () => {
      const answer = await documented('get', '/events/health', await fetch(url('/events/health')));
      expect(JSON.parse(answer.body)).toMatchObject({ backend: 'log', connected: true });
    });

    it('GET /metrics answers the Prometheus text format as documented', async () => {
      const answer = await documented('get', '/metrics', await fetch(url('/metrics')));
      expect(answer.headers.get('content-type')).toContain('version=0.0.4');
      expect(answer.body).toContain('http_requests_total');
    });

    it('GET / (the demo page) and GET /docs answer HTML as documented outside production', async () => {
      expect((await documented('get', '/', await fetch(url('/')))).status).toBe(200);
      const docs = await documented('get', '/docs', await fetch(url('/docs')));
      expect(docs.body).toContain('/docs/swagger-ui-bundle.js');
      expect(docs.headers.get('content-security-policy')).toContain("script-src 'self'");
    });

    it('GET /docs/{asset} serves every file the docs page loads, as documented, and 404 for any other name', async () => {
      const assets = ((document.paths as Json)['/docs/{asset}'] as { get: { parameters: Array<{ name?: string; schema?: { enum: string[] } }> } }).get.parameters.find(
        (parameter) => parameter.name === 'asset',
      )?.schema?.enum;
      expect(assets).toEqual(expect.arrayContaining(['docs.js', 'swagger-ui-bundle.js', 'swagger-ui.css']));
      for (const asset of assets ?? []) {
        const answer = await documented('get', '/docs/{asset}', await fetch(url(`/docs/${asset}`)));
        expect([asset, answer.status]).toEqual([asset, 200]);
      }
      const initializer = await (await fetch(url('/docs/docs.js'))).text();
      expect(initializer).toContain("url: '/openapi.json'");
      for (const name of ['index.html', 'swagger-initializer.js', '..%2Fpackage.json']) {
        expect([name, (await documented('get', '/docs/{asset}', await fetch(url(`/docs/${name}`)))).status]).toEqual([name, 404]);
      }
    });

    it('answers any path not in the document with the documented 404 problem, or the error page under /auth/ for a browser', async () => {
      const json = await answerOf(await fetch(url('/no/such/endpoint'), { method: 'POST' }));
      expect(json.status).toBe(404);
      expect(answers.problemsOf('/components/responses/NotFound', json)).toEqual([]);
      const html = await answerOf(await fetch(url('/auth/nothing-here'), { headers: { accept: 'text/html' } }));
      expect([html.status, html.headers.get('content-type')]).toEqual([404, 'text/html; charset=utf-8']);
      expect(answers.problemsOf('/components/responses/NotFound', html)).toEqual([]);
    });
  });

  describe('browser-facing endpoints', () => {
    it('a login through the IdP answers as documented at /auth/login, /auth/callback, /auth/user and /auth/logout', async () => {
      let mayReachGateway = true;
      const hostOfIdp = new URL(env.idp.issuer).hostname;
      // The redirect back to the callback is not followed, so that its answer can be checked here.
      const browser = new Browser({ isAllowedHost: (host) => host === hostOfIdp || (mayReachGateway && host === '127.0.0.1') });

      const login = await documented('get', '/auth/login', await browser.request(url('/auth/login?returnTo=%2Forders%3Fpage%3D2')));
      expect(login.status).toBe(302);
      mayReachGateway = false;
      const atIdp = await loginWithIdp(browser, login.headers.get('location') ?? '', { username: 'alice' });
      mayReachGateway = true;
      expect(atIdp.finalUrl.startsWith(url('/auth/callback?'))).toBe(true);

      const callback = await documented('get', '/auth/callback', await browser.request(atIdp.finalUrl));
      expect([callback.status, callback.headers.get('location')]).toEqual([302, '/orders?page=2']);

      const user = await documented('get', '/auth/user', await browser.request(url('/auth/user')));
      expect(JSON.parse(user.body)).toMatchObject({ sub: 'alice' });

      const logout = await documented('post', '/auth/logout', await browser.request(url('/auth/logout'), { method: 'POST', headers: { 'X-CSRF': '1' } }));
      expect(JSON.parse(logout.body)).toMatchObject({ logoutUrl: expect.stringMatching(/^http:\/\/localhost:\d+\//) });
    });

    it('GET /auth/callback answers 400 as a documented problem, and as the error page to a browser', async () => {
      const json = await documented('get', '/auth/callback', await fetch(url('/auth/callback?state=never-issued&code=x')));
      expect([json.status, JSON.parse(json.body).title]).toEqual([400, 'login_expired']);
      const page = await documented('get', '/auth/callback', await new Browser().request(url('/auth/callback'), { headers: { accept: 'text/html' } }));
      expect([page.status, page.headers.get('content-type')]).toEqual([400, 'text/html; charset=utf-8']);
    });

    it('GET /auth/user answers 401 as documented without a session', async () => {
      const answer = await documented('get', '/auth/user', await fetch(url('/auth/user')));
      expect([answer.status, JSON.parse(answer.body).title]).toEqual([401, 'unauthenticated']);
    });

    it('POST /auth/logout answers 403 as documented without the CSRF header, and 200 without a session', async () => {
      const refused = await documented('post', '/auth/logout', await fetch(url('/auth/logout'), { method: 'POST' }));
      expect([refused.status, JSON.parse(refused.body).title]).toEqual([403, 'csrf']);
      const crossSite = await documented('post', '/auth/logout', await fetch(url('/auth/logout'), { method: 'POST', headers: { 'X-CSRF': '1', Origin: 'https://evil.example' } }));
      expect(crossSite.status).toBe(403);
      const noSession = await documented('post', '/auth/logout', await fetch(url('/auth/logout'), { method: 'POST', headers: { 'X-CSRF': '1' } }));
      expect(JSON.parse(noSession.body)).toEqual({ logoutUrl: `${gateway.config.server.publicOrigin}/` });
    });

    it("GET and DELETE /auth/sessions and DELETE /auth/sessions/{handle} answer as documented", async () => {
      const laptop = await logIn(gateway, 'dora');
      const phone = await logIn(gateway, 'dora');
      const csrf = { method: 'DELETE', headers: { 'X-CSRF': '1' } };
      const list = await documented('get', '/auth/sessions', await laptop.request(url('/auth/sessions')));
      const [newest, oldest] = (JSON.parse(list.body) as { sessions: Array<{ handle: string; current: boolean }> }).sessions;
      expect([newest?.current, oldest?.current]).toEqual([false, true]);
      expect((await documented('get', '/auth/sessions', await fetch(url('/auth/sessions')))).status).toBe(401);

      const one = (handle: string, init: RequestInit = csrf, browser = laptop) => browser.request(url(`/auth/sessions/${handle}`), init);
      expect((await documented('delete', '/auth/sessions/{handle}', await one(newest!.handle, { method: 'DELETE' }))).status).toBe(403);
      expect((await documented('delete', '/auth/sessions/{handle}', await one('not-a-handle'))).status).toBe(400);
      expect((await documented('delete', '/auth/sessions/{handle}', await one('A'.repeat(22)))).status).toBe(404);
      expect((await documented('delete', '/auth/sessions/{handle}', await one(oldest!.handle))).status).toBe(409);
      expect((await documented('delete', '/auth/sessions/{handle}', await one(newest!.handle, csrf, new Browser()))).status).toBe(401);
      expect((await documented('delete', '/auth/sessions/{handle}', await one(newest!.handle))).status).toBe(204);

      await logIn(gateway, 'dora');
      const others = await documented('delete', '/auth/sessions', await laptop.request(url('/auth/sessions'), csrf));
      expect(JSON.parse(others.body)).toEqual({ ended: 1 });
      expect((await documented('delete', '/auth/sessions', await laptop.request(url('/auth/sessions'), { method: 'DELETE' }))).status).toBe(403);
      expect((await documented('delete', '/auth/sessions', await phone.request(url('/auth/sessions'), csrf))).status).toBe(401);
    });

    it("POST /auth/backchannel-logout answers 200 as documented for the IdP's logout token, and 400 for the same token again and for a body without one", async () => {
      const browser = await logIn(gateway, 'bob');
      const metadata = (await (await fetch(`${env.idp.issuer}/.well-known/openid-configuration`)).json()) as { end_session_endpoint: string };
      const delivered = recorder.tokens.length;
      await logoutAtIdp(browser, metadata.end_session_endpoint);
      await waitUntil(() => recorder.tokens.length > delivered, { timeoutMs: 10_000, intervalMs: 50, timeoutMessage: 'the IdP delivered no logout token' });
      const form = new URLSearchParams({ logout_token: recorder.tokens[delivered] ?? '' }).toString();
      const post = (body: string) =>
        fetch(url('/auth/backchannel-logout'), { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body });

      expect((await documented('post', '/auth/backchannel-logout', await post(form))).status).toBe(200);
      const replayed = await documented('post', '/auth/backchannel-logout', await post(form));
      expect([replayed.status, JSON.parse(replayed.body).error]).toEqual([400, 'invalid_request']);
      expect((await documented('post', '/auth/backchannel-logout', await post('something=else'))).status).toBe(400);
    });
  });

  describe('SPA metrics ingestion', () => {
    const post = (body: string, contentType = 'application/json', extra: Record<string, string> = {}) =>
      fetch(url('/api/v1/metrics'), { method: 'POST', headers: { 'content-type': contentType, ...extra }, body });

    it('POST /api/v1/metrics answers 202 as documented for JSON and for a sendBeacon text/plain body', async () => {
      const events = JSON.stringify({ events: [{ event: 'page_view', value: 1, attributes: { route: '/orders' } }] });
      expect(JSON.parse((await documented('post', '/api/v1/metrics', await post(events))).body)).toEqual({ accepted: 1 });
      expect((await documented('post', '/api/v1/metrics', await post(events, 'text/plain;charset=UTF-8'))).status).toBe(202);
    });

    it('POST /api/v1/metrics answers 400 and 413 as documented problems', async () => {
      const unknownEvent = await documented('post', '/api/v1/metrics', await post(JSON.stringify({ events: [{ event: 'credit_score' }] })));
      expect([unknownEvent.status, JSON.parse(unknownEvent.body).title]).toEqual([400, 'bad_request']);
      const personal = await documented('post', '/api/v1/metrics', await post(JSON.stringify({ events: [{ event: 'page_view', attributes: { email: 'x' } }] })));
      expect(JSON.parse(personal.body).detail).toContain('events[0].attributes.email');
      expect((await documented('post', '/api/v1/metrics', await post('{"events": ['))).status).toBe(400);
      const huge = JSON.stringify({ events: [{ event: 'page_view', attributes: Object.fromEntries(Array.from({ length: 80 }, (_, i) => [`k${i}`, 'v'.repeat(250)])) }] });
      const tooLarge = await documented('post', '/api/v1/metrics', await post(huge));
      expect([tooLarge.status, JSON.parse(tooLarge.body).title]).toEqual([413, 'payload_too_large']);
    });
  });

  describe('GET /verify', () => {
    const verify = (headers: Record<string, string>, browser = new Browser()) => browser.request(url('/verify'), { headers });

    it('answers 200 with every identity header as documented for a session, and the client\'s other cookies without the gateway\'s', async () => {
      const browser = await logIn(gateway, 'alice');
      const answer = await documented('get', '/verify', await verify({ ...forwarded('/api/orders'), cookie: 'theme=dark' }, browser));
      expect(answer.status).toBe(200);
      expect(answer.headers.get('authorization')).toMatch(/^Bearer \S+$/);
      expect(answer.headers.get('x-auth-request-user')).toBe('alice');
      expect(answer.headers.get('cookie')).toBe('theme=dark');
    });

    it('answers 200 as documented on a public route, with the identity headers empty', async () => {
      const answer = await documented('get', '/verify', await verify(forwarded('/public/logo.svg')));
      expect([answer.status, answer.headers.get('authorization'), answer.headers.get('x-auth-request-user')]).toEqual([200, '', '']);
    });

    it('answers 302 to the login as documented for a browser navigation without a session', async () => {
      const answer = await documented('get', '/verify', await verify({ ...forwarded('/api/orders?page=2'), 'Sec-Fetch-Mode': 'navigate' }));
      expect([answer.status, answer.headers.get('location')]).toEqual([302, `${gateway.config.server.publicOrigin}/auth/login?returnTo=%2Fapi%2Forders%3Fpage%3D2`]);
    });

    it('answers 401 as documented without a session, and for a session used from another user agent', async () => {
      const anonymous = await documented('get', '/verify', await verify(forwarded('/api/orders')));
      expect(JSON.parse(anonymous.body)).toEqual({ error: 'unauthenticated', login: `${gateway.config.server.publicOrigin}/auth/login` });
      const browser = await logIn(gateway, 'bob');
      const elsewhere = await documented('get', '/verify', await verify({ ...forwarded('/api/orders'), 'user-agent': 'another-agent/1.0' }, browser));
      expect([elsewhere.status, JSON.parse(elsewhere.body)]).toEqual([401, { error: 'session_binding' }]);
    });

    it('answers 400 as documented for missing, repeated and comma-joined X-Forwarded-* headers', async () => {
      const missing = await documented('get', '/verify', await verify({ 'X-Forwarded-Method': 'GET' }));
      expect(JSON.parse(missing.body)).toEqual({ error: 'missing_forwarded_headers' });
      const joined = await documented('get', '/verify', await verify(forwarded('/api/orders', 'GET, POST')));
      expect(JSON.parse(joined.body)).toEqual({ error: 'malformed_forwarded_headers' });
      const ambiguous = await documented('get', '/verify', await verify(forwarded('/api/%2e%2e/admin')));
      expect([ambiguous.status, JSON.parse(ambiguous.body)]).toEqual([400, { error: 'ambiguous_path' }]);
    });

    it('answers 403 as documented for a failed CSRF check and for a path no route covers', async () => {
      const csrf = await documented('get', '/verify', await verify(forwarded('/api/orders', 'POST')));
      expect([csrf.status, JSON.parse(csrf.body)]).toEqual([403, { error: 'csrf' }]);
      const noRoute = await documented('get', '/verify', await verify(forwarded('/elsewhere')));
      expect([noRoute.status, JSON.parse(noRoute.body)]).toEqual([403, { error: 'no_route' }]);
    });

    it("answers 403 as documented when the route's allow rules leave the user out", async () => {
      const browser = await logIn(gateway, 'alice');
      const answer = await documented('get', '/verify', await verify(forwarded('/admin/users'), browser));
      expect([answer.status, JSON.parse(answer.body)]).toEqual([403, { error: 'forbidden' }]);
    });

    it("answers 401 invalid_token with WWW-Authenticate as documented for an API client's token that is not valid", async () => {
      const answer = await documented('get', '/verify', await verify({ ...forwarded('/reports/2026'), Authorization: 'Bearer not-a-token-of-the-idp' }));
      expect([answer.status, JSON.parse(answer.body), answer.headers.get('www-authenticate')]).toEqual([401, { error: 'invalid_token' }, 'Bearer error="invalid_token"']);
    });
  });

  describe('limits: a replica with TRUSTED_PROXIES and one rate limit of 1 per period', () => {
    let strict: RunningGateway;
    let restricted: RunningGateway;

    beforeAll(async () => {
      // A clock that stands still: the per-session /verify bucket never refills between two calls.
      const frozenAt = Date.now();
      strict = await env.startReplica({
        env: { ...env.env, RATE_LIMIT_AUTH_PER_MINUTE: '1', RATE_LIMIT_METRICS_PER_MINUTE: '1', RATE_LIMIT_VERIFY_RPS: '1' },
        clock: { now: () => frozenAt },
      });
      restricted = await env.startReplica({ env: { ...env.env, TRUSTED_PROXIES: '10.0.0.0/8' } });
    });

    /** Calls until a 429 (a minute window may turn between two calls, hence more than two), then checks it. */
    async function untilRateLimited(method: Method, path: string, call: () => Promise<Response>): Promise<Answer> {
      let answer = await answerOf(await call());
      for (let attempt = 1; attempt < 5 && answer.status !== 429; attempt++) {
        expect(answers.problemsOfOperation(method, path, answer)).toEqual([]);
        answer = await answerOf(await call());
      }
      expect(answers.problemsOfOperation(method, path, answer)).toEqual([]);
      return answer;
    }

    it('GET /auth/login answers 429 with Retry-After as documented past the per-address limit', async () => {
      const answer = await untilRateLimited('get', '/auth/login', () => fetch(`${strict.url}/auth/login`, { redirect: 'manual', headers: clientAddress(1) }));
      expect([answer.status, JSON.parse(answer.body).title]).toEqual([429, 'rate_limited']);
      expect(answer.headers.get('retry-after')).toMatch(/^\d+$/);
    });

    it('POST /api/v1/metrics answers 429 with Retry-After as documented past the per-address limit', async () => {
      const answer = await untilRateLimited('post', '/api/v1/metrics', () =>
        fetch(`${strict.url}/api/v1/metrics`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...clientAddress(2) },
          body: JSON.stringify({ events: [{ event: 'page_view' }] }),
        }),
      );
      expect(answer.status).toBe(429);
    });

    it('GET /verify answers 429 with Retry-After as documented past RATE_LIMIT_VERIFY_RPS', async () => {
      const browser = await logIn(gateway, 'carol');
      const answer = await untilRateLimited('get', '/verify', () => browser.request(`${strict.url}/verify`, { headers: forwarded('/api/orders') }));
      expect([answer.status, JSON.parse(answer.body)]).toEqual([429, { error: 'rate_limited' }]);
    });

    it('GET /verify answers 403 as documented to a caller outside TRUSTED_PROXIES', async () => {
      const answer = await documented('get', '/verify', await new Browser().request(`${restricted.url}/verify`, { headers: forwarded('/api/orders') }));
      expect([answer.status, JSON.parse(answer.body)]).toEqual([403, { error: 'untrusted_proxy' }]);
    });
  });

  describe('a gateway whose Redis is stopped', () => {
    let redis: RedisServer;
    let outage: RunningGateway;
    let browser: Browser;

    beforeAll(async () => {
      redis = await startRedis();
      const { PUBLIC_URL: _mainPublicUrl, ...shared } = env.env;
      outage = await startGateway({ env: { ...shared, REDIS_URL: redis.url, REDIS_COMMAND_TIMEOUT_MS: '300' } });
      // Signed with the same secret and named alike, the main gateway's cookie reaches the store of this one.
      browser = await logIn(gateway, 'dave');
      await redis.stop();
    });

    afterAll(async () => {
      // Closed with Redis back: ioredis would otherwise hold a socket still connecting to a dead port for 2 s after close.
      await redis?.restart();
      await waitUntil(async () => (await fetch(`${outage.url}/ready`)).status === 200, {
        timeoutMs: 15_000,
        intervalMs: 100,
        timeoutMessage: 'the gateway did not become ready again once Redis was back',
      });
      await outage?.close();
      await redis?.stop();
    });

    it('GET /verify with a session cookie answers 503 with Retry-After as documented', async () => {
      const answer = await documented('get', '/verify', await browser.request(`${outage.url}/verify`, { headers: forwarded('/api/orders') }));
      expect([answer.status, JSON.parse(answer.body)]).toEqual([503, { error: 'dependency_unavailable' }]);
      expect(answer.headers.get('retry-after')).toMatch(/^\d+$/);
    });

    it('GET /ready answers 503 not_ready as documented', async () => {
      const answer = await documented('get', '/ready', await fetch(`${outage.url}/ready`));
      expect([answer.status, JSON.parse(answer.body).checks.redis.status]).toEqual([503, 'down']);
    });

    it('GET /auth/user with a session cookie answers 503 as documented', async () => {
      const answer = await documented('get', '/auth/user', await browser.request(`${outage.url}/auth/user`));
      expect([answer.status, JSON.parse(answer.body).title]).toEqual([503, 'dependency_unavailable']);
    });

    it('GET /auth/login answers 503 as documented when the login transaction cannot be stored', async () => {
      const answer = await documented('get', '/auth/login', await fetch(`${outage.url}/auth/login`, { redirect: 'manual' }));
      expect(answer.status).toBe(503);
    });
  });
});
