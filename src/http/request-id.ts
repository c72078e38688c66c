import { randomUUID } from 'node:crypto';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[1-8][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i;

/**
 * A UUID v7 (RFC 9562): the millisecond timestamp in the first 48 bits, then
 * random bits taken from randomUUID(), whose pooled entropy is far cheaper
 * per call than asking for fresh random bytes on every request.
 */
export function uuidV7(now = Date.now()): string {
  const random = randomUUID();
  const time = now.toString(16).padStart(12, '0');
  return `${time.slice(0, 8)}-${time.slice(8, 12)}-7${random.slice(15, 18)}-${random.slice(19, 23)}-${random.slice(24)}`;
}

/** A well-formed incoming id is kept (the proxy's, for correlation); anything else is replaced. */
export function requestIdFrom(incoming: string | string[] | undefined): string {
  return typeof incoming === 'string' && UUID.test(incoming) ? incoming.toLowerCase() : uuidV7();
}
