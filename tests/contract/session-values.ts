// Canonical values for the session store contract: sessions shaped like the
// ones a real login stores (JWT tokens that carry the profile, an opaque
// refresh token, binding hashes, the IdP's session id).
import { randomBytes } from 'node:crypto';
import type { StoredSession, TokenSet } from '../../src/session/session-data';

export const SECRET = 'contract-session-secret-0123456789abcdefghijkl';
export const PREVIOUS_SECRET = 'contract-previous-secret-0123456789abcdefghij';

/** A 43-character session id, distinct per suffix (at most 23 characters). */
export function sessionId(suffix: string): string {
  return `contract-session-id-${suffix}`.padEnd(43, 'x').slice(0, 43);
}

function base64url(value: string | Buffer): string {
  return Buffer.from(value).toString('base64url');
}

/** A compact JWS as an IdP signs it: the claims in clear (base64url) and 256 bytes of RS256 signature. */
export function jwt(claims: Record<string, unknown>): string {
  return `${base64url(JSON.stringify({ alg: 'RS256', typ: 'JWT', kid: 'contract-key' }))}.${base64url(JSON.stringify(claims))}.${base64url(randomBytes(256))}`;
}

/** What a logged-in session of `sub` holds; `sid` is the IdP session it came from. */
export function sessionOf(sub: string, sid: string | undefined, absoluteExpiresAt: number): StoredSession {
  const now = absoluteExpiresAt - 12 * 3_600_000;
  const profile = { sub, name: `${sub} Example`, email: `${sub}@example.test`, preferred_username: sub };
  const issued = { iss: 'https://idp.example.test/realms/contract', aud: 'bff-gateway', iat: Math.floor(now / 1000), exp: Math.floor(now / 1000) + 300, ...(sid ? { sid } : {}) };
  return {
    auth: {
      user: { sub, name: profile.name, email: profile.email, preferredUsername: sub, groups: ['staff', `team-of-${sub}`] },
      tokens: {
        accessToken: jwt({ ...issued, ...profile, typ: 'Bearer', scope: 'openid profile email' }),
        refreshToken: randomBytes(32).toString('base64url'),
        idToken: jwt({ ...issued, ...profile, typ: 'ID', nonce: randomBytes(16).toString('base64url') }),
        accessTokenExpiresAt: now + 300_000,
        accessTokenIssuedAt: now,
      },
      createdAt: now,
      absoluteExpiresAt,
      binding: { userAgent: `ua-hash-of-${sub}`.padEnd(22, '0').slice(0, 22) },
      idpSessionId: sid,
    },
  };
}

export function withTokens(record: StoredSession, tokens: Partial<TokenSet>): StoredSession {
  return { auth: { ...record.auth, tokens: { ...record.auth.tokens, ...tokens } } };
}

/**
 * A session as the repository's test IdP (oidc-provider) leaves it: opaque
 * 43-character access and refresh tokens, and an RS256 ID token that carries
 * the profile, the nonce and the IdP session id. Its Redis footprint is the
 * one issue 8.10 measured at 2.0 KiB.
 */
export function testIdpShapedSession(sub: string, sid: string, now: number): StoredSession {
  const idClaims = {
    sub,
    name: `${sub} Example`,
    preferred_username: sub,
    groups: ['admins', 'users'],
    email: `${sub}@example.test`,
    email_verified: true,
    nonce: randomBytes(32).toString('base64url'),
    sid,
    aud: 'bff-test',
    exp: Math.floor(now / 1000) + 3600,
    iat: Math.floor(now / 1000),
    iss: 'http://localhost:35923',
  };
  return {
    auth: {
      user: { sub, name: idClaims.name, email: idClaims.email, preferredUsername: sub, groups: idClaims.groups },
      tokens: {
        accessToken: randomBytes(32).toString('base64url').slice(0, 43),
        refreshToken: randomBytes(32).toString('base64url').slice(0, 43),
        idToken: `${base64url(JSON.stringify({ alg: 'RS256', kid: 'test-idp-rs256' }))}.${base64url(JSON.stringify(idClaims))}.${base64url(randomBytes(256))}`,
        accessTokenExpiresAt: now + 300_000,
        accessTokenIssuedAt: now,
      },
      createdAt: now,
      absoluteExpiresAt: now + 12 * 3_600_000,
      binding: { userAgent: randomBytes(17).toString('base64url').slice(0, 22) },
      idpSessionId: sid,
      // What every login writes since sessions are listed for their users.
      frontend: 'default',
      device: 'Chrome 130 on Linux',
    },
  };
}
