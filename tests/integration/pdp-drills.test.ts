import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from '../support/browser';
import { forwarded, logIn, startTestEnvironment, type TestEnvironment } from '../support/environment';
import { metricValue } from '../support/gateway';
import { startOpa, type OpaServer } from '../support/opa';

describe('a PDP that stops answering under steady traffic', () => {
  let opa: OpaServer;
  let env: TestEnvironment;
  let routesDirectory: string;

  beforeAll(async () => {
    opa = await startOpa();
    routesDirectory = mkdtempSync(join(tmpdir(), 'bff-pdp-drill-'));
    writeFileSync(join(routesDirectory, 'routes.yaml'), 'routes:\n  - name: orders\n    pathPrefix: /api/orders\n    authz: pdp\n');
    env = await startTestEnvironment({
      env: {
        ROUTES_FILE: join(routesDirectory, 'routes.yaml'),
        PDP_URL: opa.decisionUrl,
        PDP_TIMEOUT_MS: '300',
        // Every request asks the PDP, and the breaker could only close by itself after a minute.
        PDP_CACHE_TTL_SECONDS: '0',
        BREAKER_RESET_TIMEOUT_MS: '60000',
      },
    });
  }, 25 * 60_000);
  afterAll(async () => {
    await env?.close();
    await opa?.stop();
    rmSync(routesDirectory, { recursive: true, force: true });
  });

  async function verify(browser: Browser): Promise<number> {
    return (await browser.request(`${env.gateway.url}/verify`, { headers: forwarded('/api/orders/1') })).status;
  }
  async function pdpCalls(): Promise<number> {
    return metricValue(await env.gateway.metricsText(), 'bff_authz_latency_seconds_count');
  }

  it('opens its breaker after a few timed-out calls: later requests get a 503 without waiting on the PDP', async () => {
    const browser: Browser = await logIn(env.gateway, 'alice');
    for (let call = 0; call < 200; call++) expect(await verify(browser)).toBe(200);
    const callsBefore = await pdpCalls();
    opa.pause();
    try {
      const answers: number[] = [];
      for (let wave = 0; wave < 10; wave++) answers.push(...(await Promise.all(Array.from({ length: 10 }, () => verify(browser)))));
      expect(answers.every((status) => status === 503)).toBe(true);
      expect((await pdpCalls()) - callsBefore).toBeLessThanOrEqual(20);
      expect(metricValue(await env.gateway.metricsText(), 'circuit_breaker_status', { service: 'pdp' })).toBe(2);
    } finally {
      opa.resume();
    }
  });
});
