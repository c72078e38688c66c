import { createHmac, createSecretKey, type KeyObject } from 'node:crypto';
import { deriveSessionKey } from './session-sealer';

/** 16 bytes of HMAC, base64url: 22 characters. */
const HANDLE = /^[A-Za-z0-9_-]{22}$/;
const HANDLE_BYTES = 16;

/**
 * The name a session has in its user's list of sessions (GET /auth/sessions):
 * 128 bits of HMAC-SHA-256 of the session id, under a key derived from the
 * first SESSION_SECRET for this purpose alone. A handle cannot be turned back
 * into the id, so it opens nothing as a cookie (which needs the id and its
 * signature); and it is only ever looked up among the requesting user's own
 * sessions, so another user's handle is just unknown. The same session keeps
 * its handle across replicas and requests; after a secret rotation handles
 * change, and a list read before it is read again.
 */
export class SessionHandles {
  private readonly key: KeyObject;

  constructor(secrets: readonly string[]) {
    const sealing = secrets[0];
    if (sealing === undefined) throw new Error('SessionHandles needs at least one secret');
    this.key = createSecretKey(deriveSessionKey(sealing, 'session-handle-v1'));
  }

  handleOf(sessionId: string): string {
    return createHmac('sha256', this.key).update(sessionId, 'utf8').digest().subarray(0, HANDLE_BYTES).toString('base64url');
  }
}

export function isWellFormedHandle(candidate: string): boolean {
  return HANDLE.test(candidate);
}
