import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FrontendConfig } from '../../src/config/config';
import { frontendView, parseFrontends } from '../../src/config/frontends-file';
import { loadConfig } from '../../src/config/load-config';
import { FrontendSelector, hostnameOf } from '../../src/frontends/frontend-selector';

const ENV = {
  OIDC_ISSUER: 'https://login.example.com/realms/main',
  OIDC_CLIENT_ID: 'env-client',
  OIDC_CLIENT_SECRET: 'env-secret',
  SESSION_IDLE_TTL_SECONDS: '600',
};
const defaults = loadConfig(ENV);

function frontends(document: unknown): FrontendConfig[] {
  const result = parseFrontends(JSON.stringify(document), defaults);
  if ('problems' in result) throw new Error(result.problems.join('\n'));
  return result.frontends;
}

function problems(document: unknown, base = defaults): string[] {
  const result = parseFrontends(typeof document === 'string' ? document : JSON.stringify(document), base);
  return 'problems' in result ? result.problems : [];
}

describe('FRONTENDS_FILE', () => {
  it('inherits every unset setting from the environment, and names its cookie after the frontend', () => {
    const [shop] = frontends({ frontends: [{ name: 'shop', publicUrl: 'https://Shop.Example.com' }] });
    expect(shop).toMatchObject({
      name: 'shop',
      hosts: ['shop.example.com'],
      pathPrefix: '',
      publicOrigin: 'https://shop.example.com',
      isHttps: true,
      oidc: { kind: 'external', issuer: ENV.OIDC_ISSUER, clientId: 'env-client', clientAuthentication: { method: 'client_secret_basic', clientSecret: 'env-secret' } },
      session: { idleTtlSeconds: 600, absoluteTtlSeconds: 43200, cookieName: '__Host-bff-shop', isSecureCookie: true },
      routes: defaults.routes,
    });
  });

  it('takes a frontend its own client, credentials, lifetimes, hosts, prefix and routes', () => {
    const directory = mkdtempSync(join(tmpdir(), 'bff-frontends-unit-'));
    const secretFile = join(directory, 'secret');
    writeFileSync(secretFile, 'from-a-file\n');
    const [admin] = frontends({
      frontends: [
        {
          name: 'admin',
          publicUrl: 'http://intranet.example.com:8080',
          hosts: ['Intranet.Example.com.', 'admin.example.com'],
          pathPrefix: '/Admin/',
          cookieName: 'admin-session',
          session: { idleTtlSeconds: 300, absoluteTtlSeconds: 3600 },
          oidc: { issuer: 'https://other.example.com', clientId: 'admin', clientSecretFile: secretFile, clientAuthMethod: 'client_secret_post', scopes: 'openid email', groupsClaim: 'roles' },
          routes: [{ name: 'users', pathPrefix: '/admin/api' }],
        },
      ],
    });
    expect(admin).toMatchObject({
      hosts: ['intranet.example.com', 'admin.example.com'],
      pathPrefix: '/admin',
      oidc: { issuer: 'https://other.example.com', clientId: 'admin', clientAuthentication: { method: 'client_secret_post', clientSecret: 'from-a-file' }, scopes: ['openid', 'email'], groupsClaim: 'roles' },
      session: { idleTtlSeconds: 300, absoluteTtlSeconds: 3600, cookieName: 'admin-session', isSecureCookie: false },
      routes: [expect.objectContaining({ name: 'users', pathPrefix: '/admin/api' })],
    });
    const view = frontendView(defaults, admin as FrontendConfig);
    expect(view.server).toMatchObject({ publicOrigin: 'http://intranet.example.com:8080', basePath: '/admin', isHttps: false });
    expect(view.session.cookieName).toBe('admin-session');
    expect(view.session.binding).toBe(defaults.session.binding);
  });

  it.each([
    [{ frontends: [] }, 'frontends: must list at least one frontend'],
    [{ frontends: [{ name: 'Shop', publicUrl: 'https://a.example.com' }] }, 'frontends.0.name'],
    [{ frontends: [{ name: 'shop', publicUrl: 'https://a.example.com/app' }] }, 'frontends.0.publicUrl: must be an http(s) origin'],
    [{ frontends: [{ name: 'shop', publicUrl: 'javascript:alert(1)' }] }, 'frontends.0.publicUrl'],
    [{ frontends: [{ name: 'shop', publicUrl: 'https://a.example.com', pathPrefix: 'admin' }] }, 'frontends.0.pathPrefix'],
    [{ frontends: [{ name: 'shop', publicUrl: 'https://a.example.com', pathPrefix: '/a/../b' }] }, 'frontends.0.pathPrefix'],
    [{ frontends: [{ name: 'shop', publicUrl: 'https://a.example.com', pathPrefix: '/a%2fb' }] }, 'frontends.0.pathPrefix'],
    [{ frontends: [{ name: 'shop', publicUrl: 'https://a.example.com', hosts: ['a.example.com:443'] }] }, 'frontends.0.hosts.0'],
    [{ frontends: [{ name: 'shop', publicUrl: 'https://a.example.com', cookieName: 'a;b' }] }, 'frontends.0.cookieName'],
    [{ frontends: [{ name: 'shop', publicUrl: 'https://a.example.com', colour: 'blue' }] }, 'colour'],
    [{ frontends: [{ name: 'shop', publicUrl: 'https://a.example.com', oidc: { clientSecret: 'a', clientSecretFile: '/b' } }] }, 'choose one'],
    [{ frontends: [{ name: 'shop', publicUrl: 'https://a.example.com', session: { idleTtlSeconds: 900, absoluteTtlSeconds: 600 } }] }, 'frontends.0 (shop): session.absoluteTtlSeconds must be at least'],
    [{ frontends: [{ name: 'shop', publicUrl: 'https://a.example.com', oidc: { clientSecretFile: '/nonexistent/secret' } }] }, 'cannot be read (ENOENT)'],
    [{ frontends: [{ name: 'shop', publicUrl: 'https://a.example.com', oidc: { privateKeyFile: '/nonexistent/key.pem' } }] }, 'frontends.0 (shop): oidc.privateKeyFile'],
    [{ frontends: [{ name: 'shop', publicUrl: 'https://a.example.com', routes: [{ name: 'orders', pathPrefix: '/api', authz: 'pdp' }] }] }, 'use authz: pdp, which needs PDP_URL'],
    [
      { frontends: [{ name: 'shop', publicUrl: 'https://a.example.com' }, { name: 'shop', publicUrl: 'https://b.example.com' }] },
      'the name shop is used twice',
    ],
    [
      { frontends: [{ name: 'shop', publicUrl: 'https://a.example.com' }, { name: 'admin', publicUrl: 'https://A.example.com' }] },
      'shop and admin both serve a.example.com/',
    ],
    [
      {
        frontends: [
          { name: 'shop', publicUrl: 'https://a.example.com', cookieName: 'session' },
          { name: 'admin', publicUrl: 'https://b.example.com', cookieName: 'session' },
        ],
      },
      'shop and admin both use the cookie session',
    ],
  ])('refuses %j: %s', (document, expected) => {
    expect(problems(document).join('\n')).toContain(expected);
  });

  it('refuses YAML that does not parse, with the parser\'s line', () => {
    expect(problems('frontends: [')[0]).toMatch(/^is not valid YAML or JSON/);
  });

  it('needs an issuer and a credential for every frontend, from the file or the environment', () => {
    const bare = loadConfig({});
    const found = problems({ frontends: [{ name: 'shop', publicUrl: 'http://a.example.com' }] }, bare);
    expect(found).toEqual([
      expect.stringContaining('frontends.0 (shop): oidc.issuer is required'),
      'frontends.0 (shop): oidc.clientId is required (or OIDC_CLIENT_ID)',
      expect.stringContaining('frontends.0 (shop): oidc needs clientSecret'),
    ]);
  });

  it('asks for https in production', () => {
    const production = loadConfig({ ...ENV, ENVIRONMENT: 'production', SESSION_SECRET: 'x'.repeat(40), REDIS_URL: 'redis://redis:6379', PUBLIC_URL: 'https://app.example.com' });
    expect(problems({ frontends: [{ name: 'shop', publicUrl: 'http://a.example.com', oidc: { issuer: 'http://idp.example.com' } }] }, production)).toEqual([
      'frontends.0 (shop): publicUrl must be https in production (session cookies are Secure)',
      'frontends.0 (shop): oidc.issuer must be https in production',
    ]);
  });

  it('stops the start with one line per problem, each naming FRONTENDS_FILE and the file', () => {
    const directory = mkdtempSync(join(tmpdir(), 'bff-frontends-unit-'));
    const file = join(directory, 'frontends.yaml');
    writeFileSync(file, 'frontends:\n  - name: shop\n    publicUrl: https://a.example.com/x\n');
    expect(() => loadConfig({ ...ENV, FRONTENDS_FILE: file })).toThrow(`FRONTENDS_FILE: ${file} frontends.0.publicUrl: must be an http(s) origin`);
    expect(() => loadConfig({ ...ENV, FRONTENDS_FILE: join(directory, 'missing.yaml') })).toThrow('cannot be read (ENOENT)');
  });

  it('accepts the shipped deploy/frontends.example.yaml, given the secrets it names', () => {
    const secrets = mkdtempSync(join(tmpdir(), 'bff-frontends-secrets-'));
    writeFileSync(join(secrets, 'shop-bff-client-secret'), 'shop-secret\n');
    writeFileSync(join(secrets, 'partners-bff-client-secret'), 'partners-secret\n');
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    writeFileSync(join(secrets, 'shop-admin-bff.pem'), privateKey.export({ type: 'pkcs8', format: 'pem' }));
    const example = readFileSync(join(__dirname, '..', '..', 'deploy', 'frontends.example.yaml'), 'utf8').replaceAll('/run/secrets/', `${secrets}/`);
    const result = parseFrontends(example, defaults);
    expect('problems' in result ? result.problems : []).toEqual([]);
    const [shop, admin, partners] = 'frontends' in result ? result.frontends : [];
    expect(shop?.oidc).toMatchObject({ clientId: 'shop-bff', clientAuthentication: { method: 'client_secret_basic', clientSecret: 'shop-secret' } });
    expect(admin).toMatchObject({ pathPrefix: '/admin', hosts: ['shop.example.com'], oidc: { clientAuthentication: { method: 'private_key_jwt' } } });
    expect(partners).toMatchObject({ hosts: ['partners.example.com', 'partner.example.com'], oidc: { scopes: ['openid', 'profile', 'email', 'offline_access'] } });
  });

  it('without a file serves one frontend from the environment, on every host', () => {
    expect(defaults.frontendsFile).toBeUndefined();
    expect(defaults.frontends).toEqual([
      expect.objectContaining({ name: 'default', hosts: undefined, pathPrefix: '', publicOrigin: defaults.server.publicOrigin, oidc: defaults.oidc, routes: defaults.routes }),
    ]);
  });
});

