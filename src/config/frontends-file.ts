import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { CLIENT_ASSERTION_ALGORITHMS, readClientPrivateKey } from './client-private-key';
import type { ClientAuthentication, Config, FrontendConfig, OidcConfig } from './config';
import { parseDocument, readConfigFile, routeListSchema, toRouteConfigs } from './routes';

/** Frontends are few and each has its own IdP client; more than this is a mistake, not a deployment. */
const MAX_FRONTENDS = 100;
const PATH_PREFIX = /^\/[A-Za-z0-9._~!$&'()*+,=:@-]+(\/[A-Za-z0-9._~!$&'()*+,=:@-]+)*$/;
/** RFC 6265 cookie-name token characters. */
const COOKIE_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,64}$/;
const HOST = /^[a-z0-9.-]{1,253}$/;

const origin = z
  .string()
  .refine((value) => isOrigin(value), { error: 'must be an http(s) origin: scheme://host[:port], nothing after it (e.g. https://shop.example.com)' });

const oidcSchema = z
  .object({
    issuer: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).optional(),
    clientId: z.string().min(1).optional(),
    clientSecret: z.string().min(1).optional(),
    clientSecretFile: z.string().min(1).optional(),
    clientAuthMethod: z
      .enum(['client_secret_basic', 'client_secret_post', 'private_key_jwt'], { error: 'must be client_secret_basic, client_secret_post or private_key_jwt' })
      .optional(),
    privateKeyFile: z.string().min(1).optional(),
    privateKeyAlg: z.enum(CLIENT_ASSERTION_ALGORITHMS, { error: `must be one of ${CLIENT_ASSERTION_ALGORITHMS.join(', ')}` }).optional(),
    scopes: z
      .union([z.array(z.string().regex(/^\S+$/)).min(1), z.string().min(1).transform((value) => value.split(/\s+/).filter(Boolean))])
      .optional(),
    groupsClaim: z.string().min(1).optional(),
  })
  .strict()
  .refine((oidc) => !(oidc.clientSecret && oidc.clientSecretFile), { error: 'clientSecret and clientSecretFile: choose one' });

const frontendSchema = z
  .object({
    name: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,31}$/, { error: 'must be 1-32 characters of a-z, 0-9, "_" or "-" (it becomes a metric label)' }),
    publicUrl: origin,
    hosts: z
      .array(z.string().transform((host) => host.toLowerCase().replace(/\.$/, '')).pipe(z.string().regex(HOST, { error: 'must be a host name: no scheme, port or path (every port of it is served)' })))
      .min(1)
      .optional(),
    pathPrefix: z
      .string()
      .transform((prefix) => (prefix.length > 1 && prefix.endsWith('/') ? prefix.slice(0, -1) : prefix).toLowerCase())
      .pipe(z.string().regex(PATH_PREFIX, { error: 'must be "/" and plain path segments, e.g. /admin (no "%", "?", "#", ";", "\\", empty segments)' }))
      .refine((prefix) => !prefix.split('/').some((segment) => segment === '.' || segment === '..'), { error: 'must not contain "." or ".." segments' })
      .optional(),
    cookieName: z.string().regex(COOKIE_NAME, { error: 'must be a cookie name token (letters, digits, !#$%&\'*+-.^_`|~)' }).optional(),
    session: z
      .object({
        idleTtlSeconds: z.int().min(60).max(7 * 24 * 3600).optional(),
        absoluteTtlSeconds: z.int().min(60).max(365 * 24 * 3600).optional(),
      })
      .strict()
      .optional(),
    oidc: oidcSchema.optional(),
    routes: routeListSchema.optional(),
  })
  .strict();

const frontendsFileSchema = z
  .object({ frontends: z.array(frontendSchema).min(1, { error: 'must list at least one frontend' }).max(MAX_FRONTENDS) })
  .strict();

type FrontendEntry = z.output<typeof frontendSchema>;

/** A FRONTENDS_FILE's frontends, or one line per problem (each naming the frontend and field). */
export type FrontendsResult = { frontends: FrontendConfig[] } | { problems: string[] };

export function loadFrontendsFile(path: string, defaults: Config): FrontendsResult {
  const text = readConfigFile(path);
  return typeof text === 'string' ? parseFrontends(text, defaults) : text;
}

