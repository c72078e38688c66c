import { createHmac, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { exportJWK, SignJWT, type JWK } from 'jose';
import pino from 'pino';
import { DependencyUnavailable } from '../../src/errors/app-error';
import { JwksBearerTokenVerifier, checkAccessTokenClaims, type IssuerKeys } from '../../src/oidc/bearer-token-verifier';
import { JWKS_TIMING } from '../../src/oidc/jwks-cache';
import type { Breaker } from '../../src/resilience/breaker';
import { GatewayMetrics } from '../../src/telemetry/metrics';

const ISSUER = 'https://idp.example.test/realms/test';
const JWKS_URI = `${ISSUER}/protocol/openid-connect/certs`;
const AUDIENCE = 'orders-api';
const START = Date.UTC(2026, 11, 1, 12, 0, 0);
const seconds = (epochMs: number) => Math.floor(epochMs / 1000);

interface SigningKey {
  readonly kid: string;
  readonly alg: string;
  readonly privateKey: KeyObject;
  readonly publicJwk: JWK;
}

function rsaKey(kid: string, alg = 'RS256'): SigningKey {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { kid, alg, privateKey, publicJwk: { ...(publicKey.export({ format: 'jwk' }) as JWK), kid, alg, use: 'sig' } };
}

function ecKey(kid: string): SigningKey {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { kid, alg: 'ES256', privateKey, publicJwk: { ...(publicKey.export({ format: 'jwk' }) as JWK), kid, alg: 'ES256', use: 'sig' } };
}

function edKey(kid: string): SigningKey {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return { kid, alg: 'EdDSA', privateKey, publicJwk: { ...(publicKey.export({ format: 'jwk' }) as JWK), kid, alg: 'EdDSA', use: 'sig' } };
}

// Generated once: RSA key generation is the slow part of these tests.
const KEY = rsaKey('key-1');
const ROTATED = rsaKey('key-2');
const UNPUBLISHED = rsaKey('key-never-published');

/** The IdP's JWKS endpoint, as a fetch function: counts its requests; `keys` and `isDown` are what it serves. */
class KeySetEndpoint {
  requests = 0;
  keys: JWK[] = [KEY.publicJwk];
  isDown = false;
  private release: (() => void) | undefined;

  /** Holds every answer until `open()`: requests that arrive meanwhile can be seen waiting on one fetch. */
  hold(): void {
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => (release = resolve));
    this.release = release;
    this.gate = gate;
  }

  open(): void {
    this.release?.();
    this.gate = undefined;
  }

  private gate: Promise<void> | undefined;

  readonly fetch = (async (url: string | URL | Request) => {
    this.requests += 1;
    expect(String(url)).toBe(JWKS_URI);
    if (this.gate) await this.gate;
    if (this.isDown) return new Response('unavailable', { status: 503 });
    return Response.json({ keys: this.keys });
  }) as typeof fetch;
}

class TestClock {
  constructor(public nowMs = START) {}
  now(): number {
    return this.nowMs;
  }
  advance(ms: number): void {
    this.nowMs += ms;
  }
}

const passThrough: Breaker = { dependency: 'idp', isOpen: false, run: (operation) => operation() };

function setUp(options: { issuerKeys?: IssuerKeys | undefined; groupsClaim?: string } = {}) {
  const endpoint = new KeySetEndpoint();
  const clock = new TestClock();
  const metrics = new GatewayMetrics({ collectProcessMetrics: false });
  const verifier = new JwksBearerTokenVerifier({
    issuerKeys: () => ('issuerKeys' in options ? options.issuerKeys : { issuer: ISSUER, jwksUri: JWKS_URI }),
    groupsClaim: options.groupsClaim,
    timeoutMs: 1000,
    breaker: passThrough,
    metrics,
    logger: pino({ level: 'silent' }),
    clock,
    fetch: endpoint.fetch,
  });
  return { endpoint, clock, metrics, verifier };
}

