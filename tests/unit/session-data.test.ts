import { isWellFormedSessionId, lastSeenAt, sessionTtlSeconds, type AuthenticatedSession, type StoredSession } from '../../src/session/session-data';

const NOW = 1_700_000_000_000;
const IDLE_TTL_SECONDS = 1800;

function storedSession(absoluteExpiresAt: number): StoredSession {
  const auth: AuthenticatedSession = {
    user: { sub: 'user-123', groups: [] },
    tokens: { accessToken: 'access', refreshToken: undefined, idToken: undefined, accessTokenExpiresAt: NOW + 300_000 },
    createdAt: NOW - 3_600_000,
    absoluteExpiresAt,
    binding: {},
    idpSessionId: undefined,
  };
  return { auth };
}

describe('sessionTtlSeconds', () => {
  it('uses the idle timeout while the absolute lifetime has longer left', () => {
    expect(sessionTtlSeconds(storedSession(NOW + 10 * 3_600_000), IDLE_TTL_SECONDS, NOW)).toBe(IDLE_TTL_SECONDS);
  });

  it('caps the TTL at what is left of the absolute lifetime', () => {
    expect(sessionTtlSeconds(storedSession(NOW + 600_000), IDLE_TTL_SECONDS, NOW)).toBe(600);
  });

  it('rounds a partial second left up', () => {
    expect(sessionTtlSeconds(storedSession(NOW + 1_500), IDLE_TTL_SECONDS, NOW)).toBe(2);
  });

  it('uses the idle timeout when it equals what is left', () => {
    expect(sessionTtlSeconds(storedSession(NOW + IDLE_TTL_SECONDS * 1000), IDLE_TTL_SECONDS, NOW)).toBe(IDLE_TTL_SECONDS);
  });

  it('answers zero or less once the absolute lifetime is over', () => {
    expect(sessionTtlSeconds(storedSession(NOW - 5_000), IDLE_TTL_SECONDS, NOW)).toBeLessThanOrEqual(0);
  });
});

describe('isWellFormedSessionId', () => {
  it.each([
    ['43 base64url characters', 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNO_-'],
    ['43 digits', '0'.repeat(43)],
    ['the base64url of 32 random bytes', Buffer.alloc(32, 0xfb).toString('base64url')],
  ])('accepts %s', (_description, candidate) => {
    expect(isWellFormedSessionId(candidate)).toBe(true);
  });

  it.each([
    ['an empty string', ''],
    ['42 characters', 'a'.repeat(42)],
    ['44 characters', 'a'.repeat(44)],
    ['standard base64 with "+"', `${'a'.repeat(42)}+`],
    ['standard base64 with "/"', `${'a'.repeat(42)}/`],
    ['padding', `${'a'.repeat(42)}=`],
    ['a dot', `${'a'.repeat(42)}.`],
    ['a trailing newline', `${'a'.repeat(43)}\n`],
    ['a non-ASCII letter', `${'a'.repeat(42)}é`],
    ['a uid-safe 24-byte express-session id', 'a'.repeat(32)],
  ])('refuses %s', (_description, candidate) => {
    expect(isWellFormedSessionId(candidate)).toBe(false);
  });
});

describe('lastSeenAt', () => {
  const record = storedSession(NOW + 10 * 3_600_000);

  it('is the idle expiry less the idle timeout: when the expiry was last slid', () => {
    expect(lastSeenAt(record, NOW + 1_000_000, IDLE_TTL_SECONDS, NOW)).toBe(NOW + 1_000_000 - IDLE_TTL_SECONDS * 1000);
  });

  it('is never before the session was created, nor after now', () => {
    expect(lastSeenAt(record, NOW - 3_600_000 + 1000, IDLE_TTL_SECONDS, NOW)).toBe(record.auth.createdAt);
    expect(lastSeenAt(record, NOW + IDLE_TTL_SECONDS * 1000 + 5000, IDLE_TTL_SECONDS, NOW)).toBe(NOW);
  });
});
