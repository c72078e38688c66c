import type { RouteConfig } from '../config/routes';

/**
 * Picks the route for host + normalised path: a host-specific route beats a
 * host-less one, then the longest prefix wins. A prefix matches whole
 * segments only ("/api/orders" matches "/api/orders/1", not "/api/ordersx").
 */
export class RouteMatcher {
  private readonly ordered: readonly RouteConfig[];

  constructor(routes: readonly RouteConfig[]) {
    this.ordered = [...routes].sort(
      (a, b) => Number(b.host !== undefined) - Number(a.host !== undefined) || b.pathPrefix.length - a.pathPrefix.length,
    );
  }

  match(host: string | undefined, normalisedPath: string): RouteConfig | undefined {
    for (const route of this.ordered) {
      if (route.host !== undefined && route.host !== host) continue;
      if (isUnderPrefix(normalisedPath, route.pathPrefix)) return route;
    }
    return undefined;
  }
}

function isUnderPrefix(path: string, prefix: string): boolean {
  if (prefix === '') return true;
  return path === prefix || (path.startsWith(prefix) && path.charCodeAt(prefix.length) === 47 /* "/" */);
}
