import { Writable } from 'node:stream';
import { createLogger } from '../../src/telemetry/logger';
import { routeProcessWarnings, type WarningEmitter } from '../../src/telemetry/process-warnings';

/** A stand-in for `process`: records what reaches Node's own emitWarning, and the JSON lines logged instead. */
function setUp() {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const logger = createLogger({ level: 'info', format: 'json', service: 'bff-service', version: '1.2.3' }, stream);
  const passedOn: unknown[][] = [];
  const original = function emitWarning(...args: unknown[]): void {
    passedOn.push(args);
  };
  const target: WarningEmitter = { emitWarning: original };
  const restore = routeProcessWarnings(logger, target);
  return { target, original, restore, lines, passedOn };
}

describe('process warnings', () => {
  it.each([
    ['a message and a type', ['-5 is a negative number.\nTimeout duration was set to 1.', 'TimeoutNegativeWarning']],
    ['a message and options', ['-5 is a negative number.', { type: 'TimeoutNegativeWarning' }]],
    ['an Error', [Object.assign(new Error('-5 is a negative number.'), { name: 'TimeoutNegativeWarning' })]],
  ])('a TimeoutNegativeWarning given as %s becomes one JSON log line and no stderr text', (_description, args) => {
    const { target, lines, passedOn } = setUp();
    (target.emitWarning as (...rest: unknown[]) => void)(...args);
    expect(passedOn).toEqual([]);
    expect(lines).toEqual([
      expect.objectContaining({ level: 'warn', message: 'process warning TimeoutNegativeWarning', process_warning: expect.objectContaining({ type: 'TimeoutNegativeWarning' }) }),
    ]);
    expect((lines[0]!.process_warning as { message: string }).message).toContain('-5 is a negative number.');
  });

  it('names where the warning came from', () => {
    const { target, lines } = setUp();
    target.emitWarning('-1 is a negative number.', 'TimeoutNegativeWarning');
    expect((lines[0]!.process_warning as { stack: string[] }).stack[0]).toContain('process-warnings.test.ts');
  });

  it.each([
    ['a deprecation with a code', ['Buffer() is deprecated', 'DeprecationWarning', 'DEP0005']],
    ['a plain warning', ['something odd']],
    ['an experimental feature', ['VM Modules is an experimental feature', { type: 'ExperimentalWarning' }]],
    ['an Error', [new Error('a warning as an Error')]],
    ['a timeout that overflows', ['2147483648 does not fit into a 32-bit signed integer.', 'TimeoutOverflowWarning']],
  ])('every other warning (%s) reaches Node unchanged and is not logged', (_description, args) => {
    const { target, lines, passedOn } = setUp();
    (target.emitWarning as (...rest: unknown[]) => void)(...args);
    expect(passedOn).toEqual([args]);
    expect(lines).toEqual([]);
  });

  it('puts the original emitWarning back when asked', () => {
    const { target, original, restore } = setUp();
    restore();
    expect(target.emitWarning).toBe(original);
  });
});
