/**
 * A Map that forgets everything when it reaches `maxEntries`: O(1), no
 * bookkeeping per hit, and only used for values that are pure functions of
 * their key, so forgetting costs one recomputation and never a wrong answer.
 */
export class BoundedCache<K, V> {
  private readonly entries = new Map<K, V>();

  constructor(private readonly maxEntries: number) {}

  get(key: K): V | undefined {
    return this.entries.get(key);
  }

  set(key: K, value: V): V {
    if (this.entries.size >= this.maxEntries) this.entries.clear();
    this.entries.set(key, value);
    return value;
  }
}
