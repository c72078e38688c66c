// The floor (bench/servers/bare-node.mjs, unchanged) with the event-loop probes of probes.mjs,
// answered over IPC on 'stats', so a stall of the floor can be told from one of the machine.
import './bare-node.mjs';
import { startProbes } from './probes.mjs';

const probes = startProbes();
process.on('message', (message) => {
  if (message === 'exit') process.exit(0);
  if (message === 'stats') process.send?.(probes.read());
});
