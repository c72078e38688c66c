import { randomBytes } from 'node:crypto';
import { constants, deflateRawSync, inflateRawSync } from 'node:zlib';
import fixture from '../fixtures/session-record-1d2242e.json';
import { codecDictionary, decodeSession, encodeSession } from '../../src/session/session-codec';
import type { StoredSession, TokenSet } from '../../src/session/session-data';
import { SessionSealer } from '../../src/session/session-sealer';

const NOW = 1_800_000_000_000;

function base64url(value: string | Buffer): string {
  return Buffer.from(value).toString('base64url');
}

/** A Keycloak-shaped RS256 token: header, claims, 256 bytes of signature. */
function jwt(claims: Record<string, unknown>): string {
  return `${base64url('{"alg":"RS256","typ" : "JWT","kid" : "LXFwG5OmfzEjwY97CJDqSAKJhuBG1whKnedhhIBXykE"}')}.${base64url(JSON.stringify(claims))}.${base64url(randomBytes(256))}`;
}

function session(tokens: Partial<TokenSet> = {}, overrides: Partial<StoredSession['auth']> = {}): StoredSession {
  const claims = { sub: '9d52316e-c057-4a8c-9660-2bcf6a7bb6c4', sid: 'yspjVyjDUuObFSAhurz_TQ3l', email: 'alice@example.test', name: 'Alice Liddell' };
  return {
    auth: {
      user: { sub: claims.sub, name: claims.name, email: claims.email, preferredUsername: 'alice', groups: ['app-admin', 'app-user'] },
      tokens: {
        accessToken: jwt({ ...claims, typ: 'Bearer' }),
        refreshToken: jwt({ ...claims, typ: 'Refresh' }),
        idToken: jwt({ ...claims, typ: 'ID' }),
        accessTokenExpiresAt: NOW + 60_000,
        accessTokenIssuedAt: NOW,
        ...tokens,
      },
      createdAt: NOW,
      absoluteExpiresAt: NOW + 43_200_000,
      binding: { userAgent: 'EUJgTqevPkieDZQPsLMMZq', ipPrefix: 'q0Sx0Yd8zYk1d9GzQ8r2aB' },
      idpSessionId: claims.sid,
      ...overrides,
    },
  };
}

describe('the session record encoding', () => {
  it('gives back every field of a session with JWT tokens', () => {
    const record = session();
    expect(decodeSession(encodeSession(record))).toEqual(record);
  });

  it('gives back the optional fields as absent when they were', () => {
    const record: StoredSession = {
      auth: {
        user: { sub: 'bare', groups: [] },
        tokens: { accessToken: 'opaque-access', refreshToken: undefined, idToken: undefined, accessTokenExpiresAt: NOW },
        createdAt: NOW,
        absoluteExpiresAt: NOW + 1000,
        binding: {},
        idpSessionId: undefined,
      },
    };
    expect(decodeSession(encodeSession(record))).toEqual(record);
  });

  it.each([
    ['an opaque token', 'GspziBk62wZf--5Jb7Syn0CIrZlAqgwzLo_uWuQmVKZ'],
    ['a JWT whose base64url does not decode to itself', `${base64url('{"alg":"RS256"}')}.eyJzdWIiOiJhIn1.AB`],
    ['a token with two dots that is not base64url', 'not.a+jwt.at/all'],
    ['a JWT with an empty signature', `${base64url('{"alg":"none"}')}.${base64url('{"sub":"a"}')}.`],
    ['text outside ASCII', 'jeton-été-☃'],
  ])('gives back %s byte for byte', (_description, token) => {
    expect(decodeSession(encodeSession(session({ accessToken: token, refreshToken: token, idToken: token }))).auth.tokens).toMatchObject({
      accessToken: token,
      refreshToken: token,
      idToken: token,
    });
  });

  it('stores a Keycloak-shaped session, profile included, in less than three fifths of the bytes of its tokens as text', () => {
    const record = session();
    const { accessToken, refreshToken, idToken } = record.auth.tokens;
    expect(encodeSession(record).length).toBeLessThan(((accessToken.length + refreshToken!.length + idToken!.length) * 3) / 5);
  });

  it('gives back the frontend and the device label', () => {
    const record = session({}, { frontend: 'admin-console', device: 'Firefox 133 on Linux' });
    expect(decodeSession(encodeSession(record))).toEqual(record);
  });

  it('opens a record written before frontends and device labels were stored, with neither field', () => {
    const decoded = decodeSession(Buffer.from(fixture.encoded, 'base64'));
    expect(decoded).toEqual(fixture.record);
    expect(decoded.auth).not.toHaveProperty('frontend');
    expect(decoded.auth).not.toHaveProperty('device');
  });

  it('opens such a record as sealed in Redis, through the sealer', () => {
    const opened = new SessionSealer([fixture.secret]).open(fixture.sessionId, Buffer.from(fixture.sealed, 'base64'));
    expect(opened).toEqual(fixture.record);
  });

  it('skips a tagged field it does not know (one a later version added), keeping the rest', () => {
    const record = session({}, { frontend: 'shop', device: 'Safari 17 on iOS' });
    const plain = inflateRawSync(encodeSession(record), { windowBits: 12, dictionary: codecDictionary() });
    // Tag 99, three bytes "abc": a field this version has never heard of.
    const later = Buffer.concat([plain, Buffer.from([99, 3, 0x61, 0x62, 0x63])]);
    expect(decodeSession(deflateRawSync(later, { level: constants.Z_BEST_COMPRESSION, windowBits: 12, dictionary: codecDictionary() }))).toEqual(record);
  });

  it('refuses bytes it did not write', () => {
    expect(() => decodeSession(randomBytes(64))).toThrow();
    const encoded = encodeSession(session());
    expect(() => decodeSession(encoded.subarray(0, encoded.length - 8))).toThrow();
  });
});

