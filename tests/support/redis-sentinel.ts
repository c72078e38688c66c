import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import { startGuarded, type GuardedProcess } from './child-process';
import { withFreePort } from './ports';
import { REDIS_SERVER_BINARY, startRedis, type RedisServer } from './redis';

export const SENTINEL_MASTER_NAME = 'bff-master';

export interface RedisSentinel {
  readonly master: RedisServer;
  /** host:port, the format of REDIS_SENTINELS. */
  readonly sentinelAddress: string;
  readonly masterName: string;
  stop(): Promise<void>;
}

/** A master and one Sentinel monitoring it (quorum 1): enough for clients to discover the master through Sentinel. */
export async function startRedisSentinel(): Promise<RedisSentinel> {
  const master = await startRedis();
  try {
    const sentinel = await withFreePort((port) => startSentinelProcess(port, master.port));
    return {
      master,
      sentinelAddress: `127.0.0.1:${sentinel.port}`,
      masterName: SENTINEL_MASTER_NAME,
      async stop() {
        await sentinel.process.stop();
        await master.stop();
      },
    };
  } catch (error) {
    await master.stop();
    throw error;
  }
}

async function startSentinelProcess(port: number, masterPort: number): Promise<{ port: number; process: GuardedProcess }> {
  // Sentinel rewrites its configuration file, so it gets a fresh one of its own.
  const directory = mkdtempSync(join(tmpdir(), 'bff-sentinel-'));
  const configFile = join(directory, 'sentinel.conf');
  writeFileSync(
    configFile,
    [
      `port ${port}`,
      'bind 127.0.0.1',
      `dir ${directory}`,
      `sentinel monitor ${SENTINEL_MASTER_NAME} 127.0.0.1 ${masterPort} 1`,
      `sentinel down-after-milliseconds ${SENTINEL_MASTER_NAME} 2000`,
      '',
    ].join('\n'),
  );
  const process = await startGuarded(REDIS_SERVER_BINARY, [configFile, '--sentinel'], {
    name: `redis sentinel on 127.0.0.1:${port}`,
    readiness: `name the master ${SENTINEL_MASTER_NAME}`,
    readyTimeoutMs: 10_000,
    pollIntervalMs: 100,
    outputLabel: 'redis sentinel',
    isReady: () => namesMaster(port, masterPort),
  });
  return { port, process };
}

async function namesMaster(sentinelPort: number, masterPort: number): Promise<boolean> {
  const client = new Redis({ port: sentinelPort, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  try {
    await client.connect();
    const address = (await client.call('SENTINEL', 'get-master-addr-by-name', SENTINEL_MASTER_NAME)) as string[] | null;
    return address?.[1] === String(masterPort);
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}
