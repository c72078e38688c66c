import { TokenCipher } from '../../src/session/token-cipher';
import type { TokenSet } from '../../src/session/session-data';

const OLD_SECRET = 'old-secret-old-secret-old-secret-0001';
const NEW_SECRET = 'new-secret-new-secret-new-secret-0002';

const TOKENS: TokenSet = {
  accessToken: 'access-token-AAAAAAAAAAAAAAAA',
  refreshToken: 'refresh-token-RRRRRRRRRRRRRRRR',
  idToken: 'id-token-IIIIIIIIIIIIIIII',
  accessTokenExpiresAt: 1_700_000_060_000,
};

/** Flips one character of the given dot-separated part of a sealed value. */
function tamper(sealed: string, partIndex: number): string {
  const parts = sealed.split('.');
  const part = parts[partIndex] as string;
  const middle = Math.floor(part.length / 2);
  parts[partIndex] = `${part.slice(0, middle)}${part[middle] === 'A' ? 'B' : 'A'}${part.slice(middle + 1)}`;
  return parts.join('.');
}

describe('TokenCipher', () => {
  it('opens what it sealed', () => {
    const cipher = new TokenCipher([NEW_SECRET]);
    expect(cipher.open(cipher.seal(TOKENS))).toEqual(TOKENS);
  });

  it('round-trips a token set without refresh or id token', () => {
    const cipher = new TokenCipher([NEW_SECRET]);
    const tokens: TokenSet = { accessToken: 'a', refreshToken: undefined, idToken: undefined, accessTokenExpiresAt: 0 };
    expect(cipher.open(cipher.seal(tokens))).toMatchObject({ accessToken: 'a', accessTokenExpiresAt: 0 });
  });

  it('does not contain any token text in the sealed value', () => {
    const sealed = new TokenCipher([NEW_SECRET]).seal(TOKENS);
    for (const text of [TOKENS.accessToken, TOKENS.refreshToken, TOKENS.idToken, 'accessToken', 'RRRRRRRR']) {
      expect(sealed).not.toContain(text);
    }
  });

  it('does not contain the token text in base64 either', () => {
    const sealed = new TokenCipher([NEW_SECRET]).seal(TOKENS);
    const decoded = sealed.split('.').map((part) => Buffer.from(part, 'base64url').toString('latin1')).join('');
    expect(decoded).not.toContain('access-token');
  });

  it('seals the same tokens differently each time (a fresh IV)', () => {
    const cipher = new TokenCipher([NEW_SECRET]);
    expect(cipher.seal(TOKENS)).not.toBe(cipher.seal(TOKENS));
  });

  it('marks the sealed value with version v1 and a key id', () => {
    expect(new TokenCipher([NEW_SECRET]).seal(TOKENS)).toMatch(/^v1\.[A-Za-z0-9_-]{8}\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]+$/);
  });

  it.each([
    ['the key id', 1],
    ['the IV', 2],
    ['the ciphertext', 3],
  ])('refuses a value whose %s was tampered with', (_description, partIndex) => {
    const cipher = new TokenCipher([NEW_SECRET]);
    expect(cipher.open(tamper(cipher.seal(TOKENS), partIndex))).toBeUndefined();
  });

  it('refuses a value whose authentication tag was cut off', () => {
    const cipher = new TokenCipher([NEW_SECRET]);
    const sealed = cipher.seal(TOKENS);
    expect(cipher.open(sealed.slice(0, -22))).toBeUndefined();
  });

  it('refuses a value sealed with a secret it does not know', () => {
    const sealed = new TokenCipher([OLD_SECRET]).seal(TOKENS);
    expect(new TokenCipher([NEW_SECRET]).open(sealed)).toBeUndefined();
  });

  it('refuses a value with an unknown key id even when the rest is intact', () => {
    const cipher = new TokenCipher([NEW_SECRET]);
    const [version, , iv, body] = cipher.seal(TOKENS).split('.');
    expect(cipher.open(`${version}.unknown0.${iv}.${body}`)).toBeUndefined();
  });

  it('refuses a value moved to another key id that it also knows', () => {
    const oldCipher = new TokenCipher([OLD_SECRET]);
    const newCipher = new TokenCipher([NEW_SECRET]);
    const both = new TokenCipher([NEW_SECRET, OLD_SECRET]);
    const newKeyId = newCipher.seal(TOKENS).split('.')[1];
    const [version, , iv, body] = oldCipher.seal(TOKENS).split('.');
    expect(both.open(`${version}.${newKeyId}.${iv}.${body}`)).toBeUndefined();
  });

  it.each([
    ['an empty string', ''],
    ['another version', 'v2.abcdefgh.AAAAAAAAAAAAAAAA.AAAA'],
    ['too few parts', 'v1.abcdefgh'],
    ['an empty IV', 'v1.abcdefgh..AAAA'],
    ['plain JSON', JSON.stringify(TOKENS)],
  ])('refuses %s', (_description, sealed) => {
    expect(new TokenCipher([NEW_SECRET]).open(sealed)).toBeUndefined();
  });

  it('refuses a short body on a known key without throwing', () => {
    const cipher = new TokenCipher([NEW_SECRET]);
    const [version, keyId, iv] = cipher.seal(TOKENS).split('.');
    expect(cipher.open(`${version}.${keyId}.${iv}.AAAA`)).toBeUndefined();
  });

  it('opens a value sealed with the old secret once it is second in the list', () => {
    const sealed = new TokenCipher([OLD_SECRET]).seal(TOKENS);
    expect(new TokenCipher([NEW_SECRET, OLD_SECRET]).open(sealed)).toEqual(TOKENS);
  });

  it('seals with the first secret after a rotation', () => {
    const rotated = new TokenCipher([NEW_SECRET, OLD_SECRET]);
    const sealed = rotated.seal(TOKENS);
    expect([new TokenCipher([NEW_SECRET]).open(sealed), new TokenCipher([OLD_SECRET]).open(sealed)]).toEqual([TOKENS, undefined]);
  });

  it('refuses to be built without a secret', () => {
    expect(() => new TokenCipher([])).toThrow('at least one secret');
  });
});
