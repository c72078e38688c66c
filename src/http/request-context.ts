import { context, isSpanContextValid, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import type { NextFunction, Request, Response } from 'express';
import type { GatewayMetrics } from '../telemetry/metrics';
import type { Logger } from '../telemetry/logger';
import { TRACER_NAME } from '../telemetry/tracer-name';
import { requestIdFrom } from './request-id';

/** Probes are not traced: they would drown the real traffic in every trace backend. */
const UNTRACED_PATHS = new Set(['/health', '/ready', '/metrics']);

/**
 * Request id (kept from a well-formed X-Request-ID, otherwise a new UUID v7),
 * a child logger carrying it, the server span (named `{method} {route
 * template}`, ERROR on 5xx, parent taken from the incoming traceparent), and
 * the HTTP metrics labelled with the route template, never the raw path, so
 * /metrics cannot grow with traffic.
 */
export function createRequestContext(logger: Logger, metrics: GatewayMetrics) {
  const tracer = trace.getTracer(TRACER_NAME);
  return (req: Request, res: Response, next: NextFunction): void => {
    const started = performance.now();
    const isTraced = !UNTRACED_PATHS.has(req.path);
    const parent = isTraced ? propagation.extract(ROOT_CONTEXT, req.headers) : ROOT_CONTEXT;
    const span = isTraced
      ? tracer.startSpan(req.method, { kind: SpanKind.SERVER, attributes: { 'http.request.method': req.method, 'url.path': req.path } }, parent)
      : undefined;
    const requestId = requestIdFrom(req.headers['x-request-id']);
    res.locals.requestId = requestId;
    // Built on first use: most requests (every /verify that succeeds) never log.
    let requestLogger: Logger | undefined;
    Object.defineProperty(res.locals, 'logger', {
      get: () => (requestLogger ??= logger.child({ request_id: requestId })),
      enumerable: true,
    });
    res.setHeader('X-Request-ID', requestId);
    const spanContext = span?.spanContext();
    if (spanContext && isSpanContextValid(spanContext)) res.setHeader('X-Trace-ID', spanContext.traceId);
    res.once('finish', () => {
      const labels = { method: req.method, endpoint: routeTemplate(req), status: String(res.statusCode) };
      metrics.httpRequests.inc(labels);
      metrics.httpDuration.observe(labels, (performance.now() - started) / 1000);
      if (labels.endpoint.startsWith('/auth/')) metrics.otel.authRequests.add(1, labels);
      if (span?.isRecording()) {
        if (labels.endpoint !== 'unmatched') span.updateName(`${req.method} ${labels.endpoint}`);
        span.setAttributes({ 'http.route': labels.endpoint, 'http.response.status_code': res.statusCode });
        if (res.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
      }
      span?.end();
    });
    // A connection that closes before the answer is sent still ends its span.
    res.once('close', () => {
      if (!res.writableFinished && span?.isRecording()) {
        span.setStatus({ code: SpanStatusCode.ERROR, message: 'connection closed before the response finished' });
        span.end();
      }
    });
    if (span) context.with(trace.setSpan(parent, span), next);
    else next();
  };
}

const KNOWN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

function routeTemplate(req: Request): string {
  if (!KNOWN_METHODS.has(req.method)) return 'unmatched';
  const route = req.route as { path?: unknown } | undefined;
  return typeof route?.path === 'string' ? `${req.baseUrl}${route.path}` : 'unmatched';
}
