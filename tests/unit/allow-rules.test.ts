import { asciiLowerCase, checkAllowRules, parseDomain, parseEmail, type AllowRules, type AllowRulesSubject } from '../../src/forwardauth/allow-rules';

const NONE: AllowRules = { groups: [], emails: [], domains: [] };
const rules = (overrides: Partial<AllowRules>): AllowRules => ({ ...NONE, ...overrides });
const verified = (email: string, groups: string[] = []): AllowRulesSubject => ({ email, emailVerified: true, groups });

describe('parseEmail', () => {
  it.each([
    ['alice@example.com', 'alice@example.com', 'example.com'],
    ['Alice@Example.COM', 'alice@example.com', 'example.com'],
    ['first.last+tag@sub.example.com', 'first.last+tag@sub.example.com', 'sub.example.com'],
  ])('reads %j as %j in the domain %j', (input, address, domain) => {
    expect(parseEmail(input)).toEqual({ address, domain });
  });

  it.each([
    ['no "@"', 'alice.example.com'],
    ['two "@" (no single domain)', 'a@b@example.com'],
    ['a quoted local part with an "@"', '"a@b"@example.com'],
    ['nothing before the "@"', '@example.com'],
    ['nothing after the "@"', 'alice@'],
    ['the empty string', ''],
    ['a space', 'alice @example.com'],
    ['a leading space', ' alice@example.com'],
    ['a trailing newline', 'alice@example.com\n'],
    ['a NUL', 'alice@example.com\u0000'],
    ['a zero-width space', 'alice@exa\u200bmple.com'],
    ['a no-break space', 'alice@example.com\u00a0'],
  ])('refuses an address with %s', (_description, input) => {
    expect(parseEmail(input)).toBeUndefined();
  });

  it('lower-cases ASCII only: the Kelvin sign stays itself and does not become "k"', () => {
    expect(parseEmail('admin@\u212Aexample.com')?.domain).toBe('\u212Aexample.com');
    expect(asciiLowerCase('\u212A\u0130ABC')).toBe('\u212A\u0130abc');
  });
});

describe('parseDomain', () => {
  it.each([
    ['example.com', 'example.com'],
    ['Example.COM', 'example.com'],
    ['xn--bcher-kva.example', 'xn--bcher-kva.example'],
    ['localhost', 'localhost'],
  ])('accepts %j as %j', (input, expected) => {
    expect(parseDomain(input)).toBe(expected);
  });

  it.each([
    ['an "@"', 'alice@example.com'],
    ['a leading dot', '.example.com'],
    ['a wildcard', '*.example.com'],
    ['a trailing dot', 'example.com.'],
    ['an empty label', 'example..com'],
    ['a label starting with a hyphen', '-example.com'],
    ['a space', 'example .com'],
    ['non-ASCII (use the xn-- form)', 'bücher.example'],
    ['the empty string', ''],
  ])('refuses a domain with %s', (_description, input) => {
    expect(parseDomain(input)).toBeUndefined();
  });
});

