import { sessionViews } from '../../src/http/user-sessions-routes';
import { isWellFormedHandle, SessionHandles } from '../../src/session/session-handle';
import type { StoredSession } from '../../src/session/session-data';
import type { ListedSession } from '../../src/session/session-store';

const NOW = 1_800_000_000_000;
const SECRET = 'handles-session-secret-0123456789abcdefghijk';
const id = (suffix: string) => `user-sessions-unit-${suffix}`.padEnd(43, 'x').slice(0, 43);

function listed(suffix: string, createdAt: number, extra: Partial<StoredSession['auth']> = {}): ListedSession {
  return {
    sessionId: id(suffix),
    lastSeenAt: createdAt + 60_000,
    record: {
      auth: {
        user: { sub: 'ana', groups: [] },
        tokens: { accessToken: 'access', refreshToken: 'refresh', idToken: undefined, accessTokenExpiresAt: NOW },
        createdAt,
        absoluteExpiresAt: NOW + 3_600_000,
        binding: {},
        idpSessionId: undefined,
        ...extra,
      },
    },
  };
}

describe('the session handles', () => {
  const handles = new SessionHandles([SECRET]);

  it('are 22 base64url characters, the same for a session every time, different between sessions', () => {
    const handle = handles.handleOf(id('a'));
    expect(isWellFormedHandle(handle)).toBe(true);
    expect(new SessionHandles([SECRET, 'an-older-secret-0123456789abcdefghijklmnopq']).handleOf(id('a'))).toBe(handle);
    expect(handles.handleOf(id('b'))).not.toBe(handle);
  });

  it('depend on the secret and do not contain the session id', () => {
    const handle = handles.handleOf(id('a'));
    expect(new SessionHandles(['another-session-secret-0123456789abcdefghij']).handleOf(id('a'))).not.toBe(handle);
    expect(id('a')).not.toContain(handle);
  });

  it.each(['', 'x', 'A'.repeat(21), 'A'.repeat(23), `${'A'.repeat(21)}/`, `${'A'.repeat(21)}=`, `${'A'.repeat(21)}\u00e9`])('refuse %j as a handle', (candidate) => {
    expect(isWellFormedHandle(candidate)).toBe(false);
  });
});

describe("the user's list of sessions", () => {
  const options = { currentSessionId: id('current'), handleOf: (sessionId: string) => `handle-of-${sessionId.slice(19, 26)}`, now: NOW };

  it('shows the sessions newest first', () => {
    const views = sessionViews([listed('older', NOW - 7_200_000), listed('current', NOW - 3_600_000), listed('newest', NOW - 60_000)], options);
    expect(views.map(({ handle, current }) => [handle, current])).toEqual([
      ['handle-of-newestx', false],
      ['handle-of-current', true],
      ['handle-of-olderxx', false],
    ]);
  });

  it('says the current session was last seen now, the others when their expiry was last slid, and null for an unknown device', () => {
    const [newest, current] = sessionViews([listed('current', NOW - 3_600_000), listed('newest', NOW - 120_000, { device: 'Firefox 133 on Linux' })], options);
    expect(newest).toEqual({
      handle: 'handle-of-newestx',
      createdAt: new Date(NOW - 120_000).toISOString(),
      lastSeenAt: new Date(NOW - 60_000).toISOString(),
      device: 'Firefox 133 on Linux',
      current: false,
    });
    expect(current).toMatchObject({ lastSeenAt: new Date(NOW).toISOString(), device: null, current: true });
  });
});
