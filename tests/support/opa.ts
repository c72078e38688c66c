import { ensureCachedGoBuild, TEST_SERVERS, testServerCacheDirectory } from './test-servers';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { answersWithStatus, RestartableServer, runToCompletion, startGuarded, type GuardedProcess } from './child-process';
import { withFreePort } from './ports';

/**
 * The OPA release the tests run, built from the Go module proxy. v1.22.2
 * builds with Go 1.26; a newer pin only needs this line changed (the cache
 * directory carries the version, so an old binary is never reused).
 */
export const OPA_VERSION = TEST_SERVERS.opa.version;
export const OPA_MODULE = TEST_SERVERS.opa.module;

const REPO_ROOT = resolve(__dirname, '..', '..');
/** The example policy directory; `startOpa()` serves its policy.rego. */
export const OPA_POLICY_DIR = join(REPO_ROOT, 'deploy', 'opa');
/** PDP_URL's path for the example policy (package bff, rule allow). */
export const OPA_DECISION_PATH = '/v1/data/bff/allow';

// A cold build downloads ~150 modules and compiles them: about 2 minutes on 2 cores, more on a busy CI machine.
const BUILD_TIMEOUT_MS = 20 * 60_000;
const READY_TIMEOUT_MS = 15_000;
const HEALTH_INTERVAL_MS = 50;
const HEALTH_TIMEOUT_MS = 500;
const OPA_TEST_TIMEOUT_MS = 60_000;
const OUTPUT_TAIL_CHARS = 4_000;

/** Where the pinned binary is kept between runs, outside the work tree. */
export function opaCacheDirectory(): string {
  return testServerCacheDirectory('opa', OPA_VERSION);
}

/** `OPA_BIN` when set, else the cached build of OPA_VERSION, built with `go install` when it is missing. */
export function ensureOpaBinary(): Promise<string> {
  return ensureCachedGoBuild({
    name: `opa ${OPA_VERSION}`,
    overrideVariable: 'OPA_BIN',
    directory: opaCacheDirectory(),
    binaryName: 'opa',
    goArgs: () => ['install', `${OPA_MODULE}@${OPA_VERSION}`],
    // Outside the work tree, so no go.mod or go.work of ours is consulted.
    cwd: tmpdir(),
    env: (outputDirectory) => ({ GOBIN: outputDirectory, GOFLAGS: '-mod=mod', CGO_ENABLED: '0' }),
    timeoutMs: BUILD_TIMEOUT_MS,
  });
}

/** A real `opa run --server` child process on a loopback port. */
export interface OpaServer {
  readonly port: number;
  /** `http://127.0.0.1:PORT` */
  readonly url: string;
  /** PDP_URL for the example policy: `http://127.0.0.1:PORT/v1/data/bff/allow`. */
  readonly decisionUrl: string;
  /** Kills OPA and resolves once it has exited. Idempotent. */
  stop(): Promise<void>;
  /** Starts OPA again on the same port, with the same files, after `stop()`. */
  restart(): Promise<void>;
  /** SIGSTOP: OPA hangs with its connections open and answers nothing. */
  pause(): void;
  resume(): void;
  /** Running and answering, whatever an earlier test did to it: started if stopped, resumed if paused. */
  ensureServing(): Promise<void>;
}

export interface StartOpaOptions {
  /** Policy and data files to serve; defaults to deploy/opa/policy.rego. */
  readonly files?: readonly string[];
}

/** Builds OPA when needed, starts it on a free 127.0.0.1 port and resolves once `/health` answers 200. */
export async function startOpa(options: StartOpaOptions = {}): Promise<OpaServer> {
  const binary = await ensureOpaBinary();
  const files = options.files ?? [join(OPA_POLICY_DIR, 'policy.rego')];
  return withFreePort(async (port) => {
    const opa = new OpaProcess(binary, port, files);
    await opa.start();
    return opa;
  });
}

class OpaProcess extends RestartableServer implements OpaServer {
  readonly url: string;
  readonly decisionUrl: string;

  constructor(
    private readonly binary: string,
    readonly port: number,
    private readonly files: readonly string[],
  ) {
    super(`opa on port ${port}`);
    this.url = `http://127.0.0.1:${port}`;
    this.decisionUrl = `${this.url}${OPA_DECISION_PATH}`;
  }

  protected spawn(): Promise<GuardedProcess> {
    return spawnOpa(this.binary, this.port, this.files);
  }
}

function spawnOpa(binary: string, port: number, files: readonly string[]): Promise<GuardedProcess> {
  const args = ['run', '--server', '--addr', `127.0.0.1:${port}`, '--log-level', 'error', '--skip-version-check', ...files];
  return startGuarded(binary, args, {
    name: `opa on 127.0.0.1:${port}`,
    readiness: 'answer /health',
    isReady: () => answersWithStatus(`http://127.0.0.1:${port}/health`, 200, HEALTH_TIMEOUT_MS),
    readyTimeoutMs: READY_TIMEOUT_MS,
    pollIntervalMs: HEALTH_INTERVAL_MS,
    outputLabel: 'opa',
    outputTailChars: OUTPUT_TAIL_CHARS,
  });
}

/** `opa test <paths> -v` from the repository root; resolves with the exit code and the output. */
export async function runOpaTests(paths: readonly string[] = [OPA_POLICY_DIR]): Promise<{ exitCode: number; output: string }> {
  const binary = await ensureOpaBinary();
  return run(binary, ['test', ...paths, '-v'], { cwd: REPO_ROOT, env: process.env, timeoutMs: OPA_TEST_TIMEOUT_MS });
}

/** Runs `command` to its end, rejecting when it cannot be run or outlives `timeoutMs`; the output is kept whole. */
async function run(
  command: string,
  args: readonly string[],
  options: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs: number },
): Promise<{ exitCode: number; output: string }> {
  const result = await runToCompletion(command, args, { ...options, outputTailChars: Number.POSITIVE_INFINITY });
  if (result.isTimedOut) {
    throw new Error(`${command} ${args.join(' ')} did not finish within ${options.timeoutMs} ms\n${result.output.slice(-OUTPUT_TAIL_CHARS)}`);
  }
  return { exitCode: result.exitCode ?? (result.signal ? 128 : 1), output: result.output };
}
