/**
 * Group commit of run state changes: many small changes, one transaction.
 *
 * Why: at a thousand runs a second every run changes state four times (enqueued, assigned,
 * started, completed), each with an event. One transaction per change would cost a commit
 * (an fsync) and several round trips each; here changes submitted while a transaction is in
 * flight wait and go together in the next one, each kind as one multi-row statement, events as
 * one outbox INSERT. Semantics are kept: every change is still conditional on the row's state
 * and fencing token in SQL, the events commit with their changes, and a caller's promise settles
 * only after COMMIT. Changes to the same run keep their order (a second change of a run already
 * in the batch waits for the next one). When a batch fails as a whole (a bug or a constraint in
 * one change), each change is retried alone so one bad change cannot fail its neighbours.
 */
import type pg from "pg";
import type { EventEnvelope } from "../../../gen/codex/events/v1/envelope_pb.js";
import type { Logger } from "../../../mesh/logging.js";
import type { Subjects } from "../../../mesh/nats/subjects.js";
import { outboxStaged } from "../../../mesh/outbox/wake.js";
import { withTransaction } from "../../../mesh/postgres/pool.js";
import { outboxStatement } from "../events/outbox-batch.js";

/** What a kind gets while applying its changes. */
export interface BatchContext {
  readonly client: pg.PoolClient;
  /** One clock reading per transaction: every row and event of the batch carries it. */
  readonly now: Date;
  /** Stages an event, committed with the batch. */
  stage(envelope: EventEnvelope): void;
}

export type Outcome<R> = { ok: true; value: R } | { ok: false; error: unknown };

/**
 * One kind of change, applied to many items at once; outcomes in the items' order.
 *
 * The kinds of a batch are started one after the other in their registered order but not
 * awaited in between: on the pipelined connection their statements travel together. So `apply`
 * must issue its first statement before its first `await`, and a kind may rely on an earlier
 * kind's first statement having run before its own (as assign relies on enqueue's INSERT).
 */
export interface BatchKind<P, R> {
  readonly name: string;
  apply(ctx: BatchContext, items: readonly P[]): Promise<Outcome<R>[]>;
}

interface Pending {
  kind: BatchKind<unknown, unknown>;
  payload: unknown;
  key: string | undefined;
  resolve(value: unknown): void;
  reject(err: unknown): void;
}

export interface GroupCommitterOptions {
  pool: pg.Pool;
  subjects: Subjects;
  logger: Logger;
  /** Kinds in the order they are applied within a batch. */
  kinds: readonly BatchKind<never, unknown>[];
  maxBatch: number;
  /** Batches in flight at once (default 2); a run is never in two of them. */
  concurrency?: number;
  /** Observes every committed batch (size, seconds). */
  onBatch?: (size: number, seconds: number) => void;
}

export class GroupCommitter {
  readonly #o: GroupCommitterOptions;
  readonly #order: Map<string, number>;
  #queue: Pending[] = [];
  #inFlight = 0;
  /** Keys of changes in batches being committed: their next change waits. */
  readonly #busyKeys = new Set<string>();
  #scheduled = false;

  constructor(opts: GroupCommitterOptions) {
    this.#o = opts;
    this.#order = new Map(opts.kinds.map((k, i) => [k.name, i]));
  }

