import { forwarded, logIn, startTestEnvironment, type TestEnvironment } from '../support/environment';
import { MovableClock } from '../support/gateway';

/** The test IdP issues 300 s access tokens; 250 s later they are inside the 60 s refresh window. */
const INTO_REFRESH_WINDOW_MS = 250_000;

function seriesOf(text: string, name: string): string[] {
  return text.split('\n').filter((line) => line.startsWith(`${name}{`));
}

describe('label cardinality stays bounded', () => {
  let env: TestEnvironment;
  const clock = new MovableClock();

  beforeAll(async () => {
    env = await startTestEnvironment({ withRedis: false, gateway: { clock }, env: { METRICS_USER_LABEL_LIMIT: '2' } });
  });
  afterAll(() => env.close());

  it('caps user_id at METRICS_USER_LABEL_LIMIT distinct values: later users count as "other"', async () => {
    const users = ['ana', 'ben', 'cy', 'dee'];
    const browsers = await Promise.all(users.map((user) => logIn(env.gateway, user)));
    clock.advance(INTO_REFRESH_WINDOW_MS);
    for (const browser of browsers) {
      expect((await browser.request(`${env.gateway.url}/verify`, { headers: forwarded('/api/orders') })).status).toBe(200);
    }
    const series = seriesOf(await env.gateway.metricsText(), 'bff_token_refresh_success_total');
    expect(series.map((line) => /user_id="([^"]+)"/.exec(line)?.[1]).sort()).toEqual(['ana', 'ben', 'other']);
    expect(series.find((line) => line.includes('user_id="other"'))).toMatch(/ 2$/);
  });

  it('does not grow /metrics with the number of distinct paths requested', async () => {
    const browser = await logIn(env.gateway, 'eve');
    await browser.request(`${env.gateway.url}/no/such/page`);
    await browser.request(`${env.gateway.url}/verify`, { headers: forwarded('/api/warm-up') });
    const count = async () => (await env.gateway.metricsText()).split('\n').filter((line) => line && !line.startsWith('#')).length;
    const before = await count();
    for (let index = 0; index < 100; index++) {
      await browser.request(`${env.gateway.url}/random/${index}/${Math.random().toString(36).slice(2)}`);
      await browser.request(`${env.gateway.url}/verify`, { headers: forwarded(`/api/orders/${index}?q=${index}`) });
    }
    expect(await count()).toBe(before);
  });
});
