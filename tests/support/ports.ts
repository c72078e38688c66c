import { createServer } from 'node:net';
import { ProcessStartError } from './child-process';

// getFreePort releases the port before the server binds it, so another process can win the race.
const START_ATTEMPTS = 3;

/**
 * Asks the kernel for a free TCP port on 127.0.0.1.
 *
 * The port is released before it is returned, so another process could take
 * it in between; callers that start a server on it should expect the rare
 * EADDRINUSE and retry with a new port (`withFreePort`).
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
