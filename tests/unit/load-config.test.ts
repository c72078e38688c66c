import { createHash, generateKeyPairSync, type JsonWebKey, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Config } from '../../src/config/config';
import { ConfigError, loadConfig } from '../../src/config/load-config';
import { DEFAULT_ROUTES } from '../../src/config/routes';
import { makeTestCertificates, type TestCertificates } from '../support/tls';

const SECRET = 'a-session-secret-of-at-least-32-chars';
const OLD_SECRET = 'an-older-session-secret-of-32-chars!';

const PRODUCTION: NodeJS.ProcessEnv = {
  ENVIRONMENT: 'production',
  PUBLIC_URL: 'https://app.example.com',
  OIDC_ISSUER: 'https://login.example.com/realms/main',
  OIDC_CLIENT_ID: 'bff-gateway',
  OIDC_CLIENT_SECRET: 'a-long-random-client-secret',
  SESSION_SECRET: SECRET,
  REDIS_URL: 'rediss://redis.internal:6380/0',
};

/** The problem lines loadConfig throws, or a failure when it does not throw. */
function problemsFor(env: NodeJS.ProcessEnv): readonly string[] {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  throw new Error('expected loadConfig to throw a ConfigError');
}

function problemsAbout(env: NodeJS.ProcessEnv, variable: string): readonly string[] {
  return problemsFor(env).filter((line) => line.startsWith(`${variable}:`));
}

let directory: string;

beforeAll(() => {
  directory = mkdtempSync(join(tmpdir(), 'bff-load-config-'));
});

afterAll(() => {
  rmSync(directory, { recursive: true, force: true });
});

function routesFile(name: string, text: string): string {
  const path = join(directory, name);
  writeFileSync(path, text);
  return path;
}

