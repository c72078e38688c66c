export interface DependencyCheckResult {
  readonly status: 'up' | 'down' | 'not_configured';
  readonly latencyMs?: number;
  readonly detail?: string;
}

/** One dependency's readiness check; only those that `decidesReadiness` can make /ready answer 503. */
export interface DependencyCheck {
  readonly name: string;
  readonly decidesReadiness: boolean;
  check(): Promise<DependencyCheckResult>;
}
