import type { Logger } from './logger';
import type { GatewayMetrics } from './metrics';

/**
 * A periodic job that reports every run in bff_background_tasks_total and
 * bff_background_task_duration_seconds. Runs never overlap; the timer does
 * not keep the process alive.
 */
export class BackgroundTask {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(
    private readonly taskType: string,
    private readonly intervalMs: number,
    private readonly work: () => Promise<void>,
    private readonly metrics: GatewayMetrics,
    private readonly logger: Logger,
  ) {}

  /** The first run waits one interval: at start-up the store is still connecting. */
  start(): void {
    this.timer = setInterval(() => void this.runOnce(), this.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  runOnce(): Promise<void> {
    this.running ??= this.measure().finally(() => (this.running = undefined));
    return this.running;
  }

  private async measure(): Promise<void> {
    const started = performance.now();
    try {
      await this.work();
      this.metrics.backgroundTasks.inc({ task_type: this.taskType, status: 'success' });
    } catch (error) {
      this.metrics.backgroundTasks.inc({ task_type: this.taskType, status: 'failure' });
      this.logger.warn({ task: this.taskType, err: (error as Error).message }, 'background task failed');
    } finally {
      this.metrics.backgroundTaskDuration.observe({ task_type: this.taskType }, (performance.now() - started) / 1000);
    }
  }
}
