import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { parseDomain, parseEmail, type AllowRules } from '../forwardauth/allow-rules';

/** An upstream the proxy fronts; `name` is the `service`/`resource` label everywhere. */
export interface RouteConfig {
  readonly name: string;
  /** Lower-case host without port; undefined matches any host. */
  readonly host: string | undefined;
  /** Normalised, lower-case, without trailing slash ("" for the root). */
  readonly pathPrefix: string;
  readonly auth: 'session' | 'public';
  readonly audience: string | undefined;
  readonly authz: 'pdp' | 'none';
  /** `allow:` rules checked without a PDP (before it when `authz: pdp` too); undefined: none. */
  readonly allow?: AllowRules | undefined;
  /** `bearer: true`: API clients may call with their own JWT whose `aud` contains `audience` (`bearerAudience`). */
  readonly bearer?: { readonly audience: string } | undefined;
}

/** Bounds on an allow list: a route file is written by hand, and each request scans its lists. */
const MAX_ALLOW_ENTRIES = 1000;

const allowSchema = z
  .object({
    groups: z.array(z.string().min(1, { error: 'must not be empty' })).max(MAX_ALLOW_ENTRIES).optional(),
    emails: z
      .array(
        z.string().refine((email) => parseEmail(email) !== undefined && parseDomain(parseEmail(email)?.domain ?? '') !== undefined, {
          error: 'must be one email address (exactly one "@", a DNS domain after it, no spaces), e.g. ops@example.com',
        }),
      )
      .max(MAX_ALLOW_ENTRIES)
      .optional(),
    domains: z
      .array(
        z.string().refine((domain) => parseDomain(domain) !== undefined, {
          error: 'must be a domain name such as example.com (no "@", no leading "." or "*": list each subdomain itself)',
        }),
      )
      .max(MAX_ALLOW_ENTRIES)
      .optional(),
  })
  .strict()
  .refine((allow) => (allow.groups?.length ?? 0) + (allow.emails?.length ?? 0) + (allow.domains?.length ?? 0) > 0, {
    error: 'must list at least one group, email or domain (an empty allow would refuse everyone)',
  });

const routeSchema = z
  .object({
    name: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, {
      error: 'must be 1-63 characters of a-z, 0-9, "_" or "-" (it becomes a metric label)',
    }),
    host: z
      .string()
      .regex(/^[A-Za-z0-9.-]+$/, { error: 'must be a host name without scheme or port' })
      .optional(),
    pathPrefix: z
      .string()
      .regex(/^\/[A-Za-z0-9._~!$&'()*+,=:@\/-]*$/, {
        error: 'must start with "/" and contain only plain path characters (no %, ?, #, ;, \\)',
      })
      .refine((prefix) => !prefix.split('/').some((segment) => segment === '.' || segment === '..'), {
        error: 'must not contain "." or ".." segments',
      }),
    auth: z.enum(['session', 'public'], { error: 'must be session or public' }).default('session'),
    audience: z.string().min(1).optional(),
    authz: z.enum(['pdp', 'none'], { error: 'must be pdp or none' }).default('none'),
    allow: allowSchema.optional(),
    bearer: z.boolean({ error: 'must be true or false' }).default(false),
    bearerAudience: z.string().min(1, { error: 'must not be empty' }).optional(),
  })
  .strict()
  .superRefine((route, ctx) => {
    if (route.bearer && route.bearerAudience === undefined) {
      ctx.addIssue({ code: 'custom', path: ['bearerAudience'], message: 'is required with bearer: true (the audience an API client\'s token must carry, e.g. orders-api)' });
    }
    if (!route.bearer && route.bearerAudience !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['bearerAudience'], message: 'applies only with bearer: true' });
    }
    if (route.auth === 'public' && route.bearer) {
      ctx.addIssue({ code: 'custom', path: ['bearer'], message: 'needs auth: session (a public route checks no token)' });
    }
    if (route.auth === 'public' && route.allow) {
      ctx.addIssue({ code: 'custom', path: ['allow'], message: 'needs auth: session (a public route has no user to check)' });
    }
  });

