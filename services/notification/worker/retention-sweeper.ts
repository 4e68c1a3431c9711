import type pg from "pg";
import type { Logger } from "../../../mesh/logging.js";
import { sweepHistory } from "../store/retention.js";

/**
 * Runs the retention sweep (store/retention.ts) on a fixed interval. Replicas may sweep at the
 * same time: the deletes are idempotent and chunked, so they only share the work.
 */
export class RetentionSweeper {
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;

  constructor(
    private readonly o: { pool: pg.Pool; retentionMs: number; intervalMs: number; logger: Logger },
  ) {}

  async start(): Promise<void> {
    this.#timer = setInterval(() => {
      if (this.#running !== undefined) return;
      this.#running = this.sweepOnce()
        .catch((err: unknown) => this.o.logger.warn({ err }, "retention sweep failed"))
        .finally(() => {
          this.#running = undefined;
        });
    }, this.o.intervalMs);
    this.#timer.unref();
  }

  async sweepOnce(): Promise<void> {
    const removed = await sweepHistory(this.o.pool, new Date(Date.now() - this.o.retentionMs));
    if (Object.values(removed).some((n) => n > 0)) this.o.logger.info({ removed }, "retention sweep");
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.#running;
  }
}
