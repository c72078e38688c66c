import { isDeepStrictEqual } from 'node:util';
import type { Config, FrontendConfig } from '../config/config';
import type { BearerTokenVerifier } from '../oidc/bearer-token-verifier';
import type { IdentityProvider } from '../oidc/identity-provider';
import type { FrontendsResult } from '../config/frontends-file';
import type { DependencyCheck } from '../shared/dependency-check';
import type { Clock } from '../shared/clock';
import type { Logger } from '../telemetry/logger';
import type { GatewayMetrics } from '../telemetry/metrics';
import { FrontendSelector } from './frontend-selector';

/** What serving one frontend takes beyond its configuration (its IdP client, say); built by the composition root. */
export interface FrontendRuntime {
  readonly config: FrontendConfig;
  /** Resolves once it can serve logins (IdP metadata loaded); never rejects. */
  whenReady(): Promise<void>;
  close(): void;
}

/** A frontend as the gateway serves it: the app builds its routes from `view` and these clients. */
export interface GatewayFrontend extends FrontendRuntime {
  /** The whole configuration as this frontend sees it (frontendView). */
  readonly view: Config;
  readonly identityProvider: IdentityProvider;
  /** API clients' own JWTs on this frontend's `bearer: true` routes. */
  readonly bearerTokens: BearerTokenVerifier;
}

const RELOAD_RESULTS = ['applied', 'unchanged', 'refused'] as const;

export interface ReloadOutcome {
  readonly result: (typeof RELOAD_RESULTS)[number];
  readonly added: readonly string[];
  readonly removed: readonly string[];
  readonly changed: readonly string[];
  readonly problems: readonly string[];
}

interface ServedSet<T> {
  readonly all: readonly T[];
  readonly byName: ReadonlyMap<string, T>;
  readonly selector: FrontendSelector<T & FrontendRuntime>;
}

/**
 * The frontends being served, swapped whole on reload. A request selects its
 * frontend once and keeps that object to the end, so a reload never changes
 * what an in-flight request uses; sessions live in the shared store and are
 * untouched. A frontend whose configuration did not change keeps its runtime
 * (no new discovery, no lost refresh back-off).
 */
export class ServedFrontends<T extends FrontendRuntime> {
  private served: ServedSet<T>;
  private lastRefusal: { readonly at: number; readonly problems: readonly string[] } | undefined;
  private loadedAt: number;
  private reloading: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly deps: {
      readonly build: (config: FrontendConfig) => T;
      readonly file: string | undefined;
      /** How long a reload waits for new frontends' IdP metadata before serving them anyway. */
      readonly readyWaitMs: number;
      readonly metrics: GatewayMetrics;
      readonly logger: Logger;
      readonly clock: Clock;
    },
    initial: readonly FrontendConfig[],
  ) {
    this.served = this.serve(initial.map((config) => deps.build(config)));
    this.loadedAt = deps.clock.now();
    deps.metrics.frontendsServed.set(initial.length);
    // Every result exists from the start: a rate or an alert over it has a series before the first reload.
    for (const result of RELOAD_RESULTS) deps.metrics.configReloads.inc({ result }, 0);
  }

  get all(): readonly T[] {
    return this.served.all;
  }

  select(hostname: string | undefined, path: string): T | undefined {
    return this.served.selector.select(hostname, path);
  }

  /** The frontend served under `name` now, if any. */
  named(name: string): T | undefined {
    return this.served.byName.get(name);
  }

  /** Every frontend ready (tests and start-up wait on it). */
  async whenReady(): Promise<void> {
    await Promise.all(this.served.all.map((frontend) => frontend.whenReady()));
  }

  /**
   * Reads FRONTENDS_FILE (`read`) and applies it, or refuses it whole and keeps
   * serving what runs now. Logged, counted (`bff_config_reloads_total`) and
   * shown in /ready's `frontends` detail either way.
   */
  reload(read: () => FrontendsResult): Promise<ReloadOutcome> {
    // One after another: a change that arrives while one is applied waits for it, then reads the file as it is then.
    const outcome = this.reloading.then(() => this.apply(read()));
    this.reloading = outcome.catch(() => undefined);
    return outcome;
  }

  private async apply(read: FrontendsResult): Promise<ReloadOutcome> {
    if ('problems' in read) return this.refuse(read.problems);
    const current = new Map(this.served.all.map((frontend) => [frontend.config.name, frontend]));
    const kept: T[] = [];
    const built: T[] = [];
    for (const config of read.frontends) {
      const running = current.get(config.name);
      if (running && isDeepStrictEqual(running.config, config)) kept.push(running);
      else built.push(this.deps.build(config));
    }
    const next = [...kept, ...built];
    const names = new Set(read.frontends.map((config) => config.name));
    const retired = this.served.all.filter((frontend) => !next.includes(frontend));
    const outcome: ReloadOutcome = {
      result: built.length === 0 && retired.length === 0 ? 'unchanged' : 'applied',
      added: built.filter((frontend) => !current.has(frontend.config.name)).map((frontend) => frontend.config.name),
      changed: built.filter((frontend) => current.has(frontend.config.name)).map((frontend) => frontend.config.name),
      removed: [...current.keys()].filter((name) => !names.has(name)),
      problems: [],
    };
    // New IdP clients load their metadata before they take traffic, so a changed frontend never answers 503 meanwhile.
    await waitAtMost(Promise.all(built.map((frontend) => frontend.whenReady())), this.deps.readyWaitMs);
    this.served = this.serve(next);
    this.loadedAt = this.deps.clock.now();
    this.lastRefusal = undefined;
    for (const frontend of retired) frontend.close();
    this.deps.metrics.frontendsServed.set(next.length);
    this.deps.metrics.configReloads.inc({ result: outcome.result });
    this.deps.logger.info(
      { file: this.deps.file, added: outcome.added, changed: outcome.changed, removed: outcome.removed, frontends: next.length },
      `FRONTENDS_FILE reloaded: ${outcome.result}`,
    );
    return outcome;
  }

  /** `frontends` in /ready: what is served and whether the last reload was refused. Never decides readiness: the running set serves. */
  readonly check: DependencyCheck = {
    name: 'frontends',
    decidesReadiness: false,
    check: async () => {
      const names = this.served.all.map((frontend) => frontend.config.name).join(', ');
      const source = this.deps.file ? `from ${this.deps.file}, loaded ${new Date(this.loadedAt).toISOString()}` : 'from the environment';
      const refusal = this.lastRefusal
        ? `; reload refused ${new Date(this.lastRefusal.at).toISOString()}, still serving the earlier file: ${this.lastRefusal.problems.join('; ')}`
        : '';
      return { status: 'up', detail: `${names} ${source}${refusal}` };
    },
  };

  close(): void {
    for (const frontend of this.served.all) frontend.close();
  }

  private refuse(problems: readonly string[]): ReloadOutcome {
    this.lastRefusal = { at: this.deps.clock.now(), problems };
    this.deps.metrics.configReloads.inc({ result: 'refused' });
    for (const problem of problems) this.deps.logger.error({ file: this.deps.file, problem }, `FRONTENDS_FILE reload refused: ${problem}`);
    return { result: 'refused', added: [], removed: [], changed: [], problems };
  }

  private serve(all: readonly T[]): ServedSet<T> {
    return { all, byName: new Map(all.map((frontend) => [frontend.config.name, frontend])), selector: new FrontendSelector(all) };
  }
}

function waitAtMost(promise: Promise<unknown>, milliseconds: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, milliseconds);
    timer.unref();
    void promise.then(
      () => {
        clearTimeout(timer);
        resolve();
      },
      () => resolve(),
    );
  });
}
