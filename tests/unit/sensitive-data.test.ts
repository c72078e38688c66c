import { findSensitiveData, isPrototypeKey, isSensitiveKey, isSensitiveValue } from '../../src/http/sensitive-data';

/** `text` percent-encoded `times` times over, every character escaped the first time. */
function encoded(text: string, times: number): string {
  let result = [...Buffer.from(text, 'utf8')].map((byte) => `%${byte.toString(16).toUpperCase().padStart(2, '0')}`).join('');
  for (let round = 1; round < times; round++) result = result.replaceAll('%', '%25');
  return result;
}

const CARD = '4111111111111111';

/** `digits` with the Luhn check digit appended. */
function withCheckDigit(digits: string): string {
  for (let check = 0; check <= 9; check++) {
    const candidate = `${digits}${check}`;
    let sum = 0;
    [...candidate].reverse().forEach((character, index) => {
      const digit = Number(character) * (index % 2 === 1 ? 2 : 1);
      sum += digit > 9 ? digit - 9 : digit;
    });
    if (sum % 10 === 0) return candidate;
  }
  throw new Error('unreachable');
}
const JWT = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NSJ9.c2lnbmF0dXJl';

describe('personal data and secrets in SPA metrics (SPEC section 6)', () => {
  describe('the three reported bypasses', () => {
    it('a "__proto__" key is found, though a schema record would drop it', () => {
      const body = JSON.parse('{"events":[{"event":"page_view","attributes":{"__proto__":{"email":"ada@example.com"}}}]}') as unknown;
      expect(findSensitiveData(body)).toEqual([
        { path: 'events[0].attributes.__proto__', reason: 'prototype_key' },
        { path: 'events[0].attributes.__proto__.email', reason: 'sensitive_key' },
        { path: 'events[0].attributes.__proto__.email', reason: 'sensitive_value' },
      ]);
    });

    it('a percent-encoded email is found', () => {
      expect(isSensitiveValue('ada%40example.com')).toBe(true);
    });

    it('a card number written with dots is found', () => {
      expect(isSensitiveValue('4111.1111.1111.1111')).toBe(true);
    });
  });

  describe('keys', () => {
    it.each([
      'email', 'Email', 'e-mail', 'e_mail', 'userEmail', 'EMAIL_ADDRESS', 'mail',
      'password', 'Passwd', 'pwd', 'user.password', 'passphrase',
      'token', 'accessToken', 'refresh_token', 'id-token', 'csrfToken', 'jwt', 'bearer',
      'authorization', 'Authorisation', 'proxy-authorization',
      'cookie', 'Set-Cookie', 'sessionCookie',
      'secret', 'clientSecret', 'api_key', 'apiKey', 'private-key',
      'ssn', 'SSN', 'userSsn', 's.s.n', 's_s_n', 'social_security_number',
      'creditCard', 'credit-card-number', 'card_number', 'cc-number', 'cvv', 'cvc', 'pin', 'pan', 'iban',
      // Encoded or look-alike spellings of the same.
      'e%6Dail', '%2565mail', 'ｅｍａｉｌ', 'pass%2Dword', 'to%E2%80%8Bken',
    ])('%j names personal data or a secret', (key) => {
      expect(isSensitiveKey(key)).toBe(true);
    });

    it.each(['route', 'className', 'lessons', 'businessName', 'company', 'span', 'panel', 'duration_ms', 'page', 'status', 'pinned', 'mailbox_count'])(
      '%j does not',
      (key) => {
        expect(isSensitiveKey(key)).toBe(false);
      },
    );

    it.each(['__proto__', 'constructor', 'prototype', 'Constructor', '%5F%5Fproto%5F%5F', '__PROTO__'])('%j reaches a prototype', (key) => {
      expect(isPrototypeKey(key)).toBe(true);
    });

    it.each(['proto', 'constructed', 'prototypes', 'toString'])('%j does not reach a prototype', (key) => {
      expect(isPrototypeKey(key)).toBe(false);
    });
  });

  describe('values', () => {
    it.each([
      ['an email', 'ada@example.com'],
      ['an email inside text', 'contact: ada.lovelace+bff@mail.example.co.uk, thanks'],
      ['an email percent-encoded once', encoded('ada@example.com', 1)],
      ['an email percent-encoded twice', encoded('ada@example.com', 2)],
      ['an email percent-encoded five times', encoded('ada@example.com', 5)],
      ['an email with only the "@" encoded twice', 'ada%2540example.com'],
      ['an email with spaces around its separators', 'ada @ example . com'],
      ['an email with a fullwidth at sign', 'ada＠example.com'],
      ['an email with an internationalised domain', 'ada@bücher.example'],
      ['a JWT', JWT],
      ['a JWT inside text', `token=${JWT}&x=1`],
      ['a JWT percent-encoded', encoded(JWT, 1)],
      ['an encrypted JWT (JWE, empty key part)', 'eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2R0NNIn0..aXY.Y2lwaGVy.dGFn'],
      ['a bearer token', 'Bearer 2YotnFZFEjr1zCsicMWpAA'],
      ['a card number', CARD],
      ['a card number with spaces', '4111 1111 1111 1111'],
      ['a card number with dashes', '4111-1111-1111-1111'],
      ['a card number with dots', '4111.1111.1111.1111'],
      ['a card number with slashes', '4111/1111/1111/1111'],
      ['a card number with underscores', '4111_1111_1111_1111'],
      ['a card number with spaced dashes', '4111 - 1111 - 1111 - 1111'],
      ['a card number with mixed separators', '4111.1111-1111 1111'],
      ['a card number with a separator between every digit', '4.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1'],
      ['an Amex number grouped 4-6-5', '3782 822463 10005'],
      ['a 13-digit card number', withCheckDigit('422222222222')],
      ['a 19-digit card number with spaces', withCheckDigit('622222222222222222').replace(/(\d{4})/g, '$1 ')],
      ['a card number percent-encoded', encoded('4111 1111 1111 1111', 1)],
      ['a card number with encoded separators, twice', '4111%252E1111%252E1111%252E1111'],
      ['a card number in fullwidth digits', '４１１１ １１１１ １１１１ １１１１'],
      ['a card number after other digits', 'order 12 4111 1111 1111 1111'],
      ['a card number before other digits', '4111 1111 1111 1111 12 30'],
      ['a card number inside text', 'card:4111-1111-1111-1111;'],
      ['text still changing after eight decodings', encoded('x', 10)],
    ])('%s is sensitive', (_description, value) => {
      expect(isSensitiveValue(value)).toBe(true);
    });

    it.each([
      ['a route', '/orders/42'],
      ['a duration', '1834.5'],
      ['a date and time', '2026-12-01T10:20:30.123Z'],
      ['a 16-digit number that fails Luhn', '4111111111111112'],
      ['a 12-digit number that passes Luhn', withCheckDigit('41111111111')],
      ['a 20-digit number that passes Luhn', withCheckDigit('4111111111111111111')],
      ['a version string', '1.2.3'],
      ['an "@" without a domain', '@media screen'],
      ['a high-resolution asset name', '/static/icon@2x.png'],
      ['text with a percent sign', '100% done'],
      ['a header word', 'eyJ'],
      ['accented text', 'café crème'],
    ])('%s is not', (_description, value) => {
      expect(isSensitiveValue(value)).toBe(false);
    });
  });

  describe('findSensitiveData over a whole body', () => {
    it('names every offending key with its path, in document order', () => {
      const body = {
        events: [
          { event: 'page_view', attributes: { route: '/orders', email: 'x' } },
          { event: 'page_view', attributes: { note: 'ada%40example.com', ref: '4111.1111.1111.1111' } },
        ],
      };
      expect(findSensitiveData(body)).toEqual([
        { path: 'events[0].attributes.email', reason: 'sensitive_key' },
        { path: 'events[1].attributes.note', reason: 'sensitive_value' },
        { path: 'events[1].attributes.ref', reason: 'sensitive_value' },
      ]);
    });

    it.each(['constructor', 'prototype', '__proto__'])('finds %j at every level of the body', (key) => {
      const body = JSON.parse(`{"${key}":1,"events":[{"${key}":1,"event":"page_view","attributes":{"${key}":"x"}}]}`) as unknown;
      expect(findSensitiveData(body).map((finding) => finding.path)).toEqual([key, `events[0].${key}`, `events[0].attributes.${key}`]);
    });

    it('finds a card number sent as a JSON number in attributes', () => {
      expect(findSensitiveData({ events: [{ event: 'page_view', attributes: { ref: Number(CARD) } }] })).toEqual([
        { path: 'events[0].attributes.ref', reason: 'sensitive_value' },
      ]);
    });

    it('leaves a measured value alone, whatever its digits', () => {
      expect(findSensitiveData({ events: [{ event: 'page_view', value: Number(CARD) }] })).toEqual([]);
    });

    it('shows a key that itself looks like personal data by position, so the answer does not repeat it', () => {
      expect(findSensitiveData({ events: [{ event: 'page_view', attributes: { route: '/', 'ada@example.com': 'x' } }] })).toEqual([
        { path: 'events[0].attributes.[key 1]', reason: 'sensitive_key' },
      ]);
    });

    it('finds nothing in an ordinary body', () => {
      const body = { events: [{ event: 'web_vital_lcp', value: 1834.5, attributes: { route: '/orders', rating: 'good', cached: true, items: 3 } }] };
      expect(findSensitiveData(body)).toEqual([]);
    });
  });
});
