import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { loadConfig } from '../../src/config/load-config';
import { createLogger } from '../../src/telemetry/logger';
import { loadComposeProject, type ComposeProject, type ComposeService } from '../support/compose-schema';
import { JAEGER_BINARY } from '../support/jaeger';
import { ensureLokiBinary, LOKI_VERSION } from '../support/loki';

/**
 * What no Docker engine can run here is proven with the tools' own checks:
 * compose-go (the library Docker Compose is built on) validates
 * docker-compose.yml against the Compose Specification schema for every
 * profile, Jaeger v2 (an OpenTelemetry collector distribution) validates the
 * collector configuration, Loki verifies its own. Between the files, each
 * address one service uses for another must name a service of the compose
 * file, on a network they share, at the port the other one listens on.
 * (promtool checks deploy/prometheus in prometheus-rules.test.ts, amtool and
 * a real Alertmanager deploy/alertmanager in alertmanager.test.ts.)
 */
const run = promisify(execFile);
const REPO_ROOT = resolve(__dirname, '..', '..');
const DEPLOY = join(REPO_ROOT, 'deploy');
const COMPOSE_ENV_DIR = join(DEPLOY, 'compose');
const OTEL_COLLECTOR_CONFIG = join(DEPLOY, 'otel-collector', 'config.yaml');
const LOKI_CONFIG = join(DEPLOY, 'loki', 'config.yaml');
const ALLOY_CONFIG = join(DEPLOY, 'loki', 'config.alloy');
const GRAFANA_PROVISIONING = join(DEPLOY, 'grafana', 'provisioning');
const KEYCLOAK_REALM = join(DEPLOY, 'keycloak', 'realm.json');
const TOOL_TIMEOUT_MS = 30_000;
// The first run builds Loki from the Go module proxy (about 6 minutes on 2 cores).
const LOKI_BUILD_TIMEOUT_MS = 30 * 60_000;

const DEFAULT_SERVICES = ['bff', 'redis', 'traefik', 'whoami'];
const PROFILES = {
  observability: ['alert-webhook', 'alertmanager', 'alloy', 'grafana', 'jaeger', 'loki', 'otel-collector', 'prometheus'],
  idp: ['keycloak'],
  events: ['kafka'],
  authz: ['opa'],
} as const;
type Profile = keyof typeof PROFILES;
const PROFILE_NAMES = Object.keys(PROFILES) as Profile[];

const envFileOf = (profile: Profile): string => join(COMPOSE_ENV_DIR, `${profile}.env`);
const projects = new Map<string, Promise<ComposeProject>>();

/** The project for these profiles with their env files, loaded once per combination. */
function project(...profiles: Profile[]): Promise<ComposeProject> {
  const key = profiles.join('+');
  if (!projects.has(key)) projects.set(key, loadComposeProject({ profiles, envFiles: profiles.map(envFileOf) }));
  return projects.get(key)!;
}

function service(model: ComposeProject, name: string): ComposeService {
  const found = model.services[name];
  if (!found) throw new Error(`docker-compose.yml has no service ${name} (with these profiles)`);
  return found;
}

function networksOf(model: ComposeProject, name: string): string[] {
  return Object.keys(service(model, name).networks ?? {});
}

/** The services that `host` names from `from`'s point of view: by service name or network alias, on a network both are on. */
function servicesReachableAs(model: ComposeProject, from: string, host: string): string[] {
  const own = new Set(networksOf(model, from));
  return Object.entries(model.services)
    .filter(([name, candidate]) =>
      Object.entries(candidate.networks ?? {}).some(([network, settings]) => own.has(network) && (name === host || (settings?.aliases ?? []).includes(host))),
    )
    .map(([name]) => name);
}

function expectReachable(model: ComposeProject, from: string, address: string, to: string): void {
  const host = new URL(address.includes('://') ? address : `tcp://${address}`).hostname;
  expect({ from, address, reaches: servicesReachableAs(model, from, host) }).toEqual({ from, address, reaches: [to] });
}

