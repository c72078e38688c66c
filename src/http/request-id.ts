import { uuidV7 } from '../shared/uuid-v7';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[1-8][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i;

/** A well-formed incoming id is kept (the proxy's, for correlation); anything else is replaced. */
export function requestIdFrom(incoming: string | string[] | undefined): string {
  return typeof incoming === 'string' && UUID.test(incoming) ? incoming.toLowerCase() : uuidV7();
}
