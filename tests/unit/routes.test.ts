import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_ROUTES, parseRoutes, type RouteConfig } from '../../src/config/routes';

function routesOf(text: string): RouteConfig[] {
  const parsed = parseRoutes(text);
  if ('problems' in parsed) throw new Error(`expected routes, got problems: ${parsed.problems.join('; ')}`);
  return parsed.routes;
}

function problemsOf(text: string): string[] {
  const parsed = parseRoutes(text);
  if (!('problems' in parsed)) throw new Error('expected problems, got routes');
  return parsed.problems;
}

const YAML = `
routes:
  - name: orders
    host: App.Example.com
    pathPrefix: /api/orders
    auth: session
    audience: orders-api
    authz: pdp
  - name: public-assets
    pathPrefix: /static/
    auth: public
`;

describe('parseRoutes', () => {
  it('reads the YAML routes file of the spec', () => {
    expect(routesOf(YAML)).toEqual([
      { name: 'orders', host: 'app.example.com', pathPrefix: '/api/orders', auth: 'session', audience: 'orders-api', authz: 'pdp' },
      { name: 'public-assets', host: undefined, pathPrefix: '/static', auth: 'public', audience: undefined, authz: 'none' },
    ]);
  });

  it('reads the same routes written as JSON', () => {
    const json = JSON.stringify({
      routes: [
        { name: 'orders', host: 'App.Example.com', pathPrefix: '/api/orders', auth: 'session', audience: 'orders-api', authz: 'pdp' },
        { name: 'public-assets', pathPrefix: '/static/', auth: 'public' },
      ],
    });
    expect(routesOf(json)).toEqual(routesOf(YAML));
  });

  it('defaults auth to session and authz to none', () => {
    expect(routesOf('routes: [{ name: api, pathPrefix: /api }]')[0]).toMatchObject({ auth: 'session', authz: 'none' });
  });

  it.each([
    ['/', ''],
    ['/API/Orders/', '/api/orders'],
    ['/api//orders', '/api/orders'],
    ['/api/orders', '/api/orders'],
  ])('normalises the pathPrefix %j to %j', (pathPrefix, expected) => {
    expect(routesOf(JSON.stringify({ routes: [{ name: 'r', pathPrefix }] }))[0]?.pathPrefix).toBe(expected);
  });

  it('refuses an unknown key on a route and names it', () => {
    expect(problemsOf('routes: [{ name: api, pathPrefix: /api, upstream: http://api }]').join('\n')).toMatch(/routes\.0.*upstream/);
  });

  it('refuses an unknown top-level key', () => {
    expect(problemsOf('routes: [{ name: api, pathPrefix: /api }]\nextra: 1').join('\n')).toContain('extra');
  });

  it.each([
    ['without a leading slash', 'api'],
    ['with a percent sign', '/api%2Forders'],
    ['with a query', '/api?x=1'],
    ['with a fragment', '/api#x'],
    ['with a ";" parameter', '/api;x'],
    ['with a backslash', '/api\\orders'],
    ['with a ".." segment', '/api/../admin'],
    ['with a "." segment', '/api/./orders'],
    ['that is empty', ''],
  ])('refuses a pathPrefix %s', (_description, pathPrefix) => {
    const problems = problemsOf(JSON.stringify({ routes: [{ name: 'r', pathPrefix }] }));
    expect(problems).toEqual([expect.stringMatching(/^routes\.0\.pathPrefix: /)]);
  });

  it('refuses the same host and prefix twice', () => {
    const problems = problemsOf(JSON.stringify({
      routes: [
        { name: 'a', host: 'app.example.com', pathPrefix: '/api' },
        { name: 'b', host: 'app.example.com', pathPrefix: '/api' },
      ],
    }));
    expect(problems).toEqual([expect.stringMatching(/^routes\.1: duplicates host\+pathPrefix/)]);
  });

  it('refuses prefixes that only differ by case or a trailing slash', () => {
    const problems = problemsOf(JSON.stringify({
      routes: [
        { name: 'a', host: 'app.example.com', pathPrefix: '/api' },
        { name: 'b', host: 'app.example.com', pathPrefix: '/API/' },
      ],
    }));
    expect(problems).toEqual([expect.stringMatching(/^routes\.1: duplicates/)]);
  });

  // Hosts are lower-cased after the duplicate check, so both routes survive
  // as the same host+prefix and one of them silently never matches.
  it('refuses one prefix on two spellings of the same host', () => {
    const problems = problemsOf(JSON.stringify({
      routes: [
        { name: 'a', host: 'app.example.com', pathPrefix: '/api' },
        { name: 'b', host: 'App.Example.com', pathPrefix: '/api' },
      ],
    }));
    expect(problems).toEqual([expect.stringMatching(/^routes\.1: duplicates/)]);
  });

  it('refuses two host-less routes with the same prefix', () => {
    const problems = problemsOf(JSON.stringify({ routes: [{ name: 'a', pathPrefix: '/api' }, { name: 'b', pathPrefix: '/api/' }] }));
    expect(problems).toEqual([expect.stringMatching(/^routes\.1: duplicates/)]);
  });

  it('accepts one prefix on two different hosts', () => {
    const routes = routesOf(JSON.stringify({
      routes: [
        { name: 'a', host: 'a.example.com', pathPrefix: '/api' },
        { name: 'b', host: 'b.example.com', pathPrefix: '/api' },
        { name: 'c', pathPrefix: '/api' },
      ],
    }));
    expect(routes).toHaveLength(3);
  });

  it.each([
    ['a name with upper case', { name: 'Orders', pathPrefix: '/a' }, 'routes.0.name'],
    ['a name with a space', { name: 'my orders', pathPrefix: '/a' }, 'routes.0.name'],
    ['a name of 64 characters', { name: 'a'.repeat(64), pathPrefix: '/a' }, 'routes.0.name'],
    ['a host with a scheme', { name: 'a', host: 'https://app.example.com', pathPrefix: '/a' }, 'routes.0.host'],
    ['a host with a port', { name: 'a', host: 'app.example.com:443', pathPrefix: '/a' }, 'routes.0.host'],
    ['an unknown auth', { name: 'a', pathPrefix: '/a', auth: 'basic' }, 'routes.0.auth'],
    ['an unknown authz', { name: 'a', pathPrefix: '/a', authz: 'rbac' }, 'routes.0.authz'],
    ['an empty audience', { name: 'a', pathPrefix: '/a', audience: '' }, 'routes.0.audience'],
    ['no pathPrefix', { name: 'a' }, 'routes.0.pathPrefix'],
    ['no name', { pathPrefix: '/a' }, 'routes.0.name'],
  ])('refuses %s and names the field', (_description, route, field) => {
    expect(problemsOf(JSON.stringify({ routes: [route] }))).toEqual([expect.stringMatching(new RegExp(`^${field.replaceAll('.', '\\.')}: `))]);
  });

  it('reports every bad route at once', () => {
    const problems = problemsOf(JSON.stringify({ routes: [{ name: 'Bad', pathPrefix: '/a' }, { name: 'b', pathPrefix: 'x' }] }));
    expect(problems).toHaveLength(2);
  });

  it('refuses an empty route list', () => {
    expect(problemsOf('routes: []')).toEqual([expect.stringContaining('at least one route')]);
  });

  it.each([
    ['an empty document', ''],
    ['a list instead of a mapping', '- name: a'],
    ['a scalar', 'hello'],
  ])('refuses %s', (_description, text) => {
    expect(problemsOf(text).length).toBeGreaterThan(0);
  });

  it('reports invalid YAML in one line', () => {
    const problems = problemsOf('routes: [ { name: a');
    expect(problems).toEqual([expect.stringMatching(/^is not valid YAML or JSON \([^\n]*\)$/)]);
  });

  it('reports invalid JSON in one line', () => {
    expect(problemsOf('{"routes": [ {"name": "a", }')).toEqual([expect.stringMatching(/^is not valid YAML or JSON/)]);
  });
});

