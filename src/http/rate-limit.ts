import type { NextFunction, Request, Response } from 'express';
import { RateLimited } from '../errors/app-error';
import type { EventPublisher } from '../events/security-events';
import type { RateLimitStore } from '../session/rate-limit-store';
import type { Logger } from '../telemetry/logger';
import type { GatewayMetrics } from '../telemetry/metrics';
import type { TrustedProxies } from './client-address';

const WINDOW_MS = 60_000;

/**
 * Per client address, across replicas (the counters live in the store).
 * `scope` names the limit in metrics and keys; it is the bounded
 * `client_id` label, never the address itself. A store that cannot count
 * lets the request through: the limiter must not turn a Redis hiccup into
 * an outage of login.
 */
export function createRateLimit(options: {
  scope: string;
  requestsPerMinute: number;
  store: RateLimitStore;
  trustedProxies: TrustedProxies;
  metrics: GatewayMetrics;
  events: EventPublisher;
  logger: Logger;
}) {
  const { scope, requestsPerMinute, store, trustedProxies, metrics, events, logger } = options;
  return async (req: Request, res: Response, next: NextFunction): Promise<void> => {
    if (requestsPerMinute <= 0) return next();
    const clientAddress = trustedProxies.clientAddress(req.get('x-forwarded-for'), req.socket.remoteAddress) ?? 'unknown';
    let hit;
    try {
      hit = await store.hit(`${scope}:${clientAddress}`, WINDOW_MS);
    } catch (error) {
      logger.warn({ scope, err: (error as Error).message }, 'rate limit store unavailable; request allowed');
      return next();
    }
    res.setHeader('RateLimit-Limit', String(requestsPerMinute));
    res.setHeader('RateLimit-Remaining', String(Math.max(0, requestsPerMinute - hit.count)));
    if (hit.count <= requestsPerMinute) return next();
    metrics.rateLimitViolations.inc({ client_id: scope });
    events.publish({ type: 'rate_limited', severity: 'warning', reason: scope, clientAddress, requestId: res.locals.requestId });
    next(new RateLimited(Math.max(1, Math.ceil(hit.retryAfterMs / 1000))));
  };
}
