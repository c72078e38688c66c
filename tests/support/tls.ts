import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

/** A throwaway CA and a server certificate it signed, as PEM files in a temporary directory. */
export interface TestCertificates {
  readonly directory: string;
  readonly caFile: string;
  readonly certFile: string;
  readonly keyFile: string;
  readonly ca: string;
  remove(): void;
}

/** The script operators run for docker-compose's development certificate: the tests use the same one. */
const DEV_CERT_SCRIPT = resolve(__dirname, '..', '..', 'scripts', 'dev-cert.sh');

/**
 * Made by scripts/dev-cert.sh with `openssl` (Debian's), valid for a day, for 127.0.0.1, ::1,
 * localhost and `extraNames`: what the TLS tests and the Traefik suite
 * give TLS_CERT_FILE/TLS_KEY_FILE and trust as the CA.
 */
export function makeTestCertificates(extraNames: readonly string[] = []): TestCertificates {
  const directory = mkdtempSync(join(tmpdir(), 'bff-tls-'));
  execFileSync(DEV_CERT_SCRIPT, [directory, ...extraNames], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 30_000, env: { ...process.env, DEV_CERT_DAYS: '1' } });
  const file = (name: string) => join(directory, name);
  return {
    directory,
    caFile: file('ca.crt'),
    certFile: file('tls.crt'),
    keyFile: file('tls.key'),
    ca: readFileSync(file('ca.crt'), 'utf8'),
    remove: () => rmSync(directory, { recursive: true, force: true }),
  };
}
