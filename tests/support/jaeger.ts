import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startGuarded, type GuardedProcess } from './child-process';
import { getFreePort, withFreePort } from './ports';
import { TEST_SERVERS, testServerCacheDirectory } from './test-servers';

/**
 * Jaeger v2, built from the Go module proxy by scripts/provision-test-servers.mjs
 * (its go.mod has replace directives, so it is built in a writable copy of the
 * module like Traefik); JAEGER_BIN overrides. The same binary is an
 * OpenTelemetry collector distribution, whose `validate` checks
 * deploy/otel-collector/config.yaml.
 */
export const JAEGER_BINARY = process.env.JAEGER_BIN ?? join(testServerCacheDirectory('jaeger', TEST_SERVERS.jaeger.version), 'jaeger');

// Jaeger starts its extensions and pipelines in well under a second; the rest is CI margin.
const READY_TIMEOUT_MS = 20_000;
const POLL_INTERVAL_MS = 100;
const PROBE_TIMEOUT_MS = 1_000;
const HTTP_TIMEOUT_MS = 5_000;

/** One span as Jaeger's query API v3 returns it (OTLP JSON), with its resource and attributes flattened. */
export interface JaegerSpan {
  readonly traceId: string;
  readonly spanId: string;
  /** Empty for the root span. */
  readonly parentSpanId: string;
  readonly name: string;
  /** `SPAN_KIND_SERVER`, `SPAN_KIND_CLIENT`, `SPAN_KIND_INTERNAL`, ... */
  readonly kind: string;
  readonly attributes: Record<string, unknown>;
  readonly resource: Record<string, unknown>;
}

/** A throwaway Jaeger: in-memory storage, OTLP/HTTP in, the query API out, all on loopback. */
export interface JaegerServer {
  /** The OTLP/HTTP base URL for an SDK (`/v1/traces` and `/v1/metrics` are appended): `http://127.0.0.1:PORT`. */
  readonly otlpEndpoint: string;
  /** The query service (UI placeholder and HTTP API): `http://127.0.0.1:PORT`. */
  readonly queryUrl: string;
  /** The configuration it runs with, for failure messages. */
  readonly config: string;
  /** The spans Jaeger stores for `traceId` (GET /api/v3/traces/{id}); empty until the trace arrives. */
  trace(traceId: string): Promise<JaegerSpan[]>;
  output(): string;
  /** Kills Jaeger, waits for it to exit and removes its directory. Idempotent. */
  stop(): Promise<void>;
}

/**
 * The configuration of one test run. The metrics pipeline only swallows
 * what the gateway's OTLP metric exporter sends to the same endpoint, so the
 * gateway logs no export errors; Jaeger's own telemetry is off, so it opens
 * no port but these three.
 */
export function jaegerTestConfig(ports: { otlpHttp: number; queryHttp: number; queryGrpc: number }): string {
  return JSON.stringify(
    {
      service: {
        extensions: ['jaeger_storage', 'jaeger_query'],
        pipelines: {
          traces: { receivers: ['otlp'], exporters: ['jaeger_storage_exporter'] },
          metrics: { receivers: ['otlp'], exporters: ['nop'] },
        },
        telemetry: { metrics: { level: 'none' }, logs: { level: 'warn' } },
      },
      extensions: {
        jaeger_storage: { backends: { memstore: { memory: { max_traces: 10_000 } } } },
        jaeger_query: {
          storage: { traces: 'memstore' },
          http: { endpoint: `127.0.0.1:${ports.queryHttp}` },
          grpc: { endpoint: `127.0.0.1:${ports.queryGrpc}` },
        },
      },
      receivers: { otlp: { protocols: { http: { endpoint: `127.0.0.1:${ports.otlpHttp}` } } } },
      exporters: { jaeger_storage_exporter: { trace_storage: 'memstore' }, nop: {} },
    },
    null,
    2,
  );
}

