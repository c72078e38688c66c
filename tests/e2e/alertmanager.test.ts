import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { AMTOOL_BINARY, startAlertmanager, startWebhookReceiver, type AlertmanagerServer, type WebhookNotification, type WebhookReceiver } from '../support/alertmanager';
import { forwarded, logIn, startTestEnvironment, type TestEnvironment } from '../support/environment';
import { startPrometheus, type PrometheusServer } from '../support/prometheus';
import { waitUntil } from '../support/wait';

const REPO_ROOT = resolve(__dirname, '..', '..');
const SHIPPED_CONFIG = join(REPO_ROOT, 'deploy', 'alertmanager', 'alertmanager.yml');
const RULES_DIR = join(REPO_ROOT, 'deploy', 'prometheus', 'rules');
const RULE_FILES = readdirSync(RULES_DIR).filter((name) => name.endsWith('.yml')).map((name) => join(RULES_DIR, name));
/** The shipped receivers' origin (the docker-compose stand-in); the end-to-end test swaps in its own webhook. */
const SHIPPED_WEBHOOK_ORIGIN = 'http://alert-webhook:8080';
const AMTOOL_TIMEOUT_MS = 30_000;
const run = promisify(execFile);

// Scrapes and rule evaluations run every second, the critical route waits 10 s to group: about 15 s in all.
const ALERT_DELIVERY_TIMEOUT_MS = 90_000;
const TRAFFIC_INTERVAL_MS = 200;

interface AlertingRule {
  alert: string;
  labels?: Record<string, string>;
}

function alertingRules(): AlertingRule[] {
  return RULE_FILES.flatMap((file) => {
    const content = parse(readFileSync(file, 'utf8')) as { groups: Array<{ rules: Array<Partial<AlertingRule>> }> };
    return content.groups.flatMap((group) => group.rules.filter((rule): rule is AlertingRule => typeof rule.alert === 'string'));
  });
}

/** amtool's stdout; it warns on stderr, which a failed run reports too. */
async function amtool(...args: string[]): Promise<string> {
  try {
    const { stdout } = await run(AMTOOL_BINARY, args, { timeout: AMTOOL_TIMEOUT_MS });
    return stdout;
  } catch (error) {
    const failure = error as Error & { stdout?: string; stderr?: string };
    throw new Error(`amtool ${args.join(' ')} failed:\n${failure.stdout ?? ''}${failure.stderr ?? failure.message}`);
  }
}

/** The shipped routing tree and inhibitions, its receivers pointed at `origin`. */
function shippedConfigSendingTo(origin: string): string {
  const shipped = readFileSync(SHIPPED_CONFIG, 'utf8');
  if (!shipped.includes(SHIPPED_WEBHOOK_ORIGIN)) throw new Error(`${SHIPPED_CONFIG} no longer sends to ${SHIPPED_WEBHOOK_ORIGIN}: update this test`);
  return shipped.replaceAll(SHIPPED_WEBHOOK_ORIGIN, origin);
}

