import type { FrontendConfig } from '../config/config';

/**
 * Picks the frontend a request belongs to: a host it names beats a frontend
 * that serves every host, then the longest path prefix wins, by whole
 * segments ("/admin" serves "/admin/x", not "/administrator"). Pure.
 */
export class FrontendSelector<T extends { readonly config: FrontendConfig }> {
  private readonly ordered: readonly T[];

  constructor(frontends: readonly T[]) {
    this.ordered = [...frontends].sort(
      (a, b) => Number(b.config.hosts !== undefined) - Number(a.config.hosts !== undefined) || b.config.pathPrefix.length - a.config.pathPrefix.length,
    );
  }

  /** `hostname`: lower case without port; `path`: the request path (normalised for /verify). */
  select(hostname: string | undefined, path: string): T | undefined {
    for (const frontend of this.ordered) {
      const { hosts, pathPrefix } = frontend.config;
      if (hosts !== undefined && (hostname === undefined || !hosts.includes(hostname))) continue;
      if (isUnderPrefix(path, pathPrefix)) return frontend;
    }
    return undefined;
  }
}

function isUnderPrefix(path: string, prefix: string): boolean {
  if (prefix === '') return true;
  if (!path.toLowerCase().startsWith(prefix)) return false;
  const next = path.charCodeAt(prefix.length);
  return Number.isNaN(next) || next === 47 /* "/" */ || next === 63 /* "?" */;
}

/** The host name of a Host header value (or :authority): lower case, without port or trailing dot. */
export function hostnameOf(host: string | undefined): string | undefined {
  if (!host) return undefined;
  const withoutPort = host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.replace(/:\d*$/, '');
  return withoutPort.toLowerCase().replace(/\.$/, '');
}
