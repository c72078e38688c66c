import { deviceLabelOf, MAX_DEVICE_LABEL_LENGTH } from '../../src/session/device-label';

describe('the device label of a session', () => {
  it.each([
    ['Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0', 'Firefox 133 on Linux'],
    ['Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36', 'Chrome 131 on Windows'],
    ['Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1', 'Safari 17 on iOS'],
    ['Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0', 'Microsoft Edge 131 on macOS'],
  ])('names the browser, its major version and the system: %s', (userAgent, label) => {
    expect(deviceLabelOf(userAgent)).toBe(label);
  });

  it('is absent without a User-Agent', () => {
    expect(deviceLabelOf(undefined)).toBeUndefined();
    expect(deviceLabelOf('')).toBeUndefined();
  });

  it('keeps only short printable text of whatever a client sends', () => {
    const label = deviceLabelOf(`<script>alert(1)</script>\u0000\u202e/${'9'.repeat(40)} ${'x'.repeat(2000)}`);
    expect(label === undefined || /^[\p{L}\p{N} .()_+-]*$/u.test(label)).toBe(true);
    expect((label ?? '').length).toBeLessThanOrEqual(MAX_DEVICE_LABEL_LENGTH);
  });
});
