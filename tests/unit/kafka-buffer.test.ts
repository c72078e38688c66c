import { DropOldestBuffer } from '../../src/events/drop-oldest-buffer';

function filled(capacity: number, entries: number[]): { buffer: DropOldestBuffer<number>; dropped: number } {
  const buffer = new DropOldestBuffer<number>(capacity);
  let dropped = 0;
  for (const entry of entries) dropped += buffer.push(entry);
  return { buffer, dropped };
}

function drain(buffer: DropOldestBuffer<number>): number[] {
  const out: number[] = [];
  while (buffer.waitingCount > 0) {
    out.push(...buffer.takeBatch(1000));
    buffer.acknowledge();
  }
  return out;
}

describe('the drop-oldest buffer of the Kafka publisher', () => {
  it('keeps everything, in order, while under capacity', () => {
    const { buffer, dropped } = filled(5, [1, 2, 3]);
    expect(dropped).toBe(0);
    expect(buffer.size).toBe(3);
    expect(drain(buffer)).toEqual([1, 2, 3]);
  });

  it('when full, drops the oldest entry for each new one and says how many it dropped', () => {
    const { buffer, dropped } = filled(3, [1, 2, 3, 4, 5]);
    expect(dropped).toBe(2);
    expect(buffer.size).toBe(3);
    expect(drain(buffer)).toEqual([3, 4, 5]);
  });

  it('hands out batches of at most the asked size, oldest first', () => {
    const { buffer } = filled(10, [1, 2, 3, 4, 5]);
    expect(buffer.takeBatch(2)).toEqual([1, 2]);
    expect(buffer.inFlightCount).toBe(2);
    expect(buffer.size).toBe(5);
    expect(buffer.acknowledge()).toBe(2);
    expect(buffer.size).toBe(3);
    expect(buffer.takeBatch(2)).toEqual([3, 4]);
  });

  it('puts a failed batch back at the front, in order, so nothing is lost', () => {
    const { buffer } = filled(10, [1, 2, 3, 4]);
    buffer.takeBatch(2);
    buffer.push(5);
    buffer.requeue();
    expect(buffer.size).toBe(5);
    expect(drain(buffer)).toEqual([1, 2, 3, 4, 5]);
  });

  it('never drops the batch in flight: overflow drops the oldest waiting entry instead', () => {
    const { buffer } = filled(4, [1, 2, 3, 4]);
    expect(buffer.takeBatch(2)).toEqual([1, 2]);
    expect(buffer.push(5)).toBe(1);
    expect(buffer.push(6)).toBe(1);
    expect(buffer.size).toBe(4);
    buffer.acknowledge();
    expect(drain(buffer)).toEqual([5, 6]);
  });

  it('a failed batch goes back ahead of the entries that survived overflow, and the buffer stays within capacity', () => {
    const { buffer } = filled(4, [1, 2, 3, 4]);
    buffer.takeBatch(2);
    buffer.push(5);
    buffer.push(6);
    buffer.requeue();
    expect(buffer.size).toBe(4);
    expect(drain(buffer)).toEqual([1, 2, 5, 6]);
  });

  it('accounts for every entry: delivered plus dropped equals pushed, in order, across overflows and failures', () => {
    const buffer = new DropOldestBuffer<number>(7);
    let dropped = 0;
    let inFlight: readonly number[] = [];
    const delivered: number[] = [];
    for (let entry = 0; entry < 5_000; entry += 1) {
      dropped += buffer.push(entry);
      if (entry % 5 === 0 && inFlight.length === 0) inFlight = buffer.takeBatch(3);
      if (entry % 11 === 0 && inFlight.length > 0) {
        buffer.requeue();
        inFlight = [];
      }
      if (entry % 13 === 0 && inFlight.length > 0) {
        delivered.push(...inFlight);
        buffer.acknowledge();
        inFlight = [];
      }
      expect(buffer.size).toBeLessThanOrEqual(7);
    }
    if (inFlight.length > 0) buffer.requeue();
    delivered.push(...drain(buffer));
    expect(delivered.length + dropped).toBe(5_000);
    expect(new Set(delivered).size).toBe(delivered.length);
    expect([...delivered].sort((a, b) => a - b)).toEqual(delivered);
  });

  it('refuses a capacity that is not a positive integer', () => {
    expect(() => new DropOldestBuffer(0)).toThrow(RangeError);
    expect(() => new DropOldestBuffer(1.5)).toThrow(RangeError);
  });
});
