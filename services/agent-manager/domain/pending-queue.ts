/**
 * The PENDING runs in claim order: highest priority first, then oldest. Pure data structure.
 *
 * Why buckets: priorities are few and runs are many, so one array per priority kept sorted by
 * creation time makes the common cases O(1) — appending a new run (it is the newest) and taking
 * from the head — while a requeued run (lease expired) is put back at its old place by binary
 * search, as run.proto orders by priority then age, not by requeue time.
 */

/** What the queue needs of an entry. */
export interface Queued {
  readonly id: string;
  readonly priority: number;
  /** Creation time, epoch ms (the run's create_time, unchanged by requeues). */
  readonly createdMs: number;
}

export class PendingQueue<T extends Queued> {
  readonly #buckets = new Map<number, T[]>();
  /** Priorities with a bucket, highest first. */
  #priorities: number[] = [];
  readonly #byId = new Map<string, T>();

  get size(): number {
    return this.#byId.size;
  }

  has(id: string): boolean {
    return this.#byId.has(id);
  }

  get(id: string): T | undefined {
    return this.#byId.get(id);
  }

  /** Adds an entry (replacing one with the same id). */
  add(entry: T): void {
    if (this.#byId.has(entry.id)) this.remove(entry.id);
    this.#byId.set(entry.id, entry);
    let bucket = this.#buckets.get(entry.priority);
    if (bucket === undefined) {
      bucket = [];
      this.#buckets.set(entry.priority, bucket);
      this.#priorities.push(entry.priority);
      this.#priorities.sort((a, b) => b - a);
    }
    const last = bucket[bucket.length - 1];
    if (last === undefined || !before(entry, last)) {
      bucket.push(entry);
      return;
    }
    let lo = 0;
    let hi = bucket.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (before(entry, bucket[mid]!)) hi = mid;
      else lo = mid + 1;
    }
    bucket.splice(lo, 0, entry);
  }

  /** Removes an entry; false when it was not queued. */
  remove(id: string): boolean {
    const entry = this.#byId.get(id);
    if (entry === undefined) return false;
    this.#byId.delete(id);
    const bucket = this.#buckets.get(entry.priority);
    if (bucket !== undefined) {
      const i = bucket[0]?.id === id ? 0 : bucket.indexOf(entry);
      if (i >= 0) bucket.splice(i, 1);
      if (bucket.length === 0) {
        this.#buckets.delete(entry.priority);
        this.#priorities = this.#priorities.filter((p) => p !== entry.priority);
      }
    }
    return true;
  }

  /**
   * Entries in claim order, at most `limit` of them. Safe against removal of the entry just
   * yielded (the usual "take it" case) without copying buckets, so a scan of a long backlog
   * that stops early costs only what it looked at.
   */
  *ordered(limit = Number.POSITIVE_INFINITY): Generator<T> {
    let seen = 0;
    for (const priority of [...this.#priorities]) {
      const bucket = this.#buckets.get(priority);
      if (bucket === undefined) continue;
      let i = 0;
      while (i < bucket.length) {
        if (seen++ >= limit) return;
        const entry = bucket[i]!;
        yield entry;
        if (bucket[i] === entry) i++;
      }
    }
  }
}

function before(a: Queued, b: Queued): boolean {
  return a.createdMs < b.createdMs || (a.createdMs === b.createdMs && a.id < b.id);
}
