import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from '../support/browser';
import { CapturedLogs } from '../support/captured-logs';
import { forwarded, logIn, startTestEnvironment, type TestEnvironment } from '../support/environment';
import { metricValue } from '../support/gateway';
import { startOpa, type OpaServer } from '../support/opa';

// The first run builds OPA from the Go module proxy (about 2 minutes); later runs reuse the cached binary.
const SETUP_TIMEOUT_MS = 25 * 60_000;

/**
 * `orders` is also decided by OPA serving deploy/opa/policy.rego: users and
 * admins read, only admins delete. Its allow rule admits corp.example only,
 * so both must allow.
 */
const ROUTES = `
routes:
  - name: admin-console
    pathPrefix: /api/console
    allow:
      groups: [admins]
  - name: ops
    pathPrefix: /api/ops
    allow:
      emails: [Ops.Lead@Example.TEST]
  - name: staff
    pathPrefix: /api/staff
    allow:
      domains: [Corp.Example]
  - name: orders
    pathPrefix: /api/orders
    authz: pdp
    allow:
      domains: [corp.example]
  - name: profile
    pathPrefix: /api/profile
`;

/** Test IdP accounts (any login name is one) and the claims each logs in with; alice and bob keep the defaults. */
const ACCOUNTS: Record<string, Record<string, unknown>> = {
  // The listed ops address in another case.
  carol: { email: 'OPS.LEAD@example.test', email_verified: true, groups: ['users'] },
  // The listed address, but the IdP does not vouch for it.
  dave: { email: 'ops.lead@example.test', email_verified: false, groups: ['users'] },
  erin: { email: 'erin@corp.example', email_verified: true, groups: ['users'] },
  // A subdomain of a listed domain.
  frank: { email: 'frank@eu.corp.example', email_verified: true, groups: ['users'] },
  // Two "@": the part after the last one is a listed domain.
  mallory: { email: 'mallory@evil.example@corp.example', email_verified: true, groups: ['users'] },
  grace: { email: 'Grace@CORP.Example', email_verified: true, groups: ['users'] },
  // In a listed domain, unverified.
  heidi: { email: 'heidi@corp.example', email_verified: false, groups: ['users'] },
};

