/**
 * The slice of OpenAPI 3.1 this folder writes. Schemas are JSON Schema
 * 2020-12 (the OpenAPI 3.1 dialect), kept as plain objects: the document is
 * served as JSON and checked against the official schema by the tests.
 */
export type JsonSchema = { readonly [keyword: string]: unknown };

/** A type alias, not an interface: a reference is also a schema (`{ $ref }`). */
export type Reference = {
  readonly $ref: string;
  readonly description?: string;
};

export interface HeaderObject {
  readonly description: string;
  readonly required?: boolean;
  readonly schema: JsonSchema;
}

export interface MediaTypeObject {
  readonly schema?: JsonSchema;
  readonly examples?: Readonly<Record<string, { readonly summary?: string; readonly value: unknown }>>;
}

export type Content = Readonly<Record<string, MediaTypeObject>>;

export interface ResponseObject {
  readonly description: string;
  readonly headers?: Readonly<Record<string, HeaderObject | Reference>>;
  readonly content?: Content;
}

export interface ParameterObject {
  readonly name: string;
  readonly in: 'query' | 'header' | 'path' | 'cookie';
  readonly description: string;
  readonly required?: boolean;
  readonly schema: JsonSchema;
}

export interface RequestBodyObject {
  readonly description: string;
  readonly required: boolean;
  readonly content: Content;
}

export interface OperationObject {
  readonly operationId: string;
  readonly summary: string;
  readonly description?: string;
  readonly tags: readonly string[];
  readonly parameters?: readonly (ParameterObject | Reference)[];
  readonly requestBody?: RequestBodyObject;
  /** Empty: no credentials needed; absent: the document's default (none). */
  readonly security?: readonly Readonly<Record<string, readonly string[]>>[];
  readonly responses: Readonly<Record<string, ResponseObject | Reference>>;
}

export type HttpMethod = 'get' | 'post' | 'delete';

export type PathItem = Partial<Readonly<Record<HttpMethod, OperationObject>>>;

export type SecurityScheme =
  | { readonly type: 'apiKey'; readonly in: 'cookie'; readonly name: string; readonly description: string }
  | { readonly type: 'http'; readonly scheme: 'bearer'; readonly bearerFormat: string; readonly description: string };

export interface OpenApiDocument {
  readonly openapi: string;
  readonly info: {
    readonly title: string;
    readonly version: string;
    readonly summary: string;
    readonly description: string;
    readonly license: { readonly name: string; readonly identifier: string };
  };
  readonly servers: readonly { readonly url: string; readonly description: string }[];
  readonly tags: readonly { readonly name: string; readonly description: string }[];
  readonly paths: Readonly<Record<string, PathItem>>;
  readonly components: {
    readonly schemas: Readonly<Record<string, JsonSchema>>;
    readonly headers: Readonly<Record<string, HeaderObject>>;
    readonly parameters: Readonly<Record<string, ParameterObject>>;
    readonly responses: Readonly<Record<string, ResponseObject>>;
    readonly securitySchemes: Readonly<Record<string, SecurityScheme>>;
  };
}

/** What the document says that depends on configuration. */
export interface OpenApiOptions {
  /** config.telemetry.serviceVersion (BFF_VERSION, else the package version). */
  readonly version: string;
  /** PUBLIC_URL's origin: the server the browser-facing endpoints answer on. */
  readonly publicOrigin: string;
  /** The session cookie's name (`__Host-` prefixed when PUBLIC_URL is https). */
  readonly sessionCookieName: string;
  /** PUBLIC_METRICS_EVENTS: the only event names /api/v1/metrics accepts. */
  readonly allowedEvents: readonly string[];
  /** Outside production the demo page (`/`) and the browsable docs (`/docs`) are served, and described. */
  readonly isProduction: boolean;
}

export const ref = (kind: 'schemas' | 'headers' | 'parameters' | 'responses', name: string): Reference => ({ $ref: `#/components/${kind}/${name}` });