describe('checkAllowRules', () => {
  describe('groups', () => {
    it('allows a user in any one of the listed groups', () => {
      expect(checkAllowRules(rules({ groups: ['staff', 'ops'] }), { groups: ['users', 'ops'] })).toEqual({ isAllowed: true, by: 'group' });
    });

    it('refuses a user in none of them', () => {
      expect(checkAllowRules(rules({ groups: ['staff'] }), { groups: ['users'] })).toEqual({ isAllowed: false, reason: 'no_matching_rule' });
    });

    it('compares group names exactly: case and spelling matter', () => {
      expect(checkAllowRules(rules({ groups: ['staff'] }), { groups: ['Staff', 'staff ', '/staff'] }).isAllowed).toBe(false);
    });

    it('allows by group whatever the email says, verified or not', () => {
      expect(checkAllowRules(rules({ groups: ['staff'] }), { groups: ['staff'], email: 'a@b@evil.example', emailVerified: false }).isAllowed).toBe(true);
    });

    it('refuses a user without groups', () => {
      expect(checkAllowRules(rules({ groups: ['staff'] }), { groups: [] }).isAllowed).toBe(false);
    });
  });

  describe('emails', () => {
    const OPS = rules({ emails: ['ops@example.com'] });

    it('allows a listed, verified email', () => {
      expect(checkAllowRules(OPS, verified('ops@example.com'))).toEqual({ isAllowed: true, by: 'email' });
    });

    it('compares the whole address without regard to ASCII case', () => {
      expect(checkAllowRules(OPS, verified('OPS@Example.Com')).isAllowed).toBe(true);
    });

    it.each([
      ['false', false],
      ['absent', undefined],
    ])('refuses a listed email whose email_verified is %s, and says so', (_description, emailVerified) => {
      expect(checkAllowRules(OPS, { groups: [], email: 'ops@example.com', emailVerified })).toEqual({ isAllowed: false, reason: 'email_not_verified' });
    });

    it('refuses another address of the same domain', () => {
      expect(checkAllowRules(OPS, verified('dev@example.com'))).toEqual({ isAllowed: false, reason: 'no_matching_rule' });
    });

    it('refuses a user without an email', () => {
      expect(checkAllowRules(OPS, { groups: [], emailVerified: true })).toEqual({ isAllowed: false, reason: 'no_matching_rule' });
    });

    it.each(['ops@example.com@evil.example', 'evil@ops@example.com', ' ops@example.com', 'ops@example.com '])('refuses the malformed address %j', (email) => {
      expect(checkAllowRules(OPS, verified(email))).toEqual({ isAllowed: false, reason: 'malformed_email' });
    });
  });

  describe('domains', () => {
    const EXAMPLE = rules({ domains: ['example.com'] });

    it('allows a verified email in a listed domain', () => {
      expect(checkAllowRules(EXAMPLE, verified('anyone@example.com'))).toEqual({ isAllowed: true, by: 'domain' });
    });

    it('compares the domain without regard to ASCII case', () => {
      expect(checkAllowRules(EXAMPLE, verified('anyone@EXAMPLE.com')).isAllowed).toBe(true);
    });

    it('does not let a subdomain match its parent', () => {
      expect(checkAllowRules(EXAMPLE, verified('anyone@eu.example.com'))).toEqual({ isAllowed: false, reason: 'no_matching_rule' });
    });

    it('lets a subdomain match when it is listed itself', () => {
      expect(checkAllowRules(rules({ domains: ['example.com', 'eu.example.com'] }), verified('anyone@eu.example.com')).isAllowed).toBe(true);
    });

    it.each([
      ['a longer domain ending like it', 'anyone@evilexample.com'],
      ['the domain in the local part', 'example.com@evil.example'],
      ['the domain as a prefix', 'anyone@example.com.evil.example'],
      ['a trailing dot', 'anyone@example.com.'],
      // String#toLowerCase would fold it onto the listed ekample.com.
      ['a Kelvin sign for "k"', 'anyone@e\u212Aample.com'],
    ])('refuses %s', (_description, email) => {
      expect(checkAllowRules(rules({ domains: ['example.com', 'ekample.com'] }), verified(email)).isAllowed).toBe(false);
    });

    it('refuses a verified email with two "@" whose last part is a listed domain', () => {
      expect(checkAllowRules(EXAMPLE, verified('a@b@example.com'))).toEqual({ isAllowed: false, reason: 'malformed_email' });
    });

    it('refuses an unverified email in a listed domain, and says so', () => {
      expect(checkAllowRules(EXAMPLE, { groups: [], email: 'anyone@example.com', emailVerified: false })).toEqual({ isAllowed: false, reason: 'email_not_verified' });
    });
  });

  describe('rules together', () => {
    const ALL = rules({ groups: ['staff'], emails: ['ops@partner.example'], domains: ['example.com'] });

    it.each([
      ['a group', { groups: ['staff'] }, 'group'],
      ['a listed email', verified('ops@partner.example'), 'email'],
      ['a domain', verified('dev@example.com'), 'domain'],
    ] as const)('allows by any one of them: %s', (_description, subject, by) => {
      expect(checkAllowRules(ALL, subject)).toEqual({ isAllowed: true, by });
    });

    it('prefers the email to the domain when both match', () => {
      expect(checkAllowRules(rules({ emails: ['ops@example.com'], domains: ['example.com'] }), verified('ops@example.com'))).toEqual({ isAllowed: true, by: 'email' });
    });

    it('refuses a user none of them names', () => {
      expect(checkAllowRules(ALL, verified('dev@partner.example', ['users']))).toEqual({ isAllowed: false, reason: 'no_matching_rule' });
    });

    it('refuses everyone under rules that list nothing', () => {
      expect(checkAllowRules(NONE, verified('ops@example.com', ['staff'])).isAllowed).toBe(false);
    });
  });
});
