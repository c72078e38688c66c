import { z } from 'zod';
import { DependencyUnavailable } from '../errors/app-error';
import type { Breaker } from '../resilience/breaker';
import type { Clock } from '../shared/clock';
import type { Logger } from '../telemetry/logger';
import type { GatewayMetrics } from '../telemetry/metrics';
import type { AuthorizationInput, Authorizer } from './authorizer';
import { decisionKey, normaliseInput, type Decision, type DecisionCache } from './decision-cache';

/**
 * The only two answers that allow (SPEC section 4): OPA's Data API for a
 * boolean rule (`/v1/data/bff/allow`) or for the package (`/v1/data/bff`).
 * `z.literal(true)`: a string "true", a 1 or `{ "allow": "yes" }` do not allow.
 */
const allowingAnswer = z.object({
  result: z.union([z.literal(true), z.object({ allow: z.literal(true) })]),
});

/** The well-formed denials; any other answer is a deny too, but one worth a warning. */
const denyingAnswer = z.object({
  result: z.union([z.literal(false), z.object({ allow: z.literal(false) })]),
});

/** A decision is a few bytes; a PDP that sends more is broken, and reading it must not cost memory. */
const MAX_ANSWER_BYTES = 64 * 1024;
/** One warning per distinct problem per minute: a misconfigured PDP_URL must not flood the log from the hot path. */
const WARNING_INTERVAL_MS = 60_000;
const BREAKER_OPEN = 'circuit breaker open';

export interface OpaAuthorizerOptions {
  /** PDP_URL, OPA's Data API for the decision, e.g. `http://opa:8181/v1/data/bff/allow`. */
  readonly url: string;
  /** PDP_TIMEOUT_MS: the whole call, answer body included. */
  readonly timeoutMs: number;
  /** The 'pdp' breaker; its own timeout should sit a little above `timeoutMs`. */
  readonly breaker: Breaker;
  readonly cache: DecisionCache;
  readonly metrics: GatewayMetrics;
  readonly logger: Logger;
  readonly clock: Clock;
  /** Network I/O, swappable without mocking modules; global fetch by default. */
  readonly fetch?: typeof fetch;
}

/** The call went through but the answer cannot be a decision (5xx): the PDP is failing, not denying. */
class PdpFailed extends Error {
  override readonly name = 'PdpFailed';
}

/**
 * The PDP client for routes with `authz: pdp`: asks an OPA-compatible Data
 * API, allows only on a clear allow, denies on any other answer, and rejects
 * with DependencyUnavailable('pdp') when no answer can be had (timeout,
 * refused connection, 5xx, open breaker), so /verify answers 503 and never
 * 200. Decisions pass through a short cache keyed on the whole input.
 */
export class OpaAuthorizer implements Authorizer {
  private readonly fetch: typeof fetch;
  private lastError: string | undefined;
  private lastAnswerProblem: string | undefined;
  private lastLatencyMs: number | undefined;
  private readonly lastWarnedAt = new Map<string, number>();

  constructor(private readonly options: OpaAuthorizerOptions) {
    this.fetch = options.fetch ?? globalThis.fetch;
  }

  async allows(input: AuthorizationInput): Promise<boolean> {
    // The PDP is sent the very document the cache key is computed from.
    const normalised = normaliseInput(input);
    const labels = { resource: normalised.resource, action: normalised.action };
    let decision: Decision;
    try {
      decision = await this.options.cache.getOrDecide(decisionKey(normalised), () => this.askPdp(normalised));
    } catch (error) {
      this.options.metrics.authzRequests.inc({ ...labels, decision: 'error' });
      // Whatever went wrong, the caller must fail closed with a 503, never allow.
      throw error instanceof DependencyUnavailable ? error : new DependencyUnavailable('pdp', error);
    }
    this.options.metrics.authzRequests.inc({ ...labels, decision });
    return decision === 'allow';
  }

  status(): { readonly configured: boolean; readonly isHealthy: boolean; readonly lastError: string | undefined } {
    const lastError = this.options.breaker.isOpen ? `${BREAKER_OPEN} after: ${this.lastError ?? 'too many failures'}` : this.lastError;
    return { configured: true, isHealthy: lastError === undefined, lastError };
  }

  /** For the readiness detail: what the last answer looked like, without calling the PDP. */
  lastCall(): { readonly latencyMs: number | undefined; readonly answerProblem: string | undefined } {
    return { latencyMs: this.lastLatencyMs, answerProblem: this.lastAnswerProblem };
  }

  private async askPdp(input: AuthorizationInput): Promise<Decision> {
    try {
      const decision = await this.options.breaker.run(() => this.post(input));
      if (this.lastError !== undefined) this.options.logger.info({ dependency: 'pdp' }, 'the PDP answers again');
      this.lastError = undefined;
      return decision;
    } catch (error) {
      const description = describeFailure(error, this.options.timeoutMs);
      if (this.lastError === undefined) {
        this.options.logger.warn({ dependency: 'pdp', err: description }, 'the PDP did not answer: /verify answers 503 for routes with authz: pdp');
      }
      // An open breaker rejects without calling: keep the failure that opened it, it says more.
      if (description !== BREAKER_OPEN || this.lastError === undefined) this.lastError = description;
      throw error;
    }
  }

