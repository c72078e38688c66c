import { bindingFor, findBindingViolation, ipPrefix } from '../../src/session/binding';

const FIREFOX = 'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0';
const CHROME = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36';

describe('ipPrefix', () => {
  it.each([
    ['an IPv4 address', '192.0.2.17', '192.0.2'],
    ['another IPv4 address of the same /24', '192.0.2.250', '192.0.2'],
    ['an IPv4-mapped IPv6 address', '::ffff:192.0.2.17', '192.0.2'],
    ['a full IPv6 address', '2001:db8:1:2:3:4:5:6', '2001:db8:1:2'],
    ['an IPv6 address with leading zeros', '2001:0db8:0001:0000:0:0:0:1', '2001:db8:1:0'],
    ['an IPv6 address with upper-case hex', '2001:DB8:ABCD:12::1', '2001:db8:abcd:12'],
    ['an IPv6 address compressed in the middle', '2001:db8::1', '2001:db8:0:0'],
    ['an IPv6 address compressed after four groups', '2001:db8:1:2::5', '2001:db8:1:2'],
    ['an IPv6 address compressed at the end', '2001:db8::', '2001:db8:0:0'],
    ['an IPv6 address compressed at the start', '::1:2:3:4:5', '0:0:0:1'],
    ['the IPv6 loopback', '::1', '0:0:0:0'],
    ['the IPv6 unspecified address', '::', '0:0:0:0'],
    ['a link-local IPv6 address', 'fe80::1ff:fe23:4567:890a', 'fe80:0:0:0'],
  ])('keeps the network of %s (%s -> %s)', (_description, address, expected) => {
    expect(ipPrefix(address)).toBe(expected);
  });

  it('puts the compressed and the full spelling of one IPv6 address in the same prefix', () => {
    expect(ipPrefix('2001:db8:0:0:0:0:0:1')).toBe(ipPrefix('2001:db8::1'));
  });

  it('puts two addresses of one /64 in the same prefix', () => {
    expect(ipPrefix('2001:db8:1:2:aaaa::1')).toBe(ipPrefix('2001:db8:1:2:bbbb::2'));
  });

  it('puts an IPv4 address and its IPv4-mapped spelling in the same prefix', () => {
    expect(ipPrefix('::ffff:198.51.100.7')).toBe(ipPrefix('198.51.100.7'));
  });

  it('returns a value that is not an IP address as it is', () => {
    expect(ipPrefix('not-an-ip')).toBe('not-an-ip');
  });
});

describe('bindingFor', () => {
  it('binds to nothing when binding is off', () => {
    expect(bindingFor('off', FIREFOX, '192.0.2.17')).toEqual({});
  });

  it('binds to the user agent only in ua mode', () => {
    expect(Object.keys(bindingFor('ua', FIREFOX, '192.0.2.17'))).toEqual(['userAgent']);
  });

  it('binds to the user agent and the IP prefix in ua+ip mode', () => {
    expect(Object.keys(bindingFor('ua+ip', FIREFOX, '192.0.2.17')).sort()).toEqual(['ipPrefix', 'userAgent']);
  });

  it('binds to the user agent only in ua+ip mode when the client address is unknown', () => {
    expect(Object.keys(bindingFor('ua+ip', FIREFOX, undefined))).toEqual(['userAgent']);
  });

  it('stores hashes, never the user agent or the address', () => {
    const stored = JSON.stringify(bindingFor('ua+ip', FIREFOX, '192.0.2.17'));
    expect([stored.includes('Firefox'), stored.includes('192.0.2')]).toEqual([false, false]);
  });

  it('stores 22-character base64url hashes', () => {
    const binding = bindingFor('ua+ip', FIREFOX, '192.0.2.17');
    expect([binding.userAgent, binding.ipPrefix]).toEqual([expect.stringMatching(/^[A-Za-z0-9_-]{22}$/), expect.stringMatching(/^[A-Za-z0-9_-]{22}$/)]);
  });
});

describe('findBindingViolation', () => {
  it.each([
    ['off', 'another user agent and network', 'off', CHROME, '203.0.113.9', undefined],
    ['ua', 'the same user agent', 'ua', FIREFOX, '192.0.2.17', undefined],
    ['ua', 'the same user agent from another network', 'ua', FIREFOX, '203.0.113.9', undefined],
    ['ua', 'another user agent', 'ua', CHROME, '192.0.2.17', 'user_agent'],
    ['ua', 'no user agent', 'ua', undefined, '192.0.2.17', 'user_agent'],
    ['ua+ip', 'the same user agent and address', 'ua+ip', FIREFOX, '192.0.2.17', undefined],
    ['ua+ip', 'the same user agent from the same /24', 'ua+ip', FIREFOX, '192.0.2.200', undefined],
    ['ua+ip', 'the same user agent from the IPv4-mapped spelling', 'ua+ip', FIREFOX, '::ffff:192.0.2.200', undefined],
    ['ua+ip', 'the same user agent from another /24', 'ua+ip', FIREFOX, '192.0.3.17', 'ip'],
    ['ua+ip', 'another user agent from another /24', 'ua+ip', CHROME, '192.0.3.17', 'user_agent'],
  ] as const)('in %s mode, a session used with %s gives %j', (_mode, _description, mode, userAgent, address, expected) => {
    const stored = bindingFor(mode, FIREFOX, '192.0.2.17');
    expect(findBindingViolation(mode, stored, userAgent, address)).toBe(expected);
  });

  it('ignores a stored binding once binding is turned off', () => {
    const stored = bindingFor('ua+ip', FIREFOX, '192.0.2.17');
    expect(findBindingViolation('off', stored, CHROME, '203.0.113.9')).toBeUndefined();
  });

  it('ignores the stored IP prefix in ua mode', () => {
    const stored = bindingFor('ua+ip', FIREFOX, '192.0.2.17');
    expect(findBindingViolation('ua', stored, FIREFOX, '203.0.113.9')).toBeUndefined();
  });

  it('does not fail a session created before binding was turned on', () => {
    expect(findBindingViolation('ua+ip', {}, CHROME, '203.0.113.9')).toBeUndefined();
  });

  it('accepts a session bound without a user agent when none is sent again', () => {
    const stored = bindingFor('ua', undefined, undefined);
    expect(findBindingViolation('ua', stored, undefined, undefined)).toBeUndefined();
  });

  it('keeps an IPv6 session within its /64', () => {
    const stored = bindingFor('ua+ip', FIREFOX, '2001:db8:1:2::10');
    expect(findBindingViolation('ua+ip', stored, FIREFOX, '2001:db8:1:2:ffff::99')).toBeUndefined();
  });

  it('fails an IPv6 session used from another /64', () => {
    const stored = bindingFor('ua+ip', FIREFOX, '2001:db8:1:2::10');
    expect(findBindingViolation('ua+ip', stored, FIREFOX, '2001:db8:1:3::10')).toBe('ip');
  });
});
