// Probes for the servers of bench/compare.mjs, read (and reset) over IPC with 'stats':
//   eventLoop    event-loop delay (perf_hooks histogram, 10 ms resolution): mean, p99, max in ms;
//                a stall of the whole process (a long task, a GC pause, the process not scheduled)
//                shows here as a large max
//   utilization  event-loop utilization since the last read (1 = the loop never waited for I/O)
//   redis        when given an ioredis client: commands written and awaiting their reply
//                (commandQueue), sampled every 10 ms, and the largest auto-pipeline batch waiting
// The cost is one 10 ms timer; nothing on the request path changes.
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';

export function startProbes({ redis } = {}) {
  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
  let utilizationMark = performance.eventLoopUtilization();
  let samples = 0;
  let queuedSum = 0;
  let queuedMax = 0;
  let pipelineMax = 0;
  const hasQueue = Boolean(redis?.commandQueue);
  if (hasQueue) {
    setInterval(() => {
      const queued = redis.commandQueue.length;
      samples += 1;
      queuedSum += queued;
      queuedMax = Math.max(queuedMax, queued);
      pipelineMax = Math.max(pipelineMax, redis.autoPipelineQueueSize ?? 0);
    }, 10).unref();
  }
  return {
    read() {
      const answer = {
        eventLoop: { meanMs: delay.mean / 1e6, p99Ms: delay.percentile(99) / 1e6, maxMs: delay.max / 1e6 },
        utilization: performance.eventLoopUtilization(utilizationMark).utilization,
        redis: hasQueue ? { queuedMean: samples ? queuedSum / samples : 0, queuedMax, autoPipelineMax: pipelineMax } : undefined,
      };
      delay.reset();
      utilizationMark = performance.eventLoopUtilization();
      samples = queuedSum = queuedMax = pipelineMax = 0;
      return answer;
    },
  };
}
