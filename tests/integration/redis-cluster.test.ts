import { forwarded, logIn, startTestEnvironment, type TestEnvironment } from '../support/environment';
import { startRedisCluster, type RedisCluster } from '../support/redis-cluster';

describe('a gateway on a 3-master Redis Cluster', () => {
  let cluster: RedisCluster;
  let env: TestEnvironment;

  beforeAll(async () => {
    cluster = await startRedisCluster();
    env = await startTestEnvironment({ withRedis: false, env: { REDIS_CLUSTER_NODES: cluster.nodeList } });
  });
  afterAll(async () => {
    await env.close();
    await cluster.stop();
  });

  it('logs users in, serves their tokens and reports ready', async () => {
    for (const user of ['alice', 'bob', 'carol', 'dave']) {
      const browser = await logIn(env.gateway, user);
      const verify = await browser.request(`${env.gateway.url}/verify`, { headers: forwarded('/api/orders') });
      expect(verify.status).toBe(200);
      expect(verify.headers.get('x-auth-request-user')).toBe(user);
    }
    const ready = await fetch(`${env.gateway.url}/ready`);
    expect(ready.status).toBe(200);
  });
});