  /** Submits a change; settles after the transaction holding it committed (or failed). */
  submit<P, R>(kind: BatchKind<P, R>, payload: P, key?: string): Promise<R> {
    if (!this.#order.has(kind.name)) throw new Error(`group commit: unknown kind ${kind.name}`);
    return new Promise<R>((resolve, reject) => {
      this.#queue.push({
        kind: kind as BatchKind<unknown, unknown>,
        payload,
        key,
        resolve: resolve as (v: unknown) => void,
        reject,
      });
      this.#schedule();
    });
  }

  /** Resolves once everything submitted so far is settled (shutdown). */
  async flushed(): Promise<void> {
    while (this.#inFlight > 0 || this.#queue.length > 0) await new Promise((r) => setTimeout(r, 5));
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      this.#launch();
    });
  }

  /** Starts batches while there is room and work; each batch relaunches when it settles. */
  #launch(): void {
    const limit = this.#o.concurrency ?? 2;
    while (this.#inFlight < limit) {
      const batch = this.#take();
      if (batch.length === 0) break;
      this.#inFlight += 1;
      for (const p of batch) if (p.key !== undefined) this.#busyKeys.add(p.key);
      void this.#commit(batch, true).finally(() => {
        for (const p of batch) if (p.key !== undefined) this.#busyKeys.delete(p.key);
        this.#inFlight -= 1;
        if (this.#queue.length > 0) this.#launch();
      });
    }
  }

  /** The next batch: queue order, at most maxBatch, at most one change per key, none of a busy key. */
  #take(): Pending[] {
    const batch: Pending[] = [];
    const keys = new Set<string>(this.#busyKeys);
    const rest: Pending[] = [];
    for (const p of this.#queue) {
      if (batch.length >= this.#o.maxBatch || (p.key !== undefined && keys.has(p.key))) {
        rest.push(p);
        if (p.key !== undefined) keys.add(p.key);
        continue;
      }
      batch.push(p);
      if (p.key !== undefined) keys.add(p.key);
    }
    this.#queue = rest;
    return batch;
  }

  async #commit(batch: Pending[], splitOnFailure: boolean): Promise<void> {
    const started = performance.now();
    const events: EventEnvelope[] = [];
    const byKind = new Map<BatchKind<unknown, unknown>, Pending[]>();
    for (const p of batch) {
      const list = byKind.get(p.kind);
      if (list) list.push(p);
      else byKind.set(p.kind, [p]);
    }
    const kinds = [...byKind.keys()].sort(
      (a, b) => (this.#order.get(a.name) ?? 0) - (this.#order.get(b.name) ?? 0),
    );
    let outcomes: Map<Pending, Outcome<unknown>>;
    try {
      outcomes = await withTransaction(
        this.#o.pool,
        async (client) => {
          const now = new Date();
          const out = new Map<Pending, Outcome<unknown>>();
          // Each kind stages into its own list, joined in kind order: the answers may be handled
          // in another order (a kind with a second statement), the events must not. An async
          // arrow runs synchronously up to its first await, so every kind's first statement is
          // still sent here, in kind order.
          const applied = await Promise.allSettled(
            kinds.map(async (kind) => {
              const items = byKind.get(kind) ?? [];
              const staged: EventEnvelope[] = [];
              const results = await kind.apply(
                { client, now, stage: (e) => staged.push(e) },
                items.map((i) => i.payload),
              );
              return { kind, items, results, staged };
            }),
          );
          for (const res of applied) {
            if (res.status === "rejected") throw res.reason;
            const { kind, items, results, staged } = res.value;
            items.forEach((item, i) => {
              out.set(item, results[i] ?? { ok: false, error: new Error(`${kind.name}: no outcome`) });
            });
            events.push(...staged);
          }
          if (events.length > 0) outboxStaged(client); // the relay is woken at COMMIT
          return out;
        },
        // The events go with COMMIT, in one flight on the pipelined connection.
        { last: () => outboxStatement(this.#o.subjects, events) },
      );
    } catch (err) {
      if (splitOnFailure && batch.length > 1) {
        this.#o.logger.warn(
          { err, size: batch.length },
          "group commit failed; retrying its changes one by one",
        );
        // Alone, in the batch's kind order: an assign must not run before its run's insert.
        for (const kind of kinds) for (const p of byKind.get(kind) ?? []) await this.#commit([p], false);
        return;
      }
      for (const p of batch) p.reject(err);
      return;
    }
    this.#o.onBatch?.(batch.length, (performance.now() - started) / 1000);
    for (const p of batch) {
      const o = outcomes.get(p);
      if (o?.ok) p.resolve(o.value);
      else p.reject(o?.error ?? new Error("no outcome"));
    }
  }
}
