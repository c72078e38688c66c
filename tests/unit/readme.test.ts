import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { envSchema } from '../../src/config/env-schema';
import { ERROR_CODES } from '../../src/errors/app-error';
import { SECURITY_EVENT_TYPES } from '../../src/events/security-events';
import { AUTH_RESPONSE_HEADERS } from '../../src/forwardauth/identity-headers';
import { VERIFY_ERRORS } from '../../src/http/verify-route';
import { GatewayMetrics } from '../../src/telemetry/metrics';

const ROOT = join(__dirname, '..', '..');
const read = (...path: string[]) => readFileSync(join(ROOT, ...path), 'utf8');
const readme = read('README.md');
const docs = Object.fromEntries(readdirSync(join(ROOT, 'docs')).filter((name) => name.endsWith('.md')).map((name) => [name, read('docs', name)]));
/** The operator's documentation: the README and everything it links in docs/. */
const documentation = [readme, ...Object.values(docs)].join('\n');
const mentioned = (name: string) => documentation.includes(`\`${name}\``);

/** The backticked names in the first column of the Markdown tables of `text`. */
function firstColumnNames(text: string): string[] {
  return text
    .split('\n')
    .filter((line) => line.startsWith('| `'))
    .flatMap((line) => [...(line.split('|')[1] ?? '').matchAll(/`([^`]+)`/g)].map((match) => match[1] as string));
}

/** The first-column names of the one table whose header row starts with `header`. */
function tableAfter(text: string, header: string): string[] {
  const start = text.indexOf(`\n${header}`);
  if (start === -1) return [];
  const end = text.indexOf('\n\n', start + 1);
  return firstColumnNames(text.slice(start + 1, end === -1 ? undefined : end));
}

const variables = Object.keys(envSchema.shape);
const gatewayMetrics = new GatewayMetrics({ collectProcessMetrics: false });
// Registered only once TLS_CERT_FILE's certificate is loaded (an unset gauge would read as expired).
gatewayMetrics.tlsCertificateLoaded(new Date());
const registry = gatewayMetrics.registry;
const metricNames = registry.getMetricsAsArray().map((metric) => metric.name);
/** OpenTelemetry instruments exported over OTLP (SPEC section 8), not on /metrics. */
const OTLP_METRICS = ['bff_forwardauth_duration_ms', 'bff_session_validation_duration_ms', 'bff_token_refresh_duration_ms', 'bff_auth_requests_total'];

/** The README and docs/ are the operator's contract: these tests keep them and the code's catalogues in step, both ways. */
describe('the documentation names what the code has', () => {
  it.each(variables)('the variable %s, in the configuration reference', (name) => expect(docs['configuration.md']).toContain(`\`${name}\``));
  it.each([...ERROR_CODES])('the error code %s', (code) => expect(mentioned(code)).toBe(true));
  it.each([...VERIFY_ERRORS])('the /verify error %s', (code) => expect(mentioned(code)).toBe(true));
  it.each([...SECURITY_EVENT_TYPES])('the security event %s', (type) => expect(mentioned(type)).toBe(true));
  it.each([...AUTH_RESPONSE_HEADERS])('the response header %s, in the README', (header) => expect(readme).toContain(header));
  it.each(metricNames)('the metric %s', (name) => expect(mentioned(name)).toBe(true));
});

describe('the code has what the documentation names', () => {
  it('every variable in the configuration tables exists', () => {
    const documented = firstColumnNames(docs['configuration.md'] ?? '').filter((name) => /^[A-Z][A-Z0-9_]+$/.test(name));
    expect(documented.length).toBeGreaterThan(30);
    expect(documented.filter((name) => !variables.includes(name))).toEqual([]);
  });

  it('every error code in the error table exists', () => {
    expect(tableAfter(docs['endpoints.md'] ?? '', '| code |').sort()).toEqual([...ERROR_CODES].sort());
  });

  it('every security event in the event table exists', () => {
    expect([...new Set(tableAfter(docs['events.md'] ?? '', '| type |'))].sort()).toEqual([...SECURITY_EVENT_TYPES].sort());
  });

  it('every bff_, http_ and circuit_ metric named anywhere exists', () => {
    const named = new Set([...documentation.matchAll(/`((?:bff|http|circuit)_[a-z_]+)(?:\{[^`]*\})?`/g)].map((match) => match[1] as string));
    const known = new Set([...metricNames, ...OTLP_METRICS]);
    const unknown = [...named].filter((name) => !known.has(name) && !known.has(name.replace(/_(bucket|count|sum)$/, '')));
    expect(unknown).toEqual([]);
  });

  it('every docs/ page the documentation links to exists', () => {
    const links = [...documentation.matchAll(/\]\((?:docs\/)?([a-z0-9-]+\.md)(?:#[^)]*)?\)/g)].map((match) => match[1] as string);
    expect(links.filter((name) => !(name in docs))).toEqual([]);
  });

  it('the README stays a front door: under 250 lines', () => {
    expect(readme.split('\n').length).toBeLessThan(250);
  });
});
