import type { Config } from '../config/config';
import type { DependencyCheck } from '../http/operations-routes';
import type { BreakerOptions } from '../resilience/breaker';
import type { Clock } from '../session/session-store';
import type { Logger } from '../telemetry/logger';
import type { GatewayMetrics } from '../telemetry/metrics';
import { authenticatedIsAllowed, type Authorizer } from './authorizer';

export interface AuthorizerWiring {
  readonly authorizer: Authorizer;
  readonly check: DependencyCheck;
  close(): Promise<void>;
}

/** Called by the composition root only: the PDP client when PDP_URL is set. */
export function createAuthorizer(
  config: Config,
  deps: { metrics: GatewayMetrics; logger: Logger; clock: Clock; breakerOptions: Omit<BreakerOptions, 'timeoutMs'> },
): AuthorizerWiring {
  void deps;
  if (!config.pdp.url) {
    return {
      authorizer: authenticatedIsAllowed,
      check: { name: 'pdp', decidesReadiness: false, check: async () => ({ status: 'not_configured', detail: 'authenticated means allowed' }) },
      close: async () => {},
    };
  }
  throw new Error('PDP_URL is set but the PDP client is not wired yet');
}
