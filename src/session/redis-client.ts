import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { RedisConfig } from '../config/config';
import type { Logger } from '../telemetry/logger';
import type { RedisClient } from './redis-session-store';

function hostPort(entry: string): { host: string; port: number } {
  const at = entry.lastIndexOf(':');
  return { host: entry.slice(0, at), port: Number(entry.slice(at + 1)) };
}

/**
 * Fail fast instead of queueing: with the offline queue off and a command
 * timeout, a Redis outage turns into quick 503s (and an open breaker), not
 * requests piling up behind a reconnecting client.
 */
export function createRedisClient(config: Exclude<RedisConfig, { kind: 'memory' }>, logger: Logger): RedisClient {
  const common: RedisOptions = {
    enableOfflineQueue: false,
    // Commands issued in the same tick leave in one write: under load, one syscall for many sessions' GETs.
    enableAutoPipelining: true,
    commandTimeout: config.commandTimeoutMs,
    maxRetriesPerRequest: 1,
    connectTimeout: 2000,
    // Capped at 1 s so that a restarted Redis is reconnected to, and its breaker probed closed, within about 1.5 s.
    retryStrategy: (attempt) => Math.min(100 * 2 ** attempt, 1000),
  };
  const fromUrl = config.url ? urlOptions(config.url) : {};
  let client: RedisClient;
  if (config.kind === 'single') {
    client = new Redis(config.url, common);
  } else if (config.kind === 'sentinel') {
    client = new Redis({ ...common, ...fromUrl, sentinels: config.sentinels.map(hostPort), name: config.masterName });
  } else {
    client = new Cluster(config.nodes.map(hostPort), {
      enableOfflineQueue: false,
      enableAutoPipelining: true,
      redisOptions: { ...common, ...fromUrl },
      clusterRetryStrategy: (attempt) => Math.min(100 * 2 ** attempt, 1000),
    });
  }
  let lastError = '';
  client.on('error', (error: Error) => {
    // ioredis repeats the same error on every reconnect attempt; log changes only.
    if (error.message !== lastError) logger.warn({ err: error.message }, 'redis connection error');
    lastError = error.message;
  });
  client.on('ready', () => {
    if (lastError) logger.info('redis connection restored');
    lastError = '';
  });
  return client;
}

function urlOptions(url: string): RedisOptions {
  const parsed = new URL(url);
  return {
    username: parsed.username ? decodeURIComponent(parsed.username) : undefined,
    password: parsed.password ? decodeURIComponent(parsed.password) : undefined,
    db: parsed.pathname.length > 1 ? Number(parsed.pathname.slice(1)) : undefined,
    tls: parsed.protocol === 'rediss:' ? {} : undefined,
  };
}
