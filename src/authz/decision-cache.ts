import { createHash } from 'node:crypto';
import type { Clock } from '../shared/clock';
import type { AuthorizationInput } from './authorizer';

/** What the PDP decided. Only these are cached; "no answer" never is. */
export type Decision = 'allow' | 'deny';

/**
 * The input in one canonical form: groups sorted (a copy), so that the same
 * person in the same groups is one cache entry whatever order the IdP listed
 * them in. The PDP is sent exactly this document, so the cache key covers
 * everything the PDP saw, no more and no less.
 */
export function normaliseInput(input: AuthorizationInput): AuthorizationInput {
  return {
    subject: { sub: input.subject.sub, groups: [...input.subject.groups].sort(), email: input.subject.email },
    resource: input.resource,
    action: input.action,
    method: input.method,
    path: input.path,
  };
}

/**
 * The cache key of a decision: a SHA-256 over every field of the
 * (normalised) input. Keying on less than the PDP saw is how a decision for
 * one subject or group ends up answering for another (an Oathkeeper advisory
 * came from exactly that), so nothing is left out. The fields are
 * JSON-encoded as an array before hashing, so no value can forge a field
 * boundary ("a|b" + "c" never equals "a" + "b|c"); hashing keeps every key
 * 43 characters however long the path or email.
 */
export function decisionKey(input: AuthorizationInput): string {
  const { subject } = normaliseInput(input);
  const fields = [subject.sub, subject.groups, subject.email ?? null, input.resource, input.action, input.method, input.path];
  return createHash('sha256').update(JSON.stringify(fields)).digest('base64url');
}

export interface DecisionCacheOptions {
  /** PDP_CACHE_TTL_SECONDS; 0 turns caching off (concurrent identical calls are still shared). */
  readonly ttlSeconds: number;
  /** Past this many entries the oldest is evicted. */
  readonly maxEntries: number;
  readonly clock: Clock;
}

interface Entry {
  readonly decision: Decision;
  readonly expiresAt: number;
}

/**
 * A short-lived, bounded cache of PDP decisions with single flight: while a
 * decision for a key is being fetched, further requests for the same key wait
 * for that one call instead of starting their own. Only allow and deny are
 * stored; a failed call is forgotten, so the next request asks again.
 */
export class DecisionCache {
  private readonly entries = new Map<string, Entry>();
  private readonly inFlight = new Map<string, Promise<Decision>>();
  private readonly ttlMs: number;

  constructor(private readonly options: DecisionCacheOptions) {
    this.ttlMs = options.maxEntries > 0 ? options.ttlSeconds * 1000 : 0;
  }

  get isEnabled(): boolean {
    return this.ttlMs > 0;
  }

  /** Entries held, expired ones included until they are looked up or evicted. */
  get size(): number {
    return this.entries.size;
  }

  /** The cached decision for `key`, else the one `decide` returns; concurrent misses share one `decide` call. */
  getOrDecide(key: string, decide: () => Promise<Decision>): Promise<Decision> {
    const cached = this.lookup(key);
    if (cached) return Promise.resolve(cached);
    const pending = this.inFlight.get(key);
    if (pending) return pending;
    const call = (async () => {
      try {
        const decision = await decide();
        this.remember(key, decision);
        return decision;
      } finally {
        this.inFlight.delete(key);
      }
    })();
    this.inFlight.set(key, call);
    return call;
  }

  private lookup(key: string): Decision | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    const remainingMs = entry.expiresAt - this.options.clock.now();
    // A clock that went backwards would otherwise stretch an entry's life past the TTL.
    if (remainingMs > 0 && remainingMs <= this.ttlMs) return entry.decision;
    this.entries.delete(key);
    return undefined;
  }

  private remember(key: string, decision: Decision): void {
    if (!this.isEnabled) return;
    // Re-inserting moves the key to the end, so the first key is always the oldest write.
    this.entries.delete(key);
    if (this.entries.size >= this.options.maxEntries) {
      const oldest = this.entries.keys().next();
      if (!oldest.done) this.entries.delete(oldest.value);
    }
    this.entries.set(key, { decision, expiresAt: this.options.clock.now() + this.ttlMs });
  }
}
