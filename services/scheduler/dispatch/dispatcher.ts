import { randomUUID } from "node:crypto";
import type { Redis } from "ioredis";
import type { Core } from "../core.js";
import { TASK_COLUMNS, type TaskRow, toTaskRow } from "../store/tasks.js";
import { dispatchOne } from "./dispatch-one.js";

/**
 * The dispatch loop: pops candidates from the Redis READY index in queue order, claims them in
 * Postgres in one statement (`... WHERE id = ANY($1) AND state = 'READY'`), and dispatches the
 * claimed ones concurrently up to DISPATCH_CONCURRENCY.
 *
 * Why this is safe with several replicas: the Postgres claim is the only transition to
 * DISPATCHED and the row lock makes it happen once; Redis merely suggests candidates. An id
 * popped by one replica is simply absent for the other, and an id that is stale (no longer
 * READY) is dropped by the claim. Idle dispatchers block in BZPOPMIN, so any replica's ZADD
 * wakes them at once without polling.
 */
export class Dispatcher {
  readonly #core: Core;
  readonly #blocking: Redis;
  readonly #inFlight = new Set<Promise<void>>();
  #running = false;
  #loop: Promise<void> | undefined;
  #slotFreed: (() => void) | undefined;

  constructor(core: Core, blocking: Redis) {
    this.#core = core;
    this.#blocking = blocking;
  }

  async start(): Promise<void> {
    this.#running = true;
    this.#loop = this.#run();
  }

  /** Stops claiming, lets in-flight dispatches finish (their claims are recorded or handed back). */
  async stop(): Promise<void> {
    this.#running = false;
    this.#slotFreed?.();
    this.#blocking.disconnect();
    await this.#loop;
    await Promise.allSettled([...this.#inFlight]);
  }

  async #run(): Promise<void> {
    const { settings, index, logger } = this.#core;
    let failures = 0;
    while (this.#running) {
      try {
        await this.#freeSlot();
        if (!this.#running) break;
        const room = Math.min(settings.dispatchBatch, settings.dispatchConcurrency - this.#inFlight.size);
        let ids = await index.popReady(room);
        if (ids.length === 0) {
          if (!(await index.isBuilt())) this.#core.wake.reconcile();
          const one = await index.waitReady(this.#blocking, settings.idlePollMs).catch((err: unknown) => {
            if (this.#running) throw err;
            return undefined;
          });
          if (one === undefined) continue;
          ids = [one, ...(await index.popReady(Math.max(room - 1, 0)))];
        }
        const claimed = await this.claim(ids);
        for (const { task, token } of claimed) this.#track(dispatchOne(this.#core, task, token));
        failures = 0;
      } catch (err) {
        if (!this.#running) break;
        failures++;
        logger.warn({ err }, "dispatch round failed; retrying");
        await new Promise((r) => setTimeout(r, Math.min(100 * 2 ** failures, 5_000)));
      }
    }
  }

  /** Claims READY tasks among `ids`; the others were stale index entries. */
  async claim(ids: readonly string[]): Promise<{ task: TaskRow; token: string }[]> {
    if (ids.length === 0) return [];
    const token = randomUUID();
    const { rows } = await this.#core.pool.query(
      `UPDATE tasks SET state = 'DISPATCHED', attempt = attempt + 1, dispatch_token = $2,
              dispatch_deadline = now() + make_interval(secs => $3::float8 / 1000),
              reservation_key = CASE WHEN attempt = 0 AND initial_reservation_key <> ''
                                     THEN initial_reservation_key ELSE id::text || '/' || (attempt + 1) END,
              reservation_held = false, update_time = now(), version = version + 1
        WHERE id = ANY($1::uuid[]) AND state = 'READY'
        RETURNING ${TASK_COLUMNS}`,
      [ids.filter((id) => /^[0-9a-f-]{36}$/i.test(id)), token, this.#core.settings.dispatchLeaseMs],
    );
    return rows.map((r) => ({ task: toTaskRow(r), token }));
  }

  #track(p: Promise<void>): void {
    const work = p
      .catch((err: unknown) => this.#core.logger.error({ err }, "dispatch crashed"))
      .finally(() => {
        this.#inFlight.delete(work);
        this.#slotFreed?.();
      });
    this.#inFlight.add(work);
  }

  async #freeSlot(): Promise<void> {
    while (this.#inFlight.size >= this.#core.settings.dispatchConcurrency && this.#running) {
      await new Promise<void>((resolve) => {
        this.#slotFreed = resolve;
      });
    }
  }
}
