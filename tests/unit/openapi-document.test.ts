import { Validator } from '@seriousme/openapi-schema-validator';
import { Ajv2020 } from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import express from 'express';
import { loadConfig } from '../../src/config/load-config';
import { AUTH_RESPONSE_HEADERS } from '../../src/forwardauth/identity-headers';
import { buildOpenApiDocument } from '../../src/http/openapi/openapi-document';
import { mountOpenApi } from '../../src/http/openapi/openapi-routes';
import type { OpenApiDocument, OpenApiOptions } from '../../src/http/openapi/openapi-types';
import { VERIFY_ERRORS_BY_STATUS } from '../../src/http/openapi/schemas';
import { VERIFY_ERRORS } from '../../src/http/verify-route';

const OPTIONS: OpenApiOptions = {
  version: '9.8.7',
  publicOrigin: 'https://app.example.com',
  sessionCookieName: '__Host-bff-session',
  allowedEvents: ['page_view', 'js_error'],
  isProduction: false,
};

type Json = { [key: string]: unknown };

/** Walks the parsed document (plain JSON), calling `visit` with each object and its JSON pointer. */
function walk(node: unknown, pointer: string, visit: (value: Json, pointer: string) => void): void {
  if (Array.isArray(node)) node.forEach((item, index) => walk(item, `${pointer}/${index}`, visit));
  else if (node !== null && typeof node === 'object') {
    visit(node as Json, pointer);
    for (const [key, value] of Object.entries(node)) walk(value, `${pointer}/${key.replace(/~/g, '~0').replace(/\//g, '~1')}`, visit);
  }
}

function resolvePointer(document: unknown, pointer: string): unknown {
  return pointer
    .split('/')
    .slice(1)
    .reduce<unknown>((node, part) => (node as Json | undefined)?.[part.replace(/~1/g, '/').replace(/~0/g, '~')], document);
}

/** Where the document holds a JSON Schema: `schema` of parameters, headers and media types, and the component schemas. */
function schemaPointers(document: Json): string[] {
  const pointers = Object.keys((document.components as { schemas: Json }).schemas).map((name) => `/components/schemas/${name}`);
  walk(document, '', (value, pointer) => {
    if ('schema' in value && !pointer.startsWith('/components/schemas')) pointers.push(`${pointer}/schema`);
  });
  return pointers;
}

/** Every operation's responses, each with the pointer of its operation. */
function operations(document: OpenApiDocument): Array<{ method: string; path: string; responses: Json }> {
  return Object.entries(document.paths).flatMap(([path, item]) =>
    Object.entries(item).map(([method, operation]) => ({ method, path, responses: operation.responses as Json })),
  );
}

function resolved<T>(document: unknown, value: T): T {
  const reference = (value as { $ref?: string }).$ref;
  return reference === undefined ? value : (resolvePointer(document, reference.slice(1)) as T);
}