describe('FrontendSelector', () => {
  const served = (name: string, hosts: string[] | undefined, pathPrefix = '') => ({ config: { name, hosts, pathPrefix } as FrontendConfig });
  const selector = new FrontendSelector([
    served('shop', ['shop.example.com']),
    served('admin', ['shop.example.com'], '/admin'),
    served('partner', ['partner.example.com', 'partners.example.com']),
  ]);
  const select = (host: string | undefined, path: string) => selector.select(host, path)?.config.name;

  it.each([
    ['shop.example.com', '/', 'shop'],
    ['shop.example.com', '/api/orders', 'shop'],
    ['shop.example.com', '/admin', 'admin'],
    ['shop.example.com', '/admin/', 'admin'],
    ['shop.example.com', '/admin?x=1', 'admin'],
    ['shop.example.com', '/ADMIN/users', 'admin'],
    ['shop.example.com', '/administrator', 'shop'],
    ['partners.example.com', '/', 'partner'],
    ['other.example.com', '/', undefined],
    [undefined, '/', undefined],
  ])('%s%s belongs to %s', (host, path, expected) => {
    expect(select(host, path)).toBe(expected);
  });

  it('lets the environment\'s frontend serve every host, after any that names the host', () => {
    const withDefault = new FrontendSelector([served('default', undefined), served('partner', ['partner.example.com'])]);
    expect(withDefault.select('partner.example.com', '/')?.config.name).toBe('partner');
    expect(withDefault.select('anything.example.com', '/')?.config.name).toBe('default');
  });

  it.each([
    ['Shop.Example.com:8443', 'shop.example.com'],
    ['shop.example.com.', 'shop.example.com'],
    ['[::1]:8080', '[::1]'],
    ['', undefined],
    [undefined, undefined],
  ])('reads the host name of the Host header %j as %j', (header, expected) => {
    expect(hostnameOf(header)).toBe(expected);
  });
});
