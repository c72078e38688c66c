import { setFlagsFromString } from 'node:v8';

/**
 * Young-generation collections (scavenges) on the main thread alone. V8
 * scavenges in parallel with helper threads sized by the machine's cores,
 * not by the CPU the process may use; when those cores are busy (a container
 * with a CPU quota, a shared host, the proxy beside the gateway), the main
 * thread waits for helpers that are not scheduled. Measured on /verify with 50
 * connections on a busy 2-core machine: scavenges of 20 to 36 ms, a third of
 * the young generation promoted, RSS at 350 MB and a p99 of 21 to 28 ms
 * (3 times the floor's); on the main thread alone, scavenges of about 1 ms,
 * RSS at 180 MB, the p99 at or below the floor's. The gateway's young
 * generation is mostly dead by the time it is collected, so one thread
 * scavenges it in about a millisecond. Called first, before the heap grows.
 */
export function scavengeOnMainThread(): void {
  setFlagsFromString('--no-parallel-scavenge');
}
