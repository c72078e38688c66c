import { browserPaths } from './browser-paths';
import type { OpenApiDocument, OpenApiOptions } from './openapi-types';
import { operationsPaths } from './operations-paths';
import { commonHeaders, commonParameters, notFound } from './responses';
import { componentSchemas } from './schemas';
import { verifyPath } from './verify-path';

export const OPENAPI_VERSION = '3.1.1';

const DESCRIPTION = `A backend-for-frontend session gateway: browsers log in through it and never see an OAuth token; the proxy asks \`/verify\` before every API request and receives the bearer token and identity headers for the upstream.

**Who calls what.** SPAs: \`/auth/*\` and \`/api/v1/metrics\`, on PUBLIC_URL. The proxy (Traefik ForwardAuth, Caddy forward_auth): \`/verify\`, at the gateway's own address. The IdP's servers: \`/auth/backchannel-logout\`. Operators: \`/health\`, \`/ready\`, \`/events/health\`, \`/metrics\`.

**Errors.** Every route but \`/verify\` answers an error as RFC 9457 problem details (\`application/problem+json\`, \`title\` = a stable error code, with the request id); an \`/auth/\` route answers a browser that prefers HTML with a small error page instead. \`/verify\` answers its own JSON \`{ "error": ... }\`, which the proxy passes to the client. Any method and path not described here is a 404 problem. 429 and 503 carry Retry-After.

**Correlation.** Every answer carries X-Request-ID (a well-formed incoming one is kept) and, when the request is traced, X-Trace-ID.`;

/**
 * The OpenAPI 3.1 description of every endpoint the gateway serves with this
 * configuration: SPEC sections 3, 4, 6 and 7, plus the development pages
 * outside production. Pure: built once when the routes are mounted.
 */
export function buildOpenApiDocument(options: OpenApiOptions): OpenApiDocument {
  return {
    openapi: OPENAPI_VERSION,
    info: {
      title: 'bff-gateway',
      version: options.version,
      summary: 'OIDC login into server-side sessions, and ForwardAuth for single-page apps.',
      description: DESCRIPTION,
      license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
    },
    servers: [{ url: options.publicOrigin, description: 'PUBLIC_URL: the browser-facing origin. The proxy calls /verify at the gateway\'s own address.' }],
    tags: [
      { name: 'browser', description: 'Login, logout and the session, for the SPA (SPEC section 3).' },
      { name: 'forwardauth', description: 'The proxy\'s question before each API request (SPEC section 4).' },
      { name: 'ingestion', description: "The SPA's own metrics (SPEC section 6)." },
      { name: 'operations', description: 'Probes, metrics and this document (SPEC section 7).' },
      ...(options.isProduction ? [] : [{ name: 'development', description: 'Pages served outside production only.' }]),
    ],
    paths: {
      ...browserPaths(),
      ...verifyPath(),
      ...operationsPaths({ isProduction: options.isProduction }),
    },
    components: {
      schemas: componentSchemas(options.allowedEvents),
      headers: commonHeaders,
      parameters: commonParameters,
      responses: { NotFound: notFound },
      securitySchemes: {
        sessionCookie: {
          type: 'apiKey',
          in: 'cookie',
          name: options.sessionCookieName,
          description: 'The session cookie set by /auth/callback: a signed random id; HttpOnly, SameSite=Lax, Path=/, Secure and `__Host-` prefixed on https.',
        },
        bearerToken: {
          type: 'http',
          scheme: 'bearer',
          bearerFormat: 'JWT',
          description:
            "An API client's own access token from the IdP, on routes with `bearer: true` only (and only without a session cookie): signature by the IdP's keys, iss, exp, and `aud` containing the route's `bearerAudience`. No CSRF check.",
        },
      },
    },
  };
}
