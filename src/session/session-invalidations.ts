import type { Cluster, Redis } from 'ioredis';
import type { Logger } from '../telemetry/logger';
import type { RedisGuard } from './redis-session-store';

/** Every session, on every replica: what a change that names no session id (a back-channel logout) announces. */
export const EVERY_SESSION = '*';

/** A session changed somewhere: `sessionId` (or EVERY_SESSION), and when it was announced (epoch ms). */
export interface SessionInvalidation {
  readonly sessionId: string;
  readonly announcedAt: number;
}

/**
 * How replicas tell each other that a session changed, so that none of them
 * keeps serving what it cached. Delivery is best effort: a replica that
 * misses a message still drops the entry when its cache lifetime ends.
 */
export interface SessionInvalidations {
  announce(sessionId: string): Promise<void>;
  /** `onLost`: messages may have been missed (the subscription dropped); the listener should forget everything. */
  listen(onInvalidation: (invalidation: SessionInvalidation) => void, onLost: () => void): Promise<void>;
  close(): Promise<void>;
}

const CHANNEL = 'bff:session-invalidations';

/**
 * Redis pub/sub on one channel, through a second connection of the same
 * client (a subscribed connection can do nothing else). In a Cluster,
 * PUBLISH reaches the subscribers of every node.
 */
export class RedisSessionInvalidations implements SessionInvalidations {
  private subscriber: Redis | Cluster | undefined;

  constructor(
    private readonly client: Redis | Cluster,
    /** The Redis breaker and metrics, as for every other command. */
    private readonly guard: RedisGuard,
    private readonly logger: Logger,
  ) {}

  async announce(sessionId: string): Promise<void> {
    await this.guard('publish', () => this.client.publish(CHANNEL, JSON.stringify({ sessionId, announcedAt: Date.now() })));
  }

  async listen(onInvalidation: (invalidation: SessionInvalidation) => void, onLost: () => void): Promise<void> {
    // The request connections fail fast (no offline queue); this one waits for Redis and resubscribes by itself.
    const subscriber = 'isCluster' in this.client && this.client.isCluster
      ? (this.client as Cluster).duplicate([], { enableOfflineQueue: true })
      : (this.client as Redis).duplicate({ enableOfflineQueue: true, enableAutoPipelining: false });
    this.subscriber = subscriber;
    subscriber.on('error', () => undefined);
    let hasSubscribed = false;
    // Messages published while the subscription was down are gone: whatever was cached may be stale.
    subscriber.on('ready', () => {
      if (hasSubscribed) onLost();
    });
    subscriber.on('message', (channel: string, message: string) => {
      if (channel !== CHANNEL) return;
      const invalidation = parse(message);
      if (invalidation) onInvalidation(invalidation);
      else this.logger.warn({ channel }, 'ignored a malformed session invalidation');
    });
    await subscriber.subscribe(CHANNEL);
    hasSubscribed = true;
  }

  async close(): Promise<void> {
    const subscriber = this.subscriber;
    this.subscriber = undefined;
    if (subscriber) await subscriber.quit().catch(() => subscriber.disconnect());
  }
}

function parse(message: string): SessionInvalidation | undefined {
  try {
    const value = JSON.parse(message) as Partial<SessionInvalidation>;
    if (typeof value.sessionId === 'string' && value.sessionId.length <= 64 && typeof value.announcedAt === 'number') {
      return { sessionId: value.sessionId, announcedAt: value.announcedAt };
    }
  } catch {
    // fall through
  }
  return undefined;
}
