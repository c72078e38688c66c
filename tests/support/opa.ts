import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { delimiter, isAbsolute, join, resolve } from 'node:path';
import { getFreePort } from './ports';

/**
 * The OPA release the tests run, built from the Go module proxy. v1.22.2
 * builds with Go 1.26; a newer pin only needs this line changed (the cache
 * directory carries the version, so an old binary is never reused).
 */
export const OPA_VERSION = 'v1.22.2';
export const OPA_MODULE = 'github.com/open-policy-agent/opa';

const REPO_ROOT = resolve(__dirname, '..', '..');
/** The example policy directory; `startOpa()` serves its policy.rego. */
export const OPA_POLICY_DIR = join(REPO_ROOT, 'deploy', 'opa');
/** PDP_URL's path for the example policy (package bff, rule allow). */
export const OPA_DECISION_PATH = '/v1/data/bff/allow';

// A cold build downloads ~150 modules and compiles them: about 2 minutes on 2 cores, more on a busy CI machine.
const BUILD_TIMEOUT_MS = 20 * 60_000;
const READY_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 5_000;
const HEALTH_INTERVAL_MS = 50;
const HEALTH_TIMEOUT_MS = 500;
const OPA_TEST_TIMEOUT_MS = 60_000;
const START_ATTEMPTS = 3;
const OUTPUT_TAIL_CHARS = 4_000;
// See redis.ts: setpriv execs OPA with PR_SET_PDEATHSIG, so it dies with its Jest worker.
const SETPRIV_BINARY = '/usr/bin/setpriv';

/** Where the pinned binary is kept between runs, outside the work tree. */
export function opaCacheDirectory(): string {
  const cacheHome = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return join(cacheHome, 'bff-gateway', `opa-${OPA_VERSION}`);
}

let binaryPromise: Promise<string> | undefined;

/**
 * The path of the `opa` binary: `OPA_BIN` when set, else the cached build of
 * OPA_VERSION, built once with `go install` when it is missing. Concurrent
 * builders (two Jest workers) each build into their own directory and rename
 * into place, so nobody ever runs a half-written binary.
 */
export function ensureOpaBinary(): Promise<string> {
  binaryPromise ??= locateOrBuildOpa();
  return binaryPromise;
}

