import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

interface TestServerPins {
  readonly opa: { readonly version: string; readonly module: string };
  readonly traefik: { readonly version: string; readonly module: string };
  readonly kafka: { readonly version: string };
  readonly keycloak: { readonly version: string; readonly artifact: string; readonly minimumJavaMajor: number };
  /** Jaeger v2 (the v1.x module tag of the same release), built from `package` in a writable copy of the module. */
  readonly jaeger: { readonly version: string; readonly module: string; readonly package: string };
  /** Loki, for `-verify-config` of deploy/loki/config.yaml; built at first use by tests/support/loki.ts. */
  readonly loki: { readonly version: string; readonly module: string; readonly package: string };
}

/** The pins shared with scripts/provision-test-servers.mjs, which builds and fetches these before Jest starts. */
export const TEST_SERVERS: TestServerPins = JSON.parse(readFileSync(join(__dirname, 'test-servers.json'), 'utf8'));

/** `${XDG_CACHE_HOME:-~/.cache}/bff-gateway/<name>-<version>`: outside the repository, kept between runs. */
export function testServerCacheDirectory(name: string, version: string): string {
  const cacheHome = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return join(cacheHome, 'bff-gateway', `${name}-${version}`);
}
