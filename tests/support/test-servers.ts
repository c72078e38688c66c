import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

interface TestServerPins {
  readonly opa: { readonly version: string; readonly module: string };
  readonly traefik: { readonly version: string; readonly module: string };
  readonly kafka: { readonly version: string };
  readonly keycloak: { readonly version: string; readonly artifact: string; readonly minimumJavaMajor: number };
}

/** The pins shared with scripts/provision-test-servers.mjs, which builds and fetches these before Jest starts. */
export const TEST_SERVERS: TestServerPins = JSON.parse(readFileSync(join(__dirname, 'test-servers.json'), 'utf8'));

/** `${XDG_CACHE_HOME:-~/.cache}/bff-gateway/<name>-<version>`: outside the repository, kept between runs. */
export function testServerCacheDirectory(name: string, version: string): string {
  const cacheHome = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return join(cacheHome, 'bff-gateway', `${name}-${version}`);
}
