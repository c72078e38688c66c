import type { Request, Response } from 'express';
import type { EventPublisher } from '../events/security-events';
import type { DependencyCheck, DependencyCheckResult } from '../shared/dependency-check';
import type { GatewayMetrics } from '../telemetry/metrics';

const CHECK_TIMEOUT_MS = 2000;

async function runCheck(check: DependencyCheck): Promise<DependencyCheckResult> {
  const timeout = new Promise<DependencyCheckResult>((resolve) => {
    setTimeout(() => resolve({ status: 'down', detail: `no answer within ${CHECK_TIMEOUT_MS} ms` }), CHECK_TIMEOUT_MS).unref();
  });
  try {
    return await Promise.race([check.check(), timeout]);
  } catch (error) {
    return { status: 'down', detail: (error as Error).message };
  }
}

export function createHealthHandler(version: string) {
  return (_req: Request, res: Response): void => {
    res.set('Cache-Control', 'no-store').json({ status: 'healthy', service: 'bff-service', version, timestamp: new Date().toISOString() });
  };
}

export function createReadyHandler(checks: readonly DependencyCheck[], isShuttingDown: () => boolean) {
  return async (_req: Request, res: Response): Promise<void> => {
    const results = await Promise.all(checks.map(async (check) => [check, await runCheck(check)] as const));
    const isReady = !isShuttingDown() && results.every(([check, result]) => !check.decidesReadiness || result.status === 'up');
    res
      .status(isReady ? 200 : 503)
      .set('Cache-Control', 'no-store')
      .json({
        status: isReady ? 'ready' : 'not_ready',
        checks: Object.fromEntries(results.map(([check, result]) => [check.name, result])),
      });
  };
}

export function createMetricsHandler(metrics: GatewayMetrics) {
  return async (_req: Request, res: Response): Promise<void> => {
    res.set('Content-Type', metrics.registry.contentType).send(await metrics.registry.metrics());
  };
}

export function createEventsHealthHandler(events: EventPublisher) {
  return (_req: Request, res: Response): void => {
    res.set('Cache-Control', 'no-store').json(events.health());
  };
}