/** A list of routes, each host+pathPrefix once: ROUTES_FILE's `routes`, and a frontend's in FRONTENDS_FILE. */
export const routeListSchema = z
  .array(routeSchema)
  .min(1, { error: 'must list at least one route' })
  .superRefine((routes, ctx) => {
    const seen = new Set<string>();
    routes.forEach((route, index) => {
      const key = `${route.host?.toLowerCase() ?? '*'} ${normalisePrefix(route.pathPrefix)}`;
      if (seen.has(key)) ctx.addIssue({ code: 'custom', path: [index], message: `duplicates host+pathPrefix ${key}` });
      seen.add(key);
    });
  });

const routesFileSchema = z.object({ routes: routeListSchema }).strict();

/** Every path needs a session: the behaviour without a ROUTES_FILE. */
export const DEFAULT_ROUTES: readonly RouteConfig[] = Object.freeze([
  Object.freeze({ name: 'default', host: undefined, pathPrefix: '', auth: 'session', audience: undefined, authz: 'none' } as const),
]);

function normalisePrefix(prefix: string): string {
  const collapsed = prefix.replace(/\/{2,}/g, '/').toLowerCase();
  return collapsed.endsWith('/') ? collapsed.slice(0, -1) : collapsed;
}

/** Parses a routes document (YAML is a superset of JSON); returns problems rather than throwing. */
export function parseRoutes(text: string): { routes: RouteConfig[] } | { problems: string[] } {
  const parsed = parseDocument(text, routesFileSchema);
  if ('problems' in parsed) return parsed;
  return { routes: toRouteConfigs(parsed.data.routes) };
}

/** Validated routes in the shape the gateway matches on. */
export function toRouteConfigs(routes: z.output<typeof routeListSchema>): RouteConfig[] {
  return routes.map((route) => ({
      name: route.name,
      host: route.host?.replace(/\.$/, '').toLowerCase(),
      pathPrefix: normalisePrefix(route.pathPrefix),
      auth: route.auth,
      audience: route.audience,
      authz: route.authz,
      allow: route.allow && allowRules(route.allow),
      bearer: route.bearer && route.bearerAudience !== undefined ? { audience: route.bearerAudience } : undefined,
  }));
}

/** Emails and domains lower-cased (ASCII), duplicates dropped; groups kept as the IdP spells them. */
function allowRules(allow: { groups?: string[] | undefined; emails?: string[] | undefined; domains?: string[] | undefined }): AllowRules {
  const unique = (values: readonly (string | undefined)[]) => [...new Set(values.filter((value): value is string => value !== undefined))];
  return {
    groups: unique(allow.groups ?? []),
    emails: unique((allow.emails ?? []).map((email) => parseEmail(email)?.address)),
    domains: unique((allow.domains ?? []).map(parseDomain)),
  };
}

export function loadRoutesFile(path: string): { routes: RouteConfig[] } | { problems: string[] } {
  const text = readConfigFile(path);
  return typeof text === 'string' ? parseRoutes(text) : text;
}

/** A configuration file's text, or why it cannot be read. */
export function readConfigFile(path: string): string | { problems: string[] } {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    return { problems: [`cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`] };
  }
}

/** A YAML or JSON document (YAML is a superset of JSON) checked by a schema: its data, or one line per problem. */
export function parseDocument<S extends z.ZodType>(text: string, schema: S): { data: z.output<S> } | { problems: string[] } {
  let document: unknown;
  try {
    document = parseYaml(text);
  } catch (error) {
    return { problems: [`is not valid YAML or JSON (${(error as Error).message.split('\n')[0]})`] };
  }
  const parsed = schema.safeParse(document);
  if (!parsed.success) return { problems: parsed.error.issues.map((issue) => `${issue.path.join('.') || '(document)'}: ${issue.message}`) };
  return { data: parsed.data };
}
