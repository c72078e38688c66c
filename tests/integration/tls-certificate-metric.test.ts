import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { startTestEnvironment, type TestEnvironment } from '../support/environment';
import { metricValue, type RunningGateway } from '../support/gateway';
import { makeTestCertificates, type TestCertificates } from '../support/tls';

const GAUGE = 'bff_tls_certificate_expiry_timestamp_seconds';

/** The gauge behind the BffTlsCertificateExpiringSoon alert (deploy/prometheus/rules/alerts.rules.yml). */
describe('the expiry of the TLS certificate on /metrics', () => {
  let env: TestEnvironment;
  let certificates: TestCertificates;
  let tlsReplica: RunningGateway;

  beforeAll(async () => {
    certificates = makeTestCertificates();
    env = await startTestEnvironment({ withRedis: false });
    tlsReplica = await env.startReplica({ env: { ...env.env, TLS_CERT_FILE: certificates.certFile, TLS_KEY_FILE: certificates.keyFile } });
  });

  afterAll(async () => {
    await env?.close();
    certificates?.remove();
  });

  it('a gateway serving TLS exports the notAfter of TLS_CERT_FILE in Unix seconds', async () => {
    const notAfter = new Date(new X509Certificate(readFileSync(certificates.certFile)).validTo);
    const text = await tlsReplica.metricsText();
    expect(text).toContain(`# TYPE ${GAUGE} gauge`);
    expect(metricValue(text, GAUGE)).toBe(notAfter.getTime() / 1000);
  });

  it('a gateway without TLS exports no expiry at all, so the alert has nothing to fire on', async () => {
    expect(await env.gateway.metricsText()).not.toContain(GAUGE);
  });
});
