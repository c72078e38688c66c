import { loadConfig } from '../../src/config/load-config';
import { SESSION_COOKIE_NAMES, upstreamCookie } from '../../src/forwardauth/upstream-cookie';
import { isLoginCookieName, loginCookieName, newLoginCookieValue } from '../../src/session/login-cookies';
import { findCookie } from '../../src/session/session-cookie';

const SESSION = 'bff-session';
const SIGNED = 's%3AqL8v0Zp7x2mK1nB4cD6eF9gH3jJ5kL7m.AbCdEfGhIjKlMnOpQrStUvWxYz0123456789%2Bab';
/** A login-transaction cookie as /auth/login sets it. */
const LOGIN = `${loginCookieName('state-one', false)}=${newLoginCookieValue(Date.now())}`;
const SECURE_LOGIN = `${loginCookieName('state-two', true)}=${newLoginCookieValue(Date.now())}`;

describe('upstreamCookie', () => {
  it.each([
    ['no Cookie header', undefined],
    ['an empty Cookie header', ''],
  ])('answers "" for %s', (_title, header) => {
    expect(upstreamCookie(header, SESSION)).toBe('');
  });

  it('returns a header without gateway cookies exactly as it came, spacing and all', () => {
    const header = 'theme=dark;lang=en ;  consent=yes;;';
    expect(upstreamCookie(header, SESSION)).toBe(header);
  });

  it('removes the session cookie and keeps the others in their order', () => {
    expect(upstreamCookie(`z=1; ${SESSION}=${SIGNED}; a=2; m=3`, SESSION)).toBe('z=1; a=2; m=3');
  });

  it('removes the login-transaction cookie', () => {
    expect(upstreamCookie(`a=1; ${LOGIN}; b=2`, SESSION)).toBe('a=1; b=2');
  });

  it('removes every pending login cookie of logins started in several tabs', () => {
    const pending = Array.from({ length: 16 }, (_, tab) => `${loginCookieName(`state-${tab}`, false)}=${newLoginCookieValue(Date.now())}`);
    expect(upstreamCookie(['a=1', ...pending.slice(0, 8), 'b=2', ...pending.slice(8)].join('; '), SESSION)).toBe('a=1; b=2');
  });

  it('removes the single login cookie of earlier versions', () => {
    expect(upstreamCookie('a=1; bff-login=Yk0zQm5yTnRwV2xHc0Z1dkN4S3hqR2x0c1ZQb2lHd3E; __Host-bff-login=x', SESSION)).toBe('a=1');
  });

  it('answers "" when the gateway cookies were all there was', () => {
    expect(upstreamCookie(`${SESSION}=${SIGNED}; ${LOGIN}`, SESSION)).toBe('');
  });

  it('removes the __Host- prefixed names an https PUBLIC_URL gives the cookies', () => {
    expect(upstreamCookie(`__Host-bff-session=${SIGNED}; theme=dark; ${SECURE_LOGIN}`, '__Host-bff-session')).toBe('theme=dark');
  });

  it('removes the names of the other scheme too, left over from before a switch to https', () => {
    expect(upstreamCookie(`bff-session=old; __Host-bff-session=${SIGNED}; ${LOGIN}; a=1`, '__Host-bff-session')).toBe('a=1');
  });

  it('removes a configured session cookie name that is not one of the built-in names', () => {
    expect(upstreamCookie('a=1; my-sid=secret; b=2', 'my-sid')).toBe('a=1; b=2');
  });

  it('removes every copy of a duplicated gateway cookie', () => {
    expect(upstreamCookie(`${SESSION}=one; x=1; ${SESSION}=two; ${LOGIN}; ${LOGIN}; ${SESSION}=three`, SESSION)).toBe('x=1');
  });

  it('keeps duplicated cookies of the application, both of them, in order', () => {
    expect(upstreamCookie(`pref=a; ${SESSION}=s; pref=b`, SESSION)).toBe('pref=a; pref=b');
  });

  it('keeps a cookie whose value contains the session cookie name', () => {
    expect(upstreamCookie(`redirect=bff-session=1; ${SESSION}=${SIGNED}; note=see%20bff-login`, SESSION)).toBe('redirect=bff-session=1; note=see%20bff-login');
  });

  it('leaves the header untouched when the name appears only inside values', () => {
    const header = 'redirect=bff-session;next=__Host-bff-login ;x=1';
    expect(upstreamCookie(header, SESSION)).toBe(header);
  });

  it.each([
    ['a longer name', 'bff-session2=1'],
    ['a name with a prefix', 'xbff-session=1'],
    ['another case (cookie names are case-sensitive)', 'BFF-Session=1'],
    ['a shorter name', 'bff-sessio=1'],
    ['a differently prefixed name', '__Secure-bff-session=1'],
    ['a separator in place of "-"', 'bff_session=1'],
    ['a name that only starts like the login cookie', 'bff-loginx=1'],
    ['a login name in another case', 'BFF-LOGIN-abc=1'],
  ])('keeps %s', (_title, cookie) => {
    expect(upstreamCookie(`${cookie}; ${SESSION}=s`, SESSION)).toBe(cookie);
  });

  it('removes a gateway cookie whose name is padded with spaces or tabs, as the gateway would still read it', () => {
    expect(upstreamCookie(`a=1;  ${SESSION} =${SIGNED};\t${LOGIN.replace('=', '\t=')}; b=2`, SESSION)).toBe('a=1; b=2');
  });

  it('removes a gateway cookie padded with other whitespace, which findCookie trims too', () => {
    const header = `\u00a0${SESSION}\u00a0=${SIGNED}; a=1`;
    expect(findCookie(header, SESSION)).toBe(SIGNED);
    expect(upstreamCookie(header, SESSION)).toBe('a=1');
  });

  it('drops empty segments and the spaces around the kept cookies once something is removed', () => {
    expect(upstreamCookie(`;; ;a=1 ;;\t${SESSION}=s;  b=2  ;;`, SESSION)).toBe('a=1; b=2');
  });

  it('removes a bare gateway name without "=" and keeps other segments without "="', () => {
    expect(upstreamCookie(`flag; ${SESSION}; other`, SESSION)).toBe('flag; other');
  });

  it('keeps a cookie with an empty name and one with an empty value', () => {
    expect(upstreamCookie(`=nameless; ${SESSION}=; empty=`, SESSION)).toBe('=nameless; empty=');
  });

  it('keeps values byte for byte: quotes, "=", spaces inside, percent-encoding and latin1 bytes', () => {
    const others = ['quoted="a b; c"', 'b64=YWJj==', 'enc=%E2%9C%93%20ok', 'latin=caf\u00e9', 'json={"a":1}', 'spaced=a b'];
    // The quoted value holds a ";", which splits it as any cookie parser would; its two halves stay as they were.
    const expected = ['quoted="a b', 'c"', ...others.slice(1)].join('; ');
    expect(upstreamCookie(`${others.join('; ')}; ${SESSION}=${SIGNED}`, SESSION)).toBe(expected);
  });

  it('handles a header of a hundred cookies with the session in the middle', () => {
    const cookies = Array.from({ length: 100 }, (_, index) => `c${index}=${'v'.repeat(index % 7)}`);
    const header = [...cookies.slice(0, 50), `${SESSION}=${SIGNED}`, ...cookies.slice(50)].join('; ');
    expect(upstreamCookie(header, SESSION)).toBe(cookies.join('; '));
  });

  it('leaves nothing any gateway name would be found under, for random mixes of cookies', () => {
    const pieces = [
      `${SESSION}=${SIGNED}`,
      LOGIN,
      SECURE_LOGIN,
      '__Host-bff-session=h',
      'bff-login=old',
      ' bff-session =x',
      'a=1',
      'b=bff-session',
      'c=',
      'flag',
      '',
      '  ',
      'd=x=y',
    ];
    let seed = 42;
    const random = (limit: number) => {
      seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
      return seed % limit;
    };
    for (let round = 0; round < 500; round += 1) {
      const chosen = Array.from({ length: 1 + random(8) }, () => pieces[random(pieces.length)]!);
      const header = chosen.join(random(2) === 0 ? '; ' : ';');
      const result = upstreamCookie(header, SESSION);
      for (const name of [...SESSION_COOKIE_NAMES, 'bff-login', LOGIN.split('=')[0]!, SECURE_LOGIN.split('=')[0]!]) expect(findCookie(result, name)).toBeUndefined();
      const expected = chosen.map((piece) => piece.trim()).filter((piece) => piece !== '' && !isGatewayPiece(piece));
      if (result !== header) expect(result).toBe(expected.join('; '));
      else expect(chosen.some((piece) => isGatewayPiece(piece.trim()))).toBe(false);
    }
  });
});

describe('the session cookie names', () => {
  it.each(['http://app.example.test', 'https://app.example.test'])('include the session cookie name the gateway uses with PUBLIC_URL=%s', (publicUrl) => {
    const config = loadConfig({ PUBLIC_URL: publicUrl });
    expect(SESSION_COOKIE_NAMES).toContain(config.session.cookieName);
  });
});

function isGatewayPiece(piece: string): boolean {
  const name = (piece.includes('=') ? piece.slice(0, piece.indexOf('=')) : piece).trim();
  return SESSION_COOKIE_NAMES.includes(name) || isLoginCookieName(name);
}
