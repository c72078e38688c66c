import { createServer, type Server } from 'node:net';
import { ProcessStartError } from './child-process';

// getFreePort releases the port before the server binds it, so another process can win the race.
const START_ATTEMPTS = 3;

/**
 * Asks the kernel for a free TCP port on 127.0.0.1.
 *
 * The port is released before it is returned, so another process could take
 * it in between; callers that start a server on it should expect the rare
 * EADDRINUSE and retry with a new port (`withFreePort`). A server in this
 * process takes a `reservePort` instead, which stays bound until it listens.
 */
export function getFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      if (address === null || typeof address === 'string') {
        server.close();
        reject(new Error(`unexpected listen address: ${String(address)}`));
        return;
      }
      const { port } = address;
      server.close((err) => (err ? reject(err) : resolve(port)));
    });
  });
}

/**
 * Runs `start` with a free port, and again with a new one when another
 * process took the port first (a `ProcessStartError` with `isPortInUse`).
 * Any other failure is thrown at once.
 */
export async function withFreePort<T>(start: (port: number) => Promise<T>): Promise<T> {
  let lastError: unknown;
  for (let attempt = 0; attempt < START_ATTEMPTS; attempt += 1) {
    try {
      return await start(await getFreePort());
    } catch (error) {
      lastError = error;
      if (!(error instanceof ProcessStartError) || !error.isPortInUse) throw error;
    }
  }
  throw lastError;
}

/**
 * A free loopback port that stays bound, and listening, until a server takes
 * it over: for a server whose URL others must know before it can start (a
 * gateway's PUBLIC_URL, its redirect URI at the IdP), so that no other process
 * can take the port in between. Connections that arrive before the hand-over
 * are closed.
 */
export interface ReservedPort {
  readonly port: number;
  /**
   * Makes `server` listen on the reserved socket (`server.listen(handle)`);
   * from then on the port is `server`'s, and closing it frees the port. Once only.
   */
  handOver(server: Server, backlog?: number): Promise<void>;
  /** Frees the port when no server took it over; does nothing after `handOver`. Idempotent. */
  release(): Promise<void>;
}

/** Binds a free port on 127.0.0.1 and keeps it until `handOver` or `release`. */
export async function reservePort(): Promise<ReservedPort> {
  const holder = createServer((socket) => socket.destroy());
  // A reservation alone does not keep the worker alive; the server it is handed to does (ref() after the hand-over).
  holder.unref();
  await new Promise<void>((resolve, reject) => {
    holder.once('error', reject);
    holder.listen(0, '127.0.0.1', () => {
      holder.off('error', reject);
      resolve();
    });
  });
  const address = holder.address();
  if (address === null || typeof address === 'string') {
    holder.close();
    throw new Error(`unexpected listen address: ${String(address)}`);
  }
  let isHandedOver = false;
  let released: Promise<void> | undefined;
  return {
    port: address.port,
    handOver(server, backlog) {
      if (isHandedOver || released) throw new Error(`port ${address.port} was already handed over or released`);
      isHandedOver = true;
      // The listening socket itself changes owner: it is never closed and bound again, so the port is never free.
      return new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(holder, backlog, () => {
          server.off('error', reject);
          server.ref();
          resolve();
        });
      });
    },
    release() {
      if (isHandedOver) return Promise.resolve();
      released ??= new Promise<void>((resolve) => holder.close(() => resolve()));
      return released;
    },
  };
}
