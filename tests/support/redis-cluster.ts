import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import Redis from 'ioredis';
import { startRedis, type RedisServer } from './redis';
import { waitUntil } from './wait';

const run = promisify(execFile);
export const REDIS_CLI_BINARY = process.env.REDIS_CLI_BIN ?? '/usr/bin/redis-cli';

export interface RedisCluster {
  readonly nodes: readonly RedisServer[];
  /** host:port list, the format of REDIS_CLUSTER_NODES. */
  readonly nodeList: string;
  stop(): Promise<void>;
}

/** Three masters, no replicas: every slot covered, keys spread over three processes. */
export async function startRedisCluster(): Promise<RedisCluster> {
  const nodes: RedisServer[] = [];
  try {
    for (let index = 0; index < 3; index++) {
      nodes.push(await startRedis({ extraArgs: ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '2000'] }));
    }
    const addresses = nodes.map((node) => `127.0.0.1:${node.port}`);
    await run(REDIS_CLI_BINARY, ['--cluster', 'create', ...addresses, '--cluster-replicas', '0', '--cluster-yes'], { timeout: 20_000 });
    await waitForClusterState(nodes);
    return {
      nodes,
      nodeList: addresses.join(','),
      async stop() {
        for (const node of nodes) await node.stop();
      },
    };
  } catch (error) {
    for (const node of nodes) await node.stop();
    throw error;
  }
}

function waitForClusterState(nodes: readonly RedisServer[]): Promise<void> {
  return waitUntil(() => isClusterStateOk(nodes), {
    timeoutMs: 10_000,
    intervalMs: 100,
    timeoutMessage: 'the Redis cluster did not reach cluster_state:ok within 10 s',
  });
}

async function isClusterStateOk(nodes: readonly RedisServer[]): Promise<boolean> {
  const states = await Promise.all(
    nodes.map(async (node) => {
      const client = new Redis(node.url, { lazyConnect: true, maxRetriesPerRequest: 0 });
      try {
        await client.connect();
        return String(await client.cluster('INFO')).includes('cluster_state:ok');
      } catch {
        return false;
      } finally {
        client.disconnect();
      }
    }),
  );
  return states.every(Boolean);
}
