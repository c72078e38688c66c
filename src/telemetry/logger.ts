import pino, { type Logger } from 'pino';
import { traceFields } from './trace-context';

export type { Logger };

/** Anything that could carry a credential is replaced before a line is written. */
const REDACTED_PATHS = [
  'req.headers.cookie',
  'req.headers.authorization',
  'res.headers["set-cookie"]',
  'headers.cookie',
  'headers.authorization',
  '*.access_token',
  '*.refresh_token',
  '*.id_token',
  '*.accessToken',
  '*.refreshToken',
  '*.idToken',
  '*.code',
  '*.client_secret',
  '*.password',
];

/** `destination` defaults to stdout; tests pass a stream to read what would be written. */
export function createLogger(
  options: { level: string; format: 'json' | 'pretty'; service: string; version: string },
  destination?: pino.DestinationStream,
): Logger {
  const settings: pino.LoggerOptions = {
    level: options.level,
    base: { service: options.service, version: options.version },
    timestamp: pino.stdTimeFunctions.isoTime,
    messageKey: 'message',
    formatters: { level: (label) => ({ level: label }) },
    mixin: traceFields,
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    ...(options.format === 'pretty' && !destination
      ? { transport: { target: 'pino-pretty', options: { messageKey: 'message', colorize: true } } }
      : {}),
  };
  return destination ? pino(settings, destination) : pino(settings);
}