/**
 * Validates a frontends document against itself (unique names, cookies and
 * host+prefix pairs) and against the environment it inherits from (an issuer
 * and a credential for every frontend, https in production, PDP_URL for
 * `authz: pdp` routes). Nothing is half-applied: any problem refuses the file.
 */
export function parseFrontends(text: string, defaults: Config): FrontendsResult {
  const parsed = parseDocument(text, frontendsFileSchema);
  if ('problems' in parsed) return parsed;
  const problems: string[] = [];
  const frontends = parsed.data.frontends.map((entry, index) => toFrontend(entry, defaults, (message) => problems.push(`frontends.${index} (${entry.name}): ${message}`)));
  problems.push(...conflicts(frontends));
  return problems.length > 0 ? { problems } : { frontends };
}

/** The environment's one frontend: what the gateway serves without FRONTENDS_FILE, on every host. */
export function environmentFrontend(config: Omit<Config, 'frontends' | 'frontendsFile'>): FrontendConfig {
  return {
    name: config.server.frontend,
    hosts: undefined,
    pathPrefix: '',
    publicOrigin: config.server.publicOrigin,
    isHttps: config.server.isHttps,
    oidc: config.oidc,
    session: {
      idleTtlSeconds: config.session.idleTtlSeconds,
      absoluteTtlSeconds: config.session.absoluteTtlSeconds,
      cookieName: config.session.cookieName,
      isSecureCookie: config.session.isSecureCookie,
    },
    routes: config.routes,
  };
}

/** The whole configuration as one frontend sees it: the shared settings with its own origin, IdP client, session and routes. */
export function frontendView(config: Config, frontend: FrontendConfig): Config {
  return {
    ...config,
    server: { ...config.server, frontend: frontend.name, publicOrigin: frontend.publicOrigin, basePath: frontend.pathPrefix, isHttps: frontend.isHttps },
    oidc: frontend.oidc,
    session: { ...config.session, ...frontend.session },
    routes: frontend.routes,
  };
}

function toFrontend(entry: FrontendEntry, defaults: Config, problem: (message: string) => void): FrontendConfig {
  const publicUrl = new URL(entry.publicUrl);
  const isHttps = publicUrl.protocol === 'https:';
  const isProduction = defaults.server.environment === 'production';
  if (isProduction && !isHttps) problem('publicUrl must be https in production (session cookies are Secure)');
  const idleTtlSeconds = entry.session?.idleTtlSeconds ?? defaults.session.idleTtlSeconds;
  const absoluteTtlSeconds = entry.session?.absoluteTtlSeconds ?? defaults.session.absoluteTtlSeconds;
  if (absoluteTtlSeconds < idleTtlSeconds) problem(`session.absoluteTtlSeconds must be at least the idle timeout (${idleTtlSeconds})`);
  const routes = entry.routes ? toRouteConfigs(entry.routes) : defaults.routes;
  if (!defaults.pdp.url) {
    const needing = routes.filter((route) => route.authz === 'pdp').map((route) => route.name);
    if (needing.length > 0) problem(`routes ${needing.join(', ')} use authz: pdp, which needs PDP_URL`);
  }
  return {
    name: entry.name,
    hosts: entry.hosts ?? [publicUrl.hostname],
    pathPrefix: entry.pathPrefix ?? '',
    publicOrigin: publicUrl.origin,
    isHttps,
    oidc: oidcOf(entry, defaults, problem),
    session: {
      idleTtlSeconds,
      absoluteTtlSeconds,
      cookieName: entry.cookieName ?? `${isHttps ? '__Host-' : ''}bff-${entry.name}`,
      isSecureCookie: isHttps,
    },
    routes,
  };
}

