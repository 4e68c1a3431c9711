import type pg from "pg";
import type { Logger } from "../../../mesh/logging.js";
import type { SubscriptionIndex } from "../domain/subscription-index.js";
import { loadSubscriptionIndex, readChangeCount } from "../store/subscription-index.js";

export interface SubscriptionCacheOptions {
  pool: pg.Pool;
  /** How often the change count is compared with the index's (one one-row read). */
  refreshMs: number;
  logger: Logger;
}

/**
 * The consumer's in-memory {@link SubscriptionIndex}, kept current.
 *
 * Freshness, i.e. when an event is matched against a subscription change:
 * - A change made through this replica's API: for every event consumed after the RPC returned
 *   (the handler calls {@link changed} after its commit; the next {@link current} reloads).
 * - A change made through another replica: within `refreshMs` (SUBSCRIPTION_REFRESH_INTERVAL,
 *   1 s by default) plus one query, when the periodic check sees the `subscription_changes`
 *   count move. An event consumed in that gap that matches nothing in the stale index is not
 *   delivered to the new subscription (as if it had been consumed just before the change).
 * - Any batch that matches something verifies the count inside its writing transaction
 *   ({@link verified}) and re-matches against fresh rows when it moved, so deliveries and alert
 *   counts are never written for a subscription deleted, disabled or re-filtered meanwhile.
 */
export class SubscriptionCache {
  readonly #o: SubscriptionCacheOptions;
  #index: SubscriptionIndex | undefined;
  /** Bumped by {@link changed}; an index loaded for an older generation may miss that change. */
  #wanted = 0;
  #loadedFor = -1;
  #loading: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #checking = false;

  constructor(o: SubscriptionCacheOptions) {
    this.#o = o;
  }

  /** Loads the index, then checks the change count every `refreshMs`. */
  async start(): Promise<void> {
    await this.current();
    this.#timer = setInterval(() => void this.#check(), this.#o.refreshMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** A change to subscriptions committed in this process: the next {@link current} reloads. */
  changed(): void {
    this.#wanted++;
  }

  /** The index, reloaded first when this process changed subscriptions since it was loaded. */
  async current(): Promise<SubscriptionIndex> {
    while (this.#index === undefined || this.#loadedFor < this.#wanted) await this.#reload();
    return this.#index;
  }

  /**
   * For a transaction about to write deliveries or alert state from what `index` matched: `index`
   * if nothing changed as of this statement, else one loaded on `client` (and kept, when newer
   * than the cached one). Uses only `client`: a transaction never waits for a second connection.
   */
  async verified(client: pg.ClientBase, index: SubscriptionIndex): Promise<SubscriptionIndex> {
    if ((await readChangeCount(client)) === index.changeCount) return index;
    const fresh = await loadSubscriptionIndex(client);
    this.#offer(fresh);
    return fresh;
  }

  #offer(index: SubscriptionIndex): void {
    if (this.#index === undefined || index.changeCount >= this.#index.changeCount) this.#index = index;
  }

  /** One load at a time; a caller wanting a later generation loops in {@link current}. */
  #reload(): Promise<void> {
    if (this.#loading !== undefined) return this.#loading;
    const generation = this.#wanted;
    this.#loading = loadSubscriptionIndex(this.#o.pool)
      .then((index) => {
        this.#offer(index);
        this.#loadedFor = Math.max(this.#loadedFor, generation);
      })
      .finally(() => {
        this.#loading = undefined;
      });
    return this.#loading;
  }

  async #check(): Promise<void> {
    if (this.#checking || this.#index === undefined) return;
    this.#checking = true;
    try {
      const n = await readChangeCount(this.#o.pool);
      if (n !== this.#index.changeCount) await this.#reload();
    } catch (err) {
      this.#o.logger.warn({ err }, "subscription index refresh failed; keeping the loaded one");
    } finally {
      this.#checking = false;
    }
  }
}
