import { randomUUID } from 'node:crypto';

/** The timestamp part of the last id ("tttttttt-tttt-7"): at thousands of ids a second most share their millisecond. */
let lastMillisecond = -1;
let lastPrefix = '';

/**
 * A UUID v7 (RFC 9562): the millisecond timestamp in the first 48 bits, then
 * random bits taken from randomUUID(), whose pooled entropy is far cheaper
 * per call than asking for fresh random bytes on every request. From
 * character 15 on, a v4 UUID is random bits with the RFC 9562 variant, which
 * is what a v7 has there too.
 */
export function uuidV7(now = Date.now()): string {
  if (now !== lastMillisecond) {
    const time = now.toString(16).padStart(12, '0');
    lastPrefix = `${time.slice(0, 8)}-${time.slice(8, 12)}-7`;
    lastMillisecond = now;
  }
  return lastPrefix + randomUUID().slice(15);
}
