import { isSpanContextValid, trace } from '@opentelemetry/api';

/** trace_id and span_id for a log line, so logs and traces join on the same ids. */
export function traceFields(): { trace_id?: string; span_id?: string } {
  const context = trace.getActiveSpan()?.spanContext();
  return context && isSpanContextValid(context) ? { trace_id: context.traceId, span_id: context.spanId } : {};
}
