import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { envSchema } from '../../src/config/env-schema';
import { ERROR_CODES } from '../../src/errors/app-error';
import { SECURITY_EVENT_TYPES } from '../../src/events/security-events';
import { AUTH_RESPONSE_HEADERS } from '../../src/forwardauth/identity-headers';
import { VERIFY_ERRORS } from '../../src/http/verify-route';
import { GatewayMetrics } from '../../src/telemetry/metrics';

/** The README is the operator's contract: these tests keep it in step with the code's catalogues. */
describe('the README documents', () => {
  const readme = readFileSync(join(__dirname, '..', '..', 'README.md'), 'utf8');
  const mentioned = (name: string) => readme.includes(`\`${name}\``);

  it.each(Object.keys(envSchema.shape))('the variable %s', (name) => expect(mentioned(name)).toBe(true));
  it.each([...ERROR_CODES])('the error code %s', (code) => expect(mentioned(code)).toBe(true));
  it.each([...VERIFY_ERRORS])('the /verify error %s', (code) => expect(mentioned(code)).toBe(true));
  it.each([...SECURITY_EVENT_TYPES])('the security event %s', (type) => expect(mentioned(type)).toBe(true));
  it.each([...AUTH_RESPONSE_HEADERS])('the response header %s', (header) => expect(readme).toContain(header));

  const metricNames = new GatewayMetrics({ collectProcessMetrics: false }).registry.getMetricsAsArray().map((metric) => metric.name);
  it.each(metricNames)('the metric %s', (name) => expect(mentioned(name)).toBe(true));
});
