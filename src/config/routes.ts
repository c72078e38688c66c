import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';

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
}

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
  })
  .strict();

const routesFileSchema = z
  .object({ routes: z.array(routeSchema).min(1, { error: 'must list at least one route' }) })
  .strict()
  .superRefine((file, ctx) => {
    const seen = new Set<string>();
    file.routes.forEach((route, index) => {
      const key = `${route.host?.toLowerCase() ?? '*'} ${normalisePrefix(route.pathPrefix)}`;
      if (seen.has(key)) {
        ctx.addIssue({ code: 'custom', path: ['routes', index], message: `duplicates host+pathPrefix ${key}` });
      }
      seen.add(key);
    });
  });

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
  let document: unknown;
  try {
    document = parseYaml(text);
  } catch (error) {
    return { problems: [`is not valid YAML or JSON (${(error as Error).message.split('\n')[0]})`] };
  }
  const parsed = routesFileSchema.safeParse(document);
  if (!parsed.success) {
    return {
      problems: parsed.error.issues.map((issue) => `${issue.path.join('.') || '(document)'}: ${issue.message}`),
    };
  }
  return {
    routes: parsed.data.routes.map((route) => ({
      name: route.name,
      host: route.host?.replace(/\.$/, '').toLowerCase(),
      pathPrefix: normalisePrefix(route.pathPrefix),
      auth: route.auth,
      audience: route.audience,
      authz: route.authz,
    })),
  };
}

export function loadRoutesFile(path: string): { routes: RouteConfig[] } | { problems: string[] } {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    return { problems: [`cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`] };
  }
  return parseRoutes(text);
}
