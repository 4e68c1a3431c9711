import type { JetStreamClient } from "@nats-io/jetstream";
import type pg from "pg";
import { publish } from "../nats/publisher.js";
import { quoteSchema, withTransaction } from "../postgres/pool.js";
import { onOutboxCommitted } from "./wake.js";

/** Options for {@link OutboxRelay}. */
export interface OutboxRelayOptions {
  /** Pool on the service's database (any search_path: the table is schema-qualified). */
  pool: pg.Pool;
  /** Schema holding the `outbox` table. */
  schema: string;
  js: JetStreamClient;
  /** Rows locked and published per transaction (default 100). */
  batchSize?: number;
  /**
   * Poll interval (default 1 s): how soon rows nobody woke the relay for are published (rows of
   * a writer that died before its relay ran, rows staged by a process without a relay).
   */
  pollIntervalMs?: number;
  /**
   * After an idle relay is woken, wait this long before taking a batch (default 0), so rows
   * committed in quick succession go out in one transaction instead of one each.
   */
  lingerMs?: number;
  /**
   * A woken relay looks for rows from this many sequence numbers below the highest it has
   * published (default 1,000), not from the start: see `#publishBatch`. Rows further back (a
   * transaction that stayed open while that many rows were published) wait for the next full scan,
   * one poll interval at most.
   */
  rescanWindow?: number;
  /** Wait for each JetStream ack (default 5 s); keep it well under the 2-minute duplicate window. */
  publishTimeoutMs?: number;
  /** Delete published rows older than this; `"forever"` keeps them (default 24 h). */
  retainPublishedMs?: number | "forever";
  /** How often the retention sweep runs (default 60 s). */
  cleanupIntervalMs?: number;
  /** Pause after the n-th consecutive failure: min(initialMs * 2^(n-1), maxMs) (default 200 ms .. 30 s). */
  retryBackoff?: { initialMs: number; maxMs: number };
  /** Transient PG/NATS failures; the relay backs off and retries, it never throws from its loop. */
  onError?: (err: unknown) => void;
  /** After each committed batch: rows marked published, and how many JetStream reported as duplicates. */
  onBatch?: (stats: { published: number; duplicates: number }) => void;
}

/** Lifecycle of a relay; DRAINING = finishing the current batch. */
export type RelayState = "INITIALIZED" | "RUNNING" | "DRAINING" | "STOPPED";

interface OutboxRow {
  seq: bigint;
  id: string;
  subject: string;
  payload: Buffer;
  headers: Record<string, unknown>;
}

const SWEEP_LIMIT = 1_000;

function stringHeaders(raw: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(raw)) if (typeof v === "string") out[k] = v;
  return out;
}

/**
 * Moves committed outbox rows to JetStream: the publishing half of the transactional outbox.
 *
 * Why it is built this way:
 * - Rows are claimed with `FOR UPDATE SKIP LOCKED` in `seq` order, so any number of replicas can
 *   run a relay and no row is published by two of them at once (one replica publishes in order).
 * - A batch's publishes go out concurrently (one connection keeps their order on the wire), and
 *   the rows are marked in the same transaction that locked them. A crash between publish and
 *   commit leaves the rows unpublished; the next relay re-publishes them with the same
 *   `Nats-Msg-Id` (the event id) and JetStream drops the copies: exactly once in the stream.
 * - Woken in-process when a transaction that staged rows in its schema commits (wake.ts), for
 *   low latency; polling is only the fallback.
 * - Transient failures are reported to `onError`, then retried with backoff: an outage of NATS
 *   or PostgreSQL delays events, it never loses them or crashes the service.
 */
export class OutboxRelay {
  #state: RelayState = "INITIALIZED";
  readonly #o: Required<Omit<OutboxRelayOptions, "onError" | "onBatch">>;
  readonly #onError: (err: unknown) => void;
  readonly #onBatch: (stats: { published: number; duplicates: number }) => void;
  readonly #table: string;
  #loop: Promise<void> | undefined;
  #unsubscribe: (() => void) | undefined;
  #woken = false;
  #wakeOnCommit = false;
  #wake: (() => void) | undefined;
  #lastSweep = 0;
  /** Highest seq this relay has claimed. */
  #cursor = 0n;
  /** When the last scan from the start of the table found every row it could claim. */
  #lastFullScan = Number.NEGATIVE_INFINITY;

