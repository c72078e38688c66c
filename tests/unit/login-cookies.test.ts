import {
  isLoginCookieName,
  loginBindingOf,
  loginCookieName,
  loginCookiesToEvict,
  MAX_PENDING_LOGINS_PER_BROWSER,
  newLoginCookieValue,
  pendingLoginCookies,
} from '../../src/session/login-cookies';

const NOW = Date.UTC(2026, 0, 1);

function cookieAt(name: string, secondsAgo: number): string {
  return `${name}=${newLoginCookieValue(NOW - secondsAgo * 1000)}`;
}

describe('login cookies', () => {
  it('gives every transaction its own cookie name, derived from its state', () => {
    const first = loginCookieName('state-one', false);
    expect(first).toMatch(/^bff-login-[A-Za-z0-9_-]{16}$/);
    expect(loginCookieName('state-one', false)).toBe(first);
    expect(loginCookieName('state-two', false)).not.toBe(first);
  });

  it('uses the __Host- prefix when the cookies are Secure', () => {
    expect(loginCookieName('state-one', true)).toBe(`__Host-${loginCookieName('state-one', false)}`);
  });

  it.each([
    ['bff-login', true],
    ['__Host-bff-login', true],
    ['bff-login-AbCdEfGhIjKlMnOp', true],
    ['__Host-bff-login-AbCdEfGhIjKlMnOp', true],
    ['bff-session', false],
    ['__Host-bff-session', false],
    ['bff-loginx', false],
    ['my-bff-login', false],
    ['Bff-login', false],
    ['theme', false],
  ])('recognises %s as a gateway login cookie: %s', (name, expected) => {
    expect(isLoginCookieName(name)).toBe(expected);
  });

  it('stores a hash of the cookie value, never the value', () => {
    const value = newLoginCookieValue(NOW);
    expect(value).toMatch(/^[0-9a-z]+\.[A-Za-z0-9_-]{43}$/);
    expect(loginBindingOf(value)).not.toContain(value.split('.')[1]);
    expect(loginBindingOf(value)).toBe(loginBindingOf(value));
    expect(newLoginCookieValue(NOW)).not.toBe(value);
  });

  it('lists the pending login cookies of a Cookie header, oldest first, and nothing else', () => {
    const header = [cookieAt('bff-login-new', 10), 'theme=dark', cookieAt('bff-login-old', 300), 'bff-session=s%3Ax.y', 'bff-login=legacy-value'].join('; ');
    expect(pendingLoginCookies(header).map((cookie) => cookie.name)).toEqual(['bff-login', 'bff-login-old', 'bff-login-new']);
    expect(pendingLoginCookies('theme=dark')).toEqual([]);
    expect(pendingLoginCookies(undefined)).toEqual([]);
  });

  it('evicts nothing while a browser has fewer pending logins than the cap', () => {
    const header = Array.from({ length: MAX_PENDING_LOGINS_PER_BROWSER - 1 }, (_, index) => cookieAt(`bff-login-${index}`, index)).join('; ');
    expect(loginCookiesToEvict(pendingLoginCookies(header), false)).toEqual([]);
  });

  it('evicts the oldest pending logins so that, with the new one, the cap holds', () => {
    const header = Array.from({ length: MAX_PENDING_LOGINS_PER_BROWSER + 2 }, (_, index) => cookieAt(`bff-login-${index}`, index * 10)).join('; ');
    const evicted = loginCookiesToEvict(pendingLoginCookies(header), false);
    expect(evicted).toEqual(['bff-login-17', 'bff-login-16', 'bff-login-15']);
  });

  it('always evicts cookies this version cannot use: the old single cookie, foreign values and the other scheme', () => {
    const header = [cookieAt('bff-login-mine', 1), 'bff-login=old', 'bff-login-forged=x', cookieAt('__Host-bff-login-https', 1)].join('; ');
    expect(loginCookiesToEvict(pendingLoginCookies(header), false).sort()).toEqual(['__Host-bff-login-https', 'bff-login', 'bff-login-forged']);
    expect(loginCookiesToEvict(pendingLoginCookies(header), true).sort()).toEqual(['bff-login', 'bff-login-forged', 'bff-login-mine']);
  });
});
