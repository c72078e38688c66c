import { DOCS_ASSETS } from './docs-page';
import { ref, type PathItem } from './openapi-types';
import { correlationParameters, json, notFound, success } from './responses';

const noStore = { 'Cache-Control': ref('headers', 'Cache-Control') };

/** SPEC section 7, plus the development pages (the demo at `/` and the browsable docs) outside production. */
export function operationsPaths(options: { readonly isProduction: boolean }): Record<string, PathItem> {
  const paths: Record<string, PathItem> = {
    '/health': {
      get: {
        operationId: 'health',
        tags: ['operations'],
        summary: 'Liveness',
        description: 'Calls no dependency: 200 as long as the process serves requests. Not traced.',
        parameters: [...correlationParameters],
        responses: { '200': success('Alive.', json(ref('schemas', 'Health')), { headers: noStore }) },
      },
    },
    '/ready': {
      get: {
        operationId: 'ready',
        tags: ['operations'],
        summary: 'Readiness',
        description: 'Ready when Redis and the IdP metadata are up and the gateway is not shutting down; the PDP and Kafka are reported only. Each check is bounded (2 s). Not traced.',
        parameters: [...correlationParameters],
        responses: {
          '200': success('Ready.', json(ref('schemas', 'Readiness')), { headers: noStore }),
          '503': success('Not ready (or draining for shutdown): Redis or the IdP is down.', json(ref('schemas', 'Readiness')), { headers: noStore }),
        },
      },
    },
    '/events/health': {
      get: {
        operationId: 'eventsHealth',
        tags: ['operations'],
        summary: 'The security-event backend',
        description: 'Kafka (or the log): connected, buffered, dropped, the error of an outage going on and the last outage.',
        parameters: [...correlationParameters],
        responses: { '200': success('The backend\'s state.', json(ref('schemas', 'EventBackendHealth')), { headers: noStore }) },
      },
    },
    '/metrics': {
      get: {
        operationId: 'metrics',
        tags: ['operations'],
        summary: 'Prometheus metrics',
        description: 'The Prometheus text exposition format (version 0.0.4): the `bff_*`, HTTP, breaker and process series of SPEC section 8. Not traced.',
        parameters: [...correlationParameters],
        responses: {
          '200': success('The metrics, `text/plain; version=0.0.4`.', { 'text/plain': { schema: { type: 'string' } } }),
        },
      },
    },
    '/openapi.json': {
      get: {
        operationId: 'openapi',
        tags: ['operations'],
        summary: 'This document',
        description: 'OpenAPI 3.1, with the running version and PUBLIC_URL as the server.',
        parameters: [...correlationParameters],
        responses: { '200': success('The OpenAPI document.', json(ref('schemas', 'OpenApiDocument'))) },
      },
    },
  };
  if (options.isProduction) return paths;
  return {
    ...paths,
    '/': {
      get: {
        operationId: 'demoPage',
        tags: ['development'],
        summary: 'The demo page (not in production)',
        description: 'Logs in, shows /auth/user and logs out through the gateway. In production `/` belongs to the SPA, served by the proxy.',
        parameters: [...correlationParameters],
        responses: { '200': success('The page.', { 'text/html': { schema: { type: 'string' } } }, { headers: noStore }) },
      },
    },
    '/docs': {
      get: {
        operationId: 'docsPage',
        tags: ['development'],
        summary: 'This document, browsable (not in production)',
        description: 'Swagger UI (from swagger-ui-dist) showing /openapi.json.',
        parameters: [...correlationParameters],
        responses: { '200': success('The page.', { 'text/html': { schema: { type: 'string' } } }) },
      },
    },
    '/docs/{asset}': {
      get: {
        operationId: 'docsAsset',
        tags: ['development'],
        summary: 'Scripts, styles and icons of the docs page (not in production)',
        parameters: [
          { name: 'asset', in: 'path', required: true, description: 'A file of the page.', schema: { enum: Object.keys(DOCS_ASSETS) } },
          ...correlationParameters,
        ],
        responses: {
          '200': success('The file.', {
            'text/javascript': { schema: { type: 'string' } },
            'text/css': { schema: { type: 'string' } },
            'image/png': { schema: { type: 'string', contentMediaType: 'image/png' } },
          }),
          '404': notFound,
        },
      },
    },
  };
}
