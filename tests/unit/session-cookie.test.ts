import { sign } from 'cookie-signature';
import { SessionCookie, findCookie } from '../../src/session/session-cookie';

const NAME = 'bff-session';
const SECRET = 'current-secret-current-secret-0001';
const OLD_SECRET = 'previous-secret-previous-secret-02';
const SESSION_ID = 'A'.repeat(21) + '_-' + 'z9'.repeat(10);

function expressSessionValue(sessionId: string, secret: string): string {
  return encodeURIComponent(`s:${sign(sessionId, secret)}`);
}

describe('SessionCookie', () => {
  const cookie = new SessionCookie(NAME, [SECRET]);

  it('uses a 43-character id in these tests', () => {
    expect(SESSION_ID).toHaveLength(43);
  });

  it('reads the id back from the value it writes', () => {
    expect(cookie.sessionIdFrom(`${NAME}=${cookie.valueFor(SESSION_ID)}`)).toBe(SESSION_ID);
  });

  it('writes exactly what express-session writes', () => {
    expect(cookie.valueFor(SESSION_ID)).toBe(expressSessionValue(SESSION_ID, SECRET));
  });

  it('reads a value signed by cookie-signature with the s: prefix, URI-encoded', () => {
    expect(cookie.sessionIdFrom(`${NAME}=${expressSessionValue(SESSION_ID, SECRET)}`)).toBe(SESSION_ID);
  });

  it('reads a value that is not URI-encoded', () => {
    expect(cookie.sessionIdFrom(`${NAME}=s:${sign(SESSION_ID, SECRET)}`)).toBe(SESSION_ID);
  });

  it('finds the session cookie among others', () => {
    const header = `theme=dark; ${NAME}=${cookie.valueFor(SESSION_ID)}; lang=en`;
    expect(cookie.sessionIdFrom(header)).toBe(SESSION_ID);
  });

  it('reads a value signed by an old secret that is still listed', () => {
    const rotated = new SessionCookie(NAME, [SECRET, OLD_SECRET]);
    expect(rotated.sessionIdFrom(`${NAME}=${expressSessionValue(SESSION_ID, OLD_SECRET)}`)).toBe(SESSION_ID);
  });

  it('signs with the first secret after a rotation', () => {
    const rotated = new SessionCookie(NAME, [SECRET, OLD_SECRET]);
    expect(rotated.valueFor(SESSION_ID)).toBe(expressSessionValue(SESSION_ID, SECRET));
  });

  it('refuses a value signed by a secret no longer listed', () => {
    expect(cookie.sessionIdFrom(`${NAME}=${expressSessionValue(SESSION_ID, OLD_SECRET)}`)).toBeUndefined();
  });

  it('refuses a value whose signature was altered', () => {
    const value = decodeURIComponent(cookie.valueFor(SESSION_ID));
    const altered = `${value.slice(0, -1)}${value.endsWith('A') ? 'B' : 'A'}`;
    expect(cookie.sessionIdFrom(`${NAME}=${encodeURIComponent(altered)}`)).toBeUndefined();
  });

  it('refuses a signature moved onto another id', () => {
    const signature = sign(SESSION_ID, SECRET).slice(SESSION_ID.length);
    const otherId = 'B'.repeat(43);
    expect(cookie.sessionIdFrom(`${NAME}=${encodeURIComponent(`s:${otherId}${signature}`)}`)).toBeUndefined();
  });

  it.each([
    ['no prefix', sign(SESSION_ID, SECRET)],
    ['a j: prefix', `j:${sign(SESSION_ID, SECRET)}`],
    ['an upper-case S: prefix', `S:${sign(SESSION_ID, SECRET)}`],
  ])('refuses a value with %s', (_description, value) => {
    expect(cookie.sessionIdFrom(`${NAME}=${encodeURIComponent(value)}`)).toBeUndefined();
  });

  it('refuses an unsigned id', () => {
    expect(cookie.sessionIdFrom(`${NAME}=s%3A${SESSION_ID}`)).toBeUndefined();
  });

  it.each(['s%3A%zz', 's%3A%', '%E0%A4%A', `${'%'}${cookie.valueFor(SESSION_ID)}`])(
    'refuses malformed percent-encoding %j without throwing',
    (value) => {
      expect(cookie.sessionIdFrom(`${NAME}=${value}`)).toBeUndefined();
    },
  );

  it('refuses a value longer than 512 characters', () => {
    const longId = 'a'.repeat(600);
    expect(cookie.sessionIdFrom(`${NAME}=${expressSessionValue(longId, SECRET)}`)).toBeUndefined();
  });

  it.each([
    ['a 42-character id', 'a'.repeat(42)],
    ['a 44-character id', 'a'.repeat(44)],
    ['a 32-character express-session default id', 'a'.repeat(32)],
    ['an id with "+" and "/"', `${'a'.repeat(41)}+/`],
    ['an id with "="', `${'a'.repeat(42)}=`],
    ['an id with a dot', `${'a'.repeat(42)}.`],
    ['an empty id', ''],
  ])('refuses a correctly signed cookie carrying %s', (_description, sessionId) => {
    expect(cookie.sessionIdFrom(`${NAME}=${expressSessionValue(sessionId, SECRET)}`)).toBeUndefined();
  });

  it.each([
    ['no header', undefined],
    ['an empty header', ''],
    ['only other cookies', 'theme=dark; lang=en'],
    ['a cookie whose name only ends with ours', `x${NAME}=${'v'}`],
    ['an empty value', `${NAME}=`],
  ])('answers undefined for %s', (_description, header) => {
    expect(cookie.sessionIdFrom(header)).toBeUndefined();
  });
});

describe('findCookie', () => {
  it.each([
    ['a single cookie', 'sid=abc', 'abc'],
    ['the cookie among several', 'a=1; sid=abc; b=2', 'abc'],
    ['the last cookie', 'a=1; sid=abc', 'abc'],
    ['a cookie without spaces after ";"', 'a=1;sid=abc;b=2', 'abc'],
    ['a cookie with spaces around "="', 'a=1;  sid = abc ; b=2', 'abc'],
    ['the first of two cookies with the name', 'sid=first; sid=second', 'first'],
    ['a value that contains "="', 'sid=a=b==; c=1', 'a=b=='],
    ['an empty value', 'sid=; b=2', ''],
    ['a cookie after an entry without "="', 'flag; sid=abc', 'abc'],
    ['a cookie after an empty entry', ';; sid=abc', 'abc'],
    ['a cookie after an entry with a longer name', 'sidx=1; xsid=2; sid=abc', 'abc'],
  ])('finds %s', (_description, header, expected) => {
    expect(findCookie(header, 'sid')).toBe(expected);
  });

  it.each([
    ['no header', undefined],
    ['an empty header', ''],
    ['an entry with the name but no "="', 'sid; b=2'],
    ['the name only as a value', 'b=sid'],
    ['the name only as a prefix', 'sidx=1'],
    ['the name inside a value with "="', 'b=sid=abc'],
  ])('answers undefined for %s', (_description, header) => {
    expect(findCookie(header, 'sid')).toBeUndefined();
  });
});
