/**
 * A FIFO with a fixed capacity that drops its oldest entries when full.
 *
 * The sender takes a batch out with `takeBatch` and then either `acknowledge`s
 * it (delivered) or `requeue`s it (back at the front, in order). A batch in
 * flight is never dropped, because it may already have reached the broker and
 * dropping it would miscount; overflow drops the oldest entry that is waiting.
 * `size` (waiting + in flight) never exceeds `capacity`.
 */
export class DropOldestBuffer<T> {
  private waiting: T[] = [];
  private head = 0;
  private inFlight: T[] = [];

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`buffer capacity must be a positive integer, got ${capacity}`);
  }

  /** Entries held: waiting and in flight. */
  get size(): number {
    return this.waitingCount + this.inFlight.length;
  }

  get waitingCount(): number {
    return this.waiting.length - this.head;
  }

  get inFlightCount(): number {
    return this.inFlight.length;
  }

  /** Appends `entry`; returns how many entries were dropped to make room (0 or 1). */
  push(entry: T): number {
    this.waiting.push(entry);
    return this.trim();
  }

  /** Moves up to `maxEntries` of the oldest waiting entries in flight and returns them. One batch at a time. */
  takeBatch(maxEntries: number): readonly T[] {
    if (this.inFlight.length > 0) throw new Error('a batch is already in flight');
    const end = Math.min(this.waiting.length, this.head + Math.max(1, maxEntries));
    this.inFlight = this.waiting.slice(this.head, end);
    this.head = end;
    this.compact();
    return this.inFlight;
  }

  /** The batch in flight was delivered; returns its length. */
  acknowledge(): number {
    const delivered = this.inFlight.length;
    this.inFlight = [];
    return delivered;
  }

  /**
   * The batch in flight failed: it goes back to the front, ahead of newer
   * entries. `size` already counted it, so this never overflows.
   */
  requeue(): void {
    this.waiting = [...this.inFlight, ...this.waiting.slice(this.head)];
    this.head = 0;
    this.inFlight = [];
  }

  private trim(): number {
    let dropped = 0;
    while (this.size > this.capacity && this.waitingCount > 0) {
      this.head += 1;
      dropped += 1;
    }
    this.compact();
    return dropped;
  }

  /** Dropping from the front only moves `head`; reclaim the slots now and then instead of shifting on every drop. */
  private compact(): void {
    if (this.head > 1024 && this.head * 2 > this.waiting.length) {
      this.waiting = this.waiting.slice(this.head);
      this.head = 0;
    } else if (this.head === this.waiting.length) {
      this.waiting = [];
      this.head = 0;
    }
  }
}