describe('parseRoutes: allow rules', () => {
  const route = (extra: Record<string, unknown>) => JSON.stringify({ routes: [{ name: 'r', pathPrefix: '/r', ...extra }] });

  it('reads allow: groups, emails and domains; lower-cases emails and domains, keeps groups as spelled, drops repeats', () => {
    const [parsed] = routesOf(`
routes:
  - name: orders
    pathPrefix: /api/orders
    allow:
      groups: [Staff, staff, Staff]
      emails: [Ops@Example.com, ops@example.com]
      domains: [Example.COM]
`);
    expect(parsed?.allow).toEqual({ groups: ['Staff', 'staff'], emails: ['ops@example.com'], domains: ['example.com'] });
  });

  it('fills the lists the file leaves out with empty ones', () => {
    expect(routesOf(route({ allow: { domains: ['example.com'] } }))[0]?.allow).toEqual({ groups: [], emails: [], domains: ['example.com'] });
  });

  it('leaves allow undefined when the route has none', () => {
    expect(routesOf(route({}))[0]?.allow).toBeUndefined();
  });

  it('accepts allow together with authz: pdp', () => {
    expect(routesOf(route({ allow: { groups: ['staff'] }, authz: 'pdp' }))[0]).toMatchObject({ authz: 'pdp', allow: { groups: ['staff'] } });
  });

  it.each([
    ['an email with two "@"', { emails: ['a@b@example.com'] }, 'routes.0.allow.emails.0'],
    ['an email without "@"', { emails: ['example.com'] }, 'routes.0.allow.emails.0'],
    ['an email with a space', { emails: ['ops @example.com'] }, 'routes.0.allow.emails.0'],
    ['an email whose domain is not a DNS name', { emails: ['ops@exa mple'] }, 'routes.0.allow.emails.0'],
    ['a domain with "@"', { domains: ['@example.com'] }, 'routes.0.allow.domains.0'],
    ['a wildcard domain', { domains: ['*.example.com'] }, 'routes.0.allow.domains.0'],
    ['a domain with a leading dot', { domains: ['.example.com'] }, 'routes.0.allow.domains.0'],
    ['an empty group', { groups: [''] }, 'routes.0.allow.groups.0'],
    ['an unknown key', { groups: ['staff'], roles: ['admins'] }, 'routes.0.allow'],
    ['an allow that lists nothing', { groups: [] }, 'routes.0.allow'],
  ])('refuses %s and names the field', (_description, allow, field) => {
    expect(problemsOf(route({ allow }))).toEqual([expect.stringMatching(new RegExp(`^${field.replaceAll('.', '\\.')}: `))]);
  });

  it('explains how to allow subdomains when a wildcard is refused', () => {
    expect(problemsOf(route({ allow: { domains: ['*.example.com'] } })).join('\n')).toContain('list each subdomain');
  });

  it('refuses allow on a public route', () => {
    expect(problemsOf(route({ auth: 'public', allow: { groups: ['staff'] } }))).toEqual([expect.stringMatching(/^routes\.0\.allow: needs auth: session/)]);
  });

  it('reports every bad entry of every list at once, a line each', () => {
    expect(problemsOf(route({ allow: { emails: ['a@b@c.example', 'nope'], domains: ['*.x.example'] } }))).toHaveLength(3);
  });
});

