import { join } from 'node:path';
import { isExecutable, TEST_SERVERS, testServerCacheDirectory } from './test-servers';

/**
 * Loki, only to check deploy/loki/config.yaml with its own `-verify-config`:
 * scripts/provision-test-servers.mjs (npm test's pretest) builds it from the
 * Go module proxy into ~/.cache/bff-gateway/loki-<version>. LOKI_BIN overrides.
 */
export const LOKI_VERSION = TEST_SERVERS.loki.version;

export async function ensureLokiBinary(): Promise<string> {
  const binary = process.env.LOKI_BIN || join(testServerCacheDirectory('loki', LOKI_VERSION), 'loki');
  if (isExecutable(binary)) return binary;
  throw new Error(`loki ${LOKI_VERSION} is not built at ${binary}: run "npm test" (its pretest builds it) or set LOKI_BIN`);
}
