import { forwarded, logIn, startTestEnvironment, type TestEnvironment } from '../support/environment';
import { startRedisCluster, type RedisCluster } from '../support/redis-cluster';
import { startRedisSentinel, type RedisSentinel } from '../support/redis-sentinel';

async function logsUsersInAndReportsReady(env: TestEnvironment): Promise<void> {
  for (const user of ['alice', 'bob', 'carol', 'dave']) {
    const browser = await logIn(env.gateway, user);
    const verify = await browser.request(`${env.gateway.url}/verify`, { headers: forwarded('/api/orders') });
    expect(verify.status).toBe(200);
    expect(verify.headers.get('x-auth-request-user')).toBe(user);
  }
  expect((await fetch(`${env.gateway.url}/ready`)).status).toBe(200);
}

describe('a gateway on a 3-master Redis Cluster (REDIS_CLUSTER_NODES)', () => {
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

  it('logs users in, serves their tokens and reports ready', () => logsUsersInAndReportsReady(env));
});

describe('a gateway finding its Redis through Sentinel (REDIS_SENTINELS, REDIS_SENTINEL_NAME)', () => {
  let sentinel: RedisSentinel;
  let env: TestEnvironment;

  beforeAll(async () => {
    sentinel = await startRedisSentinel();
    env = await startTestEnvironment({
      withRedis: false,
      env: { REDIS_SENTINELS: sentinel.sentinelAddress, REDIS_SENTINEL_NAME: sentinel.masterName },
    });
  });
  afterAll(async () => {
    await env.close();
    await sentinel.stop();
  });

  it('logs users in, serves their tokens and reports ready', () => logsUsersInAndReportsReady(env));
});
