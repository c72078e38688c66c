import { LabelLimiter } from '../../src/telemetry/metrics';

describe('LabelLimiter', () => {
  it('passes values through up to the limit', () => {
    const limiter = new LabelLimiter(3);
    expect(['a', 'b', 'c'].map((value) => limiter.limit(value))).toEqual(['a', 'b', 'c']);
  });

  it('counts further distinct values as "other"', () => {
    const limiter = new LabelLimiter(2);
    ['a', 'b'].forEach((value) => limiter.limit(value));
    expect(['c', 'd'].map((value) => limiter.limit(value))).toEqual(['other', 'other']);
  });

  it('keeps the label of a value it already knows after the limit is reached', () => {
    const limiter = new LabelLimiter(2);
    ['a', 'b', 'c'].forEach((value) => limiter.limit(value));
    expect(['a', 'b'].map((value) => limiter.limit(value))).toEqual(['a', 'b']);
  });

  it('does not let a repeated value use up the limit', () => {
    const limiter = new LabelLimiter(2);
    ['a', 'a', 'a'].forEach((value) => limiter.limit(value));
    expect(limiter.limit('b')).toBe('b');
  });

  it('never admits a value first seen after the limit, however often it comes', () => {
    const limiter = new LabelLimiter(1);
    limiter.limit('a');
    expect([limiter.limit('late'), limiter.limit('late')]).toEqual(['other', 'other']);
  });

  it('yields at most limit + 1 distinct labels for many distinct values', () => {
    const limiter = new LabelLimiter(10);
    const labels = new Set(Array.from({ length: 1000 }, (_, i) => limiter.limit(`user-${i}`)));
    expect(labels.size).toBe(11);
  });

  it('counts everything as "other" with a limit of zero', () => {
    expect(new LabelLimiter(0).limit('a')).toBe('other');
  });
});
