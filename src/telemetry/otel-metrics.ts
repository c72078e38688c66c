import { metrics, type Counter, type Histogram } from '@opentelemetry/api';

/**
 * The OTLP metrics of SPEC section 8. Built after the SDK started (the API
 * hands out no-op instruments before that, and when telemetry is off).
 */
export class OtelInstruments {
  readonly forwardAuthDuration: Histogram;
  readonly sessionValidationDuration: Histogram;
  readonly tokenRefreshDuration: Histogram;
  readonly authRequests: Counter;
  readonly sessionBindingFailures: Counter;

  constructor() {
    const meter = metrics.getMeter('bff-gateway');
    this.forwardAuthDuration = meter.createHistogram('bff_forwardauth_duration_ms', { unit: 'ms', description: 'ForwardAuth /verify duration' });
    this.sessionValidationDuration = meter.createHistogram('bff_session_validation_duration_ms', { unit: 'ms', description: 'Loading and checking a session in /verify' });
    this.tokenRefreshDuration = meter.createHistogram('bff_token_refresh_duration_ms', { unit: 'ms', description: 'Refresh grants at the IdP' });
    this.authRequests = meter.createCounter('bff_auth_requests_total', { description: 'Requests to the /auth endpoints' });
    this.sessionBindingFailures = meter.createCounter('bff_session_binding_failures_total', { description: 'Sessions used from another client' });
  }
}
