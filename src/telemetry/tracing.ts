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
      : // No metric readers either: given none, the SDK reads OTEL_METRICS_EXPORTER, whose default "otlp"
        // exports to localhost:4318 every minute, and records every OTLP metric of every /verify for it.
        { spanProcessors: [new NoopSpanProcessor()], metricReaders: [] }),
    instrumentations: [
      // Server spans are the gateway's own (request context and /verify): the generic incoming-request
      // instrumentation costs /verify a fifth of its throughput even for traces that are not sampled.
      // Outgoing HTTP stays instrumented.
      new HttpInstrumentation({ disableIncomingRequestInstrumentation: true }),
      // One span per route handler under the server span; middleware and router layers only add noise.
      new ExpressInstrumentation({ ignoreLayersType: [ExpressLayerType.MIDDLEWARE, ExpressLayerType.ROUTER] }),
      new IORedisInstrumentation({ requireParentSpan: true }),
      new UndiciInstrumentation(),
      new KafkaJsInstrumentation(),
    ],
  });
  sdk.start();
  return { shutdown: () => sdk.shutdown() };
}