  /**
   * Whether the PDP answers at all, for the breaker's probe while it is open:
   * any HTTP answer below 500 to an empty input will do (it is no decision,
   * and nothing is cached or counted as one).
   */
  async answers(): Promise<void> {
    const response = await this.fetch(this.options.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: '{"input":{}}',
      redirect: 'manual',
      signal: AbortSignal.timeout(this.options.timeoutMs),
    });
    await response.body?.cancel().catch(() => undefined);
    if (response.status >= 500) throw new PdpFailed(`the PDP answered HTTP ${response.status}`);
    if (this.lastError !== undefined) this.options.logger.info({ dependency: 'pdp' }, 'the PDP answers again');
    this.lastError = undefined;
  }

  /** One real PDP call; runs only when the breaker lets it through, so the latency histogram counts real calls only. */
  private async post(input: AuthorizationInput): Promise<Decision> {
    const started = performance.now();
    try {
      const response = await this.fetch(this.options.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify({ input }),
        // A redirect is an answer that is not a decision (deny), not an invitation to post the subject elsewhere.
        redirect: 'manual',
        // Covers the body as well as the headers: a PDP that stalls mid-answer is a PDP that did not answer.
        signal: AbortSignal.timeout(this.options.timeoutMs),
      });
      if (response.status >= 500) {
        await response.body?.cancel().catch(() => undefined);
        throw new PdpFailed(`the PDP answered HTTP ${response.status}`);
      }
      return this.decisionOf(response.status, await readBounded(response, MAX_ANSWER_BYTES));
    } finally {
      const elapsedMs = performance.now() - started;
      this.lastLatencyMs = Math.round(elapsedMs * 100) / 100;
      this.options.metrics.authzLatency.observe({ resource: input.resource }, elapsedMs / 1000);
    }
  }

  /** Allow only on a 2xx carrying one of the two allowing shapes; everything else that arrived is a deny. */
  private decisionOf(status: number, body: string | undefined): Decision {
    if (status < 200 || status > 299) return this.malformed(`HTTP ${status}`);
    if (body === undefined) return this.malformed(`an answer over ${MAX_ANSWER_BYTES} bytes`);
    let document: unknown;
    try {
      document = JSON.parse(body);
    } catch {
      return this.malformed('an answer that is not JSON');
    }
    if (allowingAnswer.safeParse(document).success) return this.wellFormed('allow');
    if (denyingAnswer.safeParse(document).success) return this.wellFormed('deny');
    const hasResult = typeof document === 'object' && document !== null && 'result' in document;
    // OPA answers {} for an undefined document: PDP_URL names a rule that does not exist or a policy that is not loaded.
    return this.malformed(hasResult ? 'a result that is neither true nor { "allow": true }' : 'an answer without "result" (is PDP_URL the right rule?)');
  }

  private wellFormed(decision: Decision): Decision {
    this.lastAnswerProblem = undefined;
    return decision;
  }

  private malformed(problem: string): Decision {
    this.lastAnswerProblem = problem;
    const now = this.options.clock.now();
    const warnedAt = this.lastWarnedAt.get(problem);
    if (warnedAt === undefined || now - warnedAt >= WARNING_INTERVAL_MS || now < warnedAt) {
      this.lastWarnedAt.set(problem, now);
      this.options.logger.warn({ dependency: 'pdp', problem }, 'the PDP sent something that is not a decision: treated as deny');
    }
    return 'deny';
  }
}

/** The body as text, or undefined when it is larger than `maxBytes` (reading stops there). */
async function readBounded(response: Response, maxBytes: number): Promise<string | undefined> {
  if (!response.body) return '';
  if (Number(response.headers.get('content-length') ?? '0') > maxBytes) {
    await response.body.cancel().catch(() => undefined);
    return undefined;
  }
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel().catch(() => undefined);
      return undefined;
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** A short operator-facing reason, from the DependencyUnavailable down to the socket error. */
function describeFailure(error: unknown, timeoutMs: number): string {
  const chain: Error[] = [];
  for (let current: unknown = error; current instanceof Error && chain.length < 6; current = current.cause) chain.push(current);
  for (const link of chain) {
    const code = (link as NodeJS.ErrnoException).code;
    if (code === 'EOPENBREAKER') return BREAKER_OPEN;
    if (code === 'ETIMEDOUT' || link.name === 'TimeoutError') return `no answer within ${timeoutMs} ms`;
    if (link instanceof PdpFailed) return link.message;
  }
  const deepest = chain.at(-1);
  if (!deepest) return String(error);
  const code = (deepest as NodeJS.ErrnoException).code;
  if (typeof code !== 'string' || deepest.message.includes(code)) return deepest.message || 'unknown error';
  return deepest.message ? `${code}: ${deepest.message}` : code;
}