describe('allow rules on routes, through the real gateway, test IdP and OPA', () => {
  let opa: OpaServer;
  let env: TestEnvironment;
  let routesDirectory: string;
  let logs: CapturedLogs;
  const browsers: Record<string, Browser> = {};

  beforeAll(async () => {
    opa = await startOpa();
    routesDirectory = mkdtempSync(join(tmpdir(), 'bff-allow-'));
    const routesFile = join(routesDirectory, 'routes.yaml');
    writeFileSync(routesFile, ROUTES);
    logs = new CapturedLogs();
    env = await startTestEnvironment({ env: { ROUTES_FILE: routesFile, PDP_URL: opa.decisionUrl, PDP_CACHE_TTL_SECONDS: '0' }, gateway: { logger: logs.logger } });
    for (const [sub, claims] of Object.entries(ACCOUNTS)) await env.idp.setAccountClaims(sub, claims);
    for (const name of ['alice', 'bob', ...Object.keys(ACCOUNTS)]) browsers[name] = await logIn(env.gateway, name);
  }, SETUP_TIMEOUT_MS);

  afterAll(async () => {
    await env?.close();
    await opa?.stop();
    if (routesDirectory) rmSync(routesDirectory, { recursive: true, force: true });
  });

  beforeEach(async () => {
    await opa.ensureServing();
  });

  async function verify(user: string, path: string, method = 'GET'): Promise<{ status: number; user: string | null; body: string }> {
    const csrf: Record<string, string> = method === 'GET' ? {} : { 'X-CSRF': '1' };
    const response = await (browsers[user] as Browser).request(`${env.gateway.url}/verify`, { headers: forwarded(path, method, csrf) });
    return { status: response.status, user: response.headers.get('x-auth-request-user'), body: await response.text() };
  }

  async function authzCount(labels: Record<string, string>): Promise<number> {
    return metricValue(await env.gateway.metricsText(), 'bff_authz_requests_total', labels);
  }

  async function pdpCalls(): Promise<number> {
    return metricValue(await env.gateway.metricsText(), 'bff_authz_latency_seconds_count', { resource: 'orders' });
  }

  describe('groups', () => {
    it('lets alice, in admins, into the console: 200 with her identity', async () => {
      const answer = await verify('alice', '/api/console/users');
      expect(answer.status).toBe(200);
      expect(answer.user).toBe('alice');
    });

    it('refuses bob, in users only, with 403 forbidden, an authz_denied event and a deny in bff_authz_requests_total', async () => {
      const mark = logs.mark();
      const before = await authzCount({ resource: 'admin-console', action: 'read', decision: 'deny' });
      const answer = await verify('bob', '/api/console/users');
      expect(answer.status).toBe(403);
      expect(JSON.parse(answer.body)).toEqual({ error: 'forbidden' });
      expect(await authzCount({ resource: 'admin-console', action: 'read', decision: 'deny' })).toBe(before + 1);
      expect(logs.events('authz_denied', mark)).toEqual([expect.objectContaining({ type: 'authz_denied', severity: 'warning', reason: 'no_matching_rule', route: 'admin-console', subject: 'bob' })]);
    });

    it('counts an allow by the rules once, as decision allow', async () => {
      const before = await authzCount({ resource: 'admin-console', action: 'delete', decision: 'allow' });
      expect((await verify('alice', '/api/console/users/1', 'DELETE')).status).toBe(200);
      expect(await authzCount({ resource: 'admin-console', action: 'delete', decision: 'allow' })).toBe(before + 1);
    });
  });

  describe('emails', () => {
    it('lets carol in: her verified email is the listed one, in another case', async () => {
      expect((await verify('carol', '/api/ops/runbook')).status).toBe(200);
    });

    it('refuses dave, whose email is the listed one but unverified, and the event says so', async () => {
      const mark = logs.mark();
      expect((await verify('dave', '/api/ops/runbook')).status).toBe(403);
      expect(logs.events('authz_denied', mark)).toEqual([expect.objectContaining({ reason: 'email_not_verified', route: 'ops' })]);
    });

    it('refuses alice, an admin but not on the list', async () => {
      expect((await verify('alice', '/api/ops/runbook')).status).toBe(403);
    });
  });

  describe('domains', () => {
    it('lets erin in with a verified email in the listed domain', async () => {
      expect((await verify('erin', '/api/staff/handbook')).status).toBe(200);
    });

    it('lets grace in: domain and address compared without regard to case', async () => {
      expect((await verify('grace', '/api/staff/handbook')).status).toBe(200);
    });

    it('refuses frank: a subdomain does not match a listed domain', async () => {
      expect((await verify('frank', '/api/staff/handbook')).status).toBe(403);
    });

    it('refuses mallory, whose email has two "@" and ends in the listed domain, as malformed', async () => {
      const mark = logs.mark();
      expect((await verify('mallory', '/api/staff/handbook')).status).toBe(403);
      expect(logs.events('authz_denied', mark)).toEqual([expect.objectContaining({ reason: 'malformed_email' })]);
    });

    it('refuses heidi, whose email in the listed domain is unverified', async () => {
      expect((await verify('heidi', '/api/staff/handbook')).status).toBe(403);
    });

    it('refuses bob, whose email is in another domain, and lets him into a route without rules', async () => {
      expect((await verify('bob', '/api/staff/handbook')).status).toBe(403);
      expect((await verify('bob', '/api/profile')).status).toBe(200);
    });
  });

  describe('with the PDP too: both must allow', () => {
    it('allows erin to read an order: the rules and OPA both allow', async () => {
      const before = await pdpCalls();
      expect((await verify('erin', '/api/orders/1')).status).toBe(200);
      expect(await pdpCalls()).toBe(before + 1);
    });

    it('refuses erin a delete: the rules allow but OPA denies, and the event names the PDP', async () => {
      const mark = logs.mark();
      const before = await authzCount({ resource: 'orders', action: 'delete', decision: 'deny' });
      expect((await verify('erin', '/api/orders/1', 'DELETE')).status).toBe(403);
      expect(logs.events('authz_denied', mark)).toEqual([expect.objectContaining({ reason: 'pdp_denied', route: 'orders' })]);
      expect(await authzCount({ resource: 'orders', action: 'delete', decision: 'deny' })).toBe(before + 1);
    });

    it('refuses alice, whom OPA would allow, because the rules do not, and never asks OPA', async () => {
      const before = await pdpCalls();
      const mark = logs.mark();
      expect((await verify('alice', '/api/orders/1', 'DELETE')).status).toBe(403);
      expect(await pdpCalls()).toBe(before);
      expect(logs.events('authz_denied', mark)).toEqual([expect.objectContaining({ reason: 'no_matching_rule', route: 'orders' })]);
    });

    it('counts each request once: a rules deny here, OPA\'s decision otherwise', async () => {
      const labels = { resource: 'orders', action: 'read' };
      const before = { allow: await authzCount({ ...labels, decision: 'allow' }), deny: await authzCount({ ...labels, decision: 'deny' }) };
      expect((await verify('erin', '/api/orders/2')).status).toBe(200);
      expect((await verify('bob', '/api/orders/2')).status).toBe(403);
      // Counted before /verify answers: no waiting needed.
      expect({ allow: await authzCount({ ...labels, decision: 'allow' }), deny: await authzCount({ ...labels, decision: 'deny' }) }).toEqual({
        allow: before.allow + 1,
        deny: before.deny + 1,
      });
    });
  });
});