function portOf(address: string): number {
  return Number(new URL(address.includes('://') ? address : `tcp://${address}`).port);
}

function commandFlag(target: ComposeService, flag: string): string | undefined {
  const prefix = `${flag}=`;
  return target.command?.find((argument) => argument.startsWith(prefix))?.slice(prefix.length);
}

/** The repository file mounted at `containerPath` in `target` (bind mounts of files and of their directories). */
function hostPathOf(target: ComposeService, containerPath: string): string {
  for (const volume of target.volumes ?? []) {
    if (volume.type !== 'bind' || !volume.source) continue;
    if (containerPath === volume.target) return volume.source;
    if (containerPath.startsWith(`${volume.target}/`)) return join(volume.source, containerPath.slice(volume.target.length + 1));
  }
  throw new Error(`nothing is mounted at ${containerPath}`);
}

/** The gateway's environment as compose would give it, container paths swapped for the repository files mounted there. */
function gatewayEnvironment(model: ComposeProject): Record<string, string> {
  const bff = service(model, 'bff');
  const env = Object.fromEntries(Object.entries(bff.environment ?? {}).filter((entry): entry is [string, string] => typeof entry[1] === 'string'));
  if (env.ROUTES_FILE) env.ROUTES_FILE = hostPathOf(bff, env.ROUTES_FILE);
  return env;
}

function readYaml<T>(file: string): T {
  return parse(readFileSync(file, 'utf8')) as T;
}

