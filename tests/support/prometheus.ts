import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { answersWithStatus, startGuarded, type GuardedProcess } from './child-process';
import { withFreePort } from './ports';
import { waitUntil } from './wait';

/** A throwaway Prometheus server (Debian's `prometheus`) scraping the given targets every second. */
export interface PrometheusServer {
  /** `http://127.0.0.1:PORT` */
  readonly url: string;
  readonly port: number;
  /** Instant query through /api/v1/query; rejects when Prometheus reports an error. */
  query(expr: string, time?: Date): Promise<PromVectorSample[]>;
  /** Range query through /api/v1/query_range; rejects when Prometheus reports an error. */
  queryRange(expr: string, start: Date, end: Date, stepSeconds: number): Promise<PromMatrixSeries[]>;
  /** Resolves once every scrape target reports `up` (bounded); rejects with the last scrape error otherwise. */
  waitForTargetUp(timeoutMs?: number): Promise<void>;
  /**
   * Resolves once Prometheus has scraped every target at least once after
   * this call started: what the gateway counted before it is then queryable.
   */
  waitForNextScrape(timeoutMs?: number): Promise<void>;
  /**
   * Resolves once every rule group has been evaluated after this call
   * started: the rules have then seen every scrape that came before it.
   */
  waitForNextRuleEvaluation(timeoutMs?: number): Promise<void>;
  /** The rule groups as /api/v1/rules reports them (health and last error per rule). */
  rules(): Promise<PromRuleGroup[]>;
  /** Kills the server, waits for it to exit and removes its storage. Idempotent. */
  stop(): Promise<void>;
}

export interface PromVectorSample {
  readonly metric: Record<string, string>;
  /** [unix seconds, value as Prometheus prints it ("NaN", "+Inf" included)] */
  readonly value: [number, string];
}

export interface PromMatrixSeries {
  readonly metric: Record<string, string>;
  readonly values: Array<[number, string]>;
}

export interface PromRule {
  readonly name: string;
  readonly type: 'recording' | 'alerting';
  readonly health: 'ok' | 'err' | 'unknown';
  readonly lastError?: string;
  readonly state?: 'inactive' | 'pending' | 'firing';
}

export interface PromRuleGroup {
  readonly name: string;
  readonly file: string;
  readonly rules: PromRule[];
  /** RFC 3339; Prometheus's zero time before the first evaluation. */
  readonly lastEvaluation: string;
}

export interface StartPrometheusOptions {
  /** `host:port` of each target, e.g. the gateway's `127.0.0.1:PORT`. */
  readonly targets: readonly string[];
  /** The `job` label; the dashboards and rules expect `bff-gateway`. */
  readonly job?: string;
  readonly metricsPath?: string;
  /** Absolute paths of rule files to load (recording and alerting rules). */
  readonly ruleFiles?: readonly string[];
  /** `host:port` of Alertmanagers to send firing alerts to. */
  readonly alertmanagers?: readonly string[];
}

export const PROMETHEUS_BINARY = process.env.PROMETHEUS_BIN ?? '/usr/bin/prometheus';
export const PROMTOOL_BINARY = process.env.PROMTOOL_BIN ?? '/usr/bin/promtool';

// Prometheus opens its TSDB and answers /-/ready within a second or two; the rest is CI margin.
const READY_TIMEOUT_MS = 20_000;
const POLL_INTERVAL_MS = 100;
const READY_PROBE_TIMEOUT_MS = 1_000;
const HTTP_TIMEOUT_MS = 5_000;
// One second, so a test sees its traffic in Prometheus within a couple of seconds.
const SCRAPE_INTERVAL = '1s';

/**
 * Starts our own Prometheus on a free loopback port with a temporary config
 * and storage directory. It never uses a system Prometheus (Debian's package
 * may run one on :9090): the tests must not depend on, or disturb, it.
 */
export async function startPrometheus(options: StartPrometheusOptions): Promise<PrometheusServer> {
  if (!existsSync(PROMETHEUS_BINARY)) {
    throw new Error(`${PROMETHEUS_BINARY} not found: install Debian's "prometheus" package (or set PROMETHEUS_BIN)`);
  }
  return withFreePort(async (port) => {
    const workDir = mkdtempSync(join(tmpdir(), 'bff-prometheus-'));
    try {
      const configFile = join(workDir, 'prometheus.yml');
      writeFileSync(configFile, prometheusConfig(options));
      const server = await spawnPrometheus(port, configFile, join(workDir, 'data'));
      return new PrometheusProcess(port, server, workDir);
    } catch (error) {
      rmSync(workDir, { recursive: true, force: true });
      throw error;
    }
  });
}

/** JSON is YAML: no YAML writer needed, and no quoting surprises in paths. */
function prometheusConfig(options: StartPrometheusOptions): string {
  return JSON.stringify(
    {
      global: { scrape_interval: SCRAPE_INTERVAL, evaluation_interval: SCRAPE_INTERVAL, scrape_timeout: SCRAPE_INTERVAL },
      rule_files: options.ruleFiles ?? [],
      alerting: { alertmanagers: options.alertmanagers ? [{ static_configs: [{ targets: options.alertmanagers }] }] : [] },
      scrape_configs: [
        {
          job_name: options.job ?? 'bff-gateway',
          metrics_path: options.metricsPath ?? '/metrics',
          static_configs: [{ targets: options.targets }],
        },
      ],
    },
    null,
    2,
  );
}

