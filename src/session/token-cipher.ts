import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from 'node:crypto';
import { BoundedCache } from '../support/bounded-cache';
import type { TokenSet } from './session-data';

const VERSION = 'v1';
const IV_BYTES = 12;
const TAG_BYTES = 16;
/** The base64url characters at the end of a sealed value that hold the GCM tag. */
const TAG_KEY_CHARS = 22;

interface Key {
  readonly id: string;
  readonly material: Buffer;
}

/**
 * AES-256-GCM for the tokens at rest. Keys are derived (HKDF) from the
 * session secrets, never stored in Redis; the first secret seals, every
 * secret opens, so secrets rotate like the cookie signature does. The key id
 * travels with the ciphertext to pick the right key without trial decryption.
 */
export class TokenCipher {
  private readonly keys: readonly Key[];
  /**
   * Opened token sets by ciphertext. A ciphertext names its plaintext exactly
   * (GCM authenticates it), so this never serves stale tokens: a refresh
   * produces a new ciphertext. It keeps AES off the /verify hot path.
   */
  private readonly opened = new BoundedCache<string, TokenSet>(10_000);

  constructor(secrets: readonly string[]) {
    if (secrets.length === 0) throw new Error('TokenCipher needs at least one secret');
    this.keys = secrets.map((secret) => {
      const material = Buffer.from(hkdfSync('sha256', secret, 'bff-gateway', 'token-encryption-v1', 32));
      return { id: createHash('sha256').update(material).digest('base64url').slice(0, 8), material };
    });
  }

  seal(tokens: TokenSet): string {
    const key = this.keys[0] as Key;
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', key.material, iv);
    const body = Buffer.concat([cipher.update(JSON.stringify(tokens), 'utf8'), cipher.final(), cipher.getAuthTag()]);
    return `${VERSION}.${key.id}.${iv.toString('base64url')}.${body.toString('base64url')}`;
  }

  /** Undefined when the value was not sealed by any current key or was tampered with. */
  open(sealed: string): TokenSet | undefined {
    return this.opened.get(cacheKey(sealed)) ?? this.decrypt(sealed);
  }

  private decrypt(sealed: string): TokenSet | undefined {
    const [version, keyId, ivText, bodyText] = sealed.split('.');
    if (version !== VERSION || !ivText || !bodyText) return undefined;
    const key = this.keys.find((candidate) => candidate.id === keyId);
    if (!key) return undefined;
    try {
      const body = Buffer.from(bodyText, 'base64url');
      const decipher = createDecipheriv('aes-256-gcm', key.material, Buffer.from(ivText, 'base64url'));
      decipher.setAuthTag(body.subarray(body.length - TAG_BYTES));
      const plain = Buffer.concat([decipher.update(body.subarray(0, body.length - TAG_BYTES)), decipher.final()]);
      return this.opened.set(cacheKey(sealed), Object.freeze(JSON.parse(plain.toString('utf8')) as TokenSet));
    } catch {
      return undefined;
    }
  }
}

/**
 * The random IV and the GCM tag identify a ciphertext; hashing the whole
 * kilobyte-long string on every lookup would cost more than it saves.
 */
function cacheKey(sealed: string): string {
  return `${sealed.slice(0, sealed.lastIndexOf('.'))}.${sealed.slice(-TAG_KEY_CHARS)}`;
}
