import { normalisePath } from '../../src/forwardauth/normalise-path';

/** Every Unicode scalar value outside ASCII (no surrogates: they cannot be percent-encoded). */
function* nonAsciiCodePoints(): Generator<number> {
  for (let codePoint = 0x80; codePoint <= 0x10ffff; codePoint++) {
    if (codePoint < 0xd800 || codePoint > 0xdfff) yield codePoint;
  }
}

const hex = (codePoint: number) => `U+${codePoint.toString(16).toUpperCase().padStart(4, '0')}`;

/**
 * Scanned once, from NFKC itself rather than from a hand list: the code
 * points whose compatibility form holds ".", "/" or "\\" (SPEC section 4), and
 * those whose form holds the other characters the path normaliser gives a
 * meaning ("%", "?", "#", ";").
 */
const SEPARATOR_LOOK_ALIKES: number[] = [];
const OTHER_SYNTAX_LOOK_ALIKES: number[] = [];
for (const codePoint of nonAsciiCodePoints()) {
  const compatible = String.fromCodePoint(codePoint).normalize('NFKC');
  if (/[./\\]/.test(compatible)) SEPARATOR_LOOK_ALIKES.push(codePoint);
  else if (/[%?#;]/.test(compatible)) OTHER_SYNTAX_LOOK_ALIKES.push(codePoint);
}

describe('normalisePath', () => {
  it.each([
    ['/', '/'],
    ['/api/orders', '/api/orders'],
    ['/api/orders/', '/api/orders'],
    ['/a/./b', '/a/b'],
    ['/a/b/..', '/a'],
    ['/a/b/../c', '/a/c'],
    ['/a/../../', undefined],
    ['/a//b///c', '/a/b/c'],
    ['//a', '/a'],
    ['/a;jsessionid=1/b', '/a/b'],
    ['/a/b;x=1', '/a/b'],
    ['/API/Orders', '/api/orders'],
    ['/api/%6Frders', '/api/orders'],
    ['/caf%C3%A9', '/café'],
    ['/a%20b', '/a b'],
  ])('normalises %j to %j', (raw, expected) => {
    expect(normalisePath(raw)).toBe(expected);
  });

  it('treats encoded dot segments as ambiguous: some servers resolve them, the proxy may not', () => {
    expect(normalisePath('/a/%2e%2e/b')).toBeUndefined();
  });

  it('treats upper-case encoded dot segments as ambiguous too', () => {
    expect(normalisePath('/a/%2E/b')).toBeUndefined();
  });

  it('treats "..;x" as ambiguous: a ".." segment to a servlet container, a name to Traefik', () => {
    expect(normalisePath('/a/b/..;x/c')).toBeUndefined();
  });

  it('still drops ";" parameters from ordinary segments', () => {
    expect(normalisePath('/a;jsessionid=1/b')).toBe('/a/b');
  });

  it.each([
    ['double encoding of a dot', '/a/%252e%252e/b'],
    ['double encoding of a letter', '/%2561dmin'],
    ['an encoded slash', '/a%2Fb'],
    ['an encoded slash in lower case', '/a%2fb'],
    ['an encoded backslash', '/a%5cb'],
    ['an encoded backslash in upper case', '/a%5Cb'],
    ['an encoded "#"', '/a%23b'],
    ['an encoded "?"', '/a%3Fb'],
    ['a raw backslash', '/a\\b'],
    ['a raw "#"', '/a#b'],
    ['a raw "?"', '/a?b'],
    ['a NUL character', '/a\u0000b'],
    ['an encoded NUL', '/a%00b'],
    ['a tab', '/a\tb'],
    ['an encoded newline', '/a%0ab'],
    ['an encoded carriage return', '/a%0Db'],
    ['a DEL character', '/a\u007fb'],
    ['".." above the root', '/..'],
    ['".." above the root after a segment', '/a/../..'],
    ['an encoded ".." above the root', '/%2e%2e/admin'],
    ['an invalid percent escape', '/a%zzb'],
    ['a lone percent sign', '/a%'],
    ['a truncated percent escape', '/a%2'],
    ['an invalid UTF-8 sequence', '/a%C3'],
    ['a relative path', 'a/b'],
    ['an empty path', ''],
    ['an absolute URL', 'http://evil/a'],
  ])('returns undefined for %s', (_description, raw) => {
    expect(normalisePath(raw)).toBeUndefined();
  });

  describe('look-alike characters (SPEC section 4: NFKC)', () => {
    it('the scan of Unicode finds the fullwidth full stop, solidus and reverse solidus among the separator look-alikes', () => {
      expect(SEPARATOR_LOOK_ALIKES).toEqual(expect.arrayContaining([0xff0e, 0xff0f, 0xff3c, 0xfe52, 0xfe68, 0x2024, 0x2025]));
    });

    it('denies every code point that NFKC turns into ".", "/" or "\\", raw or percent-encoded, alone or between letters', () => {
      const routed: string[] = [];
      for (const codePoint of SEPARATOR_LOOK_ALIKES) {
        const character = String.fromCodePoint(codePoint);
        for (const path of [`/${character}`, `/a${character}b/c`, `/a/${encodeURIComponent(character)}/b`, `/x/${character}${character}/admin`]) {
          if (normalisePath(path) !== undefined) routed.push(`${hex(codePoint)} in ${JSON.stringify(path)}`);
        }
      }
      expect(routed).toEqual([]);
    });

    it('denies every code point that NFKC turns into "%", "?", "#" or ";", raw or percent-encoded', () => {
      const routed: string[] = [];
      for (const codePoint of OTHER_SYNTAX_LOOK_ALIKES) {
        const character = String.fromCodePoint(codePoint);
        for (const path of [`/a${character}b`, `/a/${encodeURIComponent(character)}`]) {
          if (normalisePath(path) !== undefined) routed.push(`${hex(codePoint)} in ${JSON.stringify(path)}`);
        }
      }
      expect(routed).toEqual([]);
    });

    // Raw only: percent-decoding comes first and is the same for every code point (the denials above check both forms).
    it('routes every other code point in a segment that stays non-ASCII, except C1 controls', () => {
      const lookAlikes = new Set([...SEPARATOR_LOOK_ALIKES, ...OTHER_SYNTAX_LOOK_ALIKES]);
      const wrong: string[] = [];
      for (const codePoint of nonAsciiCodePoints()) {
        const character = String.fromCodePoint(codePoint);
        const isExpectedToRoute = !lookAlikes.has(codePoint) && !(codePoint >= 0x80 && codePoint <= 0x9f);
        if ((normalisePath(`/api/\u00e9${character}`) !== undefined) !== isExpectedToRoute) wrong.push(hex(codePoint));
      }
      expect(wrong).toEqual([]);
    });

    it('denies a segment that only NFKC makes ASCII, for every code point whose NFKC form is ASCII letters or digits', () => {
      const routed: string[] = [];
      for (const codePoint of nonAsciiCodePoints()) {
        const character = String.fromCodePoint(codePoint);
        if (!/^[A-Za-z0-9]+$/.test(character.normalize('NFKC').toLowerCase())) continue;
        for (const path of [`/${character}`, `/api/dmin${character}`, `/api/${encodeURIComponent(character)}x`]) {
          if (normalisePath(path) !== undefined) routed.push(`${hex(codePoint)} in ${JSON.stringify(path)}`);
        }
      }
      expect(routed).toEqual([]);
    });

    it.each([
      ['fullwidth letters spelling an ASCII segment', '/\uff41\uff44\uff4d\uff49\uff4e/users'],
      ['one fullwidth letter in an ASCII segment', '/api/\uff41dmin'],
      ['the same, percent-encoded', '/api/%EF%BD%81dmin'],
      ['a ligature', '/api/\ufb01le'],
      ['the Kelvin sign, which lower-cases to "k"', '/\u212aeys'],
      ['a soft hyphen hiding inside an ASCII name', '/adm\u00adin'],
      ['a zero-width space hiding inside an ASCII name', '/adm%E2%80%8Bin'],
      ['a segment of nothing but a zero-width joiner', '/public/\u200d/admin'],
      ['fullwidth full stops as a dot segment', '/public/\uff0e\uff0e/admin'],
      ['percent-encoded fullwidth full stops', '/public/%EF%BC%8E%EF%BC%8E/admin'],
      ['a fullwidth solidus', '/public\uff0fadmin'],
      ['a fullwidth reverse solidus, percent-encoded', '/public%EF%BC%BCadmin'],
      ['a two-dot leader', '/public/\u2025/admin'],
      ['a fullwidth percent sign starting an escape', '/a/\uff05\uff12\uff45'],
      ['a C1 control character', '/a\u0085b'],
    ])('denies %s', (_description, path) => {
      expect(normalisePath(path)).toBeUndefined();
    });

    it.each([
      ['an accented letter, percent-encoded', '/caf%C3%A9', '/café'],
      ['an accented letter, raw', '/café/menu', '/café/menu'],
      ['an upper-case accented letter', '/CAF%C3%89', '/café'],
      ['a decomposed accented letter, which NFKC composes', '/cafe%CC%81', '/café'],
      ['Japanese, percent-encoded', '/api/%E6%97%A5%E6%9C%AC', '/api/日本'],
      ['Japanese, raw', '/api/日本/東京', '/api/日本/東京'],
      ['halfwidth katakana in a non-ASCII segment', '/api/\uff76\uff80\uff76\uff85', '/api/カタカナ'],
      ['an emoji with a variation selector', '/api/%E2%9D%A4%EF%B8%8F', '/api/❤'],
    ])('routes %s', (_description, path, expected) => {
      expect(normalisePath(path)).toBe(expected);
    });
  });
});
