import { randomUUID } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import Redis from 'ioredis';
import { parse } from 'yaml';
import { GatewayMetrics } from '../../src/telemetry/metrics';
import { Browser } from '../support/browser';
import { forwarded, logIn, startTestEnvironment, type TestEnvironment } from '../support/environment';
import { MovableClock } from '../support/gateway';
import { provisionKafkaJars, startKafka, type KafkaBroker } from '../support/kafka';
import { ensureOpaBinary, startOpa, type OpaServer } from '../support/opa';
import { startPrometheus, type PrometheusServer } from '../support/prometheus';
import { eventually } from '../support/wait';

const REPO_ROOT = resolve(__dirname, '..', '..');
const DASHBOARDS_DIR = join(REPO_ROOT, 'dashboards');
const RULES_DIR = join(REPO_ROOT, 'deploy', 'prometheus', 'rules');
const GRAFANA_PROVISIONING_DIR = join(REPO_ROOT, 'deploy', 'grafana', 'provisioning');

/**
 * Panel queries this suite cannot feed yet, each with the reason. Every
 * other panel must show data. An entry stays only while its panel really
 * returns nothing: the test fails once one shows data, so the entry is
 * removed when the gap is closed. Matched as a substring of the panel query.
 */
const PENDING: ReadonlyArray<{ readonly match: string; readonly reason: string }> = [];

/** Small enough that a short Kafka outage overflows it, so the drops panel and alert have data. */
const KAFKA_BUFFER_SIZE = 100;

/** What Grafana would put in place of the dashboard variables when the test Prometheus is the datasource. */
const VARIABLE_VALUES: Readonly<Record<string, string>> = {
  job: 'bff-gateway',
  instance: '.*',
  // Grafana: max(4 x scrape interval, $__interval + scrape interval); 1m covers the whole scripted run.
  __rate_interval: '1m',
  __range: '5m',
};

/** The test IdP issues 300 s access tokens; 250 s later they are inside the 60 s refresh window. */
const INTO_REFRESH_WINDOW_MS = 250_000;
/** Past the end of a token that could not be refreshed at 250 s. */
const PAST_TOKEN_EXPIRY_MS = 60_000;
const VERIFY_RATE_LIMIT_RPS = 50;
const SPA_METRICS_PER_MINUTE = 5;
/** Concurrent /verify calls per tick during the outage: enough failures to outweigh the successes still in the breaker's 10 s window. */
const OUTAGE_CONCURRENCY = 25;
/** The outage lasts until the alert rules have seen it: these fire (no `for:`), and these are at least pending. */
const OUTAGE_ALERTS = {
  firing: ['BffVerifyErrorBudgetBurnFast', 'BffVerifyErrorBudgetBurnSlow'],
  pendingOrFiring: ['BffCircuitBreakerOpen', 'BffRedisErrors', 'BffGatewayHigh5xxRatio', 'BffTokenRefreshFailureRatioHigh'],
} as const;
/** A scrape and an evaluation every second see the outage within a few seconds; the rest is CI margin. */
const OUTAGE_ALERTS_TIMEOUT_MS = 30_000;
/** A cold machine builds OPA with `go install` and fetches Kafka's jars from Maven Central once; warm runs skip both. */
const PROVISIONING_TIMEOUT_MS = 25 * 60_000;
const SCRIPTED_RUN_TIMEOUT_MS = 60_000;

/** /api/orders and /api/admin ask the PDP (deploy/opa/policy.rego: alice is an admin, everybody else a user); /api/profile does not. */
const ROUTES = `
routes:
  - name: orders
    pathPrefix: /api/orders
    authz: pdp
  - name: admin
    pathPrefix: /api/admin
    authz: pdp
  - name: profile
    pathPrefix: /api/profile
`;

interface GrafanaTarget {
  refId: string;
  expr?: string;
  datasource?: { type?: string; uid?: string };
}

interface GrafanaPanel {
  id: number;
  type: string;
  title: string;
  gridPos?: { h: number; w: number; x: number; y: number };
  datasource?: { type?: string; uid?: string };
  targets?: GrafanaTarget[];
  panels?: GrafanaPanel[];
}

