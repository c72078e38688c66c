import { Writable } from 'node:stream';
import { logLevel } from 'kafkajs';
import { kafkajsLogCreator, KAFKAJS_REPEAT_WINDOW_MS } from '../../src/events/kafkajs-log-creator';
import { createLogger } from '../../src/telemetry/logger';

function setUp() {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const logger = createLogger({ level: 'info', format: 'json', service: 'bff-service', version: '1.2.3' }, stream);
  let now = 1_000_000;
  const log = kafkajsLogCreator(logger, () => now)(logLevel.WARN);
  const entry = (message: string, level = logLevel.ERROR) => ({ namespace: 'Connection', level, label: 'ERROR', log: { timestamp: '', logger: 'kafkajs', message, error: 'ECONNREFUSED' } });
  return { lines, log, entry, advance: (ms: number) => (now += ms) };
}

describe('kafkajs log lines', () => {
  it('become JSON warnings through the gateway logger, with kafkajs level and error as fields', () => {
    const { lines, log, entry } = setUp();
    log(entry('Connection error'));
    expect(lines).toEqual([
      expect.objectContaining({ level: 'warn', message: 'kafkajs: Connection error', kafkajs: { namespace: 'Connection', level: 'error', error: 'ECONNREFUSED' } }),
    ]);
  });

  it('say the same thing at most once per window', () => {
    const { lines, log, entry, advance } = setUp();
    log(entry('Connection error'));
    advance(KAFKAJS_REPEAT_WINDOW_MS - 1);
    log(entry('Connection error'));
    log(entry('Another error'));
    advance(1);
    log(entry('Connection error'));
    expect(lines.map((line) => line.message)).toEqual(['kafkajs: Connection error', 'kafkajs: Another error', 'kafkajs: Connection error']);
  });

  it('leave out the warning about bounded retries of the idempotent producer, which the publisher makes up for', () => {
    const { lines, log, entry } = setUp();
    log(entry('Limiting retries for the idempotent producer. Please ensure enable.idempotence is set', logLevel.WARN));
    expect(lines).toEqual([]);
  });
});
