import { randomUUID } from 'node:crypto';

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
