import { createCipheriv, createDecipheriv, createHash, createHmac, createSecretKey, hkdfSync, randomBytes, type KeyObject } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { decodeSession, encodeSession } from './session-codec';
import type { StoredSession } from './session-data';

/**
 * The envelope of a sealed session record, in Redis as a binary string:
 *
 *   version (1 byte, 0x01) | key id (4) | nonce (12) | AES-256-GCM ciphertext | tag (16)
 *
 * The plaintext is the compact record of session-codec.ts. The additional
 * authenticated data are the version, the key id and the session id, so a
 * record copied under another session's key does not open there. Anything
 * else under a session key (the connect-redis JSON of earlier versions, a
 * record sealed with a retired secret, a tampered one) opens to nothing: the
 * session is treated as gone and its user logs in again.
 */
const VERSION = 0x01;
const KEY_ID_BYTES = 4;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const HEADER_BYTES = 1 + KEY_ID_BYTES;
/** Bytes the envelope adds to the compact record. */
export const SEALING_OVERHEAD_BYTES = HEADER_BYTES + NONCE_BYTES + TAG_BYTES;

/** Opened records remembered per session id: enough for the sessions one replica serves in a minute. */
const DEFAULT_OPENED_CACHE_ENTRIES = 10_000;

/** What a back-channel logout index is keyed on. */
export type IndexedClaim = 'sid' | 'sub';

interface SessionKey {
  readonly id: Buffer;
  /** KeyObjects: a raw key would be imported again on every call, which costs more than the AES or the HMAC itself. */
  readonly encryption: KeyObject;
  /** HMAC key of the back-channel logout indexes: they must be findable, but hold no claim in clear. */
  readonly indexing: KeyObject;
}

/**
 * Seals whole session records (tokens, profile, binding hashes, IdP session
 * id) with keys derived (HKDF-SHA-256) from SESSION_SECRET, which never reach
 * Redis: a Redis dump alone yields no token and no personal data, as
 * oauth2-proxy seals its whole session. The first secret seals, every secret
 * opens, so secrets rotate as the cookie signature does; the key id picks the
 * key without trial decryption.
 */
export class SessionSealer {
  private readonly keys: readonly SessionKey[];
  /**
   * Records already opened, by session id, with the sealed bytes they came
   * from: the same bytes under the same session id are the same record, so a
   * steady /verify reads Redis but decrypts and inflates only when the record
   * changed. Comparing the bytes costs less than a microsecond.
   */
  private readonly opened: LRUCache<string, { readonly sealed: Buffer; readonly record: StoredSession }>;

  constructor(secrets: readonly string[], options: { readonly openedCacheEntries?: number } = {}) {
    if (secrets.length === 0) throw new Error('SessionSealer needs at least one secret');
    this.keys = secrets.map((secret) => {
      const encryption = derive(secret, 'session-record-encryption-v1');
      return {
        id: createHash('sha256').update(encryption).digest().subarray(0, KEY_ID_BYTES),
        encryption: createSecretKey(encryption),
        indexing: createSecretKey(derive(secret, 'session-index-hmac-v1')),
      };
    });
    this.opened = new LRUCache({ max: options.openedCacheEntries ?? DEFAULT_OPENED_CACHE_ENTRIES });
  }

  seal(sessionId: string, record: StoredSession): Buffer {
    const key = this.keys[0] as SessionKey;
    const header = Buffer.allocUnsafe(HEADER_BYTES);
    header[0] = VERSION;
    key.id.copy(header, 1);
    const nonce = randomBytes(NONCE_BYTES);
    const cipher = createCipheriv('aes-256-gcm', key.encryption, nonce);
    cipher.setAAD(additionalData(header, sessionId));
    const ciphertext = Buffer.concat([cipher.update(encodeSession(record)), cipher.final()]);
    return Buffer.concat([header, nonce, ciphertext, cipher.getAuthTag()]);
  }

  /** Undefined when the bytes were not sealed for this session id by a current secret, or were changed since. */
  open(sessionId: string, sealed: Buffer): StoredSession | undefined {
    if (sealed.length < SEALING_OVERHEAD_BYTES || sealed[0] !== VERSION) return undefined;
    const cached = this.opened.get(sessionId);
    if (cached?.sealed.equals(sealed)) return cached.record;
    const record = this.decrypt(sessionId, sealed);
    // A copy: what a Redis client hands out can be a view of its whole read buffer, which must not stay alive here.
    if (record) this.opened.set(sessionId, { sealed: Buffer.from(sealed), record });
    return record;
  }

  /**
   * Keyed digests (HMAC-SHA-256) of a claim for the back-channel logout
   * indexes, one per secret, the sealing secret's first: entries are written
   * under the first and looked up (and removed) under every one.
   */
  indexDigests(claim: IndexedClaim, value: string): readonly Buffer[] {
    return this.keys.map((key) => createHmac('sha256', key.indexing).update(`${claim}\u0000${value}`, 'utf8').digest());
  }

  private decrypt(sessionId: string, sealed: Buffer): StoredSession | undefined {
    const header = sealed.subarray(0, HEADER_BYTES);
    const keyId = sealed.subarray(1, HEADER_BYTES);
    const nonce = sealed.subarray(HEADER_BYTES, HEADER_BYTES + NONCE_BYTES);
    const ciphertext = sealed.subarray(HEADER_BYTES + NONCE_BYTES, sealed.length - TAG_BYTES);
    const tag = sealed.subarray(sealed.length - TAG_BYTES);
    // Four bytes of id can collide between two configured secrets: then each is tried.
    for (const key of this.keys) {
      if (!key.id.equals(keyId)) continue;
      try {
        const decipher = createDecipheriv('aes-256-gcm', key.encryption, nonce);
        decipher.setAAD(additionalData(header, sessionId));
        decipher.setAuthTag(tag);
        return decodeSession(Buffer.concat([decipher.update(ciphertext), decipher.final()]));
      } catch {
        // Not this key's (or tampered with): the next candidate, or nothing.
      }
    }
    return undefined;
  }
}

/** A 32-byte key for `purpose`, derived (HKDF-SHA-256) from one SESSION_SECRET; each purpose gets its own key. */
export function deriveSessionKey(secret: string, purpose: string): Buffer {
  return derive(secret, purpose);
}

function derive(secret: string, purpose: string): Buffer {
  return Buffer.from(hkdfSync('sha256', secret, 'bff-gateway', purpose, 32));
}

function additionalData(header: Buffer, sessionId: string): Buffer {
  return Buffer.concat([header, Buffer.from(sessionId, 'utf8')]);
}
