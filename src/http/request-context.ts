import type { NextFunction, Request, Response } from 'express';
import type { GatewayMetrics } from '../telemetry/metrics';
import type { Logger } from '../telemetry/logger';
import { requestIdFrom } from './request-id';
import { activeTraceId } from '../telemetry/trace-context';

/**
 * Request id (kept from a well-formed X-Request-ID, otherwise a new UUID v7),
 * a child logger carrying it, and the HTTP metrics labelled with the route
 * template, never the raw path, so /metrics cannot grow with traffic.
 */
export function createRequestContext(logger: Logger, metrics: GatewayMetrics) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const started = performance.now();
    const requestId = requestIdFrom(req.headers['x-request-id']);
    res.locals.requestId = requestId;
    // Built on first use: most requests (every /verify that succeeds) never log.
    let requestLogger: Logger | undefined;
    Object.defineProperty(res.locals, 'logger', {
      get: () => (requestLogger ??= logger.child({ request_id: requestId })),
      enumerable: true,
    });
    res.setHeader('X-Request-ID', requestId);
    const traceId = activeTraceId();
    if (traceId) res.setHeader('X-Trace-ID', traceId);
    res.once('finish', () => {
      const labels = { method: req.method, endpoint: routeTemplate(req), status: String(res.statusCode) };
      metrics.httpRequests.inc(labels);
      metrics.httpDuration.observe(labels, (performance.now() - started) / 1000);
      if (labels.endpoint.startsWith('/auth/')) metrics.otel.authRequests.add(1, labels);
    });
    next();
  };
}

const KNOWN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

function routeTemplate(req: Request): string {
  if (!KNOWN_METHODS.has(req.method)) return 'unmatched';
  const route = req.route as { path?: unknown } | undefined;
  return typeof route?.path === 'string' ? `${req.baseUrl}${route.path}` : 'unmatched';
}
