import { createHash } from 'node:crypto';
import type { StoredSession } from '../../src/session/session-data';
import { SEALING_OVERHEAD_BYTES, SessionSealer } from '../../src/session/session-sealer';

const NEW_SECRET = 'new-session-secret-0123456789abcdefghijklmnop';
const OLD_SECRET = 'old-session-secret-0123456789abcdefghijklmnop';
const SESSION_ID = 'sealer-session-id-0123456789abcdefghijklmnop'.slice(0, 43);
const OTHER_SESSION_ID = 'other-session-id-0123456789abcdefghijklmnopq'.slice(0, 43);
const NOW = 1_800_000_000_000;

const RECORD: StoredSession = {
  auth: {
    user: { sub: 'alice-8c1f', name: 'Alice Liddell', email: 'alice@example.test', preferredUsername: 'alice', groups: ['staff'] },
    tokens: {
      accessToken: 'access-token-value-7d3a',
      refreshToken: 'refresh-token-value-91be',
      idToken: 'id-token-value-4f20',
      accessTokenExpiresAt: NOW + 300_000,
      accessTokenIssuedAt: NOW,
    },
    createdAt: NOW,
    absoluteExpiresAt: NOW + 43_200_000,
    binding: { userAgent: 'EUJgTqevPkieDZQPsLMMZq' },
    idpSessionId: 'idp-session-5e6f',
  },
};

describe('SessionSealer', () => {
  it('opens what it sealed for the same session id', () => {
    const sealer = new SessionSealer([NEW_SECRET]);
    expect(sealer.open(SESSION_ID, sealer.seal(SESSION_ID, RECORD))).toEqual(RECORD);
  });

  it('keeps no token, claim, binding hash or IdP session id in the sealed bytes', () => {
    const sealed = new SessionSealer([NEW_SECRET]).seal(SESSION_ID, RECORD);
    const { user, tokens, binding, idpSessionId } = RECORD.auth;
    for (const value of [user.sub, user.name!, user.email!, tokens.accessToken, tokens.refreshToken!, tokens.idToken!, binding.userAgent!, idpSessionId!]) {
      expect(sealed.includes(Buffer.from(value))).toBe(false);
    }
  });

  it('writes the envelope: version 1, the sealing key id, a fresh nonce, the ciphertext and the tag', () => {
    const sealer = new SessionSealer([NEW_SECRET]);
    const first = sealer.seal(SESSION_ID, RECORD);
    const second = sealer.seal(SESSION_ID, RECORD);
    expect(first[0]).toBe(0x01);
    expect(first.subarray(1, 5)).toEqual(second.subarray(1, 5));
    expect(first.subarray(5, 17)).not.toEqual(second.subarray(5, 17));
    expect(first.length).toBeGreaterThan(SEALING_OVERHEAD_BYTES);
  });

  it('does not open a record under another session id than the one it was sealed for', () => {
    const sealer = new SessionSealer([NEW_SECRET]);
    expect(sealer.open(OTHER_SESSION_ID, sealer.seal(SESSION_ID, RECORD))).toBeUndefined();
  });

  it('does not open a record changed by a single bit, even after it opened the original', () => {
    const sealer = new SessionSealer([NEW_SECRET]);
    const sealed = sealer.seal(SESSION_ID, RECORD);
    expect(sealer.open(SESSION_ID, sealed)).toBeDefined();
    for (const position of [1, 6, 20, sealed.length - 1]) {
      const tampered = Buffer.from(sealed);
      tampered[position]! ^= 0x01;
      expect(sealer.open(SESSION_ID, tampered)).toBeUndefined();
    }
  });

  it('treats what is not its envelope as nothing: the JSON of earlier versions, a short or empty value', () => {
    const sealer = new SessionSealer([NEW_SECRET]);
    for (const value of [Buffer.from(JSON.stringify({ cookie: {}, auth: { tokens: 'v1.abc.def.ghi' } })), Buffer.alloc(10, 1), Buffer.alloc(0)]) {
      expect(sealer.open(SESSION_ID, value)).toBeUndefined();
    }
  });

  it('opens with any configured secret and seals with the first, so secrets rotate', () => {
    const sealedBefore = new SessionSealer([OLD_SECRET]).seal(SESSION_ID, RECORD);
    const rotating = new SessionSealer([NEW_SECRET, OLD_SECRET]);
    expect(rotating.open(SESSION_ID, sealedBefore)).toEqual(RECORD);
    const sealedDuring = rotating.seal(SESSION_ID, RECORD);
    expect([new SessionSealer([NEW_SECRET]).open(SESSION_ID, sealedDuring), new SessionSealer([OLD_SECRET]).open(SESSION_ID, sealedDuring)]).toEqual([RECORD, undefined]);
  });

  it('opens nothing once the secret it was sealed with is retired', () => {
    const sealed = new SessionSealer([OLD_SECRET]).seal(SESSION_ID, RECORD);
    expect(new SessionSealer([NEW_SECRET]).open(SESSION_ID, sealed)).toBeUndefined();
  });

  it('hands out records no caller can change', () => {
    const sealer = new SessionSealer([NEW_SECRET]);
    const opened = sealer.open(SESSION_ID, sealer.seal(SESSION_ID, RECORD))!;
    expect(Object.isFrozen(opened.auth.tokens)).toBe(true);
    expect(Object.isFrozen(opened.auth.user.groups)).toBe(true);
  });

  it('needs at least one secret', () => {
    expect(() => new SessionSealer([])).toThrow('at least one secret');
  });

  describe('index digests', () => {
    it('answers one keyed digest per secret, the sealing secret\'s first', () => {
      const rotating = new SessionSealer([NEW_SECRET, OLD_SECRET]).indexDigests('sid', 'idp-session-5e6f');
      expect(rotating).toEqual([new SessionSealer([NEW_SECRET]).indexDigests('sid', 'idp-session-5e6f')[0], new SessionSealer([OLD_SECRET]).indexDigests('sid', 'idp-session-5e6f')[0]]);
    });

    it('depends on the secret, so nobody without it can compute where a sid or sub is filed', () => {
      const [keyed] = new SessionSealer([NEW_SECRET]).indexDigests('sub', 'alice-8c1f');
      expect(keyed).not.toEqual(new SessionSealer([OLD_SECRET]).indexDigests('sub', 'alice-8c1f')[0]);
      expect(keyed).not.toEqual(createHash('sha256').update('alice-8c1f').digest());
    });

    it('files the same value differently as a sid and as a sub', () => {
      const sealer = new SessionSealer([NEW_SECRET]);
      expect(sealer.indexDigests('sid', 'shared-value')[0]).not.toEqual(sealer.indexDigests('sub', 'shared-value')[0]);
    });
  });
});