/** Starts Jaeger on free loopback ports and resolves once both the query API and the OTLP receiver answer. */
export async function startJaeger(): Promise<JaegerServer> {
  if (!existsSync(JAEGER_BINARY)) {
    throw new Error(`${JAEGER_BINARY} not found: run "npm test" (its pretest builds Jaeger ${TEST_SERVERS.jaeger.version}), or set JAEGER_BIN`);
  }
  // Three ports: the first is retried by withFreePort, and a clash on any of them is reported as "address already in use" too.
  return withFreePort(async (otlpHttp) => {
    const ports = { otlpHttp, queryHttp: await getFreePort(), queryGrpc: await getFreePort() };
    const workDir = mkdtempSync(join(tmpdir(), 'bff-jaeger-'));
    try {
      const config = jaegerTestConfig(ports);
      const configFile = join(workDir, 'config.json');
      writeFileSync(configFile, config);
      const otlpEndpoint = `http://127.0.0.1:${ports.otlpHttp}`;
      const queryUrl = `http://127.0.0.1:${ports.queryHttp}`;
      const server = await startGuarded(JAEGER_BINARY, [`--config=file:${configFile}`], {
        cwd: workDir,
        name: `jaeger (OTLP ${otlpEndpoint}, query ${queryUrl})`,
        readiness: 'answer the query API and accept OTLP',
        isReady: () => isAnswering(queryUrl, otlpEndpoint),
        readyTimeoutMs: READY_TIMEOUT_MS,
        pollIntervalMs: POLL_INTERVAL_MS,
        outputLabel: 'jaeger',
      });
      return new JaegerProcess(otlpEndpoint, queryUrl, config, server, workDir);
    } catch (error) {
      rmSync(workDir, { recursive: true, force: true });
      throw error;
    }
  });
}

/** Receivers start after the extensions: the query API alone does not mean spans are taken yet. */
async function isAnswering(queryUrl: string, otlpEndpoint: string): Promise<boolean> {
  try {
    const services = await fetch(`${queryUrl}/api/v3/services`, { signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) });
    if (services.status !== 200) return false;
    // An empty OTLP/JSON export: accepted (200) once the receiver listens.
    const otlp = await fetch(`${otlpEndpoint}/v1/traces`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
      signal: AbortSignal.timeout(PROBE_TIMEOUT_MS),
    });
    return otlp.status === 200;
  } catch {
    return false;
  }
}

type KeyValue = { key: string; value: Record<string, unknown> };

interface ApiV3Traces {
  result?: {
    resourceSpans?: Array<{
      resource?: { attributes?: KeyValue[] };
      scopeSpans?: Array<{ spans?: Array<Record<string, unknown>> }>;
    }>;
  };
  error?: { httpCode?: number; message?: string };
}

function flatten(attributes: KeyValue[] | undefined): Record<string, unknown> {
  return Object.fromEntries((attributes ?? []).map(({ key, value }) => [key, Object.values(value)[0]]));
}

/** OTLP JSON carries ids in hex; a protobuf-JSON encoder would use base64. Both come back as lower-case hex. */
function hexId(id: unknown): string {
  const text = typeof id === 'string' ? id : '';
  return /^[0-9a-f]*$/i.test(text) ? text.toLowerCase() : Buffer.from(text, 'base64').toString('hex');
}

const SPAN_KINDS = ['SPAN_KIND_UNSPECIFIED', 'SPAN_KIND_INTERNAL', 'SPAN_KIND_SERVER', 'SPAN_KIND_CLIENT', 'SPAN_KIND_PRODUCER', 'SPAN_KIND_CONSUMER'];

/** OTLP JSON writes the kind as its enum number; protobuf JSON as its name. Either comes back as the name. */
function spanKindName(kind: unknown): string {
  return typeof kind === 'number' ? (SPAN_KINDS[kind] ?? String(kind)) : String(kind ?? 'SPAN_KIND_UNSPECIFIED');
}

class JaegerProcess implements JaegerServer {
  constructor(
    readonly otlpEndpoint: string,
    readonly queryUrl: string,
    readonly config: string,
    private readonly server: GuardedProcess,
    private readonly workDir: string,
  ) {}

  async trace(traceId: string): Promise<JaegerSpan[]> {
    const response = await fetch(`${this.queryUrl}/api/v3/traces/${traceId}`, { signal: AbortSignal.timeout(HTTP_TIMEOUT_MS) });
    // Not stored (yet): the API answers 404 with an error body.
    if (response.status === 404) return [];
    const answer = (await response.json()) as ApiV3Traces;
    if (response.status !== 200 || answer.error) {
      throw new Error(`jaeger GET /api/v3/traces/${traceId}: ${response.status} ${answer.error?.message ?? ''}`);
    }
    return (answer.result?.resourceSpans ?? []).flatMap((resourceSpans) => {
      const resource = flatten(resourceSpans.resource?.attributes);
      return (resourceSpans.scopeSpans ?? []).flatMap((scope) =>
        (scope.spans ?? []).map((span) => ({
          traceId: hexId(span.traceId),
          spanId: hexId(span.spanId),
          parentSpanId: hexId(span.parentSpanId),
          name: String(span.name),
          kind: spanKindName(span.kind),
          attributes: flatten(span.attributes as KeyValue[] | undefined),
          resource,
        })),
      );
    });
  }

  output(): string {
    return this.server.output();
  }

  async stop(): Promise<void> {
    await this.server.stop();
    rmSync(this.workDir, { recursive: true, force: true });
  }
}
