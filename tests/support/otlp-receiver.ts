import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One span as OTLP/JSON carries it. */
export interface ReceivedSpan {
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId?: string;
  readonly name: string;
  readonly kind: number;
  readonly status?: { code?: number };
  readonly attributes: Record<string, unknown>;
  readonly resource: Record<string, unknown>;
}

export interface OtlpReceiver {
  readonly endpoint: string;
  readonly spans: ReceivedSpan[];
  readonly metricNames: Set<string>;
  close(): Promise<void>;
}

type KeyValue = { key: string; value: Record<string, unknown> };

function flatten(attributes: KeyValue[] | undefined): Record<string, unknown> {
  return Object.fromEntries((attributes ?? []).map(({ key, value }) => [key, Object.values(value)[0]]));
}

/**
 * A minimal OTLP/HTTP (JSON) collector: what the gateway's exporters send,
 * kept in memory for assertions. It speaks the real protocol, so the
 * gateway's exporter, batching and resource are all exercised.
 */
export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = [];
  const metricNames = new Set<string>();
  const server: Server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (body += chunk));
    req.on('end', () => {
      try {
        const payload = JSON.parse(body || '{}') as Record<string, unknown[]>;
        if (req.url === '/v1/traces') {
          for (const resourceSpans of (payload.resourceSpans ?? []) as Array<{ resource?: { attributes?: KeyValue[] }; scopeSpans?: Array<{ spans?: Array<Record<string, unknown>> }> }>) {
            const resource = flatten(resourceSpans.resource?.attributes);
            for (const scope of resourceSpans.scopeSpans ?? []) {
              for (const span of scope.spans ?? []) {
                spans.push({ ...(span as unknown as ReceivedSpan), attributes: flatten(span.attributes as KeyValue[]), resource });
              }
            }
          }
        } else if (req.url === '/v1/metrics') {
          for (const resourceMetrics of (payload.resourceMetrics ?? []) as Array<{ scopeMetrics?: Array<{ metrics?: Array<{ name: string }> }> }>) {
            for (const scope of resourceMetrics.scopeMetrics ?? []) for (const metric of scope.metrics ?? []) metricNames.add(metric.name);
          }
        }
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      } catch {
        res.writeHead(400).end();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    spans,
    metricNames,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
