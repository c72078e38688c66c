/** Everything a decision depends on; the cache keys on all of it. */
export interface AuthorizationInput {
  readonly subject: { readonly sub: string; readonly groups: readonly string[]; readonly email?: string | undefined };
  readonly resource: string;
  readonly action: 'read' | 'write' | 'delete';
  readonly method: string;
  readonly path: string;
}

/**
 * A policy decision point. `allows` resolves true only on a clear allow;
 * when no answer can be had it rejects with DependencyUnavailable, so the
 * caller fails closed.
 */
export interface Authorizer {
  allows(input: AuthorizationInput): Promise<boolean>;
  /** For /ready: the last call's health, without calling. */
  status(): { readonly configured: boolean; readonly isHealthy: boolean; readonly lastError: string | undefined };
}

export function actionFor(method: string): AuthorizationInput['action'] {
  if (method === 'GET' || method === 'HEAD' || method === 'OPTIONS') return 'read';
  if (method === 'DELETE') return 'delete';
  return 'write';
}

/** Without PDP_URL: authenticated means allowed (routes with `authz: pdp` are refused at start-up). */
export const authenticatedIsAllowed: Authorizer = {
  allows: async () => true,
  status: () => ({ configured: false, isHealthy: true, lastError: undefined }),
};
