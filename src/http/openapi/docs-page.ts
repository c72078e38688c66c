import { dirname } from 'node:path';
import type { NextFunction, Request, Response } from 'express';

/**
 * What /docs/{asset} serves: three files of swagger-ui-dist and the script
 * that points Swagger UI at /openapi.json. A fixed list, not the package
 * folder: its own index.html and initializer load the Petstore example.
 */
export const DOCS_ASSETS = {
  'docs.js': 'text/javascript',
  'swagger-ui.css': 'text/css',
  'swagger-ui-bundle.js': 'text/javascript',
  'favicon-32x32.png': 'image/png',
  'favicon-16x16.png': 'image/png',
} as const satisfies Record<string, string>;

type DocsAsset = keyof typeof DOCS_ASSETS;

const isDocsAsset = (name: string): name is DocsAsset => Object.hasOwn(DOCS_ASSETS, name);

/** Scripts from this origin only; Swagger UI sets inline styles and draws its icons as data: images. */
const CONTENT_SECURITY_POLICY =
  "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>bff-gateway API</title>
<link rel="stylesheet" href="/docs/swagger-ui.css">
<link rel="icon" type="image/png" href="/docs/favicon-32x32.png" sizes="32x32">
<link rel="icon" type="image/png" href="/docs/favicon-16x16.png" sizes="16x16">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script src="/docs/docs.js"></script>
</body>
</html>`;

/** "Try it out" runs in this page's origin: same-origin requests, so the session cookie goes along. */
const INITIALIZER = `window.addEventListener('load', function () {
  window.ui = SwaggerUIBundle({
    url: '/openapi.json',
    dom_id: '#swagger-ui',
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: 'BaseLayout',
  });
});
`;

/** GET /docs */
export function docsPage(_req: Request, res: Response): void {
  res.set({ 'Content-Security-Policy': CONTENT_SECURITY_POLICY, 'X-Content-Type-Options': 'nosniff', 'Cache-Control': 'no-cache' }).type('html').send(PAGE);
}

/** GET /docs/:asset; anything not in DOCS_ASSETS falls through to the 404 handler. */
export function createDocsAssetHandler() {
  // Resolved only when the docs are mounted: production never loads anything from swagger-ui-dist.
  const root = dirname(require.resolve('swagger-ui-dist/package.json'));
  return (req: Request, res: Response, next: NextFunction): void => {
    const name = req.params.asset;
    if (typeof name !== 'string' || !isDocsAsset(name)) return next();
    res.set('X-Content-Type-Options', 'nosniff');
    if (name === 'docs.js') {
      res.set('Cache-Control', 'no-cache').type(DOCS_ASSETS[name]).send(INITIALIZER);
      return;
    }
    // A fixed file name under the package folder: nothing from the request reaches the file system path.
    res.type(DOCS_ASSETS[name]).sendFile(name, { root, maxAge: '1d' }, (error) => {
      if (error) next(error);
    });
  };
}
