import type { ErrorCode } from '../../errors/app-error';
import { ref, type Content, type HeaderObject, type ParameterObject, type Reference, type ResponseObject } from './openapi-types';

/** Headers on every answer of the gateway, Express routes and /verify alike. */
export const commonHeaders: Record<string, HeaderObject> = {
  'X-Request-ID': {
    description: 'The request id: a well-formed incoming X-Request-ID (a UUID), else a new UUID v7. Every log line of the request carries it as `request_id`.',
    required: true,
    schema: { type: 'string', format: 'uuid' },
  },
  'X-Trace-ID': {
    description: "The OpenTelemetry trace id of the request's server span, to find the request in the trace backend; present when tracing is on (TELEMETRY_ENABLED). /health, /ready and /metrics are not traced.",
    schema: { type: 'string', pattern: '^[0-9a-f]{32}$' },
  },
  'Retry-After': {
    description: 'Seconds to wait before trying again.',
    required: true,
    schema: { type: 'string', pattern: '^[0-9]+$' },
  },
  'Cache-Control': {
    description: 'Answers about a session, and errors, are never cached.',
    required: true,
    schema: { const: 'no-store' },
  },
  'RateLimit-Limit': {
    description: 'Requests allowed per minute and client address on this group of endpoints (RATE_LIMIT_AUTH_PER_MINUTE or RATE_LIMIT_METRICS_PER_MINUTE); absent when the limit is off or the store could not count.',
    schema: { type: 'string', pattern: '^[0-9]+$' },
  },
  'RateLimit-Remaining': {
    description: 'Requests left in the current minute.',
    schema: { type: 'string', pattern: '^[0-9]+$' },
  },
};

export const commonParameters: Record<string, ParameterObject> = {
  RequestId: {
    name: 'X-Request-ID',
    in: 'header',
    description: 'A UUID to correlate with (the proxy\'s, say); anything else is replaced by a new UUID v7.',
    schema: { type: 'string' },
  },
  Traceparent: {
    name: 'traceparent',
    in: 'header',
    description: 'W3C Trace Context: the server span becomes a child of this span.',
    schema: { type: 'string', pattern: '^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$' },
  },
};

/** The correlation parameters every operation accepts. */
export const correlationParameters: Reference[] = [ref('parameters', 'RequestId'), ref('parameters', 'Traceparent')];

/** X-Request-ID and X-Trace-ID, plus `more`. */
export function withCorrelation(more: Record<string, HeaderObject | Reference> = {}): Record<string, HeaderObject | Reference> {
  return { 'X-Request-ID': ref('headers', 'X-Request-ID'), 'X-Trace-ID': ref('headers', 'X-Trace-ID'), ...more };
}

const noStore = { 'Cache-Control': ref('headers', 'Cache-Control') };
const rateLimitHeaders = { 'RateLimit-Limit': ref('headers', 'RateLimit-Limit'), 'RateLimit-Remaining': ref('headers', 'RateLimit-Remaining') };

export interface ExpressAnswerOptions {
  /** Behind a per-address rate limit: RateLimit-* headers may be present. */
  readonly isRateLimited?: boolean;
  readonly headers?: Record<string, HeaderObject | Reference>;
}

/** A successful answer of an Express route. */
export function success(description: string, content: Content | undefined, options: ExpressAnswerOptions = {}): ResponseObject {
  return {
    description,
    headers: withCorrelation({ ...(options.isRateLimited ? rateLimitHeaders : {}), ...options.headers }),
    ...(content ? { content } : {}),
  };
}

export const json = (schema: Reference | Record<string, unknown>): Content => ({ 'application/json': { schema } });

/** Express's `res.redirect` writes a one-line note beside Location: plain text, or HTML when the client asked for it. */
const redirectNote: Content = {
  'text/plain': { schema: { type: 'string', description: '"Found. Redirecting to <Location>"' } },
  'text/html': { schema: { type: 'string' } },
};

export function redirect(description: string, location: HeaderObject, options: ExpressAnswerOptions = {}): ResponseObject {
  return success(description, redirectNote, { ...options, headers: { Location: location, ...noStore, ...options.headers } });
}

export interface ProblemOptions extends ExpressAnswerOptions {
  /** An `/auth/` route: a client that prefers HTML over JSON gets the error page instead. */
  readonly hasErrorPage?: boolean;
}

/**
 * An error answered by the error handler (src/http/error-handler.ts):
 * problem details with one of `codes` as title, `Cache-Control: no-store`,
 * and Retry-After for 429 and 503.
 */
export function problem(status: number, description: string, codes: readonly ErrorCode[], options: ProblemOptions = {}): ResponseObject {
  const schema = { allOf: [ref('schemas', 'Problem'), { type: 'object', properties: { title: { enum: [...codes] }, status: { const: status } } }] };
  const content: Content = {
    'application/problem+json': { schema },
    ...(options.hasErrorPage ? { 'text/html': { schema: ref('schemas', 'ErrorPage') } } : {}),
  };
  const retryAfter: Record<string, Reference> = status === 429 || status === 503 ? { 'Retry-After': ref('headers', 'Retry-After') } : {};
  return success(description, content, { ...options, headers: { ...noStore, ...retryAfter, ...options.headers } });
}

/** The errors every rate-limited `/auth/` and ingestion route shares. */
export function rateLimited(options: ProblemOptions): ResponseObject {
  return problem(429, 'Too many requests from this client address in the last minute (counted in Redis, across replicas).', ['rate_limited'], options);
}

export function unavailable(what: string, options: ProblemOptions): ResponseObject {
  return problem(503, `${what} could not answer (down, or its circuit breaker is open): retry after Retry-After.`, ['dependency_unavailable'], options);
}

/** The answer to any method and path not in this document (the Express 404 handler). */
export const notFound: ResponseObject = problem(404, 'No such endpoint: any method and path not in this document (under `/auth/`, a client preferring HTML gets the error page).', ['not_found'], {
  hasErrorPage: true,
});