describe('parseRoutes: bearer API clients', () => {
  const route = (extra: Record<string, unknown>) => JSON.stringify({ routes: [{ name: 'r', pathPrefix: '/r', ...extra }] });

  it('reads bearer: true with its bearerAudience', () => {
    expect(routesOf(route({ bearer: true, bearerAudience: 'orders-api' }))[0]?.bearer).toEqual({ audience: 'orders-api' });
  });

  it('leaves bearer undefined when the route does not set it or sets it false', () => {
    expect(routesOf(route({}))[0]?.bearer).toBeUndefined();
    expect(routesOf(route({ bearer: false }))[0]?.bearer).toBeUndefined();
  });

  it('refuses bearer: true without a bearerAudience, naming what to add', () => {
    expect(problemsOf(route({ bearer: true }))).toEqual([expect.stringMatching(/^routes\.0\.bearerAudience: is required with bearer: true/)]);
  });

  it('refuses a bearerAudience without bearer: true', () => {
    expect(problemsOf(route({ bearerAudience: 'orders-api' }))).toEqual([expect.stringMatching(/^routes\.0\.bearerAudience: applies only with bearer: true/)]);
  });

  it.each([
    ['a bearer that is not a boolean', { bearer: 'yes', bearerAudience: 'orders-api' }, 'routes.0.bearer'],
    ['an empty bearerAudience', { bearer: true, bearerAudience: '' }, 'routes.0.bearerAudience'],
  ])('refuses %s and names the field', (_description, extra, field) => {
    expect(problemsOf(route(extra))).toEqual([expect.stringMatching(new RegExp(`^${field.replaceAll('.', '\\.')}: `))]);
  });

  it('refuses bearer on a public route', () => {
    expect(problemsOf(route({ auth: 'public', bearer: true, bearerAudience: 'x' }))).toEqual([expect.stringMatching(/^routes\.0\.bearer: needs auth: session/)]);
  });

  it('reports a bearer problem and an allow problem of one route together', () => {
    expect(problemsOf(route({ bearer: true, allow: { domains: ['*.example.com'] } }))).toHaveLength(2);
  });
});

describe('deploy/routes.example.yaml', () => {
  it('parses, with its allow rules and bearer route', () => {
    const routes = routesOf(readFileSync(join(__dirname, '..', '..', 'deploy', 'routes.example.yaml'), 'utf8'));
    expect(routes.find((route) => route.name === 'reports')?.allow).toEqual({ groups: ['staff'], emails: ['ops@example.com'], domains: ['example.com'] });
    expect(routes.find((route) => route.name === 'ledger')).toMatchObject({ bearer: { audience: 'ledger-api' }, authz: 'pdp', allow: { groups: ['ledger-writers'] } });
  });
});

describe('DEFAULT_ROUTES', () => {
  it('is one session route for every path on every host', () => {
    expect(DEFAULT_ROUTES).toEqual([{ name: 'default', host: undefined, pathPrefix: '', auth: 'session', audience: undefined, authz: 'none' }]);
  });
});