function claims(clock: TestClock, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return { iss: ISSUER, aud: AUDIENCE, sub: 'reporting-job', iat: seconds(clock.now()), exp: seconds(clock.now()) + 300, ...overrides };
}

async function sign(payload: Record<string, unknown>, key: SigningKey = KEY, header: Record<string, unknown> = {}): Promise<string> {
  return new SignJWT(payload).setProtectedHeader({ typ: 'at+jwt', ...header, alg: key.alg, kid: key.kid }).sign(key.privateKey);
}

function unsigned(header: Record<string, unknown>, payload: Record<string, unknown>, signature = ''): string {
  const part = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${part(header)}.${part(payload)}.${signature}`;
}

describe('JwksBearerTokenVerifier', () => {
  describe('a token the IdP signed for the audience', () => {
    it('is valid, and its claims make the user: sub, email, email_verified, username and groups', async () => {
      const { verifier, clock } = setUp({ groupsClaim: 'realm_access.roles' });
      const token = await sign(claims(clock, { email: 'Jobs@Example.test', email_verified: true, preferred_username: 'jobs', realm_access: { roles: ['staff'] } }));
      expect(await verifier.verify(token, AUDIENCE)).toEqual({
        kind: 'valid',
        user: { sub: 'reporting-job', name: undefined, email: 'Jobs@Example.test', emailVerified: true, preferredUsername: 'jobs', groups: ['staff'] },
      });
    });

    it('is valid when aud is a list containing the audience', async () => {
      const { verifier, clock } = setUp();
      expect((await verifier.verify(await sign(claims(clock, { aud: ['account', AUDIENCE] })), AUDIENCE)).kind).toBe('valid');
    });

    it.each([['RS256 header typ JWT (Keycloak)', { typ: 'JWT' }], ['no typ', { typ: undefined }], ['application/at+jwt', { typ: 'application/at+jwt' }]])(
      'is valid with %s',
      async (_description, header) => {
        const { verifier, clock } = setUp();
        expect((await verifier.verify(await sign(claims(clock), KEY, header), AUDIENCE)).kind).toBe('valid');
      },
    );

    it.each([
      ['PS256', () => rsaKey('ps', 'PS256')],
      ['ES256', () => ecKey('es')],
      ['EdDSA', () => edKey('ed')],
    ])('is valid when signed %s by a published key', async (_alg, makeKey) => {
      const { verifier, endpoint, clock } = setUp();
      const key = makeKey();
      endpoint.keys = [key.publicJwk];
      expect((await verifier.verify(await sign(claims(clock), key), AUDIENCE)).kind).toBe('valid');
    });

    it('is counted as an IdP request to the jwks endpoint when the keys are fetched', async () => {
      const { verifier, clock, metrics } = setUp();
      await verifier.verify(await sign(claims(clock)), AUDIENCE);
      const text = await metrics.registry.metrics();
      expect(text).toMatch(/bff_idp_requests_total\{endpoint="jwks",status="200"\} 1/);
    });
  });

  describe('times, with 30 s of leeway', () => {
    it('answers expired for a token that expired more than 30 s ago', async () => {
      const { verifier, clock } = setUp();
      expect((await verifier.verify(await sign(claims(clock, { exp: seconds(clock.now()) - 31 })), AUDIENCE)).kind).toBe('expired');
    });

    it('still accepts a token that expired 20 s ago (clock skew)', async () => {
      const { verifier, clock } = setUp();
      expect((await verifier.verify(await sign(claims(clock, { exp: seconds(clock.now()) - 20 })), AUDIENCE)).kind).toBe('valid');
    });

    it('refuses a token not valid before a time more than 30 s ahead, and accepts one 20 s ahead', async () => {
      const { verifier, clock } = setUp();
      expect((await verifier.verify(await sign(claims(clock, { nbf: seconds(clock.now()) + 60 })), AUDIENCE)).kind).toBe('invalid');
      expect((await verifier.verify(await sign(claims(clock, { nbf: seconds(clock.now()) + 20 })), AUDIENCE)).kind).toBe('valid');
    });

    it('refuses a token without exp', async () => {
      const { verifier, clock } = setUp();
      expect((await verifier.verify(await sign(claims(clock, { exp: undefined })), AUDIENCE)).kind).toBe('invalid');
    });

    it('reads the gateway clock, not the system time', async () => {
      const { verifier, clock } = setUp();
      const token = await sign(claims(clock));
      clock.advance(400_000);
      expect((await verifier.verify(token, AUDIENCE)).kind).toBe('expired');
    });
  });

  describe('a token for someone else', () => {
    it('is invalid with another audience', async () => {
      const { verifier, clock } = setUp();
      expect(await verifier.verify(await sign(claims(clock, { aud: 'billing-api' })), AUDIENCE)).toMatchObject({ kind: 'invalid', problem: expect.stringContaining('aud') });
    });

    it('is invalid with no audience', async () => {
      const { verifier, clock } = setUp();
      expect((await verifier.verify(await sign(claims(clock, { aud: undefined })), AUDIENCE)).kind).toBe('invalid');
    });

    it('is invalid from another issuer, even signed with the right key', async () => {
      const { verifier, clock } = setUp();
      expect(await verifier.verify(await sign(claims(clock, { iss: 'https://evil.example.test' })), AUDIENCE)).toMatchObject({ kind: 'invalid', problem: expect.stringContaining('iss') });
    });

    it.each([['logout+jwt'], ['secevent+jwt'], ['dpop+jwt']])('is invalid with header typ %s: not an access token', async (typ) => {
      const { verifier, clock } = setUp();
      expect((await verifier.verify(await sign(claims(clock), KEY, { typ }), AUDIENCE)).kind).toBe('invalid');
    });

    it('is invalid when sender-constrained (cnf): its proof cannot be checked here', async () => {
      const { verifier, clock } = setUp();
      expect((await verifier.verify(await sign(claims(clock, { cnf: { jkt: 'abc' } })), AUDIENCE)).kind).toBe('invalid');
    });

    it.each([['absent', undefined], ['empty', ''], ['not a string', 42], ['too long', 'x'.repeat(257)]])('is invalid with a sub that is %s', async (_description, sub) => {
      const { verifier, clock } = setUp();
      expect((await verifier.verify(await sign(claims(clock, { sub })), AUDIENCE)).kind).toBe('invalid');
    });
  });

  describe('forgeries, refused without fetching the keys', () => {
    it('refuses alg none', async () => {
      const { verifier, endpoint, clock } = setUp();
      const token = unsigned({ alg: 'none', typ: 'at+jwt' }, claims(clock), 'x');
      expect((await verifier.verify(token, AUDIENCE)).kind).toBe('invalid');
      expect((await verifier.verify(unsigned({ alg: 'none' }, claims(clock)), AUDIENCE)).kind).toBe('invalid');
      expect(endpoint.requests).toBe(0);
    });

    it.each(['HS256', 'HS384', 'HS512'])('refuses %s keyed with the IdP public key (algorithm confusion)', async (alg) => {
      const { verifier, endpoint, clock } = setUp();
      const publicPem = createPublicKey({ key: KEY.publicJwk as never, format: 'jwk' }).export({ type: 'spki', format: 'pem' });
      const header = { alg, typ: 'at+jwt', kid: KEY.kid };
      const signingInput = unsigned(header, claims(clock)).slice(0, -1);
      const signature = createHmac(`sha${alg.slice(2)}`, publicPem).update(signingInput).digest('base64url');
      expect((await verifier.verify(`${signingInput}.${signature}`, AUDIENCE)).kind).toBe('invalid');
      expect(endpoint.requests).toBe(0);
    });

    it.each([
      ['not a JWT', 'opaque-token-value'],
      ['an empty token', ''],
      ['two parts', 'a.b'],
      ['a JWE (five parts)', 'a.b.c.d.e'],
      ['characters outside base64url', 'a.b.c+d'],
      ['over 16 KiB', `a.${'b'.repeat(16 * 1024)}.c`],
    ])('refuses %s', async (_description, token) => {
      const { verifier, endpoint } = setUp();
      expect((await verifier.verify(token, AUDIENCE)).kind).toBe('invalid');
      expect(endpoint.requests).toBe(0);
    });

    it('refuses a token whose signature does not match', async () => {
      const { verifier, clock } = setUp();
      const [header, payload] = (await sign(claims(clock))).split('.');
      const other = (await sign(claims(clock, { sub: 'someone-else' }))).split('.')[2];
      expect(await verifier.verify(`${header}.${payload}.${other}`, AUDIENCE)).toMatchObject({ kind: 'invalid', problem: expect.stringContaining('signature') });
    });

    it('refuses a token signed with an unpublished key that carries a published kid', async () => {
      const { verifier, clock } = setUp();
      const impostor = { ...UNPUBLISHED, kid: KEY.kid };
      expect((await verifier.verify(await sign(claims(clock), impostor), AUDIENCE)).kind).toBe('invalid');
    });
  });

  describe('the key set', () => {
    it('is fetched once for many tokens, not per request', async () => {
      const { verifier, endpoint, clock } = setUp();
      for (let index = 0; index < 5; index += 1) expect((await verifier.verify(await sign(claims(clock, { jti: String(index) })), AUDIENCE)).kind).toBe('valid');
      expect(endpoint.requests).toBe(1);
    });

    it('is fetched again for an unknown kid once the cooldown has passed, which picks up a rotated key', async () => {
      const { verifier, endpoint, clock } = setUp();
      expect((await verifier.verify(await sign(claims(clock)), AUDIENCE)).kind).toBe('valid');
      endpoint.keys = [KEY.publicJwk, ROTATED.publicJwk];
      clock.advance(JWKS_TIMING.cooldownMs);
      expect((await verifier.verify(await sign(claims(clock), ROTATED), AUDIENCE)).kind).toBe('valid');
      expect((await verifier.verify(await sign(claims(clock, { jti: 'again' }), ROTATED), AUDIENCE)).kind).toBe('valid');
      expect(endpoint.requests).toBe(2);
    });

    it('is not fetched again for unknown kids within the cooldown', async () => {
      const { verifier, endpoint, clock } = setUp();
      await verifier.verify(await sign(claims(clock)), AUDIENCE);
      endpoint.keys = [KEY.publicJwk, ROTATED.publicJwk];
      clock.advance(JWKS_TIMING.cooldownMs - 1);
      expect(await verifier.verify(await sign(claims(clock), ROTATED), AUDIENCE)).toMatchObject({ kind: 'invalid', problem: expect.stringContaining('key') });
      expect(endpoint.requests).toBe(1);
    });

    it('is fetched at most once per cooldown for a flood of made-up kids', async () => {
      const { verifier, endpoint, clock } = setUp();
      await verifier.verify(await sign(claims(clock)), AUDIENCE);
      clock.advance(JWKS_TIMING.cooldownMs);
      const forged = await Promise.all(Array.from({ length: 10 }, (_, index) => sign(claims(clock), { ...UNPUBLISHED, kid: `made-up-${index}` })));
      const checks = await Promise.all(forged.map((token) => verifier.verify(token, AUDIENCE)));
      expect(checks.every((check) => check.kind === 'invalid')).toBe(true);
      expect(endpoint.requests).toBe(2);
    });

    it('lets tokens with the new kid that arrive during the refresh wait for it instead of failing', async () => {
      const { verifier, endpoint, clock } = setUp();
      await verifier.verify(await sign(claims(clock)), AUDIENCE);
      endpoint.keys = [KEY.publicJwk, ROTATED.publicJwk];
      clock.advance(JWKS_TIMING.cooldownMs);
      const tokens = await Promise.all(Array.from({ length: 3 }, (_, index) => sign(claims(clock, { jti: String(index) }), ROTATED)));
      endpoint.hold();
      const checks = tokens.map((token) => verifier.verify(token, AUDIENCE));
      endpoint.open();
      expect((await Promise.all(checks)).map((check) => check.kind)).toEqual(['valid', 'valid', 'valid']);
      expect(endpoint.requests).toBe(2);
    });

    it('is refreshed in the background once older than its maximum age; the request in hand uses the keys it has', async () => {
      const { verifier, endpoint, clock } = setUp();
      await verifier.verify(await sign(claims(clock)), AUDIENCE);
      clock.advance(JWKS_TIMING.maxAgeMs);
      endpoint.keys = [ROTATED.publicJwk];
      endpoint.hold();
      // Answered from the old set while the refresh is held at the endpoint.
      expect((await verifier.verify(await sign(claims(clock)), AUDIENCE)).kind).toBe('valid');
      expect(endpoint.requests).toBe(2);
      endpoint.open();
      clock.advance(JWKS_TIMING.cooldownMs);
      await verifier.verify(await sign(claims(clock), ROTATED), AUDIENCE);
      // The old key is gone from the refreshed set.
      expect((await verifier.verify(await sign(claims(clock, { jti: 'old' })), AUDIENCE)).kind).toBe('invalid');
    });

    it('keeps serving known keys while the IdP is down', async () => {
      const { verifier, endpoint, clock } = setUp();
      await verifier.verify(await sign(claims(clock)), AUDIENCE);
      endpoint.isDown = true;
      clock.advance(JWKS_TIMING.maxAgeMs);
      expect((await verifier.verify(await sign(claims(clock)), AUDIENCE)).kind).toBe('valid');
      expect((await verifier.verify(await sign(claims(clock, { jti: 'later' })), AUDIENCE)).kind).toBe('valid');
    });

    it('fails closed with DependencyUnavailable when there are no keys yet and the IdP is down', async () => {
      const { verifier, endpoint, clock } = setUp();
      endpoint.isDown = true;
      await expect(verifier.verify(await sign(claims(clock)), AUDIENCE)).rejects.toBeInstanceOf(DependencyUnavailable);
    });

    it('fails closed when the refresh for an unknown kid fails', async () => {
      const { verifier, endpoint, clock } = setUp();
      await verifier.verify(await sign(claims(clock)), AUDIENCE);
      endpoint.isDown = true;
      clock.advance(JWKS_TIMING.cooldownMs);
      await expect(verifier.verify(await sign(claims(clock), ROTATED), AUDIENCE)).rejects.toBeInstanceOf(DependencyUnavailable);
    });

    it('fails closed when the IdP serves something that is not a key set', async () => {
      const { verifier, endpoint, clock } = setUp();
      endpoint.keys = 'not keys' as never;
      await expect(verifier.verify(await sign(claims(clock)), AUDIENCE)).rejects.toBeInstanceOf(DependencyUnavailable);
    });

    it('fails closed while the IdP metadata is not loaded', async () => {
      const { verifier, clock } = setUp({ issuerKeys: undefined });
      await expect(verifier.verify(await sign(claims(clock)), AUDIENCE)).rejects.toBeInstanceOf(DependencyUnavailable);
    });
  });
});

describe('checkAccessTokenClaims', () => {
  it('reads groups through OIDC_GROUPS_CLAIM, namespaced claims included', () => {
    const check = checkAccessTokenClaims({ alg: 'RS256' }, { sub: 'a', 'https://example.com/groups': ['ops'] }, 'https://example.com/groups');
    expect(check).toMatchObject({ kind: 'valid', user: { groups: ['ops'] } });
  });
});
