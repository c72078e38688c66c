/** The instrumentation scope of the gateway's own spans and metrics. */
export const TRACER_NAME = 'bff-gateway';
