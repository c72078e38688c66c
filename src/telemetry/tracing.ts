import { trace, type Tracer } from '@opentelemetry/api';
import { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-http';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { ExpressInstrumentation, ExpressLayerType } from '@opentelemetry/instrumentation-express';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { IORedisInstrumentation } from '@opentelemetry/instrumentation-ioredis';
import { KafkaJsInstrumentation } from '@opentelemetry/instrumentation-kafkajs';
import { UndiciInstrumentation } from '@opentelemetry/instrumentation-undici';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { NoopSpanProcessor, ParentBasedSampler, TraceIdRatioBasedSampler } from '@opentelemetry/sdk-trace';
import type { Config } from '../config/config';

/** Never traced: probes would drown the real traffic in every trace backend. */
const UNTRACED_PATHS = new Set(['/health', '/ready', '/metrics']);

export const TRACER_NAME = 'bff-gateway';

export function gatewayTracer(): Tracer {
  return trace.getTracer(TRACER_NAME);
}

/**
 * Starts the OpenTelemetry SDK. Must run before express, ioredis, undici and
 * kafkajs are first required, because instrumentation patches them on load;
 * main.ts therefore requires the rest of the gateway only afterwards. Without
 * an OTLP endpoint spans are still created (trace ids in logs and
 * X-Trace-ID) but nothing is exported.
 */
export function startTelemetry(telemetry: Config['telemetry'], environment: string): { shutdown(): Promise<void> } | undefined {
  if (!telemetry.enabled) return undefined;
  const base = telemetry.otlpEndpoint?.replace(/\/$/, '');
  const isExporting = base !== undefined || telemetry.exportsViaStandardVariables;
  const sdk = new NodeSDK({
    resource: resourceFromAttributes({
      'service.name': telemetry.serviceName,
      'service.version': telemetry.serviceVersion,
      'deployment.environment': environment,
      'deployment.environment.name': environment,
    }),
    autoDetectResources: false,
    // Nothing to export to: root spans are not recorded (they still carry a trace id for logs and
    // X-Trace-ID, and a sampled parent from the proxy is still honoured), which keeps /verify lean.
    ...(telemetry.sampler
      ? {}
      : { sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(isExporting ? telemetry.samplerRatio : 0) }) }),
    ...(isExporting
      ? {
          traceExporter: new OTLPTraceExporter(base ? { url: `${base}/v1/traces` } : {}),
          metricReaders: [
            new PeriodicExportingMetricReader({
              exporter: new OTLPMetricExporter(base ? { url: `${base}/v1/metrics` } : {}),
              exportIntervalMillis: telemetry.metricExportIntervalMs,
            }),
          ],
        }
      : { spanProcessors: [new NoopSpanProcessor()] }),
    instrumentations: [
      new HttpInstrumentation({
        ignoreIncomingRequestHook: (request) => UNTRACED_PATHS.has((request.url ?? '').split('?')[0] ?? ''),
      }),
      // Route templates name the server spans; a span per middleware layer would only add noise and cost.
      new ExpressInstrumentation({ ignoreLayersType: [ExpressLayerType.MIDDLEWARE, ExpressLayerType.REQUEST_HANDLER, ExpressLayerType.ROUTER] }),
      new IORedisInstrumentation({ requireParentSpan: true }),
      new UndiciInstrumentation(),
      new KafkaJsInstrumentation(),
    ],
  });
  sdk.start();
  return { shutdown: () => sdk.shutdown() };
}
