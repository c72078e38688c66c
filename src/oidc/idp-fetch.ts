import type * as client from 'openid-client';
import type { GatewayMetrics } from '../telemetry/metrics';

/**
 * Every IdP request counted and timed by endpoint, whatever openid-client
 * call made it: `fixedEndpoint` names them all (discovery), else the URL is
 * looked up in the metadata loaded so far.
 */
export function instrumentedIdpFetch(
  metrics: GatewayMetrics,
  metadata: () => client.ServerMetadata | undefined,
  fixedEndpoint: string | undefined,
): client.CustomFetch {
  return async (url, init) => {
    const endpoint = fixedEndpoint ?? endpointName(metadata(), url);
    const started = performance.now();
    try {
      const response = await fetch(url, init as RequestInit);
      metrics.idpRequests.inc({ endpoint, status: String(response.status) });
      return response;
    } catch (error) {
      metrics.idpRequests.inc({ endpoint, status: 'error' });
      throw error;
    } finally {
      metrics.idpLatency.observe({ endpoint }, (performance.now() - started) / 1000);
    }
  };
}

/** A bounded `endpoint` label: which of the IdP's endpoints a URL is. */
function endpointName(metadata: client.ServerMetadata | undefined, url: string): string {
  if (!metadata) return 'discovery';
  const path = url.split('?')[0];
  const endpoints: Array<[string, string | undefined]> = [
    ['token', metadata.token_endpoint],
    ['userinfo', metadata.userinfo_endpoint],
    ['revocation', metadata.revocation_endpoint],
    ['introspection', metadata.introspection_endpoint],
    ['par', metadata.pushed_authorization_request_endpoint],
    ['jwks', metadata.jwks_uri],
  ];
  return endpoints.find(([, endpointUrl]) => endpointUrl === path)?.[0] ?? 'other';
}