  constructor(opts: OutboxRelayOptions) {
    this.#table = `${quoteSchema(opts.schema)}.outbox`;
    this.#o = {
      batchSize: 100,
      rescanWindow: 1_000,
      pollIntervalMs: 1_000,
      lingerMs: 0,
      publishTimeoutMs: 5_000,
      retainPublishedMs: 24 * 60 * 60 * 1000,
      cleanupIntervalMs: 60_000,
      retryBackoff: { initialMs: 200, maxMs: 30_000 },
      ...opts,
    };
    this.#onError = opts.onError ?? (() => {});
    this.#onBatch = opts.onBatch ?? (() => {});
  }

  get state(): RelayState {
    return this.#state;
  }

  /** Starts relaying in the background; returns at once (failures go to `onError`). */
  start(): void {
    if (this.#state !== "INITIALIZED") throw new Error(`outbox relay already ${this.#state}`);
    this.#state = "RUNNING";
    this.#unsubscribe = onOutboxCommitted(this.#o.schema, () => {
      this.#woken = true;
      if (this.#wakeOnCommit) this.#wake?.();
    });
    this.#loop = this.#run();
  }

  /** Finishes the batch in progress (its rows are marked), stops listening and returns. */
  async stop(): Promise<void> {
    if (this.#state === "INITIALIZED" || this.#state === "STOPPED") {
      this.#state = "STOPPED";
      return;
    }
    this.#state = "DRAINING";
    this.#wake?.();
    await this.#loop;
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    this.#state = "STOPPED";
  }

  /**
   * Publishes every row that is unpublished and not locked by another relay, batch by batch,
   * and returns how many this call published. Useful in tests and before a graceful exit.
   * @throws the first publish error of a batch, after the batch's successful rows were marked.
   */
  async flush(): Promise<number> {
    let total = 0;
    for (;;) {
      const n = await this.#publishBatch(true);
      total += n;
      if (n < this.#o.batchSize) return total;
    }
  }

  /** Unpublished rows and the age of the oldest one: the relay's lag, for metrics and alerts. */
  async lag(): Promise<{ pending: number; oldestAgeSeconds: number }> {
    const { rows } = await this.#o.pool.query<{ pending: number; age: number }>(
      `SELECT count(*)::int AS pending,
              COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0)::float8 AS age
         FROM ${this.#table} WHERE published_at IS NULL`,
    );
    return { pending: rows[0]?.pending ?? 0, oldestAgeSeconds: rows[0]?.age ?? 0 };
  }

  async #run(): Promise<void> {
    let failures = 0;
    while (this.#state === "RUNNING") {
      try {
        // Keep going while batches come back full; stop() is honoured between batches.
        let full = true;
        while (full && this.#state === "RUNNING")
          full = (await this.#publishBatch(false)) === this.#o.batchSize;
        await this.#sweep();
        failures = 0;
      } catch (err) {
        this.#onError(err);
        failures++;
        const { initialMs, maxMs } = this.#o.retryBackoff;
        await this.#sleep(Math.min(initialMs * 2 ** (failures - 1), maxMs), false);
        continue;
      }
      await this.#sleep(this.#o.pollIntervalMs, true);
      if (this.#o.lingerMs > 0) await this.#sleep(this.#o.lingerMs, false);
    }
  }

  /**
   * Sleeps until `ms` passed or stop(); when idle (`onCommit`) also until staged rows commit,
   * including rows that committed during the last batch. Backoff sleeps ignore commits, so a burst of
   * enqueues during a NATS outage does not turn into a burst of doomed publish attempts.
   */
  #sleep(ms: number, onCommit: boolean): Promise<void> {
    if ((onCommit && this.#woken) || this.#state !== "RUNNING") {
      this.#woken = false;
      return Promise.resolve();
    }
    this.#wakeOnCommit = onCommit;
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.#wake?.(), ms);
      this.#wake = () => {
        clearTimeout(timer);
        this.#wake = undefined;
        this.#woken = false;
        resolve();
      };
    });
  }

  /**
   * Claims, publishes and marks one batch; returns how many rows it claimed.
   *
   * Where it looks: every published row leaves a dead entry in the partial index of unpublished
   * rows until autovacuum comes by (a minute apart at best), and a scan from the start of the
   * table walks all of them. After a burst of 6,000 runs that was 74 index pages and 0.5 ms for
   * each batch of one row, a sixth of Postgres's CPU at 100 runs/s. So a batch starts just below
   * the highest seq this relay claimed (`rescanWindow` back: seq is taken at INSERT, and a
   * transaction that began earlier can commit later), and only one batch per poll interval, or
   * `scanAll` (flush), scans from the start, for rows the window misses.
   */
  async #publishBatch(scanAll: boolean): Promise<number> {
    const { js, batchSize, publishTimeoutMs, pollIntervalMs, rescanWindow } = this.#o;
    const startedAt = performance.now();
    const fromStart = scanAll || startedAt - this.#lastFullScan >= pollIntervalMs;
    const floor = this.#cursor - BigInt(rescanWindow);
    const after = fromStart || floor < 0n ? 0n : floor;
    const outcome = await withTransaction(
      this.#o.pool,
      async (client) => {
        const { rows } = await client.query<OutboxRow>(
          `SELECT seq, id, subject, payload, headers FROM ${this.#table}
          WHERE published_at IS NULL AND seq > $2 ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED`,
          [batchSize, after],
        );
        const results = await Promise.allSettled(
          rows.map((r) =>
            publish(js, r.subject, r.payload, {
              msgId: r.id,
              headers: stringHeaders(r.headers),
              timeoutMs: publishTimeoutMs,
            }),
          ),
        );
        const done: string[] = [];
        let duplicates = 0;
        let failure: { error: unknown } | undefined;
        results.forEach((res, i) => {
          if (res.status === "rejected") failure ??= { error: res.reason };
          else {
            done.push(String(rows[i]?.seq));
            if (res.value.duplicate) duplicates++;
          }
        });
        const tail = rows.at(-1);
        // int8 is a bigint on pools from createPool, a string on others.
        const lastSeq = tail === undefined ? undefined : BigInt(tail.seq);
        return { claimed: rows.length, published: done.length, duplicates, failure, done, lastSeq };
      },
      {
        // Marked with COMMIT, in one flight on a pipelined connection.
        last: ({ done }) =>
          done.length > 0
            ? {
                text: `UPDATE ${this.#table} SET published_at = now() WHERE seq = ANY($1::bigint[])`,
                values: [done],
              }
            : undefined,
      },
    );
    const last = outcome.lastSeq;
    if (last !== undefined && last > this.#cursor) this.#cursor = last;
    if (fromStart && outcome.claimed < batchSize) this.#lastFullScan = startedAt;
    if (outcome.published > 0)
      this.#onBatch({ published: outcome.published, duplicates: outcome.duplicates });
    if (outcome.failure !== undefined) throw outcome.failure.error;
    return outcome.claimed;
  }

  /** Deletes published rows past retention, in small chunks so the sweep never holds long locks. */
  async #sweep(): Promise<void> {
    const { retainPublishedMs, cleanupIntervalMs, pool } = this.#o;
    if (retainPublishedMs === "forever" || Date.now() - this.#lastSweep < cleanupIntervalMs) return;
    this.#lastSweep = Date.now();
    for (;;) {
      const res = await pool.query(
        `DELETE FROM ${this.#table} WHERE seq IN (
           SELECT seq FROM ${this.#table}
            WHERE published_at < now() - make_interval(secs => $1::float8 / 1000)
            LIMIT ${SWEEP_LIMIT})`,
        [retainPublishedMs],
      );
      if ((res.rowCount ?? 0) < SWEEP_LIMIT || this.#state !== "RUNNING") return;
    }
  }
}