describe('docker-compose.yml against the Compose Specification', () => {
  it('compose-go validates it without a profile, with each profile and its env file, and with all of them together', async () => {
    await expect(loadComposeProject()).resolves.toBeDefined();
    for (const profile of PROFILE_NAMES) await expect(project(profile)).resolves.toBeDefined();
    await expect(project(...PROFILE_NAMES)).resolves.toBeDefined();
  });

  it('runs the default services without a profile, and each profile adds exactly its own services', async () => {
    expect(Object.keys((await loadComposeProject()).services).sort()).toEqual(DEFAULT_SERVICES);
    for (const profile of PROFILE_NAMES) {
      expect({ profile, services: Object.keys((await project(profile)).services).sort() }).toEqual({ profile, services: [...DEFAULT_SERVICES, ...PROFILES[profile]].sort() });
    }
  });

  it('pins the image of every profile service to a full version', async () => {
    const model = await project(...PROFILE_NAMES);
    const images = Object.values(PROFILES)
      .flat()
      .map((name): [string, string] => [name, service(model, name).image ?? '(none)']);
    expect(images.filter(([, image]) => !/:v?\d+\.\d+\.\d+$/.test(image))).toEqual([]);
  });

  it('mounts only files that exist in the repository, read-only (and the Docker socket, read-only)', async () => {
    const problems: string[] = [];
    for (const [name, target] of Object.entries((await project(...PROFILE_NAMES)).services)) {
      for (const volume of target.volumes ?? []) {
        if (volume.type !== 'bind') continue;
        const source = volume.source ?? '';
        if (source === '/var/run/docker.sock') {
          if (!volume.read_only) problems.push(`${name}: the Docker socket is writable`);
          continue;
        }
        if (relative(REPO_ROOT, source).startsWith('..') || !existsSync(source)) problems.push(`${name}: ${source} is not in the repository`);
        if (!volume.read_only) problems.push(`${name}: ${volume.target} is writable`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('publishes the profiles’ user interfaces on loopback only', async () => {
    const model = await project(...PROFILE_NAMES);
    const profiled = Object.values(PROFILES).flat();
    const published = profiled.flatMap((name) => (service(model, name).ports ?? []).map((port) => `${name} ${port.host_ip ?? '0.0.0.0'}:${port.published}`));
    expect(published.length).toBeGreaterThan(0);
    expect(published.filter((entry) => !entry.includes(' 127.0.0.1:'))).toEqual([]);
  });
});

describe('the gateway in each profile', () => {
  it('without an env file keeps its development defaults, which its own configuration check accepts', async () => {
    const config = loadConfig(gatewayEnvironment(await loadComposeProject()));
    expect(config.oidc.kind).toBe('development');
    expect(config.telemetry.otlpEndpoint).toBeUndefined();
    expect(config.kafka.brokers).toBeUndefined();
    expect(config.pdp.url).toBeUndefined();
  });

  it.each(PROFILE_NAMES)('with deploy/compose/%s.env gets an environment its own configuration check accepts', async (profile) => {
    const environment = gatewayEnvironment(await project(profile));
    expect(() => loadConfig(environment)).not.toThrow();
  });

  it('observability: exports OTLP to the collector, on the port the collector receives OTLP/HTTP on', async () => {
    const model = await project('observability');
    const config = loadConfig(gatewayEnvironment(model));
    const endpoint = config.telemetry.otlpEndpoint!;
    expectReachable(model, 'bff', endpoint, 'otel-collector');
    const collector = readYaml<{ receivers: { otlp: { protocols: { http: { endpoint: string } } } } }>(OTEL_COLLECTOR_CONFIG);
    expect(portOf(endpoint)).toBe(portOf(collector.receivers.otlp.protocols.http.endpoint));
  });

  it('idp: logs in at the Keycloak of the realm file, under one issuer that browsers and the gateway both reach', async () => {
    const model = await project('idp');
    const config = loadConfig(gatewayEnvironment(model));
    if (config.oidc.kind !== 'external') throw new Error('the idp profile leaves the development IdP on');
    const keycloak = service(model, 'keycloak');
    const issuer = new URL(config.oidc.issuer);
    expectReachable(model, 'bff', issuer.origin, 'keycloak');
    // Keycloak's own front-end URL is the issuer's origin, on the port it listens on and publishes for browsers.
    expect(commandFlag(keycloak, '--hostname')).toBe(issuer.origin);
    expect(Number(commandFlag(keycloak, '--http-port'))).toBe(Number(issuer.port));
    expect(keycloak.ports).toEqual([expect.objectContaining({ target: Number(issuer.port), published: issuer.port, host_ip: '127.0.0.1' })]);
    // *.localhost resolves to loopback in browsers, where the port is published.
    expect(issuer.hostname.endsWith('.localhost')).toBe(true);

    const realm = JSON.parse(readFileSync(KEYCLOAK_REALM, 'utf8')) as {
      realm: string;
      clients: Array<{ clientId: string; secret: string; redirectUris: string[]; attributes: Record<string, string> }>;
    };
    expect(hostPathOf(keycloak, `/opt/keycloak/data/import/${realm.realm}-realm.json`)).toBe(KEYCLOAK_REALM);
    expect(issuer.pathname).toBe(`/realms/${realm.realm}`);
    const { clientId } = config.oidc;
    const client = realm.clients.find((candidate) => candidate.clientId === clientId);
    expect(client).toBeDefined();
    expect(client!.secret).toBe(gatewayEnvironment(model).OIDC_CLIENT_SECRET);
    expect(client!.redirectUris).toContain(`${config.server.publicOrigin}/auth/callback`);
    // Keycloak's back-channel logout reaches the gateway by its compose name.
    expectReachable(model, 'keycloak', client!.attributes['backchannel.logout.url']!, 'bff');
    expect(portOf(client!.attributes['backchannel.logout.url']!)).toBe(config.server.port);
  });

  it('events: publishes to the Kafka broker at the address the broker advertises', async () => {
    const model = await project('events');
    const config = loadConfig(gatewayEnvironment(model));
    const kafka = service(model, 'kafka');
    expect(config.kafka.brokers).toHaveLength(1);
    expectReachable(model, 'bff', config.kafka.brokers![0]!, 'kafka');
    expect(kafka.environment?.KAFKA_ADVERTISED_LISTENERS).toBe(`PLAINTEXT://${config.kafka.brokers![0]}`);
    expect(kafka.environment?.KAFKA_PROCESS_ROLES).toBe('broker,controller');
  });

  it('authz: asks OPA serving the example policy, for routes whose names the policy grants', async () => {
    const model = await project('authz');
    const config = loadConfig(gatewayEnvironment(model));
    const opa = service(model, 'opa');
    const pdpUrl = new URL(config.pdp.url!);
    expectReachable(model, 'bff', pdpUrl.origin, 'opa');
    expect(commandFlag(opa, '--addr')).toBe(`0.0.0.0:${pdpUrl.port}`);
    expect(pdpUrl.pathname).toBe('/v1/data/bff/allow');
    const policyFile = opa.command!.at(-1)!;
    expect(hostPathOf(opa, policyFile)).toBe(join(DEPLOY, 'opa', 'policy.rego'));
    const policy = readFileSync(join(DEPLOY, 'opa', 'policy.rego'), 'utf8');
    const decided = config.routes.filter((route) => route.authz === 'pdp').map((route) => route.name);
    expect(decided.length).toBeGreaterThan(0);
    expect(decided.filter((name) => !policy.includes(`"${name}": {`))).toEqual([]);
  });
});

describe('the observability profile’s configuration files', () => {
  it('Prometheus loads the repository configuration, and scrapes and alerts only compose services it can reach', async () => {
    const model = await project('observability');
    const prometheus = service(model, 'prometheus');
    const configFile = hostPathOf(prometheus, commandFlag(prometheus, '--config.file')!);
    expect(configFile).toBe(join(DEPLOY, 'prometheus', 'prometheus.yml'));
    const config = readYaml<{
      rule_files: string[];
      alerting: { alertmanagers: Array<{ static_configs: Array<{ targets: string[] }> }> };
      scrape_configs: Array<{ job_name: string; static_configs: Array<{ targets: string[] }> }>;
    }>(configFile);
    for (const ruleFile of config.rule_files) expect(existsSync(join(DEPLOY, 'prometheus', ruleFile))).toBe(true);

    const targets = Object.fromEntries(config.scrape_configs.map((job) => [job.job_name, job.static_configs.flatMap((group) => group.targets)]));
    expect(targets['bff-gateway']).toEqual(['bff:8080']);
    expectReachable(model, 'prometheus', 'bff:8080', 'bff');
    expect(portOf('bff:8080')).toBe(loadConfig(gatewayEnvironment(model)).server.port);
    expect(targets['otel-collector']).toEqual(['otel-collector:8889']);
    expectReachable(model, 'prometheus', 'otel-collector:8889', 'otel-collector');
    const collector = readYaml<{ exporters: { prometheus: { endpoint: string } } }>(OTEL_COLLECTOR_CONFIG);
    expect(portOf(collector.exporters.prometheus.endpoint)).toBe(8889);

    const alertmanagers = config.alerting.alertmanagers.flatMap((manager) => manager.static_configs.flatMap((group) => group.targets));
    expect(alertmanagers).toEqual(['alertmanager:9093']);
    expectReachable(model, 'prometheus', 'alertmanager:9093', 'alertmanager');
    const alertmanager = service(model, 'alertmanager');
    expect(hostPathOf(alertmanager, commandFlag(alertmanager, '--config.file')!)).toBe(join(DEPLOY, 'alertmanager', 'alertmanager.yml'));
    // The shipped receivers' stand-in is a service Alertmanager reaches.
    expectReachable(model, 'alertmanager', 'http://alert-webhook:8080', 'alert-webhook');
    expect(readFileSync(join(DEPLOY, 'alertmanager', 'alertmanager.yml'), 'utf8')).toContain('http://alert-webhook:8080/');
  });

  it('Jaeger v2’s own validate accepts the collector configuration', async () => {
    if (!existsSync(JAEGER_BINARY)) throw new Error(`${JAEGER_BINARY} not found: run "npm test" (its pretest builds Jaeger), or set JAEGER_BIN`);
    await expect(run(JAEGER_BINARY, ['validate', `--config=file:${OTEL_COLLECTOR_CONFIG}`], { timeout: TOOL_TIMEOUT_MS })).resolves.toBeDefined();
  });

  it('the collector sends traces to the compose Jaeger, mounted where its command reads it', async () => {
    const model = await project('observability');
    const collector = service(model, 'otel-collector');
    expect(hostPathOf(collector, commandFlag(collector, '--config')!)).toBe(OTEL_COLLECTOR_CONFIG);
    const config = readYaml<{ exporters: Record<string, { endpoint: string }>; service: { pipelines: Record<string, { exporters: string[] }> } }>(OTEL_COLLECTOR_CONFIG);
    const traceExporters = config.service.pipelines.traces!.exporters;
    expect(traceExporters).toEqual(['otlp/jaeger']);
    expectReachable(model, 'otel-collector', config.exporters['otlp/jaeger']!.endpoint, 'jaeger');
    // Jaeger's built-in all-in-one configuration receives OTLP/gRPC on 4317.
    expect(portOf(config.exporters['otlp/jaeger']!.endpoint)).toBe(4317);
    expect(config.service.pipelines.metrics!.exporters).toEqual(['prometheus']);
  });

  it(
    `Loki ${LOKI_VERSION}’s own -verify-config accepts deploy/loki/config.yaml, the version the compose file runs`,
    async () => {
      const model = await project('observability');
      const loki = service(model, 'loki');
      expect(loki.image).toBe(`grafana/loki:${LOKI_VERSION.replace(/^v/, '')}`);
      expect(hostPathOf(loki, commandFlag(loki, '-config.file')!)).toBe(LOKI_CONFIG);
      const binary = await ensureLokiBinary();
      await expect(run(binary, [`-config.file=${LOKI_CONFIG}`, '-verify-config'], { timeout: TOOL_TIMEOUT_MS })).resolves.toBeDefined();
    },
    LOKI_BUILD_TIMEOUT_MS,
  );

  it('Alloy reads the gateway container’s JSON lines and pushes them to the compose Loki (checked by structure: no Alloy binary can be built here)', async () => {
    const model = await project('observability');
    const alloy = service(model, 'alloy');
    expect(hostPathOf(alloy, alloy.command!.at(-1)!)).toBe(ALLOY_CONFIG);
    const text = readFileSync(ALLOY_CONFIG, 'utf8');
    // Comments start with // at the start of a line or after a space (never inside a URL's scheme).
    const code = text.replace(/(^|\s)\/\/.*$/gm, '$1');
    expect(code.split('{').length).toBe(code.split('}').length);

    // Every `forward_to`/`targets`/`relabel_rules` reference names a component block of the file.
    const blocks = new Set([...code.matchAll(/^([a-z_]+(?:\.[a-z_]+)+)\s+"([^"]+)"\s*\{/gm)].map((match) => `${match[1]}.${match[2]}`));
    const references = [...code.matchAll(/\b((?:loki|discovery)\.[a-z_]+\.[a-z_]+)\.(?:receiver|targets|rules|output)\b/g)].map((match) => match[1]!);
    expect(references.length).toBeGreaterThan(0);
    expect(references.filter((reference) => !blocks.has(reference))).toEqual([]);

    // The gateway's containers, by the compose service label.
    expect(code).toContain('"com.docker.compose.service=bff"');
    expect(model.services.bff).toBeDefined();
    // The push URL is the compose Loki on the port it serves HTTP on.
    const push = /url\s*=\s*"([^"]+)"/.exec(code)?.[1];
    expect(push).toBeDefined();
    expectReachable(model, 'alloy', push!, 'loki');
    expect(portOf(push!)).toBe(readYaml<{ server: { http_listen_port: number } }>(LOKI_CONFIG).server.http_listen_port);
    expect(new URL(push!).pathname).toBe('/loki/api/v1/push');

    // The fields it extracts are the ones the gateway's logger writes, and its time format parses them.
    let line = '';
    const logger = createLogger({ level: 'info', format: 'json', service: 'bff-service', version: 'test' }, new Writable({ write: (chunk: Buffer, _encoding, done) => ((line += chunk.toString()), done()) }));
    logger.info('a line');
    const written = JSON.parse(line) as Record<string, unknown>;
    expect(typeof written.level).toBe('string');
    expect(new Date(String(written.time)).toISOString()).toBe(written.time);
    expect(code).toMatch(/level\s*=\s*"level"/);
    expect(code).toMatch(/time\s*=\s*"time"/);
    expect(code).toMatch(/format\s*=\s*"RFC3339Nano"/);
  });

  it('Grafana’s datasources are compose services it can reach, and the links between traces and logs name datasources that exist', async () => {
    const model = await project('observability');
    const grafana = service(model, 'grafana');
    const provisioning = hostPathOf(grafana, '/etc/grafana/provisioning');
    expect(provisioning).toBe(GRAFANA_PROVISIONING);
    type Datasource = { name: string; uid?: string; type: string; url: string; jsonData?: Record<string, unknown> };
    const datasources = readdirSync(join(provisioning, 'datasources'))
      .filter((name) => name.endsWith('.yml'))
      .flatMap((name) => readYaml<{ apiVersion: number; datasources: Datasource[] }>(join(provisioning, 'datasources', name)).datasources);
    expect(datasources.map((datasource) => datasource.type).sort()).toEqual(['jaeger', 'loki', 'prometheus']);

    const listenPorts: Record<string, number> = {
      prometheus: 9090,
      // Jaeger's built-in configuration serves its query API and UI on 16686.
      jaeger: 16686,
      loki: readYaml<{ server: { http_listen_port: number } }>(LOKI_CONFIG).server.http_listen_port,
    };
    for (const datasource of datasources) {
      const host = new URL(datasource.url).hostname;
      expectReachable(model, 'grafana', datasource.url, host);
      expect({ datasource: datasource.name, port: portOf(datasource.url) }).toEqual({ datasource: datasource.name, port: listenPorts[host] });
    }

    const uids = new Set(datasources.map((datasource) => datasource.uid).filter(Boolean));
    const jaeger = datasources.find((datasource) => datasource.type === 'jaeger')!;
    const loki = datasources.find((datasource) => datasource.type === 'loki')!;
    const tracesToLogs = jaeger.jsonData?.tracesToLogsV2 as { datasourceUid: string; query: string };
    expect(uids.has(tracesToLogs.datasourceUid) && tracesToLogs.datasourceUid === loki.uid).toBe(true);
    // The log query selects the labels Alloy sets: the compose service of the gateway.
    expect(tracesToLogs.query).toContain('{service="bff"}');
    const derivedFields = loki.jsonData?.derivedFields as Array<{ datasourceUid: string; matcherRegex: string }>;
    expect(derivedFields.map((field) => [field.matcherRegex, field.datasourceUid])).toEqual([['trace_id', jaeger.uid]]);
  });

  it('Grafana’s dashboard provider reads the directory the repository’s dashboards are mounted at', async () => {
    const model = await project('observability');
    const grafana = service(model, 'grafana');
    const providers = readYaml<{ providers: Array<{ options: { path: string } }> }>(join(GRAFANA_PROVISIONING, 'dashboards', 'bff-gateway.yml')).providers;
    expect(providers.map((provider) => hostPathOf(grafana, provider.options.path))).toEqual([join(REPO_ROOT, 'dashboards')]);
  });
});
