// The test IdP (tests/support/idp/test-idp.mts: oidc-provider 9 in its own process), started the
// way tests/support/idp.ts starts it: Node 24's type stripping, TEST_IDP_CONFIG, `READY <issuer>`.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { freePort, REPO, track } from '../support.mjs';

const IDP_SCRIPT = join(REPO, 'tests', 'support', 'idp', 'test-idp.mts');
const READY_TIMEOUT_MS = 20_000;

/** The script runs on type stripping, which needs Node 24: this Node, or the `node` dev dependency's. */
function nodeBinary() {
  return Number(process.versions.node.split('.')[0]) >= 24 ? process.execPath : join(REPO, 'node_modules', '.bin', 'node');
}

/**
 * Starts the IdP with `clients` (oidc-provider client metadata: client_id, client_secret,
 * redirect_uris, post_logout_redirect_uris). The issuer is http://localhost:PORT, as in the tests.
 */
export async function startTestIdp({ clients, accessTokenTtlSeconds }) {
  const port = await freePort();
  const issuer = `http://localhost:${port}`;
  const env = { ...process.env, TEST_IDP_CONFIG: JSON.stringify({ port, issuer, clients, accessTokenTtlSeconds }) };
  delete env.NODE_OPTIONS;
  // stdin stays open: the IdP exits by itself when its end closes, even if this process is SIGKILLed.
  const child = track(spawn(nodeBinary(), ['--disable-warning=ExperimentalWarning', IDP_SCRIPT], { cwd: REPO, env, stdio: ['pipe', 'pipe', 'pipe'] }));
  let output = '';
  child.stdout.on('data', (chunk) => (output += chunk));
  child.stderr.on('data', (chunk) => (output += chunk));
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`test IdP did not print READY within ${READY_TIMEOUT_MS / 1000} s: ${output.trim()}`)), READY_TIMEOUT_MS);
    const onData = () => {
      if (output.split('\n').some((line) => line.trim() === `READY ${issuer}`)) {
        clearTimeout(timer);
        child.stdout.off('data', onData);
        resolve();
      }
    };
    child.stdout.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`test IdP exited with ${code}: ${output.trim()}`));
    });
  });
  return { issuer, port, child, stop: () => child.kill('SIGKILL') };
}
