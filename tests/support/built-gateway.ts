import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { answersWithStatus, ProcessStartError, withDeathSignal } from './child-process';
import { withFreePort } from './ports';
import { waitUntil } from './wait';

/** The compiled entry point, as `npm start` and the image run it. */
export const BUILT_MAIN = join(__dirname, '..', '..', 'dist', 'main.js');

const START_TIMEOUT_MS = 20_000;

/** `node dist/main.js` in its own process, with its stdout and stderr kept whole (tests read every line). */
export interface BuiltGateway {
  readonly child: ChildProcess;
  /** `http://127.0.0.1:PORT`: also its PUBLIC_URL unless the variables said otherwise. */
  readonly url: string;
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit code once the process has exited. */
  readonly exited: Promise<number | null>;
}

/**
 * Starts the built gateway on a free port, once it listens. The process binds
 * PORT itself, so the port is chosen a moment before; when another process
 * took it first the gateway exits with EADDRINUSE and the start is tried again
 * on another port, `variablesFor` (which may start what needs the URL first,
 * an IdP with its redirect URI) included.
 */
export function startBuiltGateway(variablesFor: (url: string) => Promise<Record<string, string>> | Record<string, string>): Promise<BuiltGateway> {
  if (!existsSync(BUILT_MAIN)) throw new Error(`${BUILT_MAIN} is missing: run "npm run build" first (npm test does)`);
  return withFreePort(async (port) => {
    const url = `http://127.0.0.1:${port}`;
    const [command, args] = withDeathSignal(process.execPath, [BUILT_MAIN]);
    const child = spawn(command, args, { env: { PATH: process.env.PATH ?? '', PORT: String(port), PUBLIC_URL: url, ...(await variablesFor(url)) }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    let hasExited = false;
    void exited.then(() => (hasExited = true));
    try {
      await waitUntil(async () => hasExited || (await answersWithStatus(`${url}/health`, 200, 1_000)), {
        timeoutMs: START_TIMEOUT_MS,
        intervalMs: 100,
        timeoutMessage: () => `the built gateway on ${url} did not answer /health within ${START_TIMEOUT_MS} ms:\n${stdout}\n${stderr}`,
      });
    } catch (error) {
      child.kill('SIGKILL');
      throw error;
    }
    if (hasExited) throw new ProcessStartError(`the built gateway on ${url} exited during start-up:\n${stdout}\n${stderr}`, /address already in use/i.test(stdout + stderr));
    return { child, url, stdout: () => stdout, stderr: () => stderr, exited };
  });
}
