import { createHash } from "node:crypto";
import type { Redis } from "ioredis";
import { readyScore } from "../domain/queue-score.js";

export interface ReadyEntry {
  id: string;
  priority: number;
  readyTime: Date;
}

export interface DelayedEntry {
  id: string;
  wakeAt: Date;
}

/**
 * The Redis side of the queue: an index, never the truth.
 *
 * - `ready:<shard>`: READY task ids scored by (priority desc, ready time asc); dispatchers pop
 *   candidates from it and then claim them in Postgres, which alone decides who dispatches.
 * - `delayed`: WAITING task ids scored by the time their last time-based wait ends; a promoter
 *   re-evaluates them in Postgres when due.
 * - `built`: written after every rebuild. Its absence (a FLUSHALL, a failover to an empty
 *   replica) tells the loops to rebuild the index from Postgres at once.
 */
export class QueueIndex {
  readonly #redis: Redis;
  readonly #prefix: string;
  readonly #shards: number;

  constructor(redis: Redis, prefix: string, shards: number) {
    this.#redis = redis;
    this.#prefix = prefix;
    this.#shards = shards;
  }

  readyKey(shard: number): string {
    return `${this.#prefix}ready:${shard}`;
  }

  get readyKeys(): string[] {
    return Array.from({ length: this.#shards }, (_, i) => this.readyKey(i));
  }

  get delayedKey(): string {
    return `${this.#prefix}delayed`;
  }

  get builtKey(): string {
    return `${this.#prefix}built`;
  }

  shardOf(taskId: string): number {
    if (this.#shards === 1) return 0;
    return createHash("sha1").update(taskId).digest().readUInt32BE(0) % this.#shards;
  }

  async addReady(entries: readonly ReadyEntry[]): Promise<void> {
    if (entries.length === 0) return;
    const pipe = this.#redis.pipeline();
    for (const e of entries) {
      pipe.zadd(this.readyKey(this.shardOf(e.id)), readyScore(e.priority, e.readyTime.getTime()), e.id);
      pipe.zrem(this.delayedKey, e.id);
    }
    await pipe.exec();
  }

  async addDelayed(entries: readonly DelayedEntry[]): Promise<void> {
    if (entries.length === 0) return;
    const args: (string | number)[] = [];
    for (const e of entries) args.push(e.wakeAt.getTime(), e.id);
    await this.#redis.zadd(this.delayedKey, ...args);
  }

  /** Forgets tasks entirely (cancelled, unscheduled, claimed elsewhere). */
  async remove(ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return;
    const pipe = this.#redis.pipeline();
    for (const id of ids) pipe.zrem(this.readyKey(this.shardOf(id)), id);
    pipe.zrem(this.delayedKey, ...ids);
    await pipe.exec();
  }

  /** Pops up to `max` candidates in queue order across shards. */
  async popReady(max: number): Promise<string[]> {
    const per = Math.max(1, Math.ceil(max / this.#shards));
    const pipe = this.#redis.pipeline();
    for (const key of this.readyKeys) pipe.zpopmin(key, per);
    const results = (await pipe.exec()) ?? [];
    const scored: { id: string; score: number }[] = [];
    for (const [err, reply] of results) {
      if (err) throw err;
      const flat = reply as string[];
      for (let i = 0; i + 1 < flat.length; i += 2)
        scored.push({ id: flat[i] as string, score: Number(flat[i + 1]) });
    }
    return scored.sort((a, b) => a.score - b.score).map((s) => s.id);
  }

  /**
   * Blocks on a dedicated connection until some shard has a candidate or `timeoutMs` passes.
   * Any replica's ZADD wakes it, so idle dispatchers need no polling.
   */
  async waitReady(blocking: Redis, timeoutMs: number): Promise<string | undefined> {
    const reply = await blocking.bzpopmin(...this.readyKeys, Math.max(0.01, timeoutMs / 1000));
    return reply ? reply[1] : undefined;
  }

  async dueDelayed(now: number, limit: number): Promise<string[]> {
    return this.#redis.zrangebyscore(this.delayedKey, "-inf", now, "LIMIT", 0, limit);
  }

  async removeDelayed(ids: readonly string[]): Promise<void> {
    if (ids.length > 0) await this.#redis.zrem(this.delayedKey, ...ids);
  }

  /** Epoch ms of the earliest delayed entry. */
  async nextDelayed(): Promise<number | undefined> {
    const r = await this.#redis.zrange(this.delayedKey, 0, 0, "WITHSCORES");
    return r.length >= 2 ? Number(r[1]) : undefined;
  }

  async markBuilt(): Promise<void> {
    await this.#redis.set(this.builtKey, String(Date.now()));
  }

  async isBuilt(): Promise<boolean> {
    return (await this.#redis.exists(this.builtKey)) === 1;
  }

  async readySize(): Promise<number> {
    let n = 0;
    for (const key of this.readyKeys) n += await this.#redis.zcard(key);
    return n;
  }
}
