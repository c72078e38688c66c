import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A throwaway CA and a server certificate it signed, as PEM files in a temporary directory. */
export interface TestCertificates {
  readonly directory: string;
  readonly caFile: string;
  readonly certFile: string;
  readonly keyFile: string;
  readonly ca: string;
  remove(): void;
}

/**
 * Made with `openssl` (Debian's), valid for a day, for 127.0.0.1, ::1,
 * localhost and `extraNames`: what the TLS tests and the Traefik suite
 * give TLS_CERT_FILE/TLS_KEY_FILE and trust as the CA.
 */
export function makeTestCertificates(extraNames: readonly string[] = []): TestCertificates {
  const directory = mkdtempSync(join(tmpdir(), 'bff-tls-'));
  const file = (name: string) => join(directory, name);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 30_000 });
  const names = ['DNS:localhost', 'IP:127.0.0.1', 'IP:::1', ...extraNames.map((name) => `DNS:${name}`)];
  writeFileSync(file('server.ext'), `subjectAltName=${names.join(',')}\nextendedKeyUsage=serverAuth\n`);
  openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
    '-subj', '/CN=bff-gateway test CA', '-keyout', file('ca.key'), '-out', file('ca.crt'));
  openssl('req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-subj', '/CN=localhost', '-keyout', file('tls.key'), '-out', file('tls.csr'));
  openssl('x509', '-req', '-in', file('tls.csr'), '-CA', file('ca.crt'), '-CAkey', file('ca.key'), '-CAcreateserial',
    '-days', '1', '-extfile', file('server.ext'), '-out', file('tls.crt'));
  return {
    directory,
    caFile: file('ca.crt'),
    certFile: file('tls.crt'),
    keyFile: file('tls.key'),
    ca: readFileSync(file('ca.crt'), 'utf8'),
    remove: () => rmSync(directory, { recursive: true, force: true }),
  };
}
