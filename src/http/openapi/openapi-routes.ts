import type { Router } from 'express';
import type { Config } from '../../config/config';
import { createDocsAssetHandler, docsPage } from './docs-page';
import { buildOpenApiDocument } from './openapi-document';

/**
 * GET /openapi.json (SPEC section 7) and, outside production, the browsable
 * page: GET /docs and GET /docs/:asset. The document is built once, from the
 * configuration the routes were built with.
 */
export function mountOpenApi(router: Router, config: Config): void {
  const isProduction = config.server.environment === 'production';
  const document = JSON.stringify(
    buildOpenApiDocument({
      version: config.telemetry.serviceVersion,
      publicOrigin: config.server.publicOrigin,
      sessionCookieName: config.session.cookieName,
      allowedEvents: config.publicMetrics.allowedEvents,
      isProduction,
    }),
  );
  // Revalidated on each use: the document changes with every deployment.
  router.get('/openapi.json', (_req, res) => {
    res.set('Cache-Control', 'no-cache').type('json').send(document);
  });
  if (isProduction) return;
  router.get('/docs', docsPage);
  router.get('/docs/:asset', createDocsAssetHandler());
}
