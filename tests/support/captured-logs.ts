import pino from 'pino';

/** One JSON log line of the gateway, parsed. */
export interface LogRecord {
  readonly level: number;
  readonly msg?: string;
  readonly security_event?: { readonly type: string; readonly severity: string; readonly reason?: string };
  readonly [field: string]: unknown;
}

/** pino's numeric levels. */
export const LOG_LEVEL = { debug: 20, info: 30, warn: 40, error: 50 } as const;

/**
 * A logger for `startGateway({ logger })` that keeps what the gateway logs,
 * security events included (without Kafka they are log lines): tests count
 * them instead of guessing from side effects.
 */
export class CapturedLogs {
  readonly records: LogRecord[] = [];
  readonly logger: pino.Logger;

  constructor(level: pino.Level = 'info') {
    // A plain object with write() is written to synchronously, one line per record.
    this.logger = pino({ level }, { write: (line: string) => void this.records.push(JSON.parse(line) as LogRecord) });
  }

  /** Security events of `type` logged so far, optionally since record index `from`. */
  events(type: string, from = 0): LogRecord['security_event'][] {
    return this.records
      .slice(from)
      .map((record) => record.security_event)
      .filter((event) => event?.type === type);
  }

  /** Lines at `level` or above logged since record index `from`. */
  linesAtLeast(level: number, from = 0): LogRecord[] {
    return this.records.slice(from).filter((record) => record.level >= level);
  }

  /** Where the next record will go: pass it as `from` to look only at what comes after. */
  mark(): number {
    return this.records.length;
  }
}