interface GrafanaVariable {
  name: string;
  type: string;
  query?: string | { query?: string };
  datasource?: { type?: string; uid?: string };
}

interface GrafanaDashboard {
  uid?: string;
  title?: string;
  schemaVersion?: number;
  templating?: { list: GrafanaVariable[] };
  panels: GrafanaPanel[];
}

interface PanelQuery {
  /** "<dashboard title> / <panel title> [refId]" */
  readonly name: string;
  readonly expr: string;
  readonly pending: string | undefined;
}

const dashboards: ReadonlyArray<{ file: string; json: GrafanaDashboard }> = readdirSync(DASHBOARDS_DIR)
  .filter((file) => file.endsWith('.json'))
  .sort()
  .map((file) => ({ file, json: JSON.parse(readFileSync(join(DASHBOARDS_DIR, file), 'utf8')) as GrafanaDashboard }));

/** Every panel, including those inside collapsed rows; rows themselves are not panels that query. */
function panelsOf(dashboard: GrafanaDashboard): GrafanaPanel[] {
  return dashboard.panels.flatMap((panel) => (panel.type === 'row' ? (panel.panels ?? []) : [panel]));
}

const panelQueries: readonly PanelQuery[] = dashboards.flatMap(({ json }) =>
  panelsOf(json).flatMap((panel) =>
    (panel.targets ?? []).map((target) => ({
      name: `${json.title} / ${panel.title} [${target.refId}]`,
      expr: target.expr ?? '',
      pending: PENDING.find((entry) => (target.expr ?? '').includes(entry.match))?.reason,
    })),
  ),
);
const liveQueries = panelQueries.filter((query) => !query.pending);
const pendingQueries = panelQueries.filter((query) => query.pending);

function variableQuery(variable: GrafanaVariable): string {
  return typeof variable.query === 'string' ? variable.query : (variable.query?.query ?? '');
}

/** Substitutes the dashboard variables; an unknown variable is an error, not an empty string. */
function toPromQL(expr: string): string {
  return expr.replace(/\$\{(\w+)(?::\w+)?\}|\$(\w+)/g, (whole, braced: string | undefined, plain: string | undefined) => {
    const name = braced ?? plain ?? '';
    const value = VARIABLE_VALUES[name];
    if (value === undefined) throw new Error(`no test value for dashboard variable ${whole} in ${expr}`);
    return value;
  });
}

/** Grafana's label_values(selector, label) as PromQL that returns one series per value. */
function labelValuesAsPromQL(query: string): string {
  const match = /^label_values\((.+),\s*(\w+)\)$/.exec(query.trim());
  if (!match) throw new Error(`unsupported variable query ${query}`);
  return `group by (${match[2]}) (${toPromQL(match[1]!)})`;
}

/** Data means a number other than 0 somewhere: a never-moved counter rates to 0, a quantile of nothing is NaN. */
function hasData(series: ReadonlyArray<{ values: Array<[number, string]> }>): boolean {
  return series.some((one) => one.values.some(([, value]) => Number.isFinite(Number(value)) && Number(value) !== 0));
}

