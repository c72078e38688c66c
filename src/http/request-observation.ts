import type { IncomingHttpHeaders } from 'node:http';
import { context, isSpanContextValid, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Context, type Span } from '@opentelemetry/api';
import type { GatewayMetrics } from '../telemetry/metrics';
import { TRACER_NAME } from '../telemetry/tracer-name';
import { requestIdFrom } from './request-id';

/** One request as the operator sees it: its id, its server span, and the HTTP metrics when it ends. */
export interface ObservedRequest {
  readonly requestId: string;
  /** X-Request-ID (and X-Trace-ID when there is a trace) as a flat header list, for `writeHead`. */
  readonly correlationHeaders: readonly string[];
  readonly span: Span | undefined;
  /** Runs `work` with the server span current, when it is recorded; unrecorded spans are never made current. */
  within<T>(work: () => T): T;
  /** Names the span after the route template, marks it ERROR on 5xx, ends it, and counts the request. */
  end(status: number, endpoint: string): void;
  /** The connection closed before the answer was sent: the span ends as an ERROR, nothing is counted. */
  abandon(): void;
}

/**
 * Request id (kept from a well-formed X-Request-ID, otherwise a new UUID v7),
 * the server span named `{method} {route template}` with the incoming
 * traceparent as parent, and `http_requests_total` /
 * `http_request_duration_seconds` labelled with the route template, never the
 * raw path. Both the Express routes and /verify (served ahead of Express)
 * observe their requests through this, so both look the same to an operator.
 */
export class RequestObservation {
  private readonly tracer = trace.getTracer(TRACER_NAME);
  /** Labelled children looked up once per (method, endpoint, status) instead of hashing label objects per request. */
  private readonly series = new Map<string, { readonly requests: ReturnType<GatewayMetrics['httpRequests']['labels']>; readonly duration: ReturnType<GatewayMetrics['httpDuration']['labels']> }>();

  constructor(private readonly metrics: GatewayMetrics) {}

  start(method: string, headers: IncomingHttpHeaders, options: { readonly isTraced: boolean; readonly spanName?: string; readonly path?: string }): ObservedRequest {
    const started = performance.now();
    const requestId = requestIdFrom(headers['x-request-id']);
    const parent: Context = options.isTraced ? propagation.extract(ROOT_CONTEXT, headers) : ROOT_CONTEXT;
    const span = options.isTraced
      ? this.tracer.startSpan(
          options.spanName ?? method,
          { kind: SpanKind.SERVER, attributes: { 'http.request.method': method, ...(options.path ? { 'url.path': options.path } : {}) } },
          parent,
        )
      : undefined;
    const correlationHeaders = ['X-Request-ID', requestId];
    const spanContext = span?.spanContext();
    if (spanContext && isSpanContextValid(spanContext)) correlationHeaders.push('X-Trace-ID', spanContext.traceId);
    let hasEnded = false;
    return {
      requestId,
      correlationHeaders,
      span,
      within: (work) => (span?.isRecording() ? context.with(trace.setSpan(parent, span), work) : work()),
      end: (status, endpoint) => {
        if (hasEnded) return;
        hasEnded = true;
        const series = this.seriesFor(method, endpoint, status);
        series.requests.inc();
        series.duration.observe((performance.now() - started) / 1000);
        if (span?.isRecording()) {
          if (endpoint !== 'unmatched') span.updateName(`${method} ${endpoint}`);
          span.setAttributes({ 'http.route': endpoint, 'http.response.status_code': status, 'bff.request_id': requestId });
          if (status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
        }
        span?.end();
      },
      abandon: () => {
        if (hasEnded) return;
        hasEnded = true;
        span?.setStatus({ code: SpanStatusCode.ERROR, message: 'connection closed before the response finished' });
        span?.end();
      },
    };
  }

  private seriesFor(method: string, endpoint: string, status: number) {
    const key = `${method} ${endpoint} ${status}`;
    let found = this.series.get(key);
    if (!found) {
      const labels = { method, endpoint, status: String(status) };
      found = { requests: this.metrics.httpRequests.labels(labels), duration: this.metrics.httpDuration.labels(labels) };
      this.series.set(key, found);
    }
    return found;
  }
}
