import type { Logger } from './logger';

/** The part of `process` this module touches; tests pass their own. */
export interface WarningEmitter {
  emitWarning: (warning: string | Error, ...rest: any[]) => void;
}

/** Warnings that go to the JSON log instead of Node's plain-text stderr line. */
const ROUTED_WARNINGS = new Set(['TimeoutNegativeWarning']);
/** A stack frame inside kafkajs: the known source of the routed warning. */
const KAFKAJS_FRAME = /[\\/]node_modules[\\/]kafkajs[\\/]/;
const CALLER_FRAMES = 12;

/**
 * Routes TimeoutNegativeWarning into `logger`, so that stdout and stderr
 * carry only JSON while Kafka comes and goes. kafkajs 2.2.4 schedules a check
 * of its request queue with a negative delay when it is not throttled
 * (kafkajs issue #1751); Node 24 warns once per process and uses 1 ms, which
 * is what kafkajs means. Coming from kafkajs it is logged at info as a known
 * issue; from anywhere else at warn, with where it came from.
 *
 * Every other warning goes to Node's own `emitWarning` untouched: printed to
 * stderr as before and seen by every 'warning' listener. Returns a function
 * that puts the original back.
 */
export function routeProcessWarnings(logger: Logger, target: WarningEmitter = process): () => void {
  const original = target.emitWarning;
  const routed = function emitWarning(this: unknown, warning: string | Error, ...rest: any[]): void {
    const type = typeOf(warning, rest[0]);
    if (!ROUTED_WARNINGS.has(type)) {
      Reflect.apply(original, this, [warning, ...rest]);
      return;
    }
    const frames = callerFrames();
    const isKafkajs = frames.some((frame) => KAFKAJS_FRAME.test(frame));
    const fields = { process_warning: { type, message: typeof warning === 'string' ? warning : warning.message, stack: frames } };
    if (isKafkajs) logger.info({ ...fields, known_issue: 'kafkajs#1751' }, `process warning ${type} from kafkajs: a negative timeout, run after 1 ms`);
    else logger.warn(fields, `process warning ${type}`);
  };
  target.emitWarning = routed;
  return () => {
    if (target.emitWarning === routed) target.emitWarning = original;
  };
}

/** The warning's type as Node decides it: an Error's name, else the type argument or `options.type`, else "Warning". */
function typeOf(warning: string | Error, typeOrOptions: unknown): string {
  if (warning instanceof Error) return warning.name;
  if (typeof typeOrOptions === 'string') return typeOrOptions;
  if (typeof typeOrOptions === 'object' && typeOrOptions !== null && typeof (typeOrOptions as { type?: unknown }).type === 'string') {
    return (typeOrOptions as { type: string }).type;
  }
  return 'Warning';
}

/** Where the warning was raised from, without this module's own frame or Node's internals. */
function callerFrames(): string[] {
  const holder: { stack?: string } = {};
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = CALLER_FRAMES;
  Error.captureStackTrace(holder, callerFrames);
  Error.stackTraceLimit = limit;
  return (holder.stack ?? '')
    .split('\n')
    .slice(2)
    .map((line) => line.trim().replace(/^at /, ''))
    .filter((frame) => !frame.includes('node:internal') && frame.length > 0);
}
