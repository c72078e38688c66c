import { findCsrfViolation, isUnsafeMethod } from '../../src/forwardauth/csrf';

const PUBLIC_ORIGIN = 'https://app.example.com';

type CsrfHeaders = Parameters<typeof findCsrfViolation>[1];

function headers(overrides: Partial<CsrfHeaders> = {}): CsrfHeaders {
  return { csrf: '1', origin: PUBLIC_ORIGIN, fetchSite: 'same-origin', ...overrides };
}

describe('isUnsafeMethod', () => {
  it.each(['GET', 'HEAD', 'OPTIONS', 'TRACE'])('treats %s as safe', (method) => {
    expect(isUnsafeMethod(method)).toBe(false);
  });

  it.each(['POST', 'PUT', 'PATCH', 'DELETE', 'PROPFIND'])('treats %s as unsafe', (method) => {
    expect(isUnsafeMethod(method)).toBe(true);
  });
});

describe('findCsrfViolation', () => {
  it.each(['GET', 'HEAD', 'OPTIONS'])('lets a safe %s through without any header', (method) => {
    expect(findCsrfViolation(method, { csrf: undefined, origin: 'https://evil.example', fetchSite: 'cross-site' }, PUBLIC_ORIGIN)).toBeUndefined();
  });

  it.each(['POST', 'PUT', 'PATCH', 'DELETE'])('lets %s through with X-CSRF: 1 from the same origin', (method) => {
    expect(findCsrfViolation(method, headers(), PUBLIC_ORIGIN)).toBeUndefined();
  });

  it.each(['POST', 'PUT', 'PATCH', 'DELETE'])('refuses %s without the X-CSRF header', (method) => {
    expect(findCsrfViolation(method, headers({ csrf: undefined }), PUBLIC_ORIGIN)).toBe('missing_header');
  });

  it.each(['0', 'true', '', ' 1', '11'])('refuses an X-CSRF header of %j', (value) => {
    expect(findCsrfViolation('POST', headers({ csrf: value }), PUBLIC_ORIGIN)).toBe('missing_header');
  });

  it('accepts an unsafe request with neither Origin nor Sec-Fetch-Site', () => {
    expect(findCsrfViolation('POST', headers({ origin: undefined, fetchSite: undefined }), PUBLIC_ORIGIN)).toBeUndefined();
  });

  it.each([
    'https://evil.example',
    'http://app.example.com',
    'https://app.example.com:8443',
    'https://app.example.com.evil.example',
    'null',
  ])('refuses an Origin of %j', (origin) => {
    expect(findCsrfViolation('POST', headers({ origin }), PUBLIC_ORIGIN)).toBe('origin_mismatch');
  });

  it.each(['same-origin', 'same-site', 'none'])('accepts Sec-Fetch-Site %j', (fetchSite) => {
    expect(findCsrfViolation('POST', headers({ fetchSite }), PUBLIC_ORIGIN)).toBeUndefined();
  });

  it.each(['cross-site', 'unknown', ''])('refuses Sec-Fetch-Site %j', (fetchSite) => {
    expect(findCsrfViolation('POST', headers({ fetchSite }), PUBLIC_ORIGIN)).toBe('cross_site');
  });

  it('reports the missing header before an Origin mismatch', () => {
    expect(findCsrfViolation('POST', { csrf: undefined, origin: 'https://evil.example', fetchSite: 'cross-site' }, PUBLIC_ORIGIN)).toBe('missing_header');
  });

  it('reports an Origin mismatch before a cross-site Sec-Fetch-Site', () => {
    expect(findCsrfViolation('POST', headers({ origin: 'https://evil.example', fetchSite: 'cross-site' }), PUBLIC_ORIGIN)).toBe('origin_mismatch');
  });
});
