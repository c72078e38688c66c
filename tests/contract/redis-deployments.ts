// Real Redis deployments for the contract suite, and the means to look at and
// age what a store wrote there without waiting for it.
import Redis, { Cluster } from 'ioredis';
import { startRedis } from '../support/redis';
import { startRedisCluster } from '../support/redis-cluster';
import { startRedisSentinel } from '../support/redis-sentinel';

/** A running deployment: the client a store uses, and each master's own connection (a Cluster's keys are spread over three). */
export interface RedisDeployment {
  readonly name: string;
  readonly client: Redis | Cluster;
  masters(): Redis[];
  stop(): Promise<void>;
}

export async function standaloneRedis(): Promise<RedisDeployment> {
  const server = await startRedis();
  const client = await ready(new Redis(server.url));
  return { name: 'a single Redis', client, masters: () => [client], stop: () => stopping(client, () => server.stop()) };
}

export async function redisCluster(): Promise<RedisDeployment> {
  const cluster = await startRedisCluster();
  const nodes = cluster.nodeList.split(',').map((node) => ({ host: '127.0.0.1', port: Number(node.split(':')[1]) }));
  const client = await ready(new Cluster(nodes));
  return { name: 'a 3-master Redis Cluster', client, masters: () => client.nodes('master'), stop: () => stopping(client, () => cluster.stop()) };
}

export async function redisThroughSentinel(): Promise<RedisDeployment> {
  const sentinel = await startRedisSentinel();
  const [host, port] = sentinel.sentinelAddress.split(':');
  // No retries towards a Sentinel that is gone: at the end of the suite nothing may keep reconnecting.
  const client = await ready(new Redis({ sentinels: [{ host: host!, port: Number(port) }], name: sentinel.masterName, sentinelRetryStrategy: () => null }));
  return { name: 'Redis through Sentinel', client, masters: () => [client], stop: () => stopping(client, () => sentinel.stop()) };
}

/** Every key of every master, with its raw bytes: strings as stored, sorted sets member and score alike, and DUMP's serialisation of each. */
export async function everyKeyAndValue(deployment: RedisDeployment): Promise<Array<{ key: string; bytes: Buffer[] }>> {
  const found: Array<{ key: string; bytes: Buffer[] }> = [];
  for (const master of deployment.masters()) {
    for (const key of await allKeys(master)) {
      const type = await master.type(key);
      const content = type === 'zset' ? await master.zrangeBuffer(key, 0, -1, 'WITHSCORES') : type === 'string' ? [await master.getBuffer(key)] : [];
      const dump = await master.dumpBuffer(key);
      found.push({ key, bytes: [...content, dump].filter((value): value is Buffer => value !== null) });
    }
  }
  return found;
}

/** Keys whose name starts with `prefix`, on every master. */
export async function keysStartingWith(deployment: RedisDeployment, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for (const master of deployment.masters()) keys.push(...(await allKeys(master)).filter((key) => key.startsWith(prefix)));
  return keys;
}

export async function flushEverything(deployment: RedisDeployment): Promise<void> {
  await Promise.all(deployment.masters().map((master) => master.flushall()));
}

/**
 * Lets `ms` pass for every key as Redis sees time: each TTL shrinks by `ms`,
 * and a key with no more than that left is gone, as it would be by then. With
 * the store's clock moved as much, the store lives in the same future as its
 * keys, so expiry is tested in milliseconds instead of waited for.
 */
export async function ageEveryKey(deployment: RedisDeployment, ms: number): Promise<void> {
  for (const master of deployment.masters()) {
    for (const key of await allKeys(master)) {
      const left = await master.pttl(key);
      if (left < 0) continue;
      if (left <= ms) await master.del(key);
      else await master.pexpire(key, left - ms);
    }
  }
}

async function allKeys(master: Redis): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await master.scan(cursor, 'COUNT', 1000);
    keys.push(...batch);
    cursor = next;
  } while (cursor !== '0');
  return keys;
}

async function ready<T extends Redis | Cluster>(client: T): Promise<T> {
  if (client.status === 'ready') return client;
  await new Promise<void>((resolve, reject) => {
    client.once('ready', resolve);
    client.once('error', reject);
  });
  return client;
}

async function stopping(client: Redis | Cluster, stop: () => Promise<void>): Promise<void> {
  await client.quit().catch(() => client.disconnect());
  await stop();
}
