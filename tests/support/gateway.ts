import type { AddressInfo, Server as NetServer } from 'node:net';
import pino from 'pino';
import { get as httpGet } from 'node:http';
import { get as httpsGet } from 'node:https';
import { buildRequestListener } from '../../src/app';
import { createGatewayServer } from '../../src/http/server';
import { composeGateway, type Gateway } from '../../src/composition-root';
import type { Config } from '../../src/config/config';
import { loadConfig } from '../../src/config/load-config';
import type { Clock } from '../../src/shared/clock';
import { GatewayMetrics } from '../../src/telemetry/metrics';
import { reservePort, type ReservedPort } from './ports';
import { waitUntil, withTimeout } from './wait';

/** Canonical test values. */
export const TEST_SESSION_SECRET = 'test-session-secret-0123456789abcdefghijkl';

/** A clock the test can move forward; real time plus an offset. */
export class MovableClock implements Clock {
  private offsetMs = 0;
  now(): number {
    return Date.now() + this.offsetMs;
  }
  advance(ms: number): void {
    this.offsetMs += ms;
  }
}

export interface RunningGateway {
  readonly url: string;
  readonly port: number;
  readonly config: Config;
  readonly gateway: Gateway;
  readonly metrics: GatewayMetrics;
  metricsText(): Promise<string>;
  close(): Promise<void>;
}

export interface StartGatewayOptions {
  /** SPEC section 2 variables; PORT and PUBLIC_URL default to the reserved port. */
  readonly env: Record<string, string>;
  readonly clock?: Clock;
  readonly refreshLeaseMs?: number;
  /**
   * The port to listen on, reserved by `reservePort` when its URL had to be
   * known before (the IdP's redirect URI); a port of its own by default. It is
   * released if the gateway cannot start.
   */
  readonly port?: ReservedPort;
  /** Where the gateway logs (security events too, without Kafka); silent unless TEST_LOG_LEVEL says otherwise. */
  readonly logger?: pino.Logger;
}

/**
 * A gateway built the way main.ts builds it (loadConfig -> composeGateway ->
 * buildRequestListener), listening on loopback; waits until the IdP metadata is loaded.
 */
export async function startGateway(options: StartGatewayOptions): Promise<RunningGateway> {
  const reserved = options.port ?? (await reservePort());
  let config: Config;
  try {
    config = loadConfig({ PORT: String(reserved.port), PUBLIC_URL: `http://127.0.0.1:${reserved.port}`, ...options.env });
  } catch (error) {
    await reserved.release();
    throw error;
  }
  const logger = options.logger ?? pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
  const metrics = new GatewayMetrics({ collectProcessMetrics: false, maxUserIdLabels: config.telemetry.userLabelLimit });
  const gateway = composeGateway(config, logger, { clock: options.clock, metrics, refreshLeaseMs: options.refreshLeaseMs });
  const server = createGatewayServer(buildRequestListener(gateway.dependencies), config.server.tls);
  const close = async (): Promise<void> => {
    await server.drain(0);
    await gateway.close();
  };
  // The reserved socket is handed over rather than the port bound anew (GatewayServer.listen would bind
  // config.server.port), so no other process can take the port between choosing and listening.
  await reserved.handOver(server.server as NetServer);
  const address = server.server.address() as AddressInfo;
  const url = `${server.isTls ? 'https' : 'http'}://127.0.0.1:${address.port}`;
  try {
    const frontends = gateway.dependencies.frontends.all;
    await withTimeout(Promise.all(frontends.map((frontend) => frontend.whenReady())), 10_000, 'IdP discovery did not finish in 10 s');
    await waitUntilReady(url);
  } catch (error) {
    await close().catch(() => undefined);
    throw error;
  }
  return {
    url,
    port: address.port,
    config,
    gateway,
    metrics,
    metricsText: () => metrics.registry.metrics(),
    close,
  };
}

/** As an orchestrator would: traffic only once /ready says the store and the IdP answer (a cluster client needs a moment). */
async function waitUntilReady(url: string): Promise<void> {
  let last = 0;
  await waitUntil(
    async () => {
      last = await statusOf(`${url}/ready`);
      return last === 200;
    },
    { timeoutMs: 10_000, intervalMs: 100, timeoutMessage: () => `${url}/ready did not answer 200 within 10 s (last answer: ${last})` },
  );
}

/** Over TLS the test certificate is not checked here: this only asks whether the gateway is ready. */
function statusOf(url: string): Promise<number> {
  const get = url.startsWith('https:') ? httpsGet : httpGet;
  return new Promise((resolve) => {
    const request = get(url, { rejectUnauthorized: false, timeout: 2000 }, (response) => {
      response.resume();
      resolve(response.statusCode ?? 0);
    });
    request.on('timeout', () => request.destroy());
    request.on('error', () => resolve(0));
  });
}

/** Sample value of a metric line, e.g. metricValue(text, 'bff_sessions_created_total'). */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number {
  const wanted = Object.entries(labels).map(([key, value]) => `${key}="${value}"`);
  let total = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (wanted.every((pair) => line.includes(pair))) total += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return total;
}