async function locateOrBuildOpa(): Promise<string> {
  const override = process.env.OPA_BIN;
  if (override) {
    if (!isExecutable(override)) throw new Error(`OPA_BIN=${override} is not an executable file`);
    return override;
  }
  const directory = opaCacheDirectory();
  const binary = join(directory, 'opa');
  if (isExecutable(binary)) return binary;

  const go = findGo();
  if (!go) throw new Error(`opa ${OPA_VERSION} is not built yet and no \`go\` toolchain was found (PATH, /usr/local/go/bin): install Go or set OPA_BIN`);
  mkdirSync(directory, { recursive: true });
  const staging = mkdtempSync(join(directory, 'build-'));
  try {
    const started = Date.now();
    const result = await run(go, ['install', `${OPA_MODULE}@${OPA_VERSION}`], {
      // Outside the work tree, so no go.mod or go.work of ours is consulted.
      cwd: tmpdir(),
      env: { ...process.env, GOBIN: staging, GOFLAGS: '-mod=mod', CGO_ENABLED: '0' },
      timeoutMs: BUILD_TIMEOUT_MS,
    });
    if (result.exitCode !== 0) {
      throw new Error(`go install ${OPA_MODULE}@${OPA_VERSION} failed (exit ${result.exitCode}):\n${result.output}`);
    }
    renameSync(join(staging, 'opa'), binary);
    process.stderr.write(`[tests/support/opa] built opa ${OPA_VERSION} into ${directory} in ${Math.round((Date.now() - started) / 1000)} s\n`);
    return binary;
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

function findGo(): string | undefined {
  const candidates = [process.env.GO_BIN, ...(process.env.PATH ?? '').split(delimiter).filter(isAbsolute).map((dir) => join(dir, 'go')), '/usr/local/go/bin/go'];
  return candidates.find((candidate): candidate is string => candidate !== undefined && isExecutable(candidate));
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
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
}

export interface StartOpaOptions {
  /** Policy and data files to serve; defaults to deploy/opa/policy.rego. */
  readonly files?: readonly string[];
}

const liveChildren = new Set<ChildProcess>();
let isExitHookRegistered = false;

function registerExitHook(): void {
  if (isExitHookRegistered) return;
  isExitHookRegistered = true;
  process.on('exit', () => {
    for (const child of liveChildren) child.kill('SIGKILL');
  });
}

/** Builds OPA when needed, starts it on a free 127.0.0.1 port and resolves once `/health` answers 200. */
export async function startOpa(options: StartOpaOptions = {}): Promise<OpaServer> {
  const binary = await ensureOpaBinary();
  registerExitHook();
  const files = options.files ?? [join(OPA_POLICY_DIR, 'policy.rego')];
  let lastError: unknown;
  for (let attempt = 0; attempt < START_ATTEMPTS; attempt++) {
    const port = await getFreePort();
    try {
      const child = await spawnOpa(binary, port, files);
      return new OpaProcess(binary, port, files, child);
    } catch (error) {
      lastError = error;
      if (!(error instanceof OpaStartError) || !error.isPortInUse) throw error;
    }
  }
  throw lastError;
}

class OpaStartError extends Error {
  constructor(
    message: string,
    readonly isPortInUse: boolean,
  ) {
    super(message);
    this.name = 'OpaStartError';
  }
}

class OpaProcess implements OpaServer {
  readonly url: string;
  readonly decisionUrl: string;
  private child: ChildProcess | undefined;

  constructor(
    private readonly binary: string,
    readonly port: number,
    private readonly files: readonly string[],
    child: ChildProcess,
  ) {
    this.url = `http://127.0.0.1:${port}`;
    this.decisionUrl = `${this.url}${OPA_DECISION_PATH}`;
    this.child = child;
  }

  async stop(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (child) await killAndWait(child);
  }

  async restart(): Promise<void> {
    if (this.child) throw new Error(`opa on port ${this.port} is still running; stop() it first`);
    this.child = await spawnOpa(this.binary, this.port, this.files);
  }

  pause(): void {
    this.child?.kill('SIGSTOP');
  }

  resume(): void {
    this.child?.kill('SIGCONT');
  }
}

function spawnOpa(binary: string, port: number, files: readonly string[]): Promise<ChildProcess> {
  const args = ['run', '--server', '--addr', `127.0.0.1:${port}`, '--log-level', 'error', '--skip-version-check', ...files];
  const child = existsSync(SETPRIV_BINARY)
    ? spawn(SETPRIV_BINARY, ['--pdeathsig', 'KILL', binary, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  liveChildren.add(child);
  child.once('exit', () => liveChildren.delete(child));
  let output = '';
  const collect = (chunk: Buffer): void => {
    output = (output + chunk.toString('utf8')).slice(-OUTPUT_TAIL_CHARS);
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);

  return new Promise((resolvePromise, reject) => {
    let isSettled = false;
    const fail = (message: string): void => {
      if (isSettled) return;
      isSettled = true;
      clearTimeout(deadline);
      void killAndWait(child).finally(() => {
        reject(new OpaStartError(`${message}\n--- opa output ---\n${output}`, /address already in use/i.test(output)));
      });
    };
    const deadline = setTimeout(() => fail(`opa on 127.0.0.1:${port} did not answer /health within ${READY_TIMEOUT_MS} ms`), READY_TIMEOUT_MS);
    child.once('error', (error) => fail(`could not run ${binary}: ${error.message}`));
    child.once('exit', (code, signal) => fail(`opa on 127.0.0.1:${port} exited during start-up (code ${code}, signal ${signal})`));
    const poll = async (): Promise<void> => {
      while (!isSettled) {
        const status = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(HEALTH_TIMEOUT_MS) })
          .then((response) => response.status)
          .catch(() => 0);
        if (status === 200 && !isSettled) {
          isSettled = true;
          clearTimeout(deadline);
          resolvePromise(child);
          return;
        }
        await new Promise((wake) => setTimeout(wake, HEALTH_INTERVAL_MS));
      }
    };
    void poll();
  });
}

async function killAndWait(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolvePromise) => child.once('exit', () => resolvePromise()));
  child.kill('SIGCONT'); // a paused OPA cannot act on SIGTERM
  child.kill('SIGTERM');
  const escalation = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
  try {
    await exited;
  } finally {
    clearTimeout(escalation);
  }
}

/** `opa test <paths> -v` from the repository root; resolves with the exit code and the output. */
export async function runOpaTests(paths: readonly string[] = [OPA_POLICY_DIR]): Promise<{ exitCode: number; output: string }> {
  const binary = await ensureOpaBinary();
  return run(binary, ['test', ...paths, '-v'], { cwd: REPO_ROOT, env: process.env, timeoutMs: OPA_TEST_TIMEOUT_MS });
}

function run(
  command: string,
  args: readonly string[],
  options: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs: number },
): Promise<{ exitCode: number; output: string }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, { cwd: options.cwd, env: options.env, stdio: ['ignore', 'pipe', 'pipe'] });
    liveChildren.add(child);
    let output = '';
    const collect = (chunk: Buffer): void => {
      output += chunk.toString('utf8');
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    const deadline = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${command} ${args.join(' ')} did not finish within ${options.timeoutMs} ms\n${output.slice(-OUTPUT_TAIL_CHARS)}`));
    }, options.timeoutMs);
    child.once('error', (error) => {
      clearTimeout(deadline);
      reject(new Error(`could not run ${command}: ${error.message}`));
    });
    child.once('close', (code, signal) => {
      clearTimeout(deadline);
      liveChildren.delete(child);
      resolvePromise({ exitCode: code ?? (signal ? 128 : 1), output });
    });
  });
}