describe('the Grafana dashboards and Prometheus files as files', () => {
  it('every dashboard has a uid, a title, a current schema and a prometheus `datasource` variable', () => {
    const uids = dashboards.map(({ json }) => json.uid);
    expect(new Set(uids).size).toBe(dashboards.length);
    for (const { file, json } of dashboards) {
      expect({ file, uid: typeof json.uid === 'string' && json.uid.length > 0 && json.uid.length <= 40 }).toEqual({ file, uid: true });
      expect({ file, title: Boolean(json.title) }).toEqual({ file, title: true });
      expect(json.schemaVersion).toBeGreaterThanOrEqual(39);
      const datasource = json.templating?.list.find((variable) => variable.name === 'datasource');
      expect({ file, type: datasource?.type, query: datasource?.query }).toEqual({ file, type: 'datasource', query: 'prometheus' });
    }
  });

  it('every panel and query uses the datasource variable and no datasource uid is hard-coded', () => {
    const offenders: string[] = [];
    for (const { json } of dashboards) {
      for (const panel of panelsOf(json)) {
        if (panel.datasource?.uid !== '${datasource}') offenders.push(`${json.title} / ${panel.title}: panel datasource`);
        if ((panel.targets ?? []).length === 0) offenders.push(`${json.title} / ${panel.title}: no query`);
        for (const target of panel.targets ?? []) {
          if (target.datasource?.uid !== '${datasource}') offenders.push(`${json.title} / ${panel.title} [${target.refId}]: target datasource`);
        }
      }
      for (const variable of json.templating?.list ?? []) {
        if (variable.type === 'query' && variable.datasource?.uid !== '${datasource}') offenders.push(`${json.title}: variable ${variable.name}`);
      }
      // Anywhere in the JSON: a datasource object names the variable or Grafana's built-in annotations, nothing else.
      const uids = [...JSON.stringify(json).matchAll(/"datasource":\{[^}]*"uid":"([^"]*)"/g)].map((match) => match[1]);
      offenders.push(...uids.filter((uid) => uid !== '${datasource}' && uid !== '-- Grafana --').map((uid) => `${json.title}: datasource uid ${uid}`));
    }
    expect(offenders).toEqual([]);
  });

  it('panel ids are unique per dashboard and every panel has a position', () => {
    for (const { json } of dashboards) {
      const ids = json.panels.flatMap((panel) => [panel, ...(panel.panels ?? [])]).map((panel) => panel.id);
      expect({ title: json.title, duplicates: ids.filter((id, index) => ids.indexOf(id) !== index) }).toEqual({ title: json.title, duplicates: [] });
      expect(json.panels.filter((panel) => !panel.gridPos).map((panel) => panel.title)).toEqual([]);
    }
  });

  it('rates and increases use $__rate_interval (or $__range), and quantiles aggregate by le', () => {
    const offenders: string[] = [];
    for (const query of panelQueries) {
      for (const [range] of query.expr.matchAll(/\[[^\]]*\]/g)) {
        if (range !== '[$__rate_interval]' && range !== '[$__range]') offenders.push(`${query.name}: ${range}`);
      }
      for (const [quantile] of query.expr.matchAll(/histogram_quantile\([^,]+,\s*sum by \(([^)]*)\)/g)) {
        if (!/\ble\b/.test(quantile)) offenders.push(`${query.name}: quantile without le`);
      }
    }
    expect(offenders).toEqual([]);
  });

  it('every metric of the catalogue appears on some dashboard', () => {
    const catalogue = new GatewayMetrics({ collectProcessMetrics: false }).registry.getMetricsAsArray().map((metric) => metric.name);
    const allQueries = panelQueries.map((query) => query.expr).join('\n');
    expect(catalogue.filter((name) => !new RegExp(`\\b${name}(_bucket|_count|_sum)?\\b`).test(allQueries))).toEqual([]);
  });

  it('the Grafana provisioning files declare a Prometheus datasource and a file provider for the dashboards', () => {
    const datasources = parse(readFileSync(join(GRAFANA_PROVISIONING_DIR, 'datasources', 'prometheus.yml'), 'utf8')) as {
      apiVersion: number;
      datasources: Array<{ type: string; url: string }>;
    };
    expect(datasources.apiVersion).toBe(1);
    expect(datasources.datasources.map((datasource) => datasource.type)).toContain('prometheus');
    const providers = parse(readFileSync(join(GRAFANA_PROVISIONING_DIR, 'dashboards', 'bff-gateway.yml'), 'utf8')) as {
      apiVersion: number;
      providers: Array<{ type: string; options: { path: string } }>;
    };
    expect(providers.apiVersion).toBe(1);
    expect(providers.providers).toEqual([expect.objectContaining({ type: 'file', options: expect.objectContaining({ path: expect.stringMatching(/^\//) }) })]);
  });
});

describe('the dashboards against a real Prometheus scraping a gateway under scripted traffic', () => {
  let kafka: KafkaBroker;
  let opa: OpaServer;
  let routesDirectory: string;
  let env: TestEnvironment;
  let prometheus: PrometheusServer;
  const clock = new MovableClock();
  let trafficStartedAt: Date;

  async function verify(browser: Browser, uri = '/api/orders', method = 'GET', headers: Record<string, string> = {}): Promise<number> {
    return (await browser.request(`${env.gateway.url}/verify`, { headers: forwarded(uri, method, headers) })).status;
  }

  function expectStatuses(label: string, actual: number[], expected: number[]): void {
    expect({ label, statuses: actual }).toEqual({ label, statuses: expected });
  }

  async function postSpaMetrics(clientAddress: string, events: unknown[]): Promise<number> {
    const response = await fetch(`${env.gateway.url}/api/v1/metrics`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-Forwarded-For': clientAddress },
      body: JSON.stringify({ events }),
    });
    await response.arrayBuffer();
    return response.status;
  }

  /**
   * One pass over every flow the dashboards show. It runs twice with a
   * scrape in between: a labelled series is born at its first increment, and
   * rate() only sees increments after Prometheus has scraped the series once.
   */
  async function driveFlows(round: number, alice: Browser): Promise<void> {
    const suffix = `-r${round}`;
    const victim = await logIn(env.gateway, `victim${suffix}`);
    const leaver = await logIn(env.gateway, `leaver${suffix}`);
    const revoked = await logIn(env.gateway, `revoked${suffix}`);
    const offline = await logIn(env.gateway, `offline${suffix}`);
    const burster = await logIn(env.gateway, `burster${suffix}`);
    // The background task that recounts live sessions, run now rather than on its timer.
    await env.gateway.gateway.countActiveSessions();
    // What SIGHUP does: without FRONTENDS_FILE the reload finds the environment's frontend unchanged.
    expect((await env.gateway.gateway.reloadFrontends()).result).toBe('unchanged');

    // Many /verify: allowed by the PDP, anonymous API call (401), anonymous navigation (302).
    const allowed: number[] = [];
    for (let call = 0; call < 40; call++) allowed.push(await verify(alice));
    expect(allowed.filter((status) => status !== 200)).toEqual([]);
    for (let call = 0; call < 5; call++) {
      expect((await fetch(`${env.gateway.url}/verify`, { headers: forwarded('/api/orders') })).status).toBe(401);
      // Through node:http: fetch would replace Sec-Fetch-Mode with `cors`.
      const navigation = await new Browser().request(`${env.gateway.url}/verify`, {
        headers: forwarded('/api/profile/settings', 'GET', { Accept: 'text/html', 'Sec-Fetch-Mode': 'navigate' }),
      });
      expect(navigation.status).toBe(302);
    }
    // Denied by the PDP: a user reading the admin API.
    expect(await verify(leaver, '/api/admin/users')).toBe(403);

    // CSRF: an unsafe method through ForwardAuth and a logout, both without X-CSRF.
    expect(await verify(alice, '/api/orders', 'POST')).toBe(403);
    expect((await alice.request(`${env.gateway.url}/auth/logout`, { method: 'POST' })).status).toBe(403);

    // Session binding: the victim's cookie from another user agent.
    const cookieName = env.gateway.config.session.cookieName;
    const stolen = await fetch(`${env.gateway.url}/verify`, {
      headers: { ...forwarded('/api/profile'), cookie: `${cookieName}=${victim.cookie(cookieName, env.gateway.url)}`, 'user-agent': 'curl/8.0' },
    });
    expect(stolen.status).toBe(401);

    // Logout.
    expect((await leaver.request(`${env.gateway.url}/auth/logout`, { method: 'POST', headers: { 'X-CSRF': '1' } })).status).toBe(200);

    // Rate limits: a burst above RATE_LIMIT_VERIFY_RPS from one session, and one client posting SPA metrics too often.
    const burst = await Promise.all(Array.from({ length: VERIFY_RATE_LIMIT_RPS + 30 }, () => verify(burster, '/api/profile')));
    expect(burst.filter((status) => status === 429).length).toBeGreaterThan(0);
    const flooder = `10.9.${round}.1`;
    const flood: number[] = [];
    for (let call = 0; call < SPA_METRICS_PER_MINUTE + 2; call++) flood.push(await postSpaMetrics(flooder, [{ event: 'page_view' }]));
    expect(flood.filter((status) => status === 429)).toHaveLength(2);

    // SPA metrics: accepted events, and a payload refused for a PII-looking attribute.
    const spa = `10.0.${round}.1`;
    expect(await postSpaMetrics(spa, [{ event: 'page_view' }, { event: 'web_vital_lcp', value: 1.8 }, { event: 'js_error', attributes: { component: 'cart' } }])).toBe(202);
    expect(await postSpaMetrics(spa, [{ event: 'route_change' }, { event: 'page_view' }])).toBe(202);
    expect(await postSpaMetrics(spa, [{ event: 'login_click', attributes: { email: 'alice@example.test' } }])).toBe(400);

    // A failed login: a callback without state.
    expect((await fetch(`${env.gateway.url}/auth/callback`)).status).toBe(400);

    // Refresh, refused refresh (grants revoked at the IdP).
    await env.idp.revokeGrants(`revoked${suffix}`);
    clock.advance(INTO_REFRESH_WINDOW_MS);
    expect(await verify(alice)).toBe(200);
    expect(await verify(revoked, '/api/profile')).toBe(401);

    // The IdP's token endpoint fails: a still-valid token is served, an expired one is 503.
    await env.idp.setTokenFailure(503);
    try {
      expect(await verify(offline, '/api/profile')).toBe(200);
      clock.advance(PAST_TOKEN_EXPIRY_MS);
      expectStatuses('expired token while the IdP fails', [await verify(offline, '/api/profile'), await verify(offline, '/api/profile')], [503, 503]);
    } finally {
      await env.idp.setTokenFailure(null);
    }
    await env.gateway.gateway.countActiveSessions();
  }

  /** Kafka stopped while security events keep coming: more than the buffer holds, so the oldest are dropped. */
  async function driveKafkaOutage(alice: Browser): Promise<void> {
    await kafka.stop();
    try {
      // Each refused CSRF check is one security event; /verify itself never waits on Kafka.
      const statuses = await Promise.all(Array.from({ length: KAFKA_BUFFER_SIZE + 50 }, () => verify(alice, '/api/orders', 'POST')));
      expect([...new Set(statuses)]).toEqual([403]);
    } finally {
      await kafka.restart();
    }
  }

  /** Redis killed while /verify keeps coming: Redis errors, an open breaker, 503s; then Redis returns. */
  async function driveRedisOutage(alice: Browser): Promise<void> {
    const admin = new Redis(env.redis.url);
    await admin.save();
    admin.disconnect();
    await env.redis.stop();
    const duringOutage: number[] = [];
    try {
      // A burst every 50 ms until the alerts are up: the breaker opens on the error ratio of its rolling
      // window, and an open breaker probes (half-open) at the next call after its reset timeout, so it is
      // half-open for at most 50 ms at a time and the scrapes see it open.
      await eventually(
        async () => {
          duringOutage.push(...(await Promise.all(Array.from({ length: OUTAGE_CONCURRENCY }, () => verify(alice)))));
          return alertStatesSinceTrafficStarted();
        },
        (states) =>
          OUTAGE_ALERTS.firing.every((alertname) => states[alertname]?.includes('firing')) &&
          OUTAGE_ALERTS.pendingOrFiring.every((alertname) => states[alertname] !== undefined),
        { what: 'the outage alerts to be raised', timeoutMs: OUTAGE_ALERTS_TIMEOUT_MS, intervalMs: 50 },
      );
    } finally {
      await env.redis.restart();
    }
    expect([...new Set(duringOutage)]).toEqual([503]);
    expect(await eventually(() => verify(alice), (status) => status === 200, { what: '/verify to answer 200 once Redis is back' })).toBe(200);
  }

  /** alertname -> the states (`pending`, `firing`) its ALERTS series have had since the traffic started. */
  async function alertStatesSinceTrafficStarted(): Promise<Record<string, string[]>> {
    const states: Record<string, string[]> = {};
    for (const { metric } of await prometheus.queryRange('ALERTS', trafficStartedAt, new Date(), 1)) {
      const { alertname, alertstate } = metric;
      if (alertname && alertstate) states[alertname] = [...new Set([...(states[alertname] ?? []), alertstate])];
    }
    return states;
  }

  beforeAll(async () => {
    await Promise.all([ensureOpaBinary(), provisionKafkaJars()]);
  }, PROVISIONING_TIMEOUT_MS);

  beforeAll(async () => {
    [kafka, opa] = await Promise.all([startKafka({ topics: ['bff.security-events'] }), startOpa()]);
    routesDirectory = mkdtempSync(join(tmpdir(), 'bff-dashboards-'));
    writeFileSync(join(routesDirectory, 'routes.yaml'), ROUTES);
    env = await startTestEnvironment({
      gateway: { clock },
      env: {
        ROUTES_FILE: join(routesDirectory, 'routes.yaml'),
        PDP_URL: opa.decisionUrl,
        // Every decision asks OPA, so the PDP latency histogram moves.
        PDP_CACHE_TTL_SECONDS: '0',
        KAFKA_BROKERS: kafka.brokers,
        KAFKA_TOPIC: 'bff.security-events',
        KAFKA_BUFFER_SIZE: String(KAFKA_BUFFER_SIZE),
        REDIS_COMMAND_TIMEOUT_MS: '300',
        BREAKER_RESET_TIMEOUT_MS: '500',
        RATE_LIMIT_VERIFY_RPS: String(VERIFY_RATE_LIMIT_RPS),
        RATE_LIMIT_METRICS_PER_MINUTE: String(SPA_METRICS_PER_MINUTE),
        // Well above the logins and the random /auth paths of this suite: only the SPA limit is meant to trip.
        RATE_LIMIT_AUTH_PER_MINUTE: '10000',
      },
    });
    prometheus = await startPrometheus({
      targets: [`127.0.0.1:${env.gateway.port}`],
      job: 'bff-gateway',
      ruleFiles: readdirSync(RULES_DIR).filter((file) => file.endsWith('.yml')).map((file) => join(RULES_DIR, file)),
    });
    await prometheus.waitForTargetUp();
    trafficStartedAt = new Date();

    // One user across both rounds: her refreshes are the per-user series (user_id) the dashboards rate.
    const alice = await logIn(env.gateway, 'alice');
    await prometheus.waitForNextScrape();
    await driveFlows(1, alice);
    await prometheus.waitForNextScrape();
    await driveFlows(2, alice);
    await prometheus.waitForNextScrape();
    await driveRedisOutage(alice);
    await driveKafkaOutage(alice);
    for (let call = 0; call < 20; call++) await verify(alice);
    await prometheus.waitForNextScrape();
    await prometheus.waitForNextScrape();
    // The rule groups (every second) evaluate over the last scrape.
    await prometheus.waitForNextRuleEvaluation();
  }, SCRIPTED_RUN_TIMEOUT_MS);

  afterAll(async () => {
    await prometheus?.stop();
    await env?.close();
    await opa?.stop();
    await kafka?.close();
    if (routesDirectory) rmSync(routesDirectory, { recursive: true, force: true });
  });

  async function evaluate(expr: string) {
    return prometheus.queryRange(toPromQL(expr), new Date(trafficStartedAt.getTime() - 5_000), new Date(), 1);
  }

  it.each(liveQueries.map((query) => [query.name, query.expr] as const))('panel %s shows data', async (_name, expr) => {
    expect(hasData(await evaluate(expr))).toBe(true);
  });

  it('lists as pending only panels that really show nothing', async () => {
    // Once a pending panel shows data its metric is wired: remove its PENDING entry.
    for (const query of pendingQueries) expect({ panel: query.name, hasData: hasData(await evaluate(query.expr)) }).toEqual({ panel: query.name, hasData: false });
  });

  it('the job and instance variables list the gateway', async () => {
    for (const { json } of dashboards) {
      for (const variable of json.templating?.list ?? []) {
        if (variable.type !== 'query') continue;
        const values = await prometheus.query(labelValuesAsPromQL(variableQuery(variable)));
        expect({ dashboard: json.title, variable: variable.name, values: values.length > 0 }).toEqual({ dashboard: json.title, variable: variable.name, values: true });
      }
    }
  });

  it('every rule evaluates without error on the live series and every recording rule records something', async () => {
    const groups = await prometheus.rules();
    const rules = groups.flatMap((group) => group.rules);
    expect(rules.filter((rule) => rule.health !== 'ok').map((rule) => `${rule.name}: ${rule.lastError ?? rule.health}`)).toEqual([]);
    const recordings = rules.filter((rule) => rule.type === 'recording').map((rule) => rule.name);
    expect(recordings.length).toBeGreaterThan(0);
    const empty: string[] = [];
    for (const name of recordings) if ((await prometheus.query(name)).length === 0) empty.push(name);
    expect(empty).toEqual([]);
  });

  it('the alert rules see the Redis outage on the live series: the fast and slow /verify burn-rate alerts fire, the others are at least pending', async () => {
    const states = await alertStatesSinceTrafficStarted();

    for (const alertname of OUTAGE_ALERTS.firing) expect({ alertname, states: states[alertname] }).toEqual({ alertname, states: expect.arrayContaining(['firing']) });
    for (const alertname of OUTAGE_ALERTS.pendingOrFiring) {
      expect({ alertname, isPendingOrFiring: (states[alertname] ?? []).length > 0 }).toEqual({ alertname, isPendingOrFiring: true });
    }
  });

  it('/metrics does not grow with the number of distinct paths requested: 200 random paths leave the series unchanged', async () => {
    const url = env.gateway.url;
    const requestRandomPath = async (kind: number, id: string): Promise<void> => {
      const response = await [
        () => fetch(`${url}/${id}`),
        () => fetch(`${url}/auth/${id}?returnTo=/${id}`),
        () => fetch(`${url}/verify`, { headers: forwarded(`/api/${id}/%2e%2e/${id}?q=${id}`) }),
        () => fetch(`${url}/metrics/${id}`, { method: 'POST' }),
        () => fetch(`${url}/${id}/verify`, { headers: forwarded(`/${id}`, 'DELETE') }),
      ][kind % 5]!();
      await response.arrayBuffer();
    };
    const seriesOf = async (): Promise<string[]> => {
      const text = await (await fetch(`${url}/metrics`)).text();
      return text
        .split('\n')
        .filter((line) => line && !line.startsWith('#'))
        .map((line) => line.slice(0, line.lastIndexOf(' ')))
        .sort();
    };
    // Each kind of request once first: the label combinations they legitimately add (404 "unmatched", ...) exist before counting.
    for (let kind = 0; kind < 5; kind++) await requestRandomPath(kind, randomUUID());
    await prometheus.waitForNextScrape();
    const seriesBefore = await seriesOf();
    const scrapedBefore = await prometheus.query('count({job="bff-gateway"})');

    const ids = Array.from({ length: 200 }, () => randomUUID());
    for (const [index, id] of ids.entries()) await requestRandomPath(index, id);

    const seriesAfter = await seriesOf();
    expect(seriesAfter).toEqual(seriesBefore);
    const exposition = seriesAfter.join('\n');
    expect(ids.filter((id) => exposition.includes(id))).toEqual([]);
    await prometheus.waitForNextScrape();
    expect((await prometheus.query('count({job="bff-gateway"})'))[0]?.value[1]).toBe(scrapedBefore[0]?.value[1]);
  });
});