/** The frontend's IdP client: each field from the file, else from the OIDC_* variables. */
function oidcOf(entry: FrontendEntry, defaults: Config, problem: (message: string) => void): OidcConfig {
  const inherited = defaults.oidc.kind === 'external' ? defaults.oidc : undefined;
  const file = entry.oidc ?? {};
  const scopes = file.scopes ?? defaults.oidc.scopes;
  const groupsClaim = file.groupsClaim ?? defaults.oidc.groupsClaim;
  const issuer = file.issuer ?? inherited?.issuer;
  const clientId = file.clientId ?? inherited?.clientId;
  if (!issuer) problem('oidc.issuer is required (or OIDC_ISSUER): the development IdP serves only the environment\'s one frontend');
  if (issuer && defaults.server.environment === 'production' && !issuer.startsWith('https:')) problem('oidc.issuer must be https in production');
  if (!clientId) problem('oidc.clientId is required (or OIDC_CLIENT_ID)');
  const clientAuthentication = clientAuthenticationOf(file, inherited?.clientAuthentication, problem);
  return {
    kind: 'external',
    issuer: issuer ?? '',
    clientId: clientId ?? '',
    clientAuthentication: clientAuthentication ?? { method: 'client_secret_basic', clientSecret: '' },
    scopes,
    groupsClaim,
    timeoutMs: defaults.oidc.timeoutMs,
  };
}

function clientAuthenticationOf(
  file: NonNullable<FrontendEntry['oidc']>,
  inherited: ClientAuthentication | undefined,
  problem: (message: string) => void,
): ClientAuthentication | undefined {
  const namesCredentials = file.clientSecret || file.clientSecretFile || file.privateKeyFile || file.clientAuthMethod;
  // Nothing about credentials in the file: the environment's client authentication, whole.
  if (!namesCredentials) {
    if (!inherited) problem('oidc needs clientSecret, clientSecretFile or privateKeyFile (or OIDC_CLIENT_SECRET / OIDC_CLIENT_PRIVATE_KEY_FILE)');
    return inherited;
  }
  const method = file.clientAuthMethod ?? (file.privateKeyFile ? 'private_key_jwt' : 'client_secret_basic');
  if (method === 'private_key_jwt') {
    if (!file.privateKeyFile) {
      problem('oidc.privateKeyFile is required with clientAuthMethod: private_key_jwt');
      return undefined;
    }
    const read = readClientPrivateKey(file.privateKeyFile, file.privateKeyAlg);
    if ('problem' in read) {
      problem(`oidc.privateKeyFile: ${read.problem}`);
      return undefined;
    }
    return { method, privateKey: read.key };
  }
  if (file.privateKeyFile) problem(`oidc.privateKeyFile is used only with clientAuthMethod: private_key_jwt (it is ${method})`);
  const secret = file.clientSecret ?? (file.clientSecretFile ? readSecret(file.clientSecretFile, problem) : undefined);
  if (!secret) {
    if (!file.clientSecretFile) problem(`oidc.clientSecret or oidc.clientSecretFile is required with clientAuthMethod: ${method}`);
    return undefined;
  }
  return { method, clientSecret: secret };
}

function readSecret(file: string, problem: (message: string) => void): string | undefined {
  try {
    const secret = readFileSync(file, 'utf8').trim();
    if (secret === '') problem(`oidc.clientSecretFile ${file} is empty`);
    return secret || undefined;
  } catch (error) {
    problem(`oidc.clientSecretFile ${file} cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
    return undefined;
  }
}

/**
 * Two frontends must never answer for the same request, nor share a cookie
 * name: a browser sends a host's cookies to every path of it.
 */
function conflicts(frontends: readonly FrontendConfig[]): string[] {
  const problems: string[] = [];
  const names = new Set<string>();
  const byCookie = new Map<string, string>();
  const bySelector = new Map<string, string>();
  for (const frontend of frontends) {
    if (names.has(frontend.name)) problems.push(`frontends: the name ${frontend.name} is used twice`);
    names.add(frontend.name);
    const cookieOwner = byCookie.get(frontend.session.cookieName);
    if (cookieOwner) problems.push(`frontends: ${cookieOwner} and ${frontend.name} both use the cookie ${frontend.session.cookieName}`);
    byCookie.set(frontend.session.cookieName, frontend.name);
    for (const host of frontend.hosts ?? []) {
      const selector = `${host}${frontend.pathPrefix || '/'}`;
      const owner = bySelector.get(selector);
      if (owner) problems.push(`frontends: ${owner} and ${frontend.name} both serve ${selector}`);
      bySelector.set(selector, frontend.name);
    }
  }
  return problems;
}

function isOrigin(value: string): boolean {
  try {
    const url = new URL(value);
    return (url.protocol === 'http:' || url.protocol === 'https:') && value.replace(/\/$/, '').toLowerCase() === url.origin;
  } catch {
    return false;
  }
}