describe('the OpenAPI document', () => {
  const document = buildOpenApiDocument(OPTIONS);
  const json = JSON.parse(JSON.stringify(document)) as Json;

  it('is a valid OpenAPI 3.1 document by the official schema', async () => {
    const validator = new Validator();
    const result = await validator.validate(json);
    expect(result.errors).toBeUndefined();
    expect(result.valid).toBe(true);
    expect(validator.version).toBe('3.1');
  });

  it('holds only JSON Schema 2020-12 that compiles in strict mode', () => {
    const ajv = new Ajv2020({ strict: true, allErrors: true });
    addFormats(ajv);
    // The document's own keywords are not schema keywords: declared so that strict mode accepts them at the root.
    ajv.addVocabulary(['openapi', 'info', 'servers', 'tags', 'paths', 'components']);
    ajv.addSchema(json, 'openapi.json');
    const pointers = schemaPointers(json);
    expect(pointers.length).toBeGreaterThan(50);
    for (const pointer of pointers) expect(() => ajv.compile({ $ref: `openapi.json#${pointer}` })).not.toThrow();
  });

  it('has no reference that leads nowhere', () => {
    const references: string[] = [];
    walk(json, '', (value) => {
      if (typeof value.$ref === 'string') references.push(value.$ref);
    });
    expect(references.length).toBeGreaterThan(0);
    for (const reference of references) {
      expect(reference).toMatch(/^#\//);
      expect([reference, resolvePointer(json, reference.slice(1))]).not.toEqual([reference, undefined]);
    }
  });

  it('takes its version and server from the configuration', () => {
    expect(document.info.version).toBe('9.8.7');
    expect(document.servers).toEqual([expect.objectContaining({ url: 'https://app.example.com' })]);
    expect(document.components.securitySchemes.sessionCookie).toMatchObject({ in: 'cookie', name: '__Host-bff-session' });
  });

  it('names a unique operationId for every operation', () => {
    const ids = Object.values(document.paths).flatMap((item) => Object.values(item).map((operation) => operation.operationId));
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('documents X-Request-ID as a required header of every answer', () => {
    for (const { method, path, responses } of operations(document)) {
      for (const [status, response] of Object.entries(responses)) {
        const headers = resolved(json, response as { headers?: Record<string, { required?: boolean }> }).headers ?? {};
        const requestId = headers['X-Request-ID'] === undefined ? undefined : resolved(json, headers['X-Request-ID']);
        expect([method, path, status, requestId?.required]).toEqual([method, path, status, true]);
      }
    }
  });

  it('documents every /verify refusal under exactly one status, and each of those statuses', () => {
    const documented = Object.values(VERIFY_ERRORS_BY_STATUS).flat();
    expect([...documented].sort()).toEqual([...VERIFY_ERRORS].sort());
    const verifyStatuses = Object.keys(document.paths['/verify']?.get?.responses ?? {});
    for (const status of Object.keys(VERIFY_ERRORS_BY_STATUS)) expect(verifyStatuses).toContain(status);
  });

  it('requires every header the proxy copies onto the upstream request on the /verify 200', () => {
    const headers = (document.paths['/verify']?.get?.responses['200'] as { headers: Json }).headers;
    for (const name of AUTH_RESPONSE_HEADERS) expect([name, resolved(json, headers[name] as { required?: boolean })?.required]).toEqual([name, true]);
  });

  it('lists the configured SPA event names as the only accepted ones', () => {
    expect(document.components.schemas.SpaMetricsEvent).toMatchObject({ properties: { event: { enum: ['page_view', 'js_error'] } } });
  });

  it('leaves out the demo page and the browsable docs in production', () => {
    const production = buildOpenApiDocument({ ...OPTIONS, isProduction: true });
    expect(Object.keys(production.paths)).not.toEqual(expect.arrayContaining(['/']));
    expect(Object.keys(production.paths).filter((path) => path === '/' || path.startsWith('/docs'))).toEqual([]);
    expect(Object.keys(document.paths)).toEqual(expect.arrayContaining(['/', '/docs', '/docs/{asset}']));
  });
});

describe('mountOpenApi', () => {
  const productionEnv = {
    ENVIRONMENT: 'production',
    PUBLIC_URL: 'https://app.example.com',
    OIDC_ISSUER: 'https://idp.example.com',
    OIDC_CLIENT_ID: 'bff',
    OIDC_CLIENT_SECRET: 'bff-secret-0123456789abcdef',
    SESSION_SECRET: 'a-production-session-secret-0123456789abcdef',
    REDIS_URL: 'redis://127.0.0.1:6379',
  };

  function mountedRoutes(env: Record<string, string>): string[] {
    const router = express.Router();
    mountOpenApi(router, loadConfig(env));
    return router.stack.flatMap((layer) => (layer.route ? Object.keys((layer.route as unknown as { methods: Json }).methods).map((method) => `${method.toUpperCase()} ${layer.route?.path}`) : []));
  }

  it('serves the document and the docs page outside production', () => {
    expect(mountedRoutes({ ...productionEnv, ENVIRONMENT: 'staging' })).toEqual(['GET /openapi.json', 'GET /docs', 'GET /docs/:asset']);
  });

  it('serves only the document in production', () => {
    expect(mountedRoutes(productionEnv)).toEqual(['GET /openapi.json']);
  });
});
