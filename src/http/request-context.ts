import type { NextFunction, Request, Response } from 'express';
import type { GatewayMetrics } from '../telemetry/metrics';
import type { Logger } from '../telemetry/logger';
import type { RequestObservation } from './request-observation';

/** Probes are not traced: they would drown the real traffic in every trace backend. */
const UNTRACED_PATHS = new Set(['/health', '/ready', '/metrics']);

/**
 * The Express side of `RequestObservation` (request id, server span, HTTP
 * metrics labelled with the route template), plus a child logger carrying the
 * request id, and the correlation headers on every answer.
 */
export function createRequestContext(logger: Logger, observation: RequestObservation, metrics: GatewayMetrics) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const observed = observation.start(req.method, req.headers, { isTraced: !UNTRACED_PATHS.has(req.path), path: req.path });
    const { requestId } = observed;
    res.locals.requestId = requestId;
    // Built on first use: most requests never log.
    let requestLogger: Logger | undefined;
    Object.defineProperty(res.locals, 'logger', {
      get: () => (requestLogger ??= logger.child({ request_id: requestId })),
      enumerable: true,
    });
    for (let index = 0; index < observed.correlationHeaders.length; index += 2) {
      res.setHeader(observed.correlationHeaders[index] as string, observed.correlationHeaders[index + 1] as string);
    }
    res.once('finish', () => {
      const endpoint = routeTemplate(req);
      if (endpoint.startsWith('/auth/')) metrics.otel.authRequests.add(1, { method: req.method, endpoint, status: String(res.statusCode) });
      observed.end(res.statusCode, endpoint);
    });
    // A connection that closes before the answer is sent still ends its span.
    res.once('close', () => {
      if (!res.writableFinished) observed.abandon();
    });
    observed.within(next);
  };
}

const KNOWN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

function routeTemplate(req: Request): string {
  if (!KNOWN_METHODS.has(req.method)) return 'unmatched';
  const route = req.route as { path?: unknown } | undefined;
  return typeof route?.path === 'string' ? `${req.baseUrl}${route.path}` : 'unmatched';
}
