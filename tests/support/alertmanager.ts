import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { answersWithStatus, startGuarded, type GuardedProcess } from './child-process';
import { withFreePort } from './ports';

/** Debian's `prometheus-alertmanager` package: the server and amtool. */
export const ALERTMANAGER_BINARY = process.env.ALERTMANAGER_BIN ?? '/usr/bin/prometheus-alertmanager';
export const AMTOOL_BINARY = process.env.AMTOOL_BIN ?? '/usr/bin/amtool';

// Alertmanager reads its configuration and answers /-/ready within a second; the rest is CI margin.
const READY_TIMEOUT_MS = 20_000;
const POLL_INTERVAL_MS = 100;
const PROBE_TIMEOUT_MS = 1_000;
const HTTP_TIMEOUT_MS = 5_000;

/** An alert as Alertmanager's API v2 lists it. */
export interface AlertmanagerAlert {
  readonly labels: Record<string, string>;
  readonly annotations: Record<string, string>;
  readonly status: { readonly state: 'active' | 'suppressed' | 'unprocessed'; readonly inhibitedBy: string[]; readonly silencedBy: string[] };
  readonly receivers: Array<{ readonly name: string }>;
}

/** A throwaway Alertmanager on a loopback port, clustering off. */
export interface AlertmanagerServer {
  /** `http://127.0.0.1:PORT` */
  readonly url: string;
  /** `127.0.0.1:PORT`, as Prometheus's alerting targets want it. */
  readonly address: string;
  /** POST /api/v2/alerts: what Prometheus does for each firing alert. */
  postAlerts(alerts: ReadonlyArray<{ labels: Record<string, string>; annotations?: Record<string, string> }>): Promise<void>;
  /** GET /api/v2/alerts: every alert it holds, suppressed ones included. */
  alerts(): Promise<AlertmanagerAlert[]>;
  output(): string;
  /** Kills it, waits for it to exit and removes its directory. Idempotent. */
  stop(): Promise<void>;
}

/** Starts Alertmanager with `config` (the YAML text) and resolves once /-/ready answers 200. */
export async function startAlertmanager(config: string): Promise<AlertmanagerServer> {
  if (!existsSync(ALERTMANAGER_BINARY)) {
    throw new Error(`${ALERTMANAGER_BINARY} not found: install Debian's "prometheus-alertmanager" package (or set ALERTMANAGER_BIN)`);
  }
  return withFreePort(async (port) => {
    const workDir = mkdtempSync(join(tmpdir(), 'bff-alertmanager-'));
    try {
      const configFile = join(workDir, 'alertmanager.yml');
      writeFileSync(configFile, config);
      const url = `http://127.0.0.1:${port}`;
      const server = await startGuarded(
        ALERTMANAGER_BINARY,
        [
          `--config.file=${configFile}`,
          `--storage.path=${join(workDir, 'data')}`,
          `--web.listen-address=127.0.0.1:${port}`,
          // Empty: no gossip port (the default 9094 would clash between parallel runs).
          '--cluster.listen-address=',
          '--log.level=warn',
        ],
        {
          name: `alertmanager on ${url}`,
          readiness: 'answer /-/ready',
          isReady: () => answersWithStatus(`${url}/-/ready`, 200, PROBE_TIMEOUT_MS),
          readyTimeoutMs: READY_TIMEOUT_MS,
          pollIntervalMs: POLL_INTERVAL_MS,
          outputLabel: 'alertmanager',
        },
      );
      return new AlertmanagerProcess(url, port, server, workDir);
    } catch (error) {
      rmSync(workDir, { recursive: true, force: true });
      throw error;
    }
  });
}

class AlertmanagerProcess implements AlertmanagerServer {
  readonly address: string;

  constructor(
    readonly url: string,
    port: number,
    private readonly server: GuardedProcess,
    private readonly workDir: string,
  ) {
    this.address = `127.0.0.1:${port}`;
  }

  async postAlerts(alerts: ReadonlyArray<{ labels: Record<string, string>; annotations?: Record<string, string> }>): Promise<void> {
    const response = await fetch(`${this.url}/api/v2/alerts`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(alerts),
      signal: AbortSignal.timeout(HTTP_TIMEOUT_MS),
    });
    if (response.status !== 200) throw new Error(`alertmanager POST /api/v2/alerts: ${response.status} ${await response.text()}`);
  }

  async alerts(): Promise<AlertmanagerAlert[]> {
    const response = await fetch(`${this.url}/api/v2/alerts`, { signal: AbortSignal.timeout(HTTP_TIMEOUT_MS) });
    if (response.status !== 200) throw new Error(`alertmanager GET /api/v2/alerts: ${response.status} ${await response.text()}`);
    return (await response.json()) as AlertmanagerAlert[];
  }

  output(): string {
    return this.server.output();
  }

  async stop(): Promise<void> {
    await this.server.stop();
    rmSync(this.workDir, { recursive: true, force: true });
  }
}

/** Alertmanager's webhook payload (version 4), as far as the tests read it. */
export interface WebhookNotification {
  /** The request path: which receiver URL Alertmanager called. */
  readonly path: string;
  readonly receiver: string;
  readonly status: 'firing' | 'resolved';
  readonly groupLabels: Record<string, string>;
  readonly commonLabels: Record<string, string>;
  readonly commonAnnotations: Record<string, string>;
  readonly alerts: Array<{ readonly status: string; readonly labels: Record<string, string>; readonly annotations: Record<string, string> }>;
}

/** An HTTP server on a loopback port that records every notification Alertmanager posts to it. */
export interface WebhookReceiver {
  /** `http://127.0.0.1:PORT` */
  readonly origin: string;
  readonly notifications: WebhookNotification[];
  close(): Promise<void>;
}

export async function startWebhookReceiver(): Promise<WebhookReceiver> {
  const notifications: WebhookNotification[] = [];
  const server: Server = createServer((request, response) => {
    let body = '';
    request.setEncoding('utf8');
    request.on('data', (chunk: string) => (body += chunk));
    request.on('end', () => {
      try {
        notifications.push({ ...(JSON.parse(body) as Omit<WebhookNotification, 'path'>), path: request.url ?? '' });
        response.writeHead(200).end();
      } catch {
        response.writeHead(400).end();
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    notifications,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Alertmanager keeps its webhook connections alive: without this, close() would wait for them.
        server.closeAllConnections();
      }),
  };
}
