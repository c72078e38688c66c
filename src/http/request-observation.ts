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
    if (!options.isTraced) return new Observed(this, method, started, requestId, ['X-Request-ID', requestId], undefined, ROOT_CONTEXT);
    const parent = propagation.extract(ROOT_CONTEXT, headers);
    // Attributes only for a span that records them: given to startSpan they are copied and checked
    // for every span, sampled or not, and the sampler (parent-based ratio) does not read them.
    const span = this.tracer.startSpan(options.spanName ?? method, SERVER_SPAN, parent);
    if (span.isRecording()) {
      span.setAttribute('http.request.method', method);
      if (options.path) span.setAttribute('url.path', options.path);
    }
    const spanContext = span.spanContext();
    const correlationHeaders = isSpanContextValid(spanContext) ? ['X-Request-ID', requestId, 'X-Trace-ID', spanContext.traceId] : ['X-Request-ID', requestId];
    return new Observed(this, method, started, requestId, correlationHeaders, span, parent);
  }

  /** Counts an ended request in the HTTP metrics. */
  ended(method: string, endpoint: string, status: number, seconds: number): void {
    const series = this.seriesFor(method, endpoint, status);
    series.requests.inc();
    series.duration.observe(seconds);
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

const SERVER_SPAN = { kind: SpanKind.SERVER } as const;

/** One observed request: a class rather than closures, since /verify makes one per call. */
class Observed implements ObservedRequest {
  private hasEnded = false;

  constructor(
    private readonly observation: RequestObservation,
    private readonly method: string,
    private readonly started: number,
    readonly requestId: string,
    readonly correlationHeaders: readonly string[],
    readonly span: Span | undefined,
    private readonly parent: Context,
  ) {}

  within<T>(work: () => T): T {
    return this.span?.isRecording() ? context.with(trace.setSpan(this.parent, this.span), work) : work();
  }

  end(status: number, endpoint: string): void {
    if (this.hasEnded) return;
    this.hasEnded = true;
    this.observation.ended(this.method, endpoint, status, (performance.now() - this.started) / 1000);
    const { span } = this;
    if (!span) return;
    if (span.isRecording()) {
      if (endpoint !== 'unmatched') span.updateName(`${this.method} ${endpoint}`);
      span.setAttributes({ 'http.route': endpoint, 'http.response.status_code': status, 'bff.request_id': this.requestId });
      if (status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
    }
    span.end();
  }

  abandon(): void {
    if (this.hasEnded) return;
    this.hasEnded = true;
    this.span?.setStatus({ code: SpanStatusCode.ERROR, message: 'connection closed before the response finished' });
    this.span?.end();
  }
}