function spawnPrometheus(port: number, configFile: string, dataDir: string): Promise<GuardedProcess> {
  const args = [
    `--config.file=${configFile}`,
    `--storage.tsdb.path=${dataDir}`,
    `--web.listen-address=127.0.0.1:${port}`,
    '--storage.tsdb.retention.time=1h',
    '--log.level=warn',
  ];
  return startGuarded(PROMETHEUS_BINARY, args, {
    name: `prometheus on 127.0.0.1:${port}`,
    readiness: 'answer /-/ready',
    isReady: () => answersWithStatus(`http://127.0.0.1:${port}/-/ready`, 200, READY_PROBE_TIMEOUT_MS),
    readyTimeoutMs: READY_TIMEOUT_MS,
    pollIntervalMs: POLL_INTERVAL_MS,
    outputLabel: 'prometheus',
  });
}

interface ApiAnswer<T> {
  status: 'success' | 'error';
  data: T;
  errorType?: string;
  error?: string;
}

interface ActiveTarget {
  health: 'up' | 'down' | 'unknown';
  lastError: string;
  lastScrape: string;
  scrapeUrl: string;
}

class PrometheusProcess implements PrometheusServer {
  readonly url: string;

  constructor(
    readonly port: number,
    private readonly server: GuardedProcess,
    private readonly workDir: string,
  ) {
    this.url = `http://127.0.0.1:${port}`;
  }

  async query(expr: string, time?: Date): Promise<PromVectorSample[]> {
    const params = new URLSearchParams({ query: expr });
    if (time) params.set('time', String(time.getTime() / 1000));
    const data = await this.api<{ resultType: string; result: PromVectorSample[] }>('/api/v1/query', params);
    if (data.resultType !== 'vector') throw new Error(`expected a vector from ${expr}, got ${data.resultType}`);
    return data.result;
  }

  async queryRange(expr: string, start: Date, end: Date, stepSeconds: number): Promise<PromMatrixSeries[]> {
    const params = new URLSearchParams({
      query: expr,
      start: String(start.getTime() / 1000),
      end: String(end.getTime() / 1000),
      step: String(stepSeconds),
    });
    const data = await this.api<{ resultType: string; result: PromMatrixSeries[] }>('/api/v1/query_range', params);
    return data.result;
  }

  async waitForTargetUp(timeoutMs = 15_000): Promise<void> {
    let targets: ActiveTarget[] = [];
    await waitUntil(
      async () => {
        targets = await this.activeTargets();
        return targets.length > 0 && targets.every((target) => target.health === 'up');
      },
      {
        timeoutMs,
        intervalMs: POLL_INTERVAL_MS,
        timeoutMessage: () => {
          const report = targets.map((target) => `${target.scrapeUrl}: ${target.health} ${target.lastError}`).join('; ');
          return `scrape targets not up within ${timeoutMs} ms: ${report || 'no targets'}`;
        },
      },
    );
  }

  async waitForNextScrape(timeoutMs = 10_000): Promise<void> {
    const since = Date.now();
    await waitUntil(
      async () => {
        const targets = await this.activeTargets();
        // lastScrape is when the scrape started: strictly after `since` means it read the counters as they are now.
        return targets.length > 0 && targets.every((target) => Date.parse(target.lastScrape) > since && target.health === 'up');
      },
      { timeoutMs, intervalMs: POLL_INTERVAL_MS, timeoutMessage: `no complete scrape of every target within ${timeoutMs} ms` },
    );
  }

  async waitForNextRuleEvaluation(timeoutMs = 10_000): Promise<void> {
    const since = Date.now();
    await waitUntil(
      async () => {
        const groups = await this.rules();
        return groups.length > 0 && groups.every((group) => Date.parse(group.lastEvaluation) > since);
      },
      { timeoutMs, intervalMs: POLL_INTERVAL_MS, timeoutMessage: `not every rule group was evaluated within ${timeoutMs} ms` },
    );
  }

  async rules(): Promise<PromRuleGroup[]> {
    const data = await this.api<{ groups: PromRuleGroup[] }>('/api/v1/rules', new URLSearchParams());
    return data.groups;
  }

  async stop(): Promise<void> {
    await this.server.stop();
    rmSync(this.workDir, { recursive: true, force: true });
  }

  private async activeTargets(): Promise<ActiveTarget[]> {
    const data = await this.api<{ activeTargets: ActiveTarget[] }>('/api/v1/targets', new URLSearchParams({ state: 'active' }));
    return data.activeTargets;
  }

  private async api<T>(path: string, params: URLSearchParams): Promise<T> {
    const response = await fetch(`${this.url}${path}?${params.toString()}`, { signal: AbortSignal.timeout(HTTP_TIMEOUT_MS) });
    const answer = (await response.json()) as ApiAnswer<T>;
    if (answer.status !== 'success') {
      throw new Error(`prometheus ${path} ${params.get('query') ?? ''}: ${answer.errorType ?? response.status}: ${answer.error ?? 'no detail'}`);
    }
    return answer.data;
  }
}
