import { Writable } from 'node:stream';
import { createLogger } from '../../src/telemetry/logger';

function capture() {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const logger = createLogger({ level: 'info', format: 'json', service: 'bff-service', version: '1.2.3' }, stream);
  return { logger, lines };
}

describe('the JSON logger', () => {
  it('redacts cookies, authorization headers and tokens wherever they appear', () => {
    const { logger, lines } = capture();
    logger.info(
      {
        req: { headers: { cookie: 'bff-session=s%3Asecret', authorization: 'Bearer eyJ.secret' } },
        headers: { cookie: 'a=b', authorization: 'Basic c2VjcmV0' },
        grant: { access_token: 'at-secret', refresh_token: 'rt-secret', id_token: 'id-secret', code: 'code-secret' },
        tokens: { accessToken: 'at2', refreshToken: 'rt2', idToken: 'id2' },
      },
      'something happened',
    );
    const written = JSON.stringify(lines);
    for (const secret of ['s%3Asecret', 'eyJ.secret', 'c2VjcmV0', 'at-secret', 'rt-secret', 'id-secret', 'code-secret', 'at2', 'rt2', 'id2']) {
      expect(written).not.toContain(secret);
    }
    expect(written).toContain('[redacted]');
  });

  it('writes one JSON object per line with level, time, service and version', () => {
    const { logger, lines } = capture();
    logger.warn({ request_id: '0190a3d2-7c4e-7b1a-9f3e-1234567890ab' }, 'careful');
    expect(lines[0]).toMatchObject({ level: 'warn', service: 'bff-service', version: '1.2.3', message: 'careful', request_id: '0190a3d2-7c4e-7b1a-9f3e-1234567890ab' });
    expect(typeof lines[0]!.time).toBe('string');
  });
});