describe('loadConfig with an empty environment', () => {
  let config: Config;

  beforeAll(() => {
    config = loadConfig({});
  });

  it('runs in development', () => {
    expect(config.server.environment).toBe('development');
  });

  it('listens on 8080 for http://localhost:8080', () => {
    expect([config.server.port, config.server.publicOrigin, config.server.isHttps]).toEqual([8080, 'http://localhost:8080', false]);
  });

  it('keeps sessions in memory', () => {
    expect(config.redis.kind).toBe('memory');
  });

  it('uses the embedded development IdP', () => {
    expect(config.oidc.kind).toBe('development');
  });

  it('requests the default scopes', () => {
    expect(config.oidc.scopes).toEqual(['openid', 'profile', 'email']);
  });

  it('uses the default route', () => {
    expect(config.routes).toEqual(DEFAULT_ROUTES);
  });

  it('uses the default session lifetimes and ua binding', () => {
    expect(config.session).toMatchObject({ idleTtlSeconds: 1800, absoluteTtlSeconds: 43200, binding: 'ua', secrets: undefined });
  });

  it('uses a plain cookie name over http', () => {
    expect([config.session.cookieName, config.session.isSecureCookie]).toEqual(['bff-session', false]);
  });

  it('leaves PDP, Kafka, trusted proxies and the verify rate limit off', () => {
    expect([config.pdp.url, config.kafka.brokers, config.server.trustedProxies, config.rateLimit.verifyRequestsPerSecond]).toEqual([
      undefined,
      undefined,
      undefined,
      0,
    ]);
  });

  it('sends events to the default topic and logs JSON at info', () => {
    expect([config.kafka.topic, config.logging.level, config.logging.format]).toEqual(['bff.security-events', 'info', 'json']);
  });

  it('takes the service version from package.json', () => {
    expect(config.telemetry.serviceVersion).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('returns a frozen configuration', () => {
    expect([Object.isFrozen(config), Object.isFrozen(config.server), Object.isFrozen(config.session), Object.isFrozen(config.routes)]).toEqual([
      true,
      true,
      true,
      true,
    ]);
  });

  // deepFreeze stops at DEFAULT_ROUTES because the array is already frozen,
  // so the shared module-level route object inside it stays mutable.
  it('freezes the default route inside the configuration', () => {
    expect(Object.isFrozen(config.routes[0])).toBe(true);
  });
});

describe('loadConfig', () => {
  it('accepts a complete production configuration', () => {
    expect(loadConfig(PRODUCTION).server.environment).toBe('production');
  });

  it('uses the __Host- cookie over https', () => {
    expect(loadConfig(PRODUCTION).session).toMatchObject({ cookieName: '__Host-bff-session', isSecureCookie: true });
  });

  it('selects the external IdP when OIDC_ISSUER is set', () => {
    expect(loadConfig(PRODUCTION).oidc).toMatchObject({
      kind: 'external',
      issuer: PRODUCTION.OIDC_ISSUER,
      clientId: 'bff-gateway',
      clientAuthentication: { method: 'client_secret_basic', clientSecret: 'a-long-random-client-secret' },
    });
  });

  it('selects a single Redis when REDIS_URL is set', () => {
    expect(loadConfig(PRODUCTION).redis).toMatchObject({ kind: 'single', url: PRODUCTION.REDIS_URL });
  });

  it('selects Sentinel with REDIS_SENTINELS and REDIS_SENTINEL_NAME', () => {
    const config = loadConfig({ REDIS_SENTINELS: 'sentinel-a:26379, sentinel-b:26379', REDIS_SENTINEL_NAME: 'mymaster' });
    expect(config.redis).toMatchObject({ kind: 'sentinel', sentinels: ['sentinel-a:26379', 'sentinel-b:26379'], masterName: 'mymaster' });
  });

  it('selects Cluster with REDIS_CLUSTER_NODES', () => {
    expect(loadConfig({ REDIS_CLUSTER_NODES: 'redis-0:6379,redis-1:6379' }).redis).toMatchObject({ kind: 'cluster', nodes: ['redis-0:6379', 'redis-1:6379'] });
  });

  it('keeps every listed secret in order for rotation', () => {
    expect(loadConfig({ SESSION_SECRET: `${SECRET}, ${OLD_SECRET}` }).session.secrets).toEqual([SECRET, OLD_SECRET]);
  });

  it('treats empty and blank variables as unset', () => {
    const config = loadConfig({ PORT: '', REDIS_URL: '  ', OIDC_ISSUER: '', ENVIRONMENT: '' });
    expect([config.server.port, config.redis.kind, config.oidc.kind, config.server.environment]).toEqual([8080, 'memory', 'development', 'development']);
  });

  it('ignores variables it does not know', () => {
    expect(() => loadConfig({ PATH: '/usr/bin', HOME: '/root', SOMETHING_ELSE: '%%%' })).not.toThrow();
  });

  it('throws a ConfigError that lists its problems in the message', () => {
    let caught: unknown;
    try {
      loadConfig({ PORT: 'eighty' });
    } catch (error) {
      caught = error;
    }
    expect([caught instanceof ConfigError, (caught as Error).name, (caught as Error).message]).toEqual([
      true,
      'ConfigError',
      expect.stringContaining('PORT: must be a whole number'),
    ]);
  });

  describe('reporting', () => {
    const BAD = {
      PORT: '99999',
      PUBLIC_URL: 'ftp://app.example.com',
      ENVIRONMENT: 'prod',
      SESSION_BINDING: 'ip',
      LOG_LEVEL: 'verbose',
      REDIS_URL: 'http://redis:6379',
      KAFKA_BROKERS: 'kafka-0',
      TELEMETRY_ENABLED: 'maybe',
    };

    it('reports every bad variable at once', () => {
      const variables = problemsFor(BAD).map((line) => line.split(':')[0]);
      expect(new Set(variables)).toEqual(new Set(Object.keys(BAD)));
    });

    it('reports each problem on one line that starts with the variable name and quotes an example', () => {
      for (const line of problemsFor(BAD)) {
        expect(line).toMatch(/^[A-Z_]+: [^\n]* \(example: [A-Z_]+=[^\n]+\)$/);
      }
    });

    it('quotes an example for the variable the line is about', () => {
      expect(problemsAbout(BAD, 'PORT')).toEqual(['PORT: must be at most 65535 (example: PORT=8080)']);
    });

    it('never reports the values of secrets', () => {
      const lines = problemsFor({ SESSION_SECRET: 'short-secret-value', OIDC_CLIENT_SECRET: 'client-secret-value', OIDC_ISSUER: 'https://idp' });
      expect(lines.join('\n')).not.toMatch(/short-secret-value|client-secret-value/);
    });
  });

  describe('values', () => {
    it.each([
      ['PORT', 'eighty'],
      ['PORT', '0'],
      ['PORT', '-1'],
      ['PORT', '80.5'],
      ['PUBLIC_URL', 'https://app.example.com/app'],
      ['PUBLIC_URL', 'https://app.example.com/?x=1'],
      ['PUBLIC_URL', 'https://user:pass@app.example.com'],
      ['OIDC_ISSUER', 'not a url'],
      ['OIDC_SCOPES', 'profile email'],
      ['SESSION_IDLE_TTL_SECONDS', '59'],
      ['SESSION_ABSOLUTE_TTL_SECONDS', 'forever'],
      ['SESSION_BINDING', 'UA'],
      ['REDIS_URL', 'http://redis:6379'],
      ['REDIS_SENTINELS', 'sentinel-a'],
      ['REDIS_CLUSTER_NODES', 'redis-0:6379,redis-1'],
      ['PDP_URL', 'opa:8181'],
      ['KAFKA_BROKERS', 'kafka:x'],
      ['KAFKA_TOPIC', 'bad topic'],
      ['TELEMETRY_ENABLED', 'on'],
      ['OTLP_ENDPOINT', 'grpc://collector:4317'],
      ['LOG_FORMAT', 'xml'],
      ['RATE_LIMIT_VERIFY_RPS', '1.5'],
    ])('refuses %s=%j', (variable, value) => {
      expect(problemsAbout({ [variable]: value }, variable)).toHaveLength(1);
    });

    // Zod 4 runs the origin-only refine even after the URL refine failed, and
    // its `new URL(value)` throws a TypeError out of loadConfig.
    it.each(['app.example.com', 'not a url'])('reports PUBLIC_URL=%j as a problem instead of crashing', (value) => {
      expect(() => loadConfig({ PUBLIC_URL: value })).toThrow(ConfigError);
    });

    it('refuses a SESSION_SECRET shorter than 32 characters', () => {
      expect(problemsAbout({ SESSION_SECRET: 'too-short' }, 'SESSION_SECRET')).toEqual([expect.stringContaining('at least 32 characters')]);
    });

    it('refuses a rotation list with one short secret', () => {
      expect(problemsAbout({ SESSION_SECRET: `${SECRET},short` }, 'SESSION_SECRET')).toHaveLength(1);
    });

    // "," passes every per-secret check as an empty list; in production the
    // cross-check sees [] as present, and TokenCipher later throws at start-up.
    it('refuses a SESSION_SECRET that lists no secret at all', () => {
      expect(problemsAbout({ ...PRODUCTION, SESSION_SECRET: ',' }, 'SESSION_SECRET')).toHaveLength(1);
    });

    it.each([['true', true], ['FALSE', false], ['1', true], ['no', false]])('reads TELEMETRY_ENABLED=%j as %j', (value, expected) => {
      expect(loadConfig({ TELEMETRY_ENABLED: value }).telemetry.enabled).toBe(expected);
    });

    it('splits OIDC_SCOPES on spaces and commas', () => {
      expect(loadConfig({ OIDC_SCOPES: 'openid, profile  email' }).oidc.scopes).toEqual(['openid', 'profile', 'email']);
    });
  });

  describe('production', () => {
    it.each(['OIDC_ISSUER', 'SESSION_SECRET', 'REDIS_URL'])('refuses to run without %s', (variable) => {
      const env = { ...PRODUCTION };
      delete env[variable];
      expect(problemsAbout(env, variable)).toEqual([expect.stringContaining('required in production')]);
    });

    it('refuses an http PUBLIC_URL', () => {
      expect(problemsAbout({ ...PRODUCTION, PUBLIC_URL: 'http://app.example.com' }, 'PUBLIC_URL')).toEqual([expect.stringContaining('must be https in production')]);
    });

    it('refuses the default http://localhost PUBLIC_URL', () => {
      const env = { ...PRODUCTION };
      delete env.PUBLIC_URL;
      expect(problemsAbout(env, 'PUBLIC_URL')).toHaveLength(1);
    });

    it('refuses an http OIDC_ISSUER', () => {
      expect(problemsAbout({ ...PRODUCTION, OIDC_ISSUER: 'http://login.example.com' }, 'OIDC_ISSUER')).toEqual([expect.stringContaining('must be https in production')]);
    });

    it('reports every production refusal at once', () => {
      const variables = problemsFor({ ENVIRONMENT: 'production' }).map((line) => line.split(':')[0]);
      expect(variables.sort()).toEqual(['OIDC_ISSUER', 'PUBLIC_URL', 'REDIS_URL', 'SESSION_SECRET']);
    });

    it('accepts Sentinel instead of REDIS_URL', () => {
      const env: NodeJS.ProcessEnv = { ...PRODUCTION, REDIS_SENTINELS: 'sentinel-a:26379', REDIS_SENTINEL_NAME: 'mymaster' };
      delete env.REDIS_URL;
      expect(loadConfig(env).redis.kind).toBe('sentinel');
    });

    it('accepts Cluster instead of REDIS_URL', () => {
      const env: NodeJS.ProcessEnv = { ...PRODUCTION, REDIS_CLUSTER_NODES: 'redis-0:6379' };
      delete env.REDIS_URL;
      expect(loadConfig(env).redis.kind).toBe('cluster');
    });

    it('allows an http issuer outside production', () => {
      expect(loadConfig({ OIDC_ISSUER: 'http://localhost:9000', OIDC_CLIENT_ID: 'c', OIDC_CLIENT_SECRET: 's' }).oidc.kind).toBe('external');
    });
  });

  describe('cross-checks', () => {
    it('needs OIDC_CLIENT_ID and OIDC_CLIENT_SECRET with OIDC_ISSUER', () => {
      const variables = problemsFor({ OIDC_ISSUER: 'https://login.example.com' }).map((line) => line.split(':')[0]);
      expect(variables.sort()).toEqual(['OIDC_CLIENT_ID', 'OIDC_CLIENT_SECRET']);
    });

    it('needs OIDC_CLIENT_SECRET when only the client id is given', () => {
      expect(problemsFor({ OIDC_ISSUER: 'https://login.example.com', OIDC_CLIENT_ID: 'bff' })).toEqual([
        expect.stringMatching(/^OIDC_CLIENT_SECRET: is required when OIDC_ISSUER is set/),
      ]);
    });

    it('needs REDIS_SENTINEL_NAME with REDIS_SENTINELS', () => {
      expect(problemsFor({ REDIS_SENTINELS: 'sentinel-a:26379' })).toEqual([expect.stringMatching(/^REDIS_SENTINEL_NAME: is required with REDIS_SENTINELS.*example: REDIS_SENTINEL_NAME=mymaster/)]);
    });

    it('refuses Sentinel and Cluster together', () => {
      expect(problemsAbout({ REDIS_SENTINELS: 'sentinel-a:26379', REDIS_SENTINEL_NAME: 'm', REDIS_CLUSTER_NODES: 'redis-0:6379' }, 'REDIS_CLUSTER_NODES')).toHaveLength(1);
    });

    it('refuses an absolute lifetime shorter than the idle timeout', () => {
      expect(problemsFor({ SESSION_IDLE_TTL_SECONDS: '3600', SESSION_ABSOLUTE_TTL_SECONDS: '1800' })).toEqual([
        expect.stringMatching(/^SESSION_ABSOLUTE_TTL_SECONDS: must be at least SESSION_IDLE_TTL_SECONDS \(3600\)/),
      ]);
    });

    it('accepts an absolute lifetime equal to the idle timeout', () => {
      expect(loadConfig({ SESSION_IDLE_TTL_SECONDS: '3600', SESSION_ABSOLUTE_TTL_SECONDS: '3600' }).session.absoluteTtlSeconds).toBe(3600);
    });

    it('does not blame a variable twice when it already failed its own check', () => {
      expect(problemsFor({ SESSION_IDLE_TTL_SECONDS: '3600', SESSION_ABSOLUTE_TTL_SECONDS: '100' })).toEqual([
        expect.stringMatching(/^SESSION_ABSOLUTE_TTL_SECONDS: must be at least 300/),
      ]);
    });
  });

  describe('TRUSTED_PROXIES', () => {
    it('accepts IPv4 and IPv6 CIDRs and bare addresses', () => {
      expect(loadConfig({ TRUSTED_PROXIES: '10.0.0.0/8, fd00::/8, 192.0.2.1, ::1' }).server.trustedProxies).toEqual(['10.0.0.0/8', 'fd00::/8', '192.0.2.1', '::1']);
    });

    it.each(['proxy.internal', '10.0.0.0/33', 'fd00::/129', '10.0.0.0/8/8', '10.0.0.0/x', '10.0.0.0/-1', '300.0.0.1/8', '10.0.0.0/8.5'])(
      'refuses %j',
      (cidr) => {
        expect(problemsAbout({ TRUSTED_PROXIES: cidr }, 'TRUSTED_PROXIES')).toEqual([expect.stringContaining(`"${cidr}" is not an IPv4 or IPv6 CIDR`)]);
      },
    );

    // Number('') is 0: "10.0.0.1/" passes as /0 and TrustedProxies then
    // trusts every IPv4 address to send X-Forwarded-*.
    it('refuses a CIDR with an empty prefix length', () => {
      expect(problemsAbout({ TRUSTED_PROXIES: '10.0.0.1/' }, 'TRUSTED_PROXIES')).toHaveLength(1);
    });

    it('reports every bad CIDR in the list', () => {
      expect(problemsAbout({ TRUSTED_PROXIES: '10.0.0.0/8,bad-one,fd00::/200' }, 'TRUSTED_PROXIES')).toHaveLength(2);
    });
  });

  describe('ROUTES_FILE', () => {
    it('loads a YAML routes file', () => {
      const path = routesFile('routes.yaml', 'routes:\n  - name: orders\n    host: app.example.com\n    pathPrefix: /api/orders\n');
      expect(loadConfig({ ROUTES_FILE: path }).routes).toEqual([
        { name: 'orders', host: 'app.example.com', pathPrefix: '/api/orders', auth: 'session', audience: undefined, authz: 'none' },
      ]);
    });

    it('loads a JSON routes file', () => {
      const path = routesFile('routes.json', JSON.stringify({ routes: [{ name: 'assets', pathPrefix: '/static', auth: 'public' }] }));
      expect(loadConfig({ ROUTES_FILE: path }).routes).toMatchObject([{ name: 'assets', pathPrefix: '/static', auth: 'public' }]);
    });

    it('freezes the routes it loaded', () => {
      const path = routesFile('frozen.yaml', 'routes: [{ name: a, pathPrefix: /a }]');
      const config = loadConfig({ ROUTES_FILE: path });
      expect([Object.isFrozen(config.routes), Object.isFrozen(config.routes[0])]).toEqual([true, true]);
    });

    it('reports a file that does not exist in one line with the path', () => {
      const path = join(directory, 'missing.yaml');
      expect(problemsFor({ ROUTES_FILE: path })).toEqual([
        `ROUTES_FILE: ${path} cannot be read (ENOENT) (example: ROUTES_FILE=/etc/bff/routes.yaml)`,
      ]);
    });

    it('reports an unknown key in the file with the path and the field', () => {
      const path = routesFile('unknown-key.yaml', 'routes: [{ name: a, pathPrefix: /a, upstream: x }]');
      expect(problemsFor({ ROUTES_FILE: path })).toEqual([expect.stringMatching(new RegExp(`^ROUTES_FILE: ${path} routes\\.0: .*upstream`))]);
    });

    it('reports every problem of the file at once', () => {
      const path = routesFile('two-problems.json', JSON.stringify({ routes: [{ name: 'a', pathPrefix: 'a' }, { name: 'b', pathPrefix: '/b', auth: 'x' }] }));
      expect(problemsAbout({ ROUTES_FILE: path }, 'ROUTES_FILE')).toHaveLength(2);
    });

    it('reports a duplicate host and prefix', () => {
      const path = routesFile('duplicate.yaml', 'routes: [{ name: a, pathPrefix: /a }, { name: b, pathPrefix: /a/ }]');
      expect(problemsFor({ ROUTES_FILE: path })).toEqual([expect.stringContaining('duplicates host+pathPrefix')]);
    });

    it('needs PDP_URL when a route uses authz: pdp', () => {
      const path = routesFile('pdp.yaml', 'routes: [{ name: orders, pathPrefix: /api/orders, authz: pdp }, { name: admin, pathPrefix: /admin, authz: pdp }]');
      expect(problemsFor({ ROUTES_FILE: path })).toEqual([expect.stringMatching(/^PDP_URL: is required: routes orders, admin use authz: pdp \(example: /)]);
    });

    it('accepts authz: pdp with PDP_URL', () => {
      const path = routesFile('pdp-ok.yaml', 'routes: [{ name: orders, pathPrefix: /api/orders, authz: pdp }]');
      expect(loadConfig({ ROUTES_FILE: path, PDP_URL: 'http://opa:8181/v1/data/bff/allow' }).pdp.url).toBe('http://opa:8181/v1/data/bff/allow');
    });

    it('reports routes problems alongside other variables', () => {
      const variables = problemsFor({ ROUTES_FILE: join(directory, 'absent.json'), PORT: 'x' }).map((line) => line.split(':')[0]);
      expect(variables.sort()).toEqual(['PORT', 'ROUTES_FILE']);
    });
  });

  describe('TLS_CERT_FILE and TLS_KEY_FILE', () => {
    let certificates: TestCertificates;
    let other: TestCertificates;
    beforeAll(() => {
      certificates = makeTestCertificates();
      other = makeTestCertificates();
    });
    afterAll(() => {
      certificates.remove();
      other.remove();
    });

    it('serves plain HTTP when neither is set', () => {
      expect(loadConfig({}).server.tls).toBeUndefined();
    });

    it('reads the certificate and key and keeps the certificate expiry', () => {
      const tls = loadConfig({ TLS_CERT_FILE: certificates.certFile, TLS_KEY_FILE: certificates.keyFile }).server.tls;
      expect(tls?.cert).toContain('BEGIN CERTIFICATE');
      expect(tls?.key).toContain('PRIVATE KEY');
      expect(tls?.notAfter.getTime()).toBeGreaterThan(Date.now());
    });

    it('refuses one without the other, naming the missing one', () => {
      expect(problemsFor({ TLS_CERT_FILE: certificates.certFile })).toEqual([expect.stringMatching(/^TLS_KEY_FILE: is required with TLS_CERT_FILE/)]);
      expect(problemsFor({ TLS_KEY_FILE: certificates.keyFile })).toEqual([expect.stringMatching(/^TLS_CERT_FILE: is required with TLS_KEY_FILE/)]);
    });

    it('refuses a file that cannot be read, with its path', () => {
      const missing = join(directory, 'absent.crt');
      expect(problemsFor({ TLS_CERT_FILE: missing, TLS_KEY_FILE: certificates.keyFile })).toEqual([
        expect.stringMatching(new RegExp(`^TLS_CERT_FILE: ${missing} cannot be read \\(ENOENT\\)`)),
      ]);
    });

    it('refuses a certificate file that holds no certificate, and a key file that holds no key', () => {
      expect(problemsFor({ TLS_CERT_FILE: certificates.keyFile, TLS_KEY_FILE: certificates.keyFile })).toEqual([expect.stringMatching(/^TLS_CERT_FILE: .* does not hold a PEM certificate/)]);
      expect(problemsFor({ TLS_CERT_FILE: certificates.certFile, TLS_KEY_FILE: certificates.certFile })).toEqual([expect.stringMatching(/^TLS_KEY_FILE: .* does not hold a PEM private key/)]);
    });

    it('refuses a key that is not the certificate\'s', () => {
      expect(problemsFor({ TLS_CERT_FILE: certificates.certFile, TLS_KEY_FILE: other.keyFile })).toEqual([expect.stringMatching(/^TLS_KEY_FILE: .* is not the private key of the certificate in /)]);
    });
  });

  describe('OIDC_GROUPS_CLAIM', () => {
    it('is unset by default: groups, else roles', () => {
      expect(loadConfig({}).oidc.groupsClaim).toBeUndefined();
    });

    it.each(['groups', 'realm_access.roles', 'https://example.com/groups', 'resource_access.bff-gateway.roles'])('accepts %s', (path) => {
      expect(loadConfig({ OIDC_GROUPS_CLAIM: path }).oidc.groupsClaim).toBe(path);
    });

    it.each(['realm_access..roles', '.groups', 'groups.', 'my groups'])('refuses %j with one line', (path) => {
      expect(problemsAbout({ OIDC_GROUPS_CLAIM: path }, 'OIDC_GROUPS_CLAIM')).toHaveLength(1);
    });
  });

  describe('OIDC_CLIENT_AUTH_METHOD and OIDC_CLIENT_PRIVATE_KEY_FILE', () => {
    const ISSUER = { OIDC_ISSUER: 'https://login.example.com/realms/main', OIDC_CLIENT_ID: 'bff-gateway' };
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });

    function keyFile(name: string, content: string | object): string {
      return routesFile(name, typeof content === 'string' ? content : JSON.stringify(content));
    }
    const pem = (key: KeyObject) => key.export({ format: 'pem', type: 'pkcs8' }) as string;
    const jwk = (key: KeyObject) => key.export({ format: 'jwk' });
    /** RFC 7638, computed here independently of the gateway's code. */
    function thumbprint(publicJwk: JsonWebKey): string {
      const members = publicJwk.kty === 'RSA' ? { e: publicJwk.e, kty: 'RSA', n: publicJwk.n } : { crv: publicJwk.crv, kty: publicJwk.kty, x: publicJwk.x, y: publicJwk.y };
      return createHash('sha256').update(JSON.stringify(members)).digest('base64url');
    }
    function privateKeyJwt(file: string, extra: NodeJS.ProcessEnv = {}) {
      const oidc = loadConfig({ ...ISSUER, OIDC_CLIENT_AUTH_METHOD: 'private_key_jwt', OIDC_CLIENT_PRIVATE_KEY_FILE: file, ...extra }).oidc;
      if (oidc.kind !== 'external' || oidc.clientAuthentication.method !== 'private_key_jwt') throw new Error('expected private_key_jwt');
      return oidc.clientAuthentication.privateKey;
    }
    function keyProblems(content: string | object, extra: NodeJS.ProcessEnv = {}): readonly string[] {
      const file = keyFile(`key-${Math.random().toString(36).slice(2)}`, content);
      return problemsAbout({ ...ISSUER, OIDC_CLIENT_AUTH_METHOD: 'private_key_jwt', OIDC_CLIENT_PRIVATE_KEY_FILE: file, ...extra }, 'OIDC_CLIENT_PRIVATE_KEY_FILE');
    }

    it('defaults to client_secret_basic with the client secret', () => {
      const oidc = loadConfig({ ...ISSUER, OIDC_CLIENT_SECRET: 's3cret' }).oidc;
      expect(oidc).toMatchObject({ clientAuthentication: { method: 'client_secret_basic', clientSecret: 's3cret' } });
    });

    it('uses client_secret_post with the client secret', () => {
      const oidc = loadConfig({ ...ISSUER, OIDC_CLIENT_SECRET: 's3cret', OIDC_CLIENT_AUTH_METHOD: 'client_secret_post' }).oidc;
      expect(oidc).toMatchObject({ clientAuthentication: { method: 'client_secret_post', clientSecret: 's3cret' } });
    });

    it('refuses an unknown method with the three it knows', () => {
      expect(problemsAbout({ ...ISSUER, OIDC_CLIENT_AUTH_METHOD: 'client_secret_jwt' }, 'OIDC_CLIENT_AUTH_METHOD')).toEqual([
        'OIDC_CLIENT_AUTH_METHOD: must be client_secret_basic, client_secret_post or private_key_jwt (example: OIDC_CLIENT_AUTH_METHOD=private_key_jwt)',
      ]);
    });

    it('needs OIDC_CLIENT_SECRET with client_secret_post, naming the method', () => {
      expect(problemsFor({ ...ISSUER, OIDC_CLIENT_AUTH_METHOD: 'client_secret_post' })).toEqual([
        expect.stringMatching(/^OIDC_CLIENT_SECRET: is required when OIDC_ISSUER is set with OIDC_CLIENT_AUTH_METHOD=client_secret_post .*\(example: /),
      ]);
    });

    it('reads an RSA PKCS#8 PEM key for private_key_jwt: RS256, and the RFC 7638 thumbprint as kid', () => {
      const key = privateKeyJwt(keyFile('rsa.pem', pem(rsa.privateKey)));
      expect(key.algorithm).toBe('RS256');
      expect(key.kid).toBe(thumbprint(jwk(rsa.publicKey)));
      expect(key.publicJwk).toEqual({ ...jwk(rsa.publicKey), kid: key.kid, alg: 'RS256', use: 'sig' });
    });

    it('does not need OIDC_CLIENT_SECRET with private_key_jwt', () => {
      expect(() => privateKeyJwt(keyFile('rsa-no-secret.pem', pem(rsa.privateKey)))).not.toThrow();
    });

    it('reads an EC JWK: ES256 from the curve, and the JWK\'s own kid', () => {
      const key = privateKeyJwt(keyFile('ec.jwk.json', { ...jwk(ec.privateKey), kid: 'bff-2026-01' }));
      expect([key.algorithm, key.kid]).toEqual(['ES256', 'bff-2026-01']);
      expect(key.publicJwk).not.toHaveProperty('d');
    });

    it('reads a JWK set that holds one key, and takes the JWK\'s alg', () => {
      const key = privateKeyJwt(keyFile('rsa.jwks.json', { keys: [{ ...jwk(rsa.privateKey), alg: 'PS256' }] }));
      expect(key.algorithm).toBe('PS256');
      expect(key.kid).toBe(thumbprint(jwk(rsa.publicKey)));
    });

    it('signs with the algorithm OIDC_CLIENT_PRIVATE_KEY_ALG names when the key allows it', () => {
      expect(privateKeyJwt(keyFile('rsa-ps.pem', pem(rsa.privateKey)), { OIDC_CLIENT_PRIVATE_KEY_ALG: 'PS256' }).algorithm).toBe('PS256');
    });

    it('reads an Ed25519 key as EdDSA', () => {
      expect(privateKeyJwt(keyFile('ed25519.pem', pem(generateKeyPairSync('ed25519').privateKey))).algorithm).toBe('EdDSA');
    });

    it('keeps the key material out of a JSON dump of the configuration and freezes it', () => {
      const config = loadConfig({ ...ISSUER, OIDC_CLIENT_AUTH_METHOD: 'private_key_jwt', OIDC_CLIENT_PRIVATE_KEY_FILE: keyFile('rsa-dump.pem', pem(rsa.privateKey)) });
      const dump = JSON.stringify(config);
      expect(dump).not.toContain(String(jwk(rsa.privateKey).d));
      expect(dump).not.toContain('PRIVATE KEY');
      expect(Object.isFrozen(config.oidc.kind === 'external' ? config.oidc.clientAuthentication : undefined)).toBe(true);
    });

    it('needs OIDC_CLIENT_PRIVATE_KEY_FILE with private_key_jwt, in one line', () => {
      expect(problemsFor({ ...ISSUER, OIDC_CLIENT_AUTH_METHOD: 'private_key_jwt' })).toEqual([
        'OIDC_CLIENT_PRIVATE_KEY_FILE: is required with OIDC_CLIENT_AUTH_METHOD=private_key_jwt (a PEM or JWK private key) (example: OIDC_CLIENT_PRIVATE_KEY_FILE=/etc/bff/oidc/client-key.pem)',
      ]);
    });

    it('refuses a key file with a client_secret method rather than ignore it', () => {
      const file = keyFile('rsa-unused.pem', pem(rsa.privateKey));
      expect(problemsFor({ ...ISSUER, OIDC_CLIENT_SECRET: 's3cret', OIDC_CLIENT_PRIVATE_KEY_FILE: file })).toEqual([
        expect.stringMatching(/^OIDC_CLIENT_PRIVATE_KEY_FILE: is used only with OIDC_CLIENT_AUTH_METHOD=private_key_jwt \(it is client_secret_basic\)/),
      ]);
    });

    it('refuses OIDC_CLIENT_PRIVATE_KEY_ALG without private_key_jwt, and an algorithm it does not know', () => {
      expect(problemsAbout({ ...ISSUER, OIDC_CLIENT_SECRET: 's3cret', OIDC_CLIENT_PRIVATE_KEY_ALG: 'PS256' }, 'OIDC_CLIENT_PRIVATE_KEY_ALG')).toEqual([
        expect.stringMatching(/^OIDC_CLIENT_PRIVATE_KEY_ALG: is used only with OIDC_CLIENT_AUTH_METHOD=private_key_jwt/),
      ]);
      expect(problemsAbout({ OIDC_CLIENT_PRIVATE_KEY_ALG: 'HS256' }, 'OIDC_CLIENT_PRIVATE_KEY_ALG')).toEqual([
        expect.stringMatching(/^OIDC_CLIENT_PRIVATE_KEY_ALG: must be one of RS256, .*EdDSA \(example: OIDC_CLIENT_PRIVATE_KEY_ALG=PS256\)$/),
      ]);
    });

    it('names a key file that cannot be read, with its path', () => {
      const missing = join(directory, 'absent-key.pem');
      expect(problemsFor({ ...ISSUER, OIDC_CLIENT_AUTH_METHOD: 'private_key_jwt', OIDC_CLIENT_PRIVATE_KEY_FILE: missing })).toEqual([
        expect.stringMatching(new RegExp(`^OIDC_CLIENT_PRIVATE_KEY_FILE: ${missing} cannot be read \\(ENOENT\\)`)),
      ]);
    });

    it('reads and checks a key file even without OIDC_ISSUER, so a bad one stops the start', () => {
      expect(problemsFor({ OIDC_CLIENT_PRIVATE_KEY_FILE: join(directory, 'absent-key.pem') })).toEqual([
        expect.stringMatching(/^OIDC_CLIENT_PRIVATE_KEY_FILE: .* cannot be read/),
      ]);
    });

    it.each<[string, () => string | object, RegExp]>([
      ['text that is neither PEM nor JSON', () => 'not a key', /is neither a PEM private key nor a JWK \(example/],
      ['JSON that does not parse', () => '{ "kty": ', /its JSON does not parse/],
      ['JSON without kty', () => ({ hello: 'world' }), /is JSON but not a JWK/],
      ['a public PEM key', () => rsa.publicKey.export({ format: 'pem', type: 'spki' }) as string, /holds no private key/],
      ['a public JWK', () => jwk(rsa.publicKey), /holds a public key only/],
      ['a symmetric JWK', () => ({ kty: 'oct', k: 'c2VjcmV0' }), /holds a symmetric key/],
      ['an encrypted PEM', () => rsa.privateKey.export({ format: 'pem', type: 'pkcs8', cipher: 'aes-256-cbc', passphrase: 'pass' }) as string, /holds an encrypted key/],
      ['a broken PEM', () => '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n', /does not hold a PEM private key that can be parsed/],
      ['a JWK set of two keys', () => ({ keys: [jwk(rsa.privateKey), jwk(ec.privateKey)] }), /is a JWK set of 2 keys/],
      ['a 1024-bit RSA key', () => pem(generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey), /holds a 1024-bit RSA key; use at least 2048 bits/],
      ['an EC key on secp256k1', () => pem(generateKeyPairSync('ec', { namedCurve: 'secp256k1' }).privateKey), /on curve secp256k1; use P-256, P-384 or P-521/],
      ['an X25519 key', () => pem(generateKeyPairSync('x25519').privateKey), /holds a x25519 key/],
      ['a JWK whose alg is not for signing', () => ({ ...jwk(rsa.privateKey), alg: 'RSA-OAEP' }), /says alg "RSA-OAEP", which an RSA key cannot sign a client assertion with/],
    ])('refuses %s in one line naming the file', (_what, content, message) => {
      const problems = keyProblems(content());
      expect(problems).toHaveLength(1);
      expect(problems[0]).toMatch(/^OIDC_CLIENT_PRIVATE_KEY_FILE: \/\S+ /);
      expect(problems[0]).toMatch(message);
      expect(problems[0]).toMatch(/\(example: OIDC_CLIENT_PRIVATE_KEY_FILE=.+\)$/);
    });

    it('refuses an algorithm the key cannot sign, and one that contradicts the JWK\'s alg', () => {
      expect(keyProblems(pem(ec.privateKey), { OIDC_CLIENT_PRIVATE_KEY_ALG: 'RS256' })).toEqual([expect.stringMatching(/holds an EC key on prime256v1, which cannot sign RS256 \(one of ES256\)/)]);
      expect(keyProblems({ ...jwk(rsa.privateKey), alg: 'RS256' }, { OIDC_CLIENT_PRIVATE_KEY_ALG: 'PS256' })).toEqual([expect.stringMatching(/says alg RS256, but OIDC_CLIENT_PRIVATE_KEY_ALG asks for PS256/)]);
    });

    it('never quotes the key material in a problem', () => {
      const broken = { ...jwk(rsa.privateKey), n: 'not-a-modulus' };
      expect(keyProblems(broken).join('\n')).not.toContain(String(broken.d));
    });

    it('reports a bad key beside other problems, all at once', () => {
      const file = keyFile('garbage.pem', 'garbage');
      const variables = problemsFor({ OIDC_ISSUER: ISSUER.OIDC_ISSUER, OIDC_CLIENT_AUTH_METHOD: 'private_key_jwt', OIDC_CLIENT_PRIVATE_KEY_FILE: file, PORT: 'x' }).map((line) => line.split(':')[0]);
      expect(variables.sort()).toEqual(['OIDC_CLIENT_ID', 'OIDC_CLIENT_PRIVATE_KEY_FILE', 'PORT']);
    });
  });
});