describe('deploy/alertmanager/alertmanager.yml', () => {
  it('amtool accepts it', async () => {
    const output = await amtool('check-config', SHIPPED_CONFIG);
    expect(output).toContain('SUCCESS');
  });

  it('routes every alert of the rules by its severity: critical pages on-call, warning opens a ticket', async () => {
    const expected = { critical: 'oncall-page', warning: 'ops-ticket' } as const;
    const routed: string[] = [];
    const wanted: string[] = [];
    for (const rule of alertingRules()) {
      const severity = rule.labels?.severity as keyof typeof expected;
      const labels = Object.entries({ ...rule.labels, alertname: rule.alert, job: 'bff-gateway' }).map(([name, value]) => `${name}=${value}`);
      const receiver = (await amtool('config', 'routes', 'test', `--config.file=${SHIPPED_CONFIG}`, ...labels)).trim();
      routed.push(`${rule.alert} (${severity}) -> ${receiver}`);
      wanted.push(`${rule.alert} (${severity}) -> ${expected[severity]}`);
    }
    expect(routed).toEqual(wanted);
  });

  describe('run by a real Alertmanager', () => {
    let alertmanager: AlertmanagerServer;
    let webhook: WebhookReceiver;

    beforeAll(async () => {
      webhook = await startWebhookReceiver();
      alertmanager = await startAlertmanager(shippedConfigSendingTo(webhook.origin));
    });

    afterAll(async () => {
      await alertmanager?.stop();
      await webhook?.close();
    });

    it('holds back the warning of an alert while the same alert fires as critical for the same replica', async () => {
      const labels = { alertname: 'BffTlsCertificateExpiringSoon', job: 'bff-gateway', instance: 'bff-inhibit-test:8443' };
      const otherReplica = { ...labels, instance: 'bff-other:8443', severity: 'warning' };
      await alertmanager.postAlerts([{ labels: { ...labels, severity: 'critical' } }, { labels: { ...labels, severity: 'warning' } }, { labels: otherReplica }]);

      let states: Record<string, string> = {};
      await waitUntil(
        async () => {
          const alerts = (await alertmanager.alerts()).filter((alert) => alert.labels.alertname === labels.alertname);
          states = Object.fromEntries(alerts.map((alert) => [`${alert.labels.instance} ${alert.labels.severity}`, alert.status.state]));
          // Inhibition is decided once the alerts have been processed.
          return alerts.length === 3 && alerts.every((alert) => alert.status.state !== 'unprocessed');
        },
        { timeoutMs: 10_000, intervalMs: 100, timeoutMessage: () => `alerts not processed in 10 s: ${JSON.stringify(states)}` },
      );
      expect(states).toEqual({
        'bff-inhibit-test:8443 critical': 'active',
        'bff-inhibit-test:8443 warning': 'suppressed',
        'bff-other:8443 warning': 'active',
      });
    });

    describe('behind a real Prometheus evaluating the repository rules against a gateway whose Redis is gone', () => {
      let env: TestEnvironment;
      let prometheus: PrometheusServer;

      beforeAll(async () => {
        env = await startTestEnvironment({ env: { REDIS_COMMAND_TIMEOUT_MS: '300', BREAKER_RESET_TIMEOUT_MS: '500' } });
        prometheus = await startPrometheus({ targets: [`127.0.0.1:${env.gateway.port}`], ruleFiles: RULE_FILES, alertmanagers: [alertmanager.address] });
        await prometheus.waitForTargetUp();
      });

      afterAll(async () => {
        await prometheus?.stop();
        await env?.close();
      });

      it('delivers BffVerifyErrorBudgetBurnFast to the on-call webhook with its labels and runbook', async () => {
        const alice = await logIn(env.gateway, 'alice');
        const verify = () => alice.request(`${env.gateway.url}/verify`, { headers: forwarded('/api/orders') });
        expect((await verify()).status).toBe(200);
        await prometheus.waitForNextScrape();
        await env.redis.stop();

        // Failing /verify calls until the page arrives: the error ratio has to stay up while Prometheus and Alertmanager work.
        let page: WebhookNotification | undefined;
        let lastStatus = 0;
        await waitUntil(
          async () => {
            lastStatus = (await verify()).status;
            page = webhook.notifications.find((notification) => notification.commonLabels.alertname === 'BffVerifyErrorBudgetBurnFast');
            return page !== undefined;
          },
          {
            timeoutMs: ALERT_DELIVERY_TIMEOUT_MS,
            intervalMs: TRAFFIC_INTERVAL_MS,
            timeoutMessage: () =>
              `no BffVerifyErrorBudgetBurnFast notification within ${ALERT_DELIVERY_TIMEOUT_MS} ms (last /verify: ${lastStatus}; ` +
              `received: ${JSON.stringify(webhook.notifications.map((notification) => [notification.path, notification.commonLabels.alertname]))})\n` +
              `--- alertmanager ---\n${alertmanager.output()}`,
          },
        );
        // Back up, so the gateway closes its Redis client cleanly afterwards.
        await env.redis.restart();
        expect(lastStatus).toBe(503);
        expect(page).toMatchObject({
          path: '/page',
          receiver: 'oncall-page',
          status: 'firing',
          groupLabels: { alertname: 'BffVerifyErrorBudgetBurnFast', job: 'bff-gateway' },
          commonLabels: { alertname: 'BffVerifyErrorBudgetBurnFast', job: 'bff-gateway', severity: 'critical', slo: 'verify-availability' },
          commonAnnotations: { runbook: 'deploy/prometheus/RUNBOOK.md#bffverifyerrorbudgetburnfast' },
        });
        expect(page!.alerts).toHaveLength(1);
        // Warnings never reach the pager.
        expect(webhook.notifications.filter((notification) => notification.path === '/page').every((notification) => notification.commonLabels.severity === 'critical')).toBe(true);
      }, ALERT_DELIVERY_TIMEOUT_MS + 30_000);
    });
  });
});
